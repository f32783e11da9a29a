"""The release gate: the one check every DAC passes before it is written, returned or published.

Every issuing path calls it: the reference path (``issuance.issue_dac``), the batch engine and its
fast path (``fastpath``, which the local CA, the PKCS#11 signer and the factory server use through
``batch.issue_batch``) and AWS Private CA (``backends.aws_pca``, the Lambda pipeline and the CLI).

A DAC is released only if it is **exactly the profile for this issuer and this device key**:

* at most 600 bytes of strict DER (chip reads certificates into 600-byte buffers, TC-DA-1.2/1.7);
* its TBS is the ``DacProfile`` builder's TBS for the CSR's public key, field by field: version v3,
  a positive serial of at most 20 octets, ecdsa-with-SHA256 (TBS and outer, no parameters), the
  issuer name byte for byte the PAI's subject, the validity the policy chose (RFC 5280 time
  encoding), the subject the profile renders, the CSR's P-256 point, and exactly the profile's
  extensions (basicConstraints, keyUsage, SKID = SHA-1 of the point, AKID = the PAI's SKID), each
  once, with the profile's criticality and bytes; the order of the extensions may differ (Private
  CA does not document the order it writes them in);
* its notBefore lies inside the PAI's validity (``DacProfile.check_issuer``: the profile does not
  render otherwise, so no gate exists for it);

**and** it passes ``validate_att_cert(..., mode="commissioner")`` at the instant it must be valid at.

A refusal raises ``ReleaseRefused`` (an ``IssuanceError``) with a stable code and the serial of the
withheld certificate (``None`` if unreadable): the caller records and audits it, and on Private CA
revokes it.

**The fast gate** (``DacTemplate``). The batch engine cannot afford a validator run per DAC. It runs
the full gate once, on a probe DAC signed with the PAI key, and then proves each DAC is that probe
with only the serial, the point and the SKID changed: ``DacTemplate.matches`` compares the
certificate byte for byte with the template outside those three fields (lengths included), and
the caller checks the ECDSA signature. Everything else the full gate looks at is the same for every
DAC of the template (issuer, subject, validity, extensions, chain, VID/PID, the instant), so the two
gates agree on every certificate whose extensions are in the profile's order; a certificate with
the same extensions in another order passes the full gate and is refused by the fast one (which
then falls back to the reference path). ``tests/unit/test_gate.py`` checks that agreement on
mutated and re-signed DACs.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.certparse import parse_certificate
from matter_pki.errors import IssuanceError
from matter_pki.lint import MAX_DER
from matter_pki.profiles import MAX_SERIAL_OCTETS, DacProfile, sign
from matter_pki.validate import validate_att_cert

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

# SubjectPublicKeyInfo of a P-256 key: id-ecPublicKey, prime256v1, BIT STRING (0 unused bits), 0x04.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 3.2: parameters absent).
ECDSA_SHA256_ALGID = bytes.fromhex("300a06082a8648ce3d040302")
_SKID_OID = "2.5.29.14"
_EXTENSION_NAMES = {
    "2.5.29.14": "subjectKeyIdentifier",
    "2.5.29.15": "keyUsage",
    "2.5.29.17": "subjectAltName",
    "2.5.29.19": "basicConstraints",
    "2.5.29.31": "cRLDistributionPoints",
    "2.5.29.32": "certificatePolicies",
    "2.5.29.35": "authorityKeyIdentifier",
    "2.5.29.37": "extendedKeyUsage",
    "1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
}


class ReleaseRefused(IssuanceError):
    """A signed DAC the gate withholds; ``serial`` (None when unreadable) is for the caller's record."""

    def __init__(self, code: str, message: str, *, serial: int | None, **context: object) -> None:
        super().__init__(code, message, serial=None if serial is None else f"{serial:X}", **context)
        self.serial = serial


def _name(oid: str) -> str:
    return f"{_EXTENSION_NAMES[oid]} ({oid})" if oid in _EXTENSION_NAMES else oid


# -- what the profile renders --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProfileParts:
    """The profile's TBS for one issuer, cut into the fields the gate compares (the key-dependent ones left out)."""

    version: bytes
    algorithm: bytes
    issuer: bytes
    validity: bytes
    subject: bytes
    extensions: tuple[bytes, ...]  # Extension TLVs in profile order; the SKID digest is zeroed
    skid_index: int
    skid_offset: int  # where the 20-byte digest starts inside extensions[skid_index]

    def extension(self, index: int, skid: bytes) -> bytes:
        """Extension ``index`` as this DAC must carry it (the SKID filled in)."""
        ext = self.extensions[index]
        if index != self.skid_index:
            return ext
        return ext[: self.skid_offset] + skid + ext[self.skid_offset + 20 :]


