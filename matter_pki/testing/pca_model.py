"""A MODEL of AWS Private CA for the requests matter-pki sends, written from AWS's documentation.

This is not AWS. moto accepts Private CA requests but ignores subject, passthrough extensions,
validity and signing algorithm, so it cannot show what a real Private CA returns. Each behaviour
below cites the page it is taken from; what the documentation leaves open is listed as an
assumption. Sources:

[T] User guide, "AWS Private CA template definitions"
    https://docs.aws.amazon.com/privateca/latest/userguide/template-definitions.html
[O] User guide, "AWS Private CA template order of operations"
    https://docs.aws.amazon.com/privateca/latest/userguide/template-order-of-operations.html
[M] User guide, "Troubleshoot AWS Private CA Matter-compliant certificate errors"
    https://docs.aws.amazon.com/privateca/latest/userguide/TroubleshootPcaMatter.html
[I] API reference, IssueCertificate  https://docs.aws.amazon.com/privateca/latest/APIReference/API_IssueCertificate.html
[G] API reference, GetCertificate    https://docs.aws.amazon.com/privateca/latest/APIReference/API_GetCertificate.html
[R] API reference, RevokeCertificate https://docs.aws.amazon.com/privateca/latest/APIReference/API_RevokeCertificate.html
[Q] AWS General Reference, "AWS Private Certificate Authority endpoints and quotas"
    https://docs.aws.amazon.com/general/latest/gr/pca.html#limits_pca

Certificate content (``issue_certificate``):

* Subject: "[Passthrough from API or CSR]" [T]; API passthrough wins over the CSR [O]. The
  ``CustomAttributes`` become one RDN each, in order, as UTF8String (assumption).
* Subject alternative name: "[Passthrough from API or CSR]" for every APIPassthrough template [T]:
  with no ``Extensions.SubjectAlternativeNames`` in the request, the CSR's requested SAN is copied.
* BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough/V1: "Critical, CA:FALSE",
  AKI = "[SKI from CA certificate]", SKI "[Derived from CSR]"; no key usage unless passed through [T].
* BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1: "Critical, CA:TRUE, pathlen: 0", AKI, SKI,
  no key usage unless passed through [T].
* SubordinateCACertificate_PathLen0_APIPassthrough/V1 and RootCACertificate_APIPassthrough/V1: the
  template defines "Key usage: Critical, digital signature, keyCertSign, CRL sign" [T], and a
  template definition wins over API passthrough [O]. "By default, AWS Private CA generates a
  nine-bit KeyUsage extension value" [M]: such a key usage is written ``03 03 07 86 00``.
  Passed-through key usage (blank templates) keeps the exact bytes given [M].
* RootCACertificate_APIPassthrough/V1: "Basic constraints: Critical, CA:TRUE" (no path length),
  "Authority key identifier: [Passthrough from API]" [T]: no AKI unless passed through ("AWS Private
  CA does not set the authority key identifier extension on root certificates" [M]).
* CRL distribution points are "[Passthrough from CA configuration]" [T]; the matter-pki CAs set
  ``OmitExtension`` (matter-rules §11), so none is written.
* notBefore: ``ValidityNotBefore`` or, by default, "the issuance time minus 60 minutes" [I].
  notAfter: ``Validity`` (ABSOLUTE, END_DATE, DAYS, MONTHS, YEARS) [I]; "The end of the validity
  period configured on a certificate must not exceed the limit set on its parents in the CA
  hierarchy" [I]: a later notAfter is refused with ``ValidationException`` (assumption: the
  documentation names no error code; ``InvalidArgsException`` would be handled the same way).
* SKI: RFC 5280 method 1, SHA-1 of the subjectPublicKey (assumption; "[Derived from CSR]" [T]).
  Extension order BC, KU, SAN, SKI, AKI (assumption, undocumented; the release gate does not
  depend on it).

Service behaviour (``PrivateCaModel``):

* IdempotencyToken: calls with the same token within five minutes get the same certificate [I].
* IssueCertificate is asynchronous: GetCertificate answers ``RequestInProgressException`` until the
  certificate is issued [G] (``pending_for`` / ``pending_polls``).
* RevokeCertificate: by hexadecimal serial [R]; revoking twice answers
  ``RequestAlreadyProcessedException`` [R]; a root CA's self-signed certificate cannot be revoked [R].
* Quotas [Q]: IssueCertificate 25 requests/s and GetCertificate 75 requests/s per account and Region
  by default (``ThrottlingException`` past them, "When a request is throttled, AWS Private CA returns a
  ThrottlingException error", user guide "Quotas"); a lifetime quota of certificates per CA
  (``LimitExceededException``, "An AWS Private CA quota has been exceeded" [I]).
* A CA that is not ACTIVE refuses to issue with ``InvalidStateException`` [I].
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.profiles import PCA_TEMPLATE_DAC, PCA_TEMPLATE_PAA, PCA_TEMPLATE_PAI, build_subject

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric import ec

#: The non-blank subordinate template (key usage defined by the template) [T].
PCA_TEMPLATE_SUBORDINATE_PATHLEN0 = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0_APIPassthrough/V1"
#: digitalSignature + keyCertSign + cRLSign in the nine-bit form Private CA writes by default [M].
NINE_BIT_CA_KEY_USAGE = bytes.fromhex("0303078600")
DEFAULT_NOT_BEFORE_BACKDATE = timedelta(minutes=60)  # [I] ValidityNotBefore
TOKEN_WINDOW = timedelta(minutes=5)  # [I] IdempotencyToken
ISSUE_QUOTA_PER_SECOND = 25  # [Q]
GET_QUOTA_PER_SECOND = 75  # [Q]
CERTIFICATES_PER_CA = 1_000_000  # [Q]
_SAN = "2.5.29.17"
_KU = "2.5.29.15"
_AKI = "2.5.29.35"


class PcaError(Exception):
    """An error Private CA answers with: its error code and message (HTTP 400 unless said)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


