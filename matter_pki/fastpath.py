"""Fast DAC issuance: the DAC profile rendered once as a TBS template, three fields spliced per CSR.

Every DAC of one batch shares all TBS bytes except the serial number, the public key point and the
SKID (SHA-1 of the point, RFC 5280 4.2.1.2 method 1). ``DacTemplate`` is cut out of a probe DAC
made by ``DacProfile.builder`` and signed by the PAI key, after that probe passed the chip-parity
validator (``validate_att_cert(mode="commissioner")``). Per CSR the fast path then does only:

1. a strict skeleton parse of the CSR: DER or one plain PEM block; ``x509.load_der_x509_csr``
   (0.7 µs: strict DER, the same acceptance as the reference path's parser), then fixed bytes on
   the raw DER: version 0, the P-256 SPKI with an uncompressed point, ecdsa-with-SHA256 without
   parameters, a signature BIT STRING without unused bits running to the end;
2. proof of possession: the CSR signature verified with the CSR key;
3. splice serial, point and SKID into the template, sign the TBS, assemble the certificate;
4. the release check: the certificate is re-read byte by byte and must equal the template with
   exactly those three fields, with consistent lengths, a positive minimal serial of at most 20
   octets, a well-formed ECDSA-Sig-Value and at most 600 bytes (chip's kMaxDERCertLength). The
   first fast DAC of each issuer also goes through the full validator.

Anything else (PEM variants, other keys or algorithms, odd encodings, a failed check, a refused
profile) goes through ``issuance.issue_dac``, the reference path, which gives the exact coded error
or a validated DAC. The fast path never accepts a CSR the reference path refuses.

Own-signature verification (``verify_signatures``): ``"auto"`` verifies every DAC signed by a key
that is not an OpenSSL key object (PKCS#11 adapters: a faulty token or a wrong key handle is
plausible, and the token's signing time dwarfs a 65 µs verification) and one DAC in
``SAMPLE_EVERY`` for OpenSSL keys (whose signatures come from the same library that verifies them,
so per-DAC verification would only double the cost). ``"all"`` and ``"sampled"`` force either.
A failed verification re-issues that CSR through the reference path and turns ``"all"`` on.
"""

from __future__ import annotations

import binascii
import hashlib
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import der
from matter_pki.csr import MAX_CSR_BYTES
from matter_pki.errors import IssuanceError, MatterPkiError
from matter_pki.issuance import IssuedDac, check_released, issue_dac
from matter_pki.lint import MAX_DER
from matter_pki.oid import ExtensionOID
from matter_pki.profiles import MAX_SERIAL_OCTETS, DacProfile, sign

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from matter_pki.profiles import Validity

VerifyPolicy = Literal["auto", "all", "sampled"]
SAMPLE_EVERY = 128

# SubjectPublicKeyInfo of a P-256 key: id-ecPublicKey, prime256v1, BIT STRING (0 unused bits), 0x04.
P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
# AlgorithmIdentifier ecdsa-with-SHA256 (RFC 5758 3.2: parameters absent).
ECDSA_SHA256_ALGID = bytes.fromhex("300a06082a8648ce3d040302")
_PEM_BEGIN = b"-----BEGIN CERTIFICATE REQUEST-----"
_PEM_END = b"-----END CERTIFICATE REQUEST-----"
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.split() splits on
_SKID_OID = ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string
_CURVE = ec.SECP256R1()
_ECDSA = ec.ECDSA(hashes.SHA256())


def random_dac_serial() -> int:
    """A 20-octet positive serial: 159 random bits, first octet 0x01..0x7F (RFC 5280 4.1.2.2)."""
    while True:
        octets = os.urandom(MAX_SERIAL_OCTETS)
        if octets[0] & 0x7F:
            return int.from_bytes(octets, "big") & ((1 << (8 * MAX_SERIAL_OCTETS - 1)) - 1)


def serial_octets(serial: int) -> bytes | None:
    """Content octets of the DER INTEGER for a valid certificate serial, else None."""
    if type(serial) is not int or serial <= 0:
        return None
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return octets if len(octets) <= MAX_SERIAL_OCTETS else None


# -- CSR skeleton ------------------------------------------------------------------------------
class CsrSkeleton(NamedTuple):
    """The parts of an accepted CSR the fast path uses."""

    der: bytes
    info: bytes
    point: bytes
    signature: bytes