def _skid_offset(buf: bytes, ext: der.Tlv) -> int:
    parts = der.children(buf, ext)
    if der.decode_oid(parts[0].value(buf)) != _SKID_OID:
        return -1
    inner = der.read_tlv(buf, parts[-1].value_start, parts[-1].end)
    if inner.tag != der.OCTET_STRING or inner.length != 20 or inner.end != parts[-1].end:
        raise IssuanceError("issue.template", "the profile's subjectKeyIdentifier is not 20 bytes")
    return inner.value_start - ext.start


@functools.lru_cache(maxsize=64)
def profile_parts(profile: DacProfile, pai_der: bytes) -> ProfileParts:
    """Render ``profile`` under the PAI once (a throwaway key signs a probe) and cut its TBS into fields."""
    pai = x509.load_der_x509_certificate(pai_der)
    probe_key = ec.generate_private_key(ec.SECP256R1())
    tbs = sign(profile.builder(probe_key.public_key(), serial=1, issuer=pai), probe_key).tbs_certificate_bytes
    fields = der.children(tbs, der.read_tlv(tbs))
    if len(fields) != 8 or fields[7].tag != 0xA3:
        raise IssuanceError("issue.template", "the profile's TBS does not have the eight DAC fields")
    (seq,) = der.children(tbs, fields[7])
    exts = der.children(tbs, seq)
    offsets = [_skid_offset(tbs, e) for e in exts]
    skid_index = next((i for i, off in enumerate(offsets) if off >= 0), -1)
    if skid_index < 0:
        raise IssuanceError("issue.template", "the profile has no subjectKeyIdentifier")
    encoded = [e.encoded(tbs) for e in exts]
    off = offsets[skid_index]
    encoded[skid_index] = encoded[skid_index][:off] + bytes(20) + encoded[skid_index][off + 20 :]
    return ProfileParts(
        version=fields[0].encoded(tbs),
        algorithm=fields[2].encoded(tbs),
        # Issuer DN = PAI subject byte for byte (matter-rules §3-4: revocation and TC-DA-1.7 compare raw bytes).
        issuer=parse_certificate(pai_der).subject.der,
        validity=fields[4].encoded(tbs),
        subject=fields[5].encoded(tbs),
        extensions=tuple(encoded),
        skid_index=skid_index,
        skid_offset=off,
    )


# -- the full gate --------------------------------------------------------------------------------
def _serial_of(tlv: der.Tlv, buf: bytes) -> int | None:
    content = tlv.value(buf)
    if tlv.tag != der.INTEGER or not content:
        return None
    return int.from_bytes(content, "big", signed=True)


def serial_ok(content: bytes) -> bool:
    """RFC 5280 4.1.2.2 / Matter revocation: positive, minimal DER, at most 20 content octets."""
    return (
        0 < len(content) <= MAX_SERIAL_OCTETS
        and not content[0] & 0x80
        and not (len(content) > 1 and content[0] == 0 and not content[1] & 0x80)
        and any(content)
    )


