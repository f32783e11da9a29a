"""Fast DAC issuance: the DAC profile rendered once as a TBS template, three fields spliced per CSR.

Every DAC of one batch shares all TBS bytes except the serial number, the public key point and the
SKID (SHA-1 of the point, RFC 5280 4.2.1.2 method 1). ``DacTemplate`` is the release gate's rendering
of the profile (``gate.DacTemplate.from_parts``), adopted once a probe DAC made by
``DacProfile.builder`` and signed by the PAI key passed the full release gate. Per CSR the fast path then does only:

1. a strict skeleton parse of the CSR: DER or one plain PEM block; ``x509.load_der_x509_csr``
   (0.7 µs: strict DER, the same acceptance as the reference path's parser), then fixed bytes on
   the raw DER: version 0, the P-256 SPKI with an uncompressed point, ecdsa-with-SHA256 without
   parameters, a signature BIT STRING without unused bits running to the end;
2. proof of possession: the CSR signature verified with the CSR key;
3. splice serial, point and SKID into the template, sign the TBS, assemble the certificate;
4. the fast release gate (``gate.DacTemplate.matches``): the certificate is re-read byte by byte
   and must equal the template with exactly those three fields, with consistent lengths, a
   positive minimal serial of at most 20 octets, a well-formed ECDSA-Sig-Value and at most 600
   bytes; plus the signature check below. The template itself passed the full release gate
   (``gate.ReleaseGate``) on a probe DAC, and the first fast DAC of each issuer passes it too.

A certificate a gate refuses is never returned; its serial is kept in ``FastDacIssuer.withheld``
for the caller's record, and the CSR is answered by the reference path (with a new serial).

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
from matter_pki.gate import (
    ECDSA_SHA256_ALGID,
    P256_SPKI_PREFIX,
    DacTemplate,
    ReleaseGate,
    ReleaseRefused,
    gate_for,
)
from matter_pki.issuance import IssuedDac, issue_dac
from matter_pki.profiles import MAX_SERIAL_OCTETS, DacProfile, sign

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from matter_pki.profiles import Validity

VerifyPolicy = Literal["auto", "all", "sampled"]
SAMPLE_EVERY = 128

_PEM_BEGIN = b"-----BEGIN CERTIFICATE REQUEST-----"
_PEM_END = b"-----END CERTIFICATE REQUEST-----"
_WHITESPACE = b" \t\n\r\x0b\x0c"  # what bytes.split() splits on
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
        info = header_end(body, 0)
        info_start = header_end(body, info)
        info_end = info + element_length(body, info)
        if body[info_start : info_start + 3] != b"\x02\x01\x00":  # version v1(0)
            return None
        spki = info_start + 3 + element_length(body, info_start + 3)
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


def header_end(buf: bytes, pos: int) -> int:
    """Offset of the content of the (strict DER) element at ``pos``."""
    first = buf[pos + 1]
    return pos + 2 if first < 0x80 else pos + 2 + (first & 0x7F)


def element_length(buf: bytes, pos: int) -> int:
    """Total length, header included, of the (strict DER) element at ``pos``."""
    first = buf[pos + 1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    return 2 + count + int.from_bytes(buf[pos + 2 : pos + 2 + count], "big")


def _point_of(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def render_template(gate: ReleaseGate, *, pai: x509.Certificate, signer: ec.EllipticCurvePrivateKey, check_at: datetime) -> DacTemplate:
    """Sign a probe DAC with the profile builder, pass it through the full release gate, and take its template.

    The template comes from the gate's own rendering of the profile (``DacTemplate.from_parts``) and
    must reassemble the probe's TBS byte for byte and admit the probe itself.
    """
    probe_key = ec.generate_private_key(_CURVE).public_key()
    probe_serial = random_dac_serial()
    point = _point_of(probe_key)
    cert = sign(gate.profile.builder(probe_key, serial=probe_serial, issuer=pai), signer)
    probe = cert.public_bytes(Encoding.DER)
    gate.check(probe, public_point=point, at=check_at)
    octets = serial_octets(probe_serial)
    assert octets is not None
    template = DacTemplate.from_parts(gate.parts)
    if (
        template.tbs(octets, point, hashlib.sha1(point).digest()) != cert.tbs_certificate_bytes  # noqa: S324
        or template.matches(probe, point) != octets
    ):
        raise IssuanceError("issue.template", "the template does not reassemble the probe DAC")
    return template


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
    """``issue_dac`` for one PAI, PID, validity and CN, with the template fast path in front of it.

    ``withheld``: serials of certificates signed while answering the last CSR and withheld by a
    gate (the caller records them); empty in the normal case.
    """

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
    withheld: list[int] = field(init=False, default_factory=list)
    _gate: ReleaseGate | None = field(init=False, default=None)
    _pai_key: ec.EllipticCurvePublicKey | None = field(init=False, default=None)
    _paa_der: bytes = field(init=False, default=b"")
    _at: datetime = field(init=False)
    _first_checked: bool = field(init=False, default=False)
    _verify_all: bool = field(init=False, default=False)
    _signed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.verify_signatures not in ("auto", "all", "sampled"):
            raise ValueError(f"verify_signatures must be auto, all or sampled, not {self.verify_signatures!r}")
        self._paa_der = self.paa.public_bytes(Encoding.DER)
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
            self._gate = gate_for(profile, pai=self.pai, paa_der=self._paa_der)
            self.template = render_template(self._gate, pai=self.pai, signer=self.signer, check_at=self._at)
        except ReleaseRefused as e:
            # The probe was signed and withheld; the reference path answers every CSR with its code.
            if e.serial is not None:
                self.withheld.append(e.serial)
            self.template = None
        except MatterPkiError:
            # The reference path raises the same coded error for every CSR, in its own order.
            self.template = None

    def issue(self, csr: bytes, serial: int | None = None) -> IssuedDac:
        """One DAC for one CSR; raises CsrError, ProfileError or IssuanceError exactly as ``issue_dac``."""
        der_, number, sha = self.issue_parts(csr, serial)
        return IssuedDac(der_, number, sha, self.validity.not_before, self.validity.not_after)

    def take_withheld(self) -> tuple[int, ...]:
        """Serials withheld since the last call (signed, never released)."""
        out = tuple(self.withheld)
        self.withheld.clear()
        return out

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
                drawn_here = serial is None
                serial = serial if serial is not None else self.serials()
                before = len(self.withheld)
                dac = self._splice(template, serial, parsed.point)
                if dac is not None:
                    self.stats.fast += 1
                    return dac, serial, hashlib.sha256(parsed.der).hexdigest()
                if drawn_here and len(self.withheld) > before:
                    serial = None  # signed into a withheld certificate: the reference path draws another
        self.stats.reference += 1
        try:
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
        except ReleaseRefused as e:
            if e.serial is not None:
                self.withheld.append(e.serial)
            raise
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
        # The fast release gate: the template with exactly this serial, point and SKID ...
        if cert is None or template.matches(cert, point) != octets:
            self.withheld.append(serial)
            return None
        self._signed += 1
        # ... and a signature that verifies (every DAC of a non-OpenSSL signer; sampled otherwise).
        if self._verify_all or self._signed % SAMPLE_EVERY == 1:
            self.stats.verified += 1
            try:
                assert self._pai_key is not None
                self._pai_key.verify(signature, tbs, _ECDSA)
            except InvalidSignature:
                self._verify_all = True
                self.withheld.append(serial)
                return None
        if not self._first_checked:
            try:
                assert self._gate is not None
                self._gate.check(cert, public_point=point, at=self._at)
            except ReleaseRefused:
                self.template = None  # the template is wrong: stop using it
                self.withheld.append(serial)
                return None
            self._first_checked = True
        return cert
