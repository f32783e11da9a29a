"""A raw, lenient view of an X.509 CRL: every field exactly as encoded (RFC 5280 5.1).

cryptography re-encodes names and hides criticality as encoded, duplicate extensions and entries
it cannot decode. The revocation checks compare names as raw DER bytes (the Matter SDK's revocation
delegate does, src/credentials/attestation_verifier/TestDACRevocationDelegateImpl.cpp), so they read
this view.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from matter_pki import der
from matter_pki.certparse import RawExtension, RawTime
from matter_pki.der import DerError
from matter_pki.oid import ExtensionOID

MAX_CRL_BYTES = 4 * 1024 * 1024
_CERTIFICATE_ISSUER = "2.5.29.29"
_DIRECTORY_NAME = 0xA4


@dataclass(frozen=True, slots=True)
class RawCrlEntry:
    """One revokedCertificates entry: serial INTEGER content, date, entry extensions."""

    serial: bytes
    revocation_date: RawTime
    extensions: tuple[RawExtension, ...]

    @property
    def serial_magnitude(self) -> bytes:
        """The serial's magnitude bytes (leading 00 sign octet removed), as OpenSSL stores them."""
        return self.serial[1:] if len(self.serial) > 1 and self.serial[0] == 0 else self.serial

    def extensions_for(self, oid: str) -> list[RawExtension]:
        """Every occurrence of an entry extension."""
        return [e for e in self.extensions if e.oid == oid]

    def certificate_issuer_names(self) -> list[bytes] | None:
        """DER of each directoryName in certificateIssuer, or None when the entry has no such extension."""
        found = self.extensions_for(_CERTIFICATE_ISSUER)
        if not found:
            return None
        return directory_names(found[0].value)


@dataclass(frozen=True, slots=True)
class RawCrl:
    """The fields of a CRL as encoded."""

    der: bytes
    trailing: int
    tbs: bytes
    version: int | None
    tbs_signature_algorithm: bytes
    signature_algorithm: bytes
    signature_algorithm_oid: str
    issuer: bytes
    this_update: RawTime
    next_update: RawTime | None
    entries: tuple[RawCrlEntry, ...]
    extensions: tuple[RawExtension, ...]
    signature: bytes

    def extensions_for(self, oid: str) -> list[RawExtension]:
        """Every occurrence of a CRL extension (duplicates kept)."""
        return [e for e in self.extensions if e.oid == oid]

    def akid(self) -> bytes | None:
        """The AKID keyIdentifier, or None when absent or undecodable."""
        found = self.extensions_for(ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string)
        if len(found) != 1:
            return None
        from matter_pki.certparse import decode_akid

        try:
            return decode_akid(found[0].value)
        except DerError:
            return None


def _time(buf: bytes, tlv: der.Tlv, what: str) -> RawTime:
    if tlv.tag not in (der.UTC_TIME, der.GENERALIZED_TIME):
        raise DerError(f"{what} must be UTCTime or GeneralizedTime")
    try:
        return RawTime(tlv.tag, tlv.value(buf).decode("ascii"))
    except UnicodeDecodeError as e:
        raise DerError(f"{what} is not ASCII") from e


def _extensions(buf: bytes, seq: der.Tlv) -> tuple[RawExtension, ...]:
    der.expect(seq, der.SEQUENCE, "Extensions")
    result: list[RawExtension] = []
    for ext in der.children(buf, seq):
        der.expect(ext, der.SEQUENCE, "Extension")
        parts = der.children(buf, ext)
        if len(parts) not in (2, 3):
            raise DerError("Extension must hold 2 or 3 fields")
        oid = der.decode_oid(der.expect(parts[0], der.OID, "extnID").value(buf))
        critical = explicit_false = False
        if len(parts) == 3:
            flag = der.expect(parts[1], der.BOOLEAN, "critical").value(buf)
            if len(flag) != 1 or flag[0] not in (0x00, 0xFF):
                raise DerError("BOOLEAN must be 00 or FF")
            critical = flag[0] == 0xFF
            explicit_false = not critical
        value = der.expect(parts[-1], der.OCTET_STRING, "extnValue").value(buf)
        result.append(RawExtension(oid, critical, value, explicit_false))
    return tuple(result)


def _entry(buf: bytes, tlv: der.Tlv) -> RawCrlEntry:
    parts = der.children(buf, der.expect(tlv, der.SEQUENCE, "revoked certificate"))
    if len(parts) not in (2, 3):
        raise DerError("a revoked certificate entry holds a serial, a date and optional extensions")
    serial = der.expect(parts[0], der.INTEGER, "userCertificate").value(buf)
    if not serial:
        raise DerError("empty userCertificate serial")
    extensions = _extensions(buf, parts[2]) if len(parts) == 3 else ()
    return RawCrlEntry(serial, _time(buf, parts[1], "revocationDate"), extensions)