@dataclass(frozen=True, slots=True)
class ReleaseGate:
    """The gate for one issuer and one DAC profile (PAA and PAI DER, the profile rendered once)."""

    paa_der: bytes
    pai_der: bytes
    profile: DacProfile
    parts: ProfileParts

    @classmethod
    def for_issuer(cls, profile: DacProfile, *, pai_der: bytes, paa_der: bytes) -> ReleaseGate:
        """The gate for DACs of ``profile`` under this PAI and PAA."""
        return cls(paa_der, pai_der, profile, profile_parts(profile, pai_der))

    def extensions_for(self, public_point: bytes) -> list[bytes]:
        """The Extension TLVs a DAC for this key carries, in the profile's order."""
        skid = hashlib.sha1(public_point).digest()  # noqa: S324 - RFC 5280 4.2.1.2 method 1
        return [self.parts.extension(i, skid) for i in range(len(self.parts.extensions))]

    def default_instant(self) -> datetime:
        """The instant a new DAC must be valid at when the caller names none: one second after notBefore."""
        return self.profile.validity.not_before + timedelta(seconds=1)

    def check(self, dac_der: bytes, *, public_point: bytes, at: datetime | None = None) -> int:
        """Release ``dac_der`` for the key ``public_point`` (65-byte uncompressed P-256); returns its serial.

        Raises ``ReleaseRefused`` with the first failing rule's code.
        """
        serial = self.check_profile(dac_der, public_point=public_point)
        result = validate_att_cert(
            paa=self.paa_der, pai=self.pai_der, dac=dac_der, at=at or self.default_instant(), mode="commissioner"
        )
        if not result.ok:
            raise ReleaseRefused(
                "issue.validation_failed",
                f"issued DAC failed validation: {result.result.label} [{result.code}] {result.reason}",
                serial=serial,
            )
        return serial

    def check_profile(self, dac_der: bytes, *, public_point: bytes) -> int:
        """The profile-exactness half of ``check`` (no validator run); returns the serial."""
        parts = self.parts
        try:
            top = der.read_tlv(dac_der)
            outer = der.children(dac_der, top)
            fields = der.children(dac_der, outer[0]) if outer and outer[0].tag == der.SEQUENCE else []
        except (der.DerError, IndexError) as e:
            raise ReleaseRefused("issue.malformed", f"the DAC is not strict DER: {e}", serial=None) from e
        serial = _serial_of(fields[1], dac_der) if len(fields) > 1 else None

        def refuse(code: str, message: str, **context: object) -> ReleaseRefused:
            return ReleaseRefused(code, message, serial=serial, **context)

        if len(dac_der) > MAX_DER:
            raise refuse("issue.der_too_large", f"the DAC is {len(dac_der)} bytes; Matter allows at most {MAX_DER}")
        if top.end != len(dac_der) or top.tag != der.SEQUENCE or len(outer) != 3 or len(fields) < 7:
            raise refuse("issue.malformed", "the DAC is not one Certificate SEQUENCE (TBS, algorithm, signature)")
        bits = outer[2]
        if outer[1].encoded(dac_der) != ECDSA_SHA256_ALGID or fields[2].encoded(dac_der) != parts.algorithm:
            raise refuse("issue.not_as_requested", "signature algorithm is not ecdsa-with-SHA256", field="algorithm")
        if bits.tag != der.BIT_STRING or bits.length < 2 or dac_der[bits.value_start] != 0:
            raise refuse("issue.malformed", "the signature is not a BIT STRING without unused bits")
        if len(fields) != 8 or fields[7].tag != 0xA3:
            raise refuse(
                "issue.not_as_requested", "the TBS must hold exactly version..extensions (no unique IDs)", field="tbs"
            )
        expect = (
            (0, parts.version, "version", "version is not v3"),
            (3, parts.issuer, "issuer", "issuer name is not byte for byte the PAI's subject"),
            (4, parts.validity, "validity", "validity is not the one the validity policy chose"),
            (5, parts.subject, "subject", "subject is not the one the profile renders"),
            (6, P256_SPKI_PREFIX + public_point[1:], "public_key", "the DAC does not certify the CSR's public key"),
        )
        if len(public_point) != 65 or public_point[0] != 0x04:
            raise refuse("issue.not_as_requested", "the CSR key is not an uncompressed P-256 point", field="public_key")
        for index, wanted, name, message in expect:
            if fields[index].encoded(dac_der) != wanted:
                raise refuse("issue.not_as_requested", message, field=name)
        if serial is None or not serial_ok(fields[1].value(dac_der)):
            raise refuse("issue.not_as_requested", "serial is not positive, minimal and at most 20 octets", field="serial")
        skid = hashlib.sha1(public_point).digest()  # noqa: S324 - RFC 5280 4.2.1.2 method 1, as chip-cert
        self._check_extensions(dac_der, fields[7], skid, refuse)
        return serial

    def _check_extensions(
        self, buf: bytes, tlv: der.Tlv, skid: bytes, refuse: Callable[..., ReleaseRefused]
    ) -> None:
        parts = self.parts
        try:
            (seq,) = der.children(buf, tlv)
            found = [e.encoded(buf) for e in der.children(buf, seq)] if seq.tag == der.SEQUENCE else None
        except (der.DerError, ValueError) as e:
            raise refuse("issue.malformed", f"extensions are not strict DER: {e}") from e
        if found is None:
            raise refuse("issue.malformed", "extensions are not a SEQUENCE")
        wanted = {parts.extension(i, skid): i for i in range(len(parts.extensions))}
        seen: set[bytes] = set()
        for ext in found:
            if ext in wanted and ext not in seen:
                seen.add(ext)
                continue
            oid = _ext_oid(ext)
            profile_oids = {_ext_oid(w) for w in wanted}
            if oid not in profile_oids:
                raise refuse("issue.unexpected_extension", f"the DAC carries {_name(oid)}, which the profile has not", oid=oid)
            what = "twice" if any(_ext_oid(s) == oid for s in seen) else "with other bytes or criticality than the profile"
            raise refuse("issue.extension_mismatch", f"the DAC carries {_name(oid)} {what}", oid=oid)
        missing = [w for w in wanted if w not in seen]
        if missing:
            oid = _ext_oid(missing[0])
            raise refuse("issue.extension_mismatch", f"the DAC lacks {_name(oid)}", oid=oid)