def csr_der(data: bytes) -> bytes | None:
    """DER of one CSR given as DER or as one plain PEM block; None for anything else."""
    if data.startswith(_PEM_BEGIN):
        # csr.load_device_csr accepts more PEM shapes (text around, NEW CERTIFICATE REQUEST);
        # those take the reference path.
        # Only whitespace after the first END line, and only base64 and whitespace before it: so
        # exactly one block, as the reference path requires.
        end = data.find(_PEM_END)
        if end < 0 or len(data) > MAX_CSR_BYTES or data[end + len(_PEM_END) :].strip():
            return None
        try:
            # The alphabet, padding and whitespace of the reference's b64decode(validate=True)
            # of the body joined on bytes.split().
            return binascii.a2b_base64(data[len(_PEM_BEGIN) : end].translate(None, _WHITESPACE), strict_mode=True)
        except binascii.Error:
            return None
    if not data or len(data) > MAX_CSR_BYTES or b"-----BEGIN" in data:
        return None
    return data


def parse_csr_skeleton(data: bytes) -> CsrSkeleton | None:
    """Strict minimal parse of a P-256 ecdsa-with-SHA256 CSR; None sends it to the reference path.

    CertificationRequest: SEQUENCE { info SEQUENCE { 02 01 00, subject Name, P-256 SPKI with an
    uncompressed point, [0] attributes }, ecdsa-with-SHA256 without parameters, BIT STRING with no
    unused bits }, nothing after. ``x509.load_der_x509_csr`` first: the subject and attributes are
    ignored but must parse exactly as the reference path parses them, and it guarantees strict DER
    (minimal definite lengths, no trailing bytes), so the headers below are read without re-checks.
    """
    body = csr_der(data)
    if body is None:
        return None
    try:
        x509.load_der_x509_csr(body)
    except Exception:  # ValueError, InvalidVersion: whatever the reference path turns into csr.malformed
        return None
    try:
        info = _header_end(body, 0)
        info_start = _header_end(body, info)
        info_end = info + _element_length(body, info)
        if body[info_start : info_start + 3] != b"\x02\x01\x00":  # version v1(0)
            return None
        spki = info_start + 3 + _element_length(body, info_start + 3)
        bits = info_end + len(ECDSA_SHA256_ALGID)
        if (
            not body.startswith(P256_SPKI_PREFIX, spki)
            or not body.startswith(ECDSA_SHA256_ALGID, info_end)
            or body[bits] != der.BIT_STRING
            or body[bits + 1] != len(body) - bits - 2  # short form: an ECDSA signature is under 128 bytes
            or body[bits + 2] != 0
        ):
            return None
    except (IndexError, ValueError):
        return None
    point = spki + len(P256_SPKI_PREFIX) - 1
    return CsrSkeleton(body, body[info:info_end], body[point : point + 65], body[bits + 3 :])


def _header_end(buf: bytes, pos: int) -> int:
    """Offset of the content of the (strict DER) element at ``pos``."""
    first = buf[pos + 1]
    return pos + 2 if first < 0x80 else pos + 2 + (first & 0x7F)