def _time(spec: dict[str, Any], start: datetime) -> datetime:
    kind, value = spec["Type"], int(spec["Value"])
    if kind == "ABSOLUTE":
        return datetime.fromtimestamp(value, UTC)
    if kind == "END_DATE":
        text = str(value)
        fmt = "%Y%m%d%H%M%S" if len(text) == 14 else "%y%m%d%H%M%S"
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    if kind == "DAYS":
        return start + timedelta(days=value)
    if kind == "MONTHS":
        return start + timedelta(days=30 * value)  # assumption: calendar months are not modelled
    if kind == "YEARS":
        return start.replace(year=start.year + value)
    raise PcaError("ValidationException", f"validity type {kind!r} is not valid")


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        return x509.load_pem_x509_csr(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_csr(data)
    except ValueError as e:
        raise PcaError("MalformedCSRException", "The certificate signing request is invalid.") from e


def _unrecognized(oid: str, value: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value)


def issue_certificate(
    request: dict[str, Any],
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate | None,
    serial: int,
    now: datetime,
) -> x509.Certificate:
    """The certificate the documented template + passthrough behaviour yields for ``request`` (raises PcaError)."""
    csr = _load_csr(request["Csr"])
    if request.get("SigningAlgorithm") != "SHA256WITHECDSA":
        raise PcaError("InvalidArgsException", "model only covers SHA256WITHECDSA for EC_prime256v1 CAs")
    template = request.get("TemplateArn") or "arn:aws:acm-pca:::template/EndEntityCertificate/V1"
    passthrough = request.get("ApiPassthrough") or {}
    attrs = (passthrough.get("Subject") or {}).get("CustomAttributes")
    subject = (
        build_subject([(x509.ObjectIdentifier(a["ObjectIdentifier"]), a["Value"]) for a in attrs]) if attrs else csr.subject
    )
    not_before = _time(request["ValidityNotBefore"], now) if request.get("ValidityNotBefore") else now - DEFAULT_NOT_BEFORE_BACKDATE
    not_after = _time(request["Validity"], now)
    if ca_certificate is not None and not_after > ca_certificate.not_valid_after_utc:
        raise PcaError(
            "ValidationException",
            "The certificate validity specified exceeds the certificate authority validity.",
        )
    custom = {e["ObjectIdentifier"]: e for e in (passthrough.get("Extensions") or {}).get("CustomExtensions") or []}
    public_key = csr.public_key()
    skid = x509.SubjectKeyIdentifier.from_public_key(public_key)
    exts: list[tuple[x509.ExtensionType, bool]] = []
    if template == PCA_TEMPLATE_PAA:
        issuer_name = subject
        exts.append((x509.BasicConstraints(ca=True, path_length=None), True))
        exts.append((_unrecognized(_KU, NINE_BIT_CA_KEY_USAGE), True))
    elif template in (PCA_TEMPLATE_PAI, PCA_TEMPLATE_SUBORDINATE_PATHLEN0, PCA_TEMPLATE_DAC):
        if ca_certificate is None:
            raise PcaError("InvalidStateException", "subordinate and end-entity templates need an issuing CA certificate")
        issuer_name = ca_certificate.subject
        dac = template == PCA_TEMPLATE_DAC
        exts.append((x509.BasicConstraints(ca=not dac, path_length=None if dac else 0), True))
        if template == PCA_TEMPLATE_SUBORDINATE_PATHLEN0:
            exts.append((_unrecognized(_KU, NINE_BIT_CA_KEY_USAGE), True))
        elif _KU in custom:
            exts.append((_unrecognized(_KU, base64.b64decode(custom[_KU]["Value"])), bool(custom[_KU]["Critical"])))
    else:
        raise PcaError("InvalidArgsException", f"template {template} is not modelled")
    unknown = set(custom) - {_KU, _AKI}
    if unknown:
        raise PcaError("InvalidArgsException", f"model does not cover passthrough extensions {sorted(unknown)}")
    api_san = (passthrough.get("Extensions") or {}).get("SubjectAlternativeNames")
    if api_san:
        raise PcaError("InvalidArgsException", "model does not cover API subjectAltNames")
    try:
        csr_san = csr.extensions.get_extension_for_oid(x509.ObjectIdentifier(_SAN))
    except x509.ExtensionNotFound:
        csr_san = None
    if csr_san is not None:  # [T] "Subject alternative name: [Passthrough from API or CSR]"
        exts.append((csr_san.value, csr_san.critical))
    exts.append((skid, False))
    if template == PCA_TEMPLATE_PAA:
        if _AKI in custom:  # [T] "Authority key identifier: [Passthrough from API]"
            exts.append((_unrecognized(_AKI, base64.b64decode(custom[_AKI]["Value"])), False))
    else:
        assert ca_certificate is not None
        ca_skid = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        exts.append((x509.AuthorityKeyIdentifier(ca_skid, None, None), False))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for ext, critical in exts:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(ca_key, hashes.SHA256())


# -- the service -----------------------------------------------------------------------------------
@dataclass
class ModelCa:
    """One CA of the model."""

    arn: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate | None
    chain: list[x509.Certificate]
    state: str = "ACTIVE"
    subject: list[dict[str, str]] = field(default_factory=list)
    issued: int = 0


@dataclass
class IssuedCertificate:
    """A certificate the model issued: DER, when, whether revoked."""

    ca: str
    der: bytes
    issued_at: datetime
    polls_left: int
    serial: int
    revoked: str | None = None


@dataclass
class PrivateCaModel:
    """The service-level behaviour of Private CA for IssueCertificate, GetCertificate and RevokeCertificate."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    token_window: timedelta = TOKEN_WINDOW
    #: GetCertificate answers RequestInProgressException for this long after IssueCertificate ...
    pending_for: timedelta = timedelta(0)
    #: ... and for this many calls (whichever lasts longer).
    pending_polls: int = 0
    issue_quota_per_second: int | None = None
    get_quota_per_second: int | None = None
    certificates_per_ca: int = CERTIFICATES_PER_CA
    cas: dict[str, ModelCa] = field(default_factory=dict)
    certificates: dict[str, IssuedCertificate] = field(default_factory=dict)
    tokens: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    _recent: dict[str, deque[datetime]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def _throttle(self, operation: str, quota: int | None) -> None:
        if quota is None:
            return
        now = self.now()
        recent = self._recent.setdefault(operation, deque())
        while recent and now - recent[0] >= timedelta(seconds=1):
            recent.popleft()
        if len(recent) >= quota:
            raise PcaError("ThrottlingException", "Rate exceeded")
        recent.append(now)

    def _ca(self, arn: str) -> ModelCa:
        ca = self.cas.get(arn)
        if ca is None:
            raise PcaError("ResourceNotFoundException", f"Could not find certificate authority {arn}")
        return ca

    def issue(self, params: dict[str, Any], *, serial: int, key_for_csr: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> str:
        """IssueCertificate: the certificate ARN (the same one for a repeated token within the window)."""
        with self._lock:
            self._throttle("IssueCertificate", self.issue_quota_per_second)
            ca = self._ca(params["CertificateAuthorityArn"])
            if ca.state != "ACTIVE" or ca.cert is None:
                raise PcaError("InvalidStateException", f"The certificate authority is {ca.state}")
            now = self.now()
            token = params.get("IdempotencyToken")
            if token:
                seen = self.tokens.get((ca.arn, token))
                if seen and now - seen[1] < self.token_window:
                    return seen[0]
            if ca.issued >= self.certificates_per_ca:
                raise PcaError("LimitExceededException", "Certificates per CA quota has been exceeded")
            request = key_for_csr(params) if key_for_csr else params
            cert = issue_certificate(request, ca_key=ca.key, ca_certificate=ca.cert, serial=serial, now=now)
            arn = f"{ca.arn}/certificate/{uuid.uuid4().hex}"
            self.certificates[arn] = IssuedCertificate(ca.arn, cert.public_bytes(Encoding.DER), now, self.pending_polls, serial)
            ca.issued += 1
            if token:
                self.tokens[(ca.arn, token)] = (arn, now)
            return arn

    def get(self, ca_arn: str, certificate_arn: str) -> tuple[bytes, list[x509.Certificate]]:
        """GetCertificate: (DER, chain) once issued; RequestInProgressException before [G]."""
        with self._lock:
            self._throttle("GetCertificate", self.get_quota_per_second)
            issued = self.certificates.get(certificate_arn)
            if issued is None or issued.ca != ca_arn:
                raise PcaError("ResourceNotFoundException", f"Could not find certificate {certificate_arn}")
            if issued.polls_left > 0 or self.now() < issued.issued_at + self.pending_for:
                issued.polls_left = max(0, issued.polls_left - 1)
                raise PcaError("RequestInProgressException", "The request is in progress")
            ca = self.cas[issued.ca]
            assert ca.cert is not None
            return issued.der, [ca.cert, *ca.chain]

    def revoke(self, ca_arn: str, serial_hex: str, reason: str) -> None:
        """RevokeCertificate by hexadecimal serial [R]."""
        with self._lock:
            self._ca(ca_arn)
            try:
                serial = int(serial_hex.replace(":", ""), 16)
            except ValueError as e:
                raise PcaError("InvalidRequestException", f"serial {serial_hex!r} is not hexadecimal") from e
            for issued in self.certificates.values():
                if issued.ca == ca_arn and issued.serial == serial:
                    if issued.revoked is not None:
                        raise PcaError("RequestAlreadyProcessedException", "Your request has already been completed.")
                    issued.revoked = reason
                    return
            raise PcaError("ResourceNotFoundException", f"no certificate with serial {serial_hex} on {ca_arn}")

    # -- views ----------------------------------------------------------------------------------
    def issued_serials(self) -> list[int]:
        """Serials of every certificate the model issued (published or not)."""
        return [i.serial for i in self.certificates.values()]

    def revoked_serials(self) -> list[int]:
        """Serials the model has revoked."""
        return [i.serial for i in self.certificates.values() if i.revoked is not None]