def _ext_oid(ext: bytes) -> str:
    try:
        parts = der.children(ext, der.read_tlv(ext))
        return der.decode_oid(parts[0].value(ext))
    except (der.DerError, IndexError, ValueError):
        return "?"


def gate_for(profile: DacProfile, *, pai: x509.Certificate | bytes, paa_der: bytes) -> ReleaseGate:
    """Shorthand for ``ReleaseGate.for_issuer`` taking the PAI as a certificate or DER."""
    from cryptography.hazmat.primitives.serialization import Encoding

    pai_der = pai if isinstance(pai, bytes) else pai.public_bytes(Encoding.DER)
    return ReleaseGate.for_issuer(profile, pai_der=pai_der, paa_der=paa_der)


# -- the fast gate --------------------------------------------------------------------------------
def _positive_integer_end(sig: bytes, pos: int) -> int:
    """End of a DER INTEGER at ``pos`` that is positive, minimal and 1..33 octets; -1 otherwise."""
    if sig[pos] != der.INTEGER:
        return -1
    size = sig[pos + 1]
    first = sig[pos + 2]
    if not 1 <= size <= 33 or first & 0x80 or (first == 0 and (size == 1 or not sig[pos + 3] & 0x80)):
        return -1
    return pos + 2 + size


def ecdsa_signature_well_formed(sig: bytes) -> bool:
    """DER SEQUENCE { r INTEGER, s INTEGER } with r, s positive and minimal (RFC 3279 2.2.3)."""
    try:
        if len(sig) < 8 or sig[0] != der.SEQUENCE or sig[1] != len(sig) - 2:
            return False
        middle = _positive_integer_end(sig, 2)
        return middle > 0 and _positive_integer_end(sig, middle) == len(sig)
    except IndexError:
        return False