def _element_length(buf: bytes, pos: int) -> int:
    """Total length, header included, of the (strict DER) element at ``pos``."""
    first = buf[pos + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")


# -- ECDSA-Sig-Value ---------------------------------------------------------------------------
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


# -- the template ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DacTemplate:
    """A DAC TBS with three holes: serial INTEGER content, public key point, SKID."""

    heads: tuple[bytes, ...]  # heads[n]: TBS header through the serial's length octet, n content octets
    after_serial: bytes
    after_point: bytes
    after_skid: bytes

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
        skid_start = _skid_offset(tbs, der.expect(fields[7], 0xA3, "extensions"))
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

    def matches(self, cert: bytes, serial: bytes, point: bytes) -> bool:
        """Release check: ``cert`` is the template with exactly this serial, point and SHA-1(point) SKID.

        Also: outer and signature lengths consistent with the size, serial positive, minimal and at
        most 20 octets, ecdsa-with-SHA256, a well-formed ECDSA-Sig-Value, at most 600 bytes (chip's
        kMaxDERCertLength). The TBS length octets are those of ``heads``, checked when the template
        was cut (``from_tbs`` reassembles the builder's TBS byte for byte).
        """
        size, n = len(serial), len(cert)
        if not 0 < size <= MAX_SERIAL_OCTETS or serial[0] & 0x80 or (size > 1 and not serial[0] and not serial[1] & 0x80):
            return False
        head = self.heads[size]
        point_at = 4 + len(head) + size + len(self.after_serial)
        skid_at = point_at + 65 + len(self.after_point)
        tbs_end = skid_at + 20 + len(self.after_skid)
        bits = tbs_end + len(ECDSA_SHA256_ALGID)
        return (
            n <= MAX_DER
            and cert[0] == der.SEQUENCE
            and cert[1] == 0x82
            and (cert[2] << 8 | cert[3]) == n - 4
            and cert.startswith(head, 4)
            and cert.startswith(serial, 4 + len(head))
            and cert.startswith(self.after_serial, 4 + len(head) + size)
            and cert[point_at : point_at + 65] == point
            and point[0] == 0x04
            and cert.startswith(self.after_point, point_at + 65)
            and cert[skid_at : skid_at + 20] == hashlib.sha1(cert[point_at : point_at + 65]).digest()  # noqa: S324
            and cert.startswith(self.after_skid, skid_at + 20)
            and cert.startswith(ECDSA_SHA256_ALGID, tbs_end)
            and cert[bits] == der.BIT_STRING
            and cert[bits + 1] == n - bits - 2
            and cert[bits + 2] == 0
            and ecdsa_signature_well_formed(cert[bits + 3 :])
        )

    @staticmethod
    def certificate(tbs: bytes, signature: bytes) -> bytes | None:
        """Certificate DER from a TBS and a DER ECDSA signature (None if it is not 256..65535 bytes)."""
        content = len(tbs) + len(ECDSA_SHA256_ALGID) + 3 + len(signature)
        if len(signature) > 126 or not 0x100 <= content <= 0xFFFF:
            return None
        return b"".join(
            (b"\x30\x82", content.to_bytes(2, "big"), tbs, ECDSA_SHA256_ALGID, bytes((der.BIT_STRING, len(signature) + 1, 0)), signature)
        )


def _skid_offset(tbs: bytes, extensions: der.Tlv) -> int:
    (seq,) = der.children(tbs, extensions)
    for ext in der.children(tbs, der.expect(seq, der.SEQUENCE, "Extensions")):
        parts = der.children(tbs, ext)
        if der.decode_oid(parts[0].value(tbs)) == _SKID_OID:
            inner = der.read_tlv(tbs, parts[-1].value_start, parts[-1].end)
            if inner.tag != der.OCTET_STRING or inner.length != 20 or inner.end != parts[-1].end:
                break
            return inner.value_start
    raise IssuanceError("issue.template", "the probe DAC has no 20-byte subjectKeyIdentifier")


def _point_of(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def render_template(
    profile: DacProfile,
    *,
    pai: x509.Certificate,
    paa_der: bytes,
    signer: ec.EllipticCurvePrivateKey,
    check_at: datetime,
) -> DacTemplate:
    """Sign a probe DAC with the profile builder, validate it fully, and cut the template out of it."""
    probe_key = ec.generate_private_key(_CURVE).public_key()
    probe_serial = random_dac_serial()
    cert = sign(profile.builder(probe_key, serial=probe_serial, issuer=pai), signer)
    check_released(cert.public_bytes(Encoding.DER), pai_der=pai.public_bytes(Encoding.DER), paa_der=paa_der, at=check_at)
    octets = serial_octets(probe_serial)
    assert octets is not None
    return DacTemplate.from_tbs(cert.tbs_certificate_bytes, serial=octets, point=_point_of(probe_key))


# -- the issuer --------------------------------------------------------------------------------
@dataclass(slots=True)
class FastStats:
    """How each DAC was made."""

    fast: int = 0
    reference: int = 0
    verified: int = 0


def is_openssl_key(key: object) -> bool:
    """True for cryptography's own (OpenSSL) key objects; False for adapters such as PKCS#11."""
    return type(key).__module__.startswith("cryptography.hazmat.bindings")


@dataclass(slots=True)
class FastDacIssuer:
    """``issue_dac`` for one PAI, PID, validity and CN, with the template fast path in front of it."""

    paa: x509.Certificate
    pai: x509.Certificate
    signer: ec.EllipticCurvePrivateKey
    pid: int
    validity: Validity
    common_name: str | None = "Matter DAC"
    serials: Callable[[], int] = random_dac_serial
    check_at: datetime | None = None
    verify_signatures: VerifyPolicy = "auto"
    stats: FastStats = field(default_factory=FastStats)
    template: DacTemplate | None = field(init=False, default=None)
    _pai_key: ec.EllipticCurvePublicKey | None = field(init=False, default=None)
    _paa_der: bytes = field(init=False, default=b"")
    _pai_der: bytes = field(init=False, default=b"")
    _at: datetime = field(init=False)
    _first_checked: bool = field(init=False, default=False)
    _verify_all: bool = field(init=False, default=False)
    _signed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.verify_signatures not in ("auto", "all", "sampled"):
            raise ValueError(f"verify_signatures must be auto, all or sampled, not {self.verify_signatures!r}")
        self._paa_der = self.paa.public_bytes(Encoding.DER)
        self._pai_der = self.pai.public_bytes(Encoding.DER)
        self._at = self.check_at or self.validity.not_before + timedelta(seconds=1)
        self._verify_all = self.verify_signatures == "all" or (
            self.verify_signatures == "auto" and not is_openssl_key(self.signer)
        )
        pai_key = self.pai.public_key()
        if not isinstance(pai_key, ec.EllipticCurvePublicKey):
            return  # no template: issue_dac refuses with its own code
        self._pai_key = pai_key
        try:
            profile = DacProfile.for_issuer(self.pai, pid=self.pid, validity=self.validity, common_name=self.common_name)
            self.template = render_template(profile, pai=self.pai, paa_der=self._paa_der, signer=self.signer, check_at=self._at)
        except MatterPkiError:
            # The reference path raises the same coded error for every CSR, in its own order.
            self.template = None

    def issue(self, csr: bytes, serial: int | None = None) -> IssuedDac:
        """One DAC for one CSR; raises CsrError, ProfileError or IssuanceError exactly as ``issue_dac``."""
        der_, number, sha = self.issue_parts(csr, serial)
        return IssuedDac(der_, number, sha, self.validity.not_before, self.validity.not_after)

    def issue_parts(self, csr: bytes, serial: int | None = None) -> tuple[bytes, int, str]:
        """(DAC DER, serial, CSR SHA-256 hex) for one CSR; raises as ``issue_dac``."""
        template = self.template
        if template is not None:
            parsed = parse_csr_skeleton(csr)
            if parsed is not None:
                try:
                    key = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, parsed.point)
                    key.verify(parsed.signature, parsed.info, _ECDSA)
                except (ValueError, InvalidSignature):
                    parsed = None
            if parsed is not None:
                # Drawn only for an accepted CSR, as issue_dac does.
                serial = serial if serial is not None else self.serials()
                dac = self._splice(template, serial, parsed.point)
                if dac is not None:
                    self.stats.fast += 1
                    return dac, serial, hashlib.sha256(parsed.der).hexdigest()
        self.stats.reference += 1
        issued = issue_dac(
            csr,
            pai=self.pai,
            paa=self.paa,
            signer=self.signer,
            pid=self.pid,
            validity=self.validity,
            common_name=self.common_name,
            serial=serial,
            serials=self.serials,
            check_at=self._at,
        )
        return issued.der, issued.serial, issued.csr_sha256

    def _splice(self, template: DacTemplate, serial: int, point: bytes) -> bytes | None:
        octets = serial_octets(serial)
        if octets is None:
            return None  # issue_dac raises the profile.serial_* code
        tbs = template.tbs(octets, point, hashlib.sha1(point).digest())  # noqa: S324 - RFC 5280 4.2.1.2 (1)
        try:
            signature = self.signer.sign(tbs, _ECDSA)
        except MatterPkiError:
            return None  # a signer failure: the reference path reports it with its code
        cert = template.certificate(tbs, signature)
        if cert is None or not template.matches(cert, octets, point):
            return None
        self._signed += 1
        if self._verify_all or self._signed % SAMPLE_EVERY == 1:
            self.stats.verified += 1
            try:
                assert self._pai_key is not None
                self._pai_key.verify(signature, tbs, _ECDSA)
            except InvalidSignature:
                self._verify_all = True
                return None
        if not self._first_checked:
            try:
                check_released(cert, pai_der=self._pai_der, paa_der=self._paa_der, at=self._at)
            except IssuanceError:
                self.template = None  # the template is wrong: stop using it
                return None
            self._first_checked = True
        return cert
