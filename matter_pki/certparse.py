"""Raw, lenient views of X.509 certificates: what chip (OpenSSL) sees, byte for byte.

cryptography refuses some inputs OpenSSL loads (v2 certificates, trailing bytes) and hides
encoding details (criticality as encoded, duplicate extensions, KeyUsage padding, compressed
points). The checks that must match chip read these views instead.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from matter_pki import der
from matter_pki.der import DerError

MAX_INPUT_BYTES = 64 * 1024
# UTF8String, PrintableString, T61String, IA5String, UniversalString, BMPString
_STRING_TAGS = frozenset({0x0C, 0x13, 0x14, 0x16, 0x1C, 0x1E})

_PEM_RE = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\s*(?P<body>[A-Za-z0-9+/=\s]*?)\s*-----END (?P=label)-----"
)


@dataclass(frozen=True, slots=True)
class RawExtension:
    """One extension exactly as encoded."""

    oid: str
    critical: bool
    value: bytes
    critical_explicit_false: bool = False


@dataclass(frozen=True, slots=True)
class RawName:
    """A Name as encoded, with its attributes in order: (oid, string tag, raw value bytes)."""

    der: bytes
    attributes: tuple[tuple[str, int, bytes], ...]
    rdn_sizes: tuple[int, ...] = ()

    def canonical(self) -> tuple[tuple[tuple[str, bytes], ...], ...]:
        """OpenSSL-style canonical form: string values case-folded with whitespace collapsed, per RDN."""
        out: list[tuple[tuple[str, bytes], ...]] = []
        pos = 0
        for size in self.rdn_sizes:
            rdn = []
            for oid, tag, value in self.attributes[pos : pos + size]:
                if tag in _STRING_TAGS:
                    try:
                        text = value.decode("utf-16-be" if tag == 0x1E else "utf-8")
                        value = " ".join(text.split()).lower().encode()
                    except UnicodeDecodeError:
                        pass
                rdn.append((oid, value))
            out.append(tuple(sorted(rdn)))
            pos += size
        return tuple(out)


@dataclass(frozen=True, slots=True)
class RawTime:
    """A validity time as encoded: tag (UTCTime/GeneralizedTime) and its text."""

    tag: int
    text: str


@dataclass(frozen=True, slots=True)
class RawCertificate:
    """The fields of a certificate as OpenSSL would read them."""

    der: bytes
    trailing: int
    tbs: bytes
    version: int
    serial: bytes
    tbs_signature_algorithm: bytes
    signature_algorithm: bytes
    signature_algorithm_oid: str
    issuer: RawName
    subject: RawName
    not_before: RawTime
    not_after: RawTime
    spki: bytes
    key_algorithm_oid: str
    key_parameters: str | None
    public_key_bits: bytes
    extensions: tuple[RawExtension, ...]
    signature: bytes

    def extensions_for(self, oid: str) -> list[RawExtension]:
        """Every occurrence of an extension (duplicates are kept)."""
        return [e for e in self.extensions if e.oid == oid]


def _parse_name(buf: bytes, tlv: der.Tlv) -> RawName:
    der.expect(tlv, der.SEQUENCE, "Name")
    attributes: list[tuple[str, int, bytes]] = []
    sizes: list[int] = []
    for rdn in der.children(buf, tlv):
        der.expect(rdn, der.SET, "RelativeDistinguishedName")
        members = der.children(buf, rdn)
        if not members:
            raise DerError("empty RelativeDistinguishedName")
        sizes.append(len(members))
        for atv in members:
            der.expect(atv, der.SEQUENCE, "AttributeTypeAndValue")
            parts = der.children(buf, atv)
            if len(parts) != 2:
                raise DerError("AttributeTypeAndValue must hold a type and a value")
            oid = der.decode_oid(der.expect(parts[0], der.OID, "attribute type").value(buf))
            attributes.append((oid, parts[1].tag, parts[1].value(buf)))
    return RawName(tlv.encoded(buf), tuple(attributes), tuple(sizes))


def _parse_time(buf: bytes, tlv: der.Tlv) -> RawTime:
    if tlv.tag not in (der.UTC_TIME, der.GENERALIZED_TIME):
        raise DerError("validity time must be UTCTime or GeneralizedTime")
    try:
        return RawTime(tlv.tag, tlv.value(buf).decode("ascii"))
    except UnicodeDecodeError as e:
        raise DerError("validity time is not ASCII") from e


def _parse_extensions(buf: bytes, tlv: der.Tlv) -> tuple[RawExtension, ...]:
    outer = der.children(buf, tlv)
    if len(outer) != 1:
        raise DerError("[3] must hold exactly one Extensions SEQUENCE")
    seq = der.expect(outer[0], der.SEQUENCE, "Extensions")
    result: list[RawExtension] = []
    for ext in der.children(buf, seq):
        der.expect(ext, der.SEQUENCE, "Extension")
        parts = der.children(buf, ext)
        if len(parts) not in (2, 3):
            raise DerError("Extension must hold 2 or 3 fields")
        oid = der.decode_oid(der.expect(parts[0], der.OID, "extnID").value(buf))
        critical = False
        explicit_false = False
        if len(parts) == 3:
            flag = der.expect(parts[1], der.BOOLEAN, "critical").value(buf)
            if len(flag) != 1 or flag[0] not in (0x00, 0xFF):
                raise DerError("BOOLEAN must be 00 or FF")
            critical = flag[0] == 0xFF
            explicit_false = not critical
        value = der.expect(parts[-1], der.OCTET_STRING, "extnValue").value(buf)
        result.append(RawExtension(oid, critical, value, explicit_false))
    return tuple(result)


def parse_certificate(data: bytes) -> RawCertificate:
    """Parse DER the way OpenSSL's d2i_X509 does: trailing bytes after the certificate are ignored."""
    top = der.expect(der.read_tlv(data, 0), der.SEQUENCE, "Certificate")
    body = der.children(data, top)
    if len(body) != 3:
        raise DerError("Certificate must hold tbsCertificate, signatureAlgorithm, signatureValue")
    tbs_tlv = der.expect(body[0], der.SEQUENCE, "tbsCertificate")
    sig_alg = der.expect(body[1], der.SEQUENCE, "signatureAlgorithm")
    sig_bits = der.expect(body[2], der.BIT_STRING, "signatureValue").value(data)
    if not sig_bits or sig_bits[0] != 0:
        raise DerError("signatureValue must have no unused bits")
    fields = der.children(data, tbs_tlv)
    idx = 0
    version = 0
    if fields and fields[0].tag == 0xA0:
        inner = der.children(data, fields[0])
        if len(inner) != 1:
            raise DerError("version must be one INTEGER")
        ver = der.expect(inner[0], der.INTEGER, "version").value(data)
        version = int.from_bytes(ver, "big", signed=True)
        idx = 1
    if len(fields) < idx + 6:
        raise DerError("tbsCertificate is missing fields")
    serial = der.expect(fields[idx], der.INTEGER, "serialNumber").value(data)
    if not serial:
        raise DerError("empty serialNumber")
    tbs_sig = der.expect(fields[idx + 1], der.SEQUENCE, "signature")
    issuer = _parse_name(data, fields[idx + 2])
    validity = der.children(data, der.expect(fields[idx + 3], der.SEQUENCE, "validity"))
    if len(validity) != 2:
        raise DerError("validity must hold notBefore and notAfter")
    subject = _parse_name(data, fields[idx + 4])
    spki_tlv = der.expect(fields[idx + 5], der.SEQUENCE, "subjectPublicKeyInfo")
    spki_parts = der.children(data, spki_tlv)
    if len(spki_parts) != 2:
        raise DerError("subjectPublicKeyInfo must hold algorithm and key")
    alg_parts = der.children(data, der.expect(spki_parts[0], der.SEQUENCE, "algorithm"))
    if not alg_parts:
        raise DerError("empty key algorithm")
    key_alg = der.decode_oid(der.expect(alg_parts[0], der.OID, "algorithm").value(data))
    params: str | None = None
    if len(alg_parts) > 1:
        params = der.decode_oid(alg_parts[1].value(data)) if alg_parts[1].tag == der.OID else "explicit"
    key_bits = der.expect(spki_parts[1], der.BIT_STRING, "subjectPublicKey").value(data)
    if not key_bits or key_bits[0] != 0:
        raise DerError("subjectPublicKey must have no unused bits")
    extensions: tuple[RawExtension, ...] = ()
    for extra in fields[idx + 6 :]:
        if extra.tag == 0xA3:
            extensions = _parse_extensions(data, extra)
        elif extra.tag not in (0x81, 0x82, 0xA1, 0xA2):
            raise DerError(f"unexpected field 0x{extra.tag:02x} in tbsCertificate")
    sig_alg_parts = der.children(data, sig_alg)
    if not sig_alg_parts:
        raise DerError("empty signatureAlgorithm")
    sig_oid = der.decode_oid(der.expect(sig_alg_parts[0], der.OID, "algorithm").value(data))
    return RawCertificate(
        der=data[: top.end],
        trailing=len(data) - top.end,
        tbs=tbs_tlv.encoded(data),
        version=version,
        serial=serial,
        tbs_signature_algorithm=tbs_sig.encoded(data),
        signature_algorithm=sig_alg.encoded(data),
        signature_algorithm_oid=sig_oid,
        issuer=issuer,
        subject=subject,
        not_before=_parse_time(data, validity[0]),
        not_after=_parse_time(data, validity[1]),
        spki=spki_tlv.encoded(data),
        key_algorithm_oid=key_alg,
        key_parameters=params,
        public_key_bits=key_bits[1:],
        extensions=extensions,
        signature=sig_bits[1:],
    )