@dataclass(frozen=True, slots=True)
class DacTemplate:
    """The profile's TBS with three holes: serial INTEGER content, public key point, SKID."""

    heads: tuple[bytes, ...]  # heads[n]: TBS header through the serial's length octet, n content octets
    after_serial: bytes
    after_point: bytes
    after_skid: bytes

    @classmethod
    def from_parts(cls, parts: ProfileParts) -> DacTemplate:
        """The template of a gate's profile (extensions in profile order)."""
        exts = b"".join(parts.extensions)
        exts_seq = der.encode_tlv(der.SEQUENCE, exts)
        exts_field = der.encode_tlv(0xA3, exts_seq)
        skid_at = len(exts_field) - len(exts) + sum(len(e) for e in parts.extensions[: parts.skid_index]) + parts.skid_offset
        after_serial = parts.algorithm + parts.issuer + parts.validity + parts.subject + P256_SPKI_PREFIX[:-1]
        after_point = exts_field[:skid_at]
        after_skid = exts_field[skid_at + 20 :]
        fixed = len(parts.version) + len(after_serial) + 65 + len(after_point) + 20 + len(after_skid)
        heads = tuple(
            b"" if n == 0 else b"\x30" + der.encode_length(fixed + 2 + n) + parts.version + bytes((der.INTEGER, n))
            for n in range(MAX_SERIAL_OCTETS + 1)
        )
        return cls(heads, after_serial, after_point, after_skid)

    @classmethod
    def from_tbs(cls, tbs: bytes, *, serial: bytes, point: bytes) -> DacTemplate:
        """Cut a template out of a TBS made by the profile builder, and check it reassembles it."""
        top = der.expect(der.read_tlv(tbs), der.SEQUENCE, "tbsCertificate")
        if top.end != len(tbs):
            raise IssuanceError("issue.template", "trailing bytes after the TBS")
        fields = der.children(tbs, top)
        serial_tlv = der.expect(fields[1], der.INTEGER, "serialNumber")
        spki = der.expect(fields[6], der.SEQUENCE, "subjectPublicKeyInfo")
        if spki.encoded(tbs) != P256_SPKI_PREFIX + point[1:] or serial_tlv.value(tbs) != serial:
            raise IssuanceError("issue.template", "the probe TBS does not carry the probe key and serial")
        point_start = spki.end - 65
        (seq,) = der.children(tbs, der.expect(fields[7], 0xA3, "extensions"))
        skid_start = -1
        for ext in der.children(tbs, der.expect(seq, der.SEQUENCE, "Extensions")):
            off = _skid_offset(tbs, ext)
            if off >= 0:
                skid_start = ext.start + off
                break
        if skid_start < 0:
            raise IssuanceError("issue.template", "the probe DAC has no 20-byte subjectKeyIdentifier")
        version = tbs[top.value_start : serial_tlv.start]
        after_serial = tbs[serial_tlv.end : point_start]
        after_point = tbs[point_start + 65 : skid_start]
        after_skid = tbs[skid_start + 20 :]
        fixed = len(version) + len(after_serial) + 65 + len(after_point) + 20 + len(after_skid)
        heads = tuple(
            b"" if n == 0 else b"\x30" + der.encode_length(fixed + 2 + n) + version + bytes((der.INTEGER, n))
            for n in range(MAX_SERIAL_OCTETS + 1)
        )
        template = cls(heads, after_serial, after_point, after_skid)
        if template.tbs(serial, point, tbs[skid_start : skid_start + 20]) != tbs:
            raise IssuanceError("issue.template", "the template does not reassemble the probe TBS")
        return template

    def tbs(self, serial: bytes, point: bytes, skid: bytes) -> bytes:
        """The TBS for one DAC."""
        return b"".join(
            (self.heads[len(serial)], serial, self.after_serial, point, self.after_point, skid, self.after_skid)
        )

    def matches(self, cert: bytes, point: bytes) -> bytes | None:
        """The fast gate: ``cert`` is the template with some valid serial, this point and SHA-1(point) SKID.

        Returns the serial's content octets, or None. Also checked: outer and signature lengths
        consistent with the size, ecdsa-with-SHA256, a well-formed ECDSA-Sig-Value, at most 600 bytes.
        The signature value itself is the caller's to verify.
        """
        n = len(cert)
        if n > MAX_DER or n < 16 or cert[0] != der.SEQUENCE or cert[1] != 0x82 or (cert[2] << 8 | cert[3]) != n - 4:
            return None
        # 30 82 LL LL | 30 82 TT TT A0 03 02 01 02 02 <n> | serial...: every head has the same length.
        width = len(self.heads[1])
        size = cert[3 + width]
        if not 0 < size <= MAX_SERIAL_OCTETS or len(self.heads[size]) != width:
            return None
        head = self.heads[size]
        serial = cert[4 + len(head) : 4 + len(head) + size]
        point_at = 4 + len(head) + size + len(self.after_serial)
        skid_at = point_at + 65 + len(self.after_point)
        tbs_end = skid_at + 20 + len(self.after_skid)
        bits = tbs_end + len(ECDSA_SHA256_ALGID)
        ok = (
            cert.startswith(head, 4)
            and serial_ok(serial)
            and cert.startswith(self.after_serial, 4 + len(head) + size)
            and len(point) == 65
            and point[0] == 0x04
            and cert[point_at : point_at + 65] == point
            and cert.startswith(self.after_point, point_at + 65)
            and cert[skid_at : skid_at + 20] == hashlib.sha1(point).digest()  # noqa: S324 - RFC 5280 4.2.1.2 (1)
            and cert.startswith(self.after_skid, skid_at + 20)
            and cert.startswith(ECDSA_SHA256_ALGID, tbs_end)
            and bits + 3 <= n
            and cert[bits] == der.BIT_STRING
            and cert[bits + 1] == n - bits - 2
            and cert[bits + 2] == 0
            and ecdsa_signature_well_formed(cert[bits + 3 :])
        )
        return serial if ok else None

    @staticmethod
    def certificate(tbs: bytes, signature: bytes) -> bytes | None:
        """Certificate DER from a TBS and a DER ECDSA signature (None if it is not 256..65535 bytes)."""
        content = len(tbs) + len(ECDSA_SHA256_ALGID) + 3 + len(signature)
        if len(signature) > 126 or not 0x100 <= content <= 0xFFFF:
            return None
        return b"".join(
            (b"\x30\x82", content.to_bytes(2, "big"), tbs, ECDSA_SHA256_ALGID, bytes((der.BIT_STRING, len(signature) + 1, 0)), signature)
        )

    def tbs_of(self, cert: bytes) -> bytes:
        """The TBS bytes of a certificate ``matches`` accepted."""
        return cert[4 : (cert[6] << 8 | cert[7]) + 8]