def parse_crl(data: bytes) -> RawCrl:
    """Parse a DER CRL leniently (trailing bytes are counted, not refused); DerError when unreadable."""
    if len(data) > MAX_CRL_BYTES:
        raise DerError(f"CRL is {len(data)} bytes, over {MAX_CRL_BYTES}")
    top = der.expect(der.read_tlv(data, 0), der.SEQUENCE, "CertificateList")
    body = der.children(data, top)
    if len(body) != 3:
        raise DerError("CertificateList must hold tbsCertList, signatureAlgorithm, signatureValue")
    tbs_tlv = der.expect(body[0], der.SEQUENCE, "tbsCertList")
    sig_alg = der.expect(body[1], der.SEQUENCE, "signatureAlgorithm")
    sig_bits = der.expect(body[2], der.BIT_STRING, "signatureValue").value(data)
    if not sig_bits or sig_bits[0] != 0:
        raise DerError("signatureValue must have no unused bits")
    fields = der.children(data, tbs_tlv)
    idx = 0
    version: int | None = None
    if fields and fields[0].tag == der.INTEGER:
        version = int.from_bytes(fields[0].value(data), "big", signed=True)
        idx = 1
    if len(fields) < idx + 3:
        raise DerError("tbsCertList is missing fields")
    tbs_sig = der.expect(fields[idx], der.SEQUENCE, "signature")
    issuer = der.expect(fields[idx + 1], der.SEQUENCE, "issuer")
    this_update = _time(data, fields[idx + 2], "thisUpdate")
    rest = fields[idx + 3 :]
    next_update: RawTime | None = None
    if rest and rest[0].tag in (der.UTC_TIME, der.GENERALIZED_TIME):
        next_update = _time(data, rest[0], "nextUpdate")
        rest = rest[1:]
    entries: tuple[RawCrlEntry, ...] = ()
    if rest and rest[0].tag == der.SEQUENCE:
        entries = tuple(_entry(data, e) for e in der.children(data, rest[0]))
        rest = rest[1:]
    extensions: tuple[RawExtension, ...] = ()
    if rest and rest[0].tag == 0xA0:
        inner = der.children(data, rest[0])
        if len(inner) != 1:
            raise DerError("[0] must hold exactly one Extensions SEQUENCE")
        extensions = _extensions(data, inner[0])
        rest = rest[1:]
    if rest:
        raise DerError(f"unexpected field 0x{rest[0].tag:02x} in tbsCertList")
    alg_parts = der.children(data, sig_alg)
    if not alg_parts:
        raise DerError("empty signatureAlgorithm")
    return RawCrl(
        der=data[: top.end],
        trailing=len(data) - top.end,
        tbs=tbs_tlv.encoded(data),
        version=version,
        tbs_signature_algorithm=tbs_sig.encoded(data),
        signature_algorithm=sig_alg.encoded(data),
        signature_algorithm_oid=der.decode_oid(der.expect(alg_parts[0], der.OID, "algorithm").value(data)),
        issuer=issuer.encoded(data),
        this_update=this_update,
        next_update=next_update,
        entries=entries,
        extensions=extensions,
        signature=sig_bits[1:],
    )


def directory_names(general_names: bytes) -> list[bytes]:
    """DER of every directoryName ([4] EXPLICIT Name) in a GeneralNames value."""
    seq = der.expect(der.read_tlv(general_names), der.SEQUENCE, "GeneralNames")
    names: list[bytes] = []
    for item in der.children(general_names, seq):
        if item.tag == _DIRECTORY_NAME:
            inner = der.children(general_names, item)
            if len(inner) != 1 or inner[0].tag != der.SEQUENCE:
                raise DerError("directoryName must hold one Name")
            names.append(inner[0].encoded(general_names))
    return names


def crl_der_from_bytes(data: bytes) -> tuple[bytes, bool]:
    """DER of a CRL given as DER or PEM, and whether it was PEM (a dataURL must serve DER)."""
    if b"-----BEGIN X509 CRL-----" not in data:
        return data, False
    start = data.index(b"-----BEGIN X509 CRL-----") + len(b"-----BEGIN X509 CRL-----")
    end = data.find(b"-----END X509 CRL-----", start)
    if end < 0:
        raise DerError("PEM X509 CRL block has no END line")
    try:
        return base64.b64decode(b"".join(data[start:end].split()), validate=True), True
    except binascii.Error as e:
        raise DerError("PEM X509 CRL block is not valid base64") from e


__all__ = ["RawCrl", "RawCrlEntry", "crl_der_from_bytes", "directory_names", "parse_crl"]