def decode_pem_blocks(data: bytes, label: str) -> list[bytes] | None:
    """DER bodies of every PEM block with ``label``; None when the input holds no PEM armour."""
    if b"-----BEGIN" not in data:
        return None
    blocks: list[bytes] = []
    for match in _PEM_RE.finditer(data):
        if match.group("label").decode() != label:
            continue
        try:
            blocks.append(base64.b64decode(b"".join(match.group("body").split()), validate=True))
        except binascii.Error as e:
            raise DerError(f"PEM {label} block is not valid base64") from e
    return blocks


def certificate_der_from_bytes(data: bytes) -> bytes:
    """One certificate's DER from PEM, DER or hex input (chip-cert accepts all three)."""
    if len(data) > MAX_INPUT_BYTES:
        raise DerError(f"input is {len(data)} bytes, over the {MAX_INPUT_BYTES}-byte limit")
    blocks = decode_pem_blocks(data, "CERTIFICATE")
    if blocks is not None:
        if len(blocks) != 1:
            raise DerError(f"expected one CERTIFICATE PEM block, found {len(blocks)}")
        return blocks[0]
    stripped = data.strip()
    if stripped and re.fullmatch(rb"[0-9A-Fa-f]+", stripped) and len(stripped) % 2 == 0:
        return bytes.fromhex(stripped.decode())
    return data
