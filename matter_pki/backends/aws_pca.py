"""AWS Private CA backend: issue Matter DACs (and PAIs) from ``profiles`` request parts.

The profile decides everything (``DacProfile.pca_issue_parts()``): template, subject from the PAI's
VID and the requested PID, the minimal-DER keyUsage, SHA256WITHECDSA and the validity. This module
adds the CA ARN, the CSR (our re-encoded PEM, never the uploaded bytes) and an IdempotencyToken
derived from (PAI, PID, device key), checks what the service model cannot (enums, patterns, base64,
lengths), calls ``acm-pca`` through an injected boto3 client, and releases a certificate only through
the release gate (``matter_pki.gate``); a certificate the gate refuses is revoked.

Intake matched to the backend: the DAC template (``BlankEndEntityCertificate_CriticalBasicConstraints_
APIPassthrough/V1``) takes the subjectAltName "from API or CSR" (Private CA user guide, template
definitions), so a CSR that requests a subjectAltName is refused here (``csr.subject_alt_name``)
before anything is issued. Other requested extensions are not copied by an APIPassthrough template
and are ignored, as on the local path; the gate refuses anything that still appears.

botocore errors are wrapped at this edge by ``matter_pki.aws_errors`` (one table for every AWS
caller): transient → ``TransientError``; quota and set-up errors → ``OperatorError`` or
``ConfigError`` (an operator must act, no CSR is at fault); ``MalformedCSRException`` → a permanent
``BackendError``. A failed ``IssueCertificate`` says in ``context["not_issued"]`` whether every
attempt (botocore retries included) was answered with a 4xx, i.e. certainly issued nothing.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.aws_errors import classify_aws_error, stop_retrying_quota_errors, wrap_aws_error
from matter_pki.csr import load_device_csr
from matter_pki.der import pem_encode
from matter_pki.errors import BackendError, CsrError, MatterPkiError, OperatorError, TransientError
from matter_pki.findings import Severity
from matter_pki.gate import ReleaseRefused, gate_for
from matter_pki.lint import lint
from matter_pki.profiles import (
    PCA_KEY_STORAGE,
    DacProfile,
    PaiProfile,
    PcaApiPassthrough,
    PcaIssueParts,
    PcaValidity,
    Role,
    Validity,
)
from matter_pki.validity import ValidityPolicy
from matter_pki.vidpid import format_hex16

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from botocore.client import BaseClient

    from matter_pki.csr import DeviceCsr

# Service-model limits (botocore acm-pca IssueCertificate) that Stubber does not enforce.
TOKEN_MAX_LENGTH = 36
_TOKEN_RE = re.compile(r"[\u0009\u000A\u000D\u0020-\u00FF]*")
_OID_RE = re.compile(r"([0-2])\.([0-9]|([0-3][0-9]))((\.([0-9]+)){0,126})")
_B64_RE = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_CA_ARN_RE = re.compile(r"arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}")
_TEMPLATE_ARN_RE = re.compile(r"arn:aws[a-z-]*:acm-pca:::template/[A-Za-z0-9_]+/V[0-9]+")
_SIGNING_ALGORITHMS = frozenset({"SHA256WITHECDSA"})  # Matter: ecdsa-with-SHA256 only
_VALIDITY_TYPES = frozenset({"END_DATE", "ABSOLUTE", "DAYS", "MONTHS", "YEARS"})
MAX_CSR_BLOB = 32768
MAX_CUSTOM_ITEMS = 150
MAX_ATTRIBUTE_VALUE = 256
MAX_EXTENSION_VALUE = 4096
MAX_OID_LENGTH = 64

__all__ = ["classify_aws_error", "wrap_aws_error"]  # re-exported: one error table (matter_pki.aws_errors)


class IssueRequest(TypedDict):
    """``IssueCertificate`` parameters: the profile's parts plus CA, CSR and token."""

    CertificateAuthorityArn: str
    Csr: bytes
    TemplateArn: str
    SigningAlgorithm: str
    ApiPassthrough: PcaApiPassthrough
    Validity: PcaValidity
    ValidityNotBefore: PcaValidity
    IdempotencyToken: str


# -- tokens ---------------------------------------------------------------------------------------
def idempotency_token(*parts: str) -> str:
    """A per-request IdempotencyToken: ``mp1-`` + 32 hex of SHA-256 over the parts (36 chars)."""
    digest = hashlib.sha256("\x1f".join(("matter-pki/1", *parts)).encode()).hexdigest()
    return f"mp1-{digest[:32]}"


def dac_token(*, pai_arn: str, pid: int, key_id: str) -> str:
    """Token for one (PAI, PID, device key): every upload, name, version and re-encoding of its CSR shares it.

    Private CA answers calls with the same token within five minutes with the same certificate
    (API reference, IssueCertificate ``IdempotencyToken``); past that window a token protects nothing,
    which is why the pipeline also keeps a durable claim (``matter_pki.pipeline.claims``).
    """
    return idempotency_token("dac", pai_arn, format_hex16(pid), key_id)


# -- request checks -------------------------------------------------------------------------------
def _bad(message: str) -> BackendError:
    # Our own request failed our checks: a bug or a setting, never the CSR's fault.
    return OperatorError("backend.request_invalid", message)


def _check_oid(oid: object, where: str) -> None:
    if not isinstance(oid, str) or len(oid) > MAX_OID_LENGTH or not _OID_RE.fullmatch(oid):
        raise _bad(
            f"{where}: ObjectIdentifier {oid!r} is not a dotted OID of at most {MAX_OID_LENGTH} characters"
        )


def _check_validity(spec: Mapping[str, object], where: str) -> None:
    kind, value = spec.get("Type"), spec.get("Value")
    if kind not in _VALIDITY_TYPES:
        raise _bad(f"{where}.Type {kind!r} is not one of {sorted(_VALIDITY_TYPES)}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(f"{where}.Value {value!r} must be a positive integer")
    if kind == "END_DATE" and len(str(value)) not in (12, 14):
        raise _bad(f"{where}.Value {value} must be YYMMDDHHMMSS or YYYYMMDDHHMMSS for END_DATE")


def check_issue_request(request: Mapping[str, object]) -> None:
    """Checks the service model states but botocore's validator skips: enums, patterns, base64, lengths."""
    arn = request.get("CertificateAuthorityArn")
    if not isinstance(arn, str) or not _CA_ARN_RE.fullmatch(arn):
        raise _bad(f"CertificateAuthorityArn {arn!r} is not a Private CA certificate-authority ARN")
    template = request.get("TemplateArn")
    if not isinstance(template, str) or not _TEMPLATE_ARN_RE.fullmatch(template):
        raise _bad(f"TemplateArn {template!r} is not a Private CA template ARN")
    if request.get("SigningAlgorithm") not in _SIGNING_ALGORITHMS:
        raise _bad(
            f"SigningAlgorithm {request.get('SigningAlgorithm')!r} is not allowed (Matter: SHA256WITHECDSA)"
        )
    csr = request.get("Csr")
    if not isinstance(csr, bytes) or not 1 <= len(csr) <= MAX_CSR_BLOB:
        raise _bad(f"Csr must be 1..{MAX_CSR_BLOB} bytes")
    token = request.get("IdempotencyToken")
    if (
        not isinstance(token, str)
        or not 1 <= len(token) <= TOKEN_MAX_LENGTH
        or not _TOKEN_RE.fullmatch(token)
    ):
        raise _bad(f"IdempotencyToken must be 1..{TOKEN_MAX_LENGTH} characters of [\\t\\n\\r\\x20-\\xff]")
    for name in ("Validity", "ValidityNotBefore"):
        spec = request.get(name)
        if spec is not None:
            if not isinstance(spec, dict):
                raise _bad(f"{name} must be a structure")
            _check_validity(spec, name)
    if "Validity" not in request:
        raise _bad("Validity is required")
    passthrough = request.get("ApiPassthrough") or {}
    if not isinstance(passthrough, dict):
        raise _bad("ApiPassthrough must be a structure")
    attrs = (passthrough.get("Subject") or {}).get("CustomAttributes") or []
    if len(attrs) > MAX_CUSTOM_ITEMS:
        raise _bad(f"Subject.CustomAttributes holds {len(attrs)} items, at most {MAX_CUSTOM_ITEMS}")
    for i, attr in enumerate(attrs):
        _check_oid(attr.get("ObjectIdentifier"), f"Subject.CustomAttributes[{i}]")
        value = attr.get("Value")
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_ATTRIBUTE_VALUE:
            raise _bad(f"Subject.CustomAttributes[{i}].Value must be 1..{MAX_ATTRIBUTE_VALUE} characters")
    exts = (passthrough.get("Extensions") or {}).get("CustomExtensions") or []
    if len(exts) > MAX_CUSTOM_ITEMS:
        raise _bad(f"Extensions.CustomExtensions holds {len(exts)} items, at most {MAX_CUSTOM_ITEMS}")
    for i, ext in enumerate(exts):
        _check_oid(ext.get("ObjectIdentifier"), f"Extensions.CustomExtensions[{i}]")
        value = ext.get("Value")
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= MAX_EXTENSION_VALUE
            or not _B64_RE.fullmatch(value)
        ):
            raise _bad(
                f"Extensions.CustomExtensions[{i}].Value must be 1..{MAX_EXTENSION_VALUE} characters of base64"
            )
        if not isinstance(ext.get("Critical", False), bool):
            raise _bad(f"Extensions.CustomExtensions[{i}].Critical must be a boolean")


def csr_pem(device: DeviceCsr) -> bytes:
    """The accepted CSR re-encoded as PEM (what Private CA is sent, never the uploaded bytes)."""
    return pem_encode("CERTIFICATE REQUEST", device.der)


def issue_request(*, ca_arn: str, csr: bytes, parts: PcaIssueParts, token: str) -> IssueRequest:
    """An ``IssueCertificate`` request: the CA, the CSR (PEM), a profile's parts and the idempotency token."""
    return {
        "CertificateAuthorityArn": ca_arn,
        "Csr": csr,
        "TemplateArn": parts["TemplateArn"],
        "SigningAlgorithm": parts["SigningAlgorithm"],
        "ApiPassthrough": parts["ApiPassthrough"],
        "Validity": parts["Validity"],
        "ValidityNotBefore": parts["ValidityNotBefore"],
        "IdempotencyToken": token,
    }


def build_dac_request(*, ca_arn: str, device: DeviceCsr, profile: DacProfile, token: str) -> IssueRequest:
    """The full, checked ``IssueCertificate`` request for one DAC."""
    request = issue_request(ca_arn=ca_arn, csr=csr_pem(device), parts=profile.pca_issue_parts(), token=token)
    check_issue_request(request)
    return request


# -- intake ---------------------------------------------------------------------------------------
SUBJECT_ALT_NAME_OID = "2.5.29.17"


def check_pca_intake(device: DeviceCsr) -> None:
    """Refuse a CSR whose requested extensions Private CA would copy into the DAC (``csr.subject_alt_name``).

    The DAC template's subjectAltName is "[Passthrough from API or CSR]" (Private CA user guide,
    template definitions, BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough/V1):
    the API gives none, so the CSR's would be copied, and a Matter DAC carries no SAN.
    """
    try:
        requested = x509.load_der_x509_csr(device.der).extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise CsrError("csr.extensions_malformed", f"the CSR's requested extensions cannot be read: {e}") from e
    for ext in requested:
        if ext.oid.dotted_string == SUBJECT_ALT_NAME_OID:
            raise CsrError(
                "csr.subject_alt_name",
                "the CSR requests a subjectAltName, which Private CA would copy into the DAC; "
                "Matter DACs carry none: send a CSR without an extensionRequest",
            )


# -- chain ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CaChain:
    """A PAI on Private CA with its PAA (the last certificate of the chain Private CA reports)."""

    arn: str
    pai_der: bytes
    paa_der: bytes
    pai: x509.Certificate
    paa: x509.Certificate
    fetched_at: float


def _pem_certificates(text: str) -> list[bytes]:
    return (
        [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(text.encode())]
        if text.strip()
        else []
    )


def check_pai_chain(
    pai_der: bytes, paa_der: bytes, *, arn: str, trusted_paa_sha256: frozenset[str] = frozenset()
) -> None:
    """Refuse a CA that is not a Matter PAI under a Matter PAA before anything is issued from it."""
    if trusted_paa_sha256 and hashlib.sha256(paa_der).hexdigest() not in trusted_paa_sha256:
        raise OperatorError(
            "backend.paa_not_trusted", f"{arn} chains to a PAA that is not in the trusted list", ca_arn=arn
        )
    for der, role, issuer in ((paa_der, Role.PAA, None), (pai_der, Role.PAI, paa_der)):
        errors = [f for f in lint(der, role, issuer=issuer) if f.severity >= Severity.ERROR]
        if errors:
            raise OperatorError(
                f"backend.ca_not_{role.value}",
                f"{arn}: its {role.value.upper()} certificate breaks [{errors[0].code}] {errors[0].message}",
                ca_arn=arn,
            )


# -- issued certificate checks ---------------------------------------------------------------------
def check_issued_dac(
    der: bytes, *, device: DeviceCsr, profile: DacProfile, chain: CaChain, at: datetime
) -> int:
    """The release gate for a Private CA DAC: exactly ``profile`` for this PAI and the CSR's key, and valid.

    Returns its serial; raises ``gate.ReleaseRefused`` (``issue.*``, with the serial to revoke).
    """
    gate = gate_for(profile, pai=chain.pai_der, paa_der=chain.paa_der)
    return gate.check(der, public_point=device.public_point, at=max(at, gate.default_instant()))


# -- the client wrapper ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PcaDac:
    """A DAC issued on Private CA and released by the gate."""

    der: bytes
    serial: int
    certificate_arn: str
    ca_arn: str
    csr_sha256: str


#: Per-thread record of the IssueCertificate attempts botocore makes inside one call.
_ATTEMPTS = threading.local()


def _record_attempt(response: Any = None, caught_exception: Any = None, **_: Any) -> None:
    """``needs-retry`` hook: True for an attempt answered with a 4xx (nothing issued), False otherwise."""
    log: list[bool] | None = getattr(_ATTEMPTS, "log", None)
    if log is None:
        return
    status = 0
    if caught_exception is None and isinstance(response, tuple) and response:
        status = int(getattr(response[0], "status_code", 0) or 0)
    log.append(400 <= status < 500)


class PrivateCa:
    """``acm-pca`` calls used by matter-pki, on an injected boto3 client; PAI chains cached by ARN."""

    def __init__(
        self,
        client: BaseClient,
        *,
        waiter_delay: float = 0.5,
        waiter_max_attempts: int = 40,
        cache_seconds: float = 900.0,
        trusted_paa_sha256: frozenset[str] = frozenset(),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.cache_seconds = cache_seconds
        self.trusted_paa_sha256 = trusted_paa_sha256
        self._monotonic = monotonic
        self._sleep = sleep
        self._chains: dict[str, CaChain] = {}
        self._lock = threading.Lock()
        self._arn_locks: dict[str, threading.Lock] = {}
        self.chain_fetches = 0
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            stop_retrying_quota_errors(client)
            events.register("needs-retry.acm-pca.IssueCertificate", _record_attempt, unique_id="matter-pki-attempts")

    @property
    def region(self) -> str | None:
        """Region the client talks to."""
        region: str | None = getattr(self.client.meta, "region_name", None)
        return region

    def _call(self, operation: str, **params: object) -> dict[str, object]:
        try:
            response: dict[str, object] = getattr(self.client, operation)(**params)
        except Exception as e:
            if isinstance(e, MatterPkiError):
                raise
            raise wrap_aws_error(
                e, operation=operation, service="acm-pca", ca_arn=str(params.get("CertificateAuthorityArn", ""))
            ) from e
        return response

    def ca_chain(self, arn: str) -> CaChain:
        """PAI certificate and PAA for ``arn``, fetched once per ``cache_seconds`` and checked.

        Concurrent callers for one ARN wait for a single fetch (no thundering herd on a cold container).
        """
        cached = self._cached(arn)
        if cached is not None:
            return cached
        with self._lock:
            arn_lock = self._arn_locks.setdefault(arn, threading.Lock())
        with arn_lock:
            cached = self._cached(arn)
            return cached if cached is not None else self._fetch_chain(arn)

    def _cached(self, arn: str) -> CaChain | None:
        with self._lock:
            cached = self._chains.get(arn)
        if cached is not None and self._monotonic() - cached.fetched_at < self.cache_seconds:
            return cached
        return None

    def _fetch_chain(self, arn: str) -> CaChain:
        response = self._call("get_certificate_authority_certificate", CertificateAuthorityArn=arn)
        certs = _pem_certificates(str(response.get("Certificate", "")))
        chain = _pem_certificates(str(response.get("CertificateChain", "") or ""))
        if len(certs) != 1 or not chain:
            raise OperatorError(
                "backend.ca_not_pai",
                f"{arn} has no certificate chain: it is not an activated subordinate CA",
                ca_arn=arn,
            )
        pai_der, paa_der = certs[0], chain[-1]
        check_pai_chain(pai_der, paa_der, arn=arn, trusted_paa_sha256=self.trusted_paa_sha256)
        entry = CaChain(
            arn,
            pai_der,
            paa_der,
            x509.load_der_x509_certificate(pai_der),
            x509.load_der_x509_certificate(paa_der),
            self._monotonic(),
        )
        with self._lock:
            self._chains[arn] = entry
            self.chain_fetches += 1
        return entry

    def issue(self, request: IssueRequest) -> str:
        """Send ``IssueCertificate``; returns the certificate ARN.

        On failure the error's ``context["not_issued"]`` is True only when every attempt botocore made
        was answered with a 4xx: then no certificate exists for this call.
        """
        check_issue_request(request)
        _ATTEMPTS.log = []
        try:
            response = self._call("issue_certificate", **request)
        except MatterPkiError as e:
            log: list[bool] = _ATTEMPTS.log
            cause = e.__cause__
            status = int(e.context.get("http_status", 0) or 0)
            # Without recorded attempts (a stubbed client), the final answer alone decides.
            e.context["not_issued"] = bool(cause is not None and 400 <= status < 500 and all(log))
            raise
        finally:
            _ATTEMPTS.log = None
        arn = response.get("CertificateArn")
        if not isinstance(arn, str) or not arn.startswith(
            request["CertificateAuthorityArn"] + "/certificate/"
        ):
            raise OperatorError("backend.bad_response", f"IssueCertificate returned certificate ARN {arn!r}")
        return arn

    def get_certificate(self, ca_arn: str, certificate_arn: str) -> bytes | None:
        """One ``GetCertificate``: the DER, or None while Private CA is still issuing it."""
        try:
            response = self._call("get_certificate", CertificateAuthorityArn=ca_arn, CertificateArn=certificate_arn)
        except TransientError as e:
            if e.context.get("aws_code") == "RequestInProgressException":
                return None
            raise
        certs = _pem_certificates(str(response.get("Certificate", "")))
        if len(certs) != 1:
            raise OperatorError("backend.bad_response", f"GetCertificate returned {len(certs)} certificates")
        return certs[0]

    def wait_certificate(
        self,
        ca_arn: str,
        certificate_arn: str,
        *,
        first_delay: float | None = None,
        time_left: Callable[[], float] | None = None,
    ) -> bytes:
        """Poll ``GetCertificate`` until the certificate is issued; its first success is the answer.

        Waits ``first_delay`` (default ``waiter_delay``) before the first call, then ``waiter_delay``
        between calls, at most ``waiter_max_attempts`` calls, and never sleeps past ``time_left()``
        seconds: then it raises ``TransientError backend.pending`` (the caller comes back later).
        """
        delay = self.waiter_delay if first_delay is None else first_delay
        for _attempt in range(self.waiter_max_attempts):
            if delay > 0:
                if time_left is not None and time_left() < delay:
                    break
                self._sleep(delay)
            if time_left is not None and time_left() <= 0:
                break
            der = self.get_certificate(ca_arn, certificate_arn)
            if der is not None:
                return der
            delay = self.waiter_delay
        raise TransientError(
            "backend.pending", f"certificate {certificate_arn} is still being issued", ca_arn=ca_arn,
            certificate_arn=certificate_arn,
        )  # fmt: skip

    def fetch(self, ca_arn: str, certificate_arn: str) -> bytes:
        """Wait for the certificate and return its DER (one GetCertificate once it is ready)."""
        return self.wait_certificate(ca_arn, certificate_arn)

    def revoke(self, ca_arn: str, certificate_serial: int, *, reason: str = "UNSPECIFIED") -> None:
        """``RevokeCertificate`` by serial (hex, as the API reference's examples write it); revoked already is done."""
        try:
            self._call(
                "revoke_certificate",
                CertificateAuthorityArn=ca_arn,
                CertificateSerial=_serial_text(certificate_serial),
                RevocationReason=reason,
            )
        except MatterPkiError as e:
            # API reference, RevokeCertificate: RequestAlreadyProcessedException, "already been completed".
            if e.context.get("aws_code") != "RequestAlreadyProcessedException":
                raise

    # -- PAI on Private CA ------------------------------------------------------------------------
    def root_certificate(self, paa_arn: str) -> bytes:
        """The PAA (root CA) certificate, DER."""
        response = self._call("get_certificate_authority_certificate", CertificateAuthorityArn=paa_arn)
        certs = _pem_certificates(str(response.get("Certificate", "")))
        if len(certs) != 1:
            raise OperatorError("backend.ca_not_paa", f"{paa_arn} has no certificate", ca_arn=paa_arn)
        return certs[0]

    def create_pai(self, *, paa_arn: str, profile: PaiProfile, token: str | None = None) -> tuple[str, bytes]:
        """Create a subordinate CA, sign it with the PAA (PathLen0 template), import it; returns (ARN, DER)."""
        paa_der = self.root_certificate(paa_arn)
        paa = x509.load_der_x509_certificate(paa_der)
        profile.check_issuer(paa)
        created = self._call(
            "create_certificate_authority",
            CertificateAuthorityConfiguration=profile.pca_ca_configuration(),
            CertificateAuthorityType="SUBORDINATE",
            KeyStorageSecurityStandard=PCA_KEY_STORAGE,
            IdempotencyToken=token or idempotency_token("pai-ca", paa_arn, repr(profile)),
        )
        pai_arn = str(created["CertificateAuthorityArn"])
        from botocore.exceptions import WaiterError

        try:
            self.client.get_waiter("certificate_authority_csr_created").wait(
                CertificateAuthorityArn=pai_arn,
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as e:
            raise TransientError(
                "backend.transient", f"CSR of {pai_arn} not ready: {e}", ca_arn=pai_arn
            ) from e
        csr_text = str(self._call("get_certificate_authority_csr", CertificateAuthorityArn=pai_arn)["Csr"])
        device = load_device_csr(csr_text.encode())
        parts = profile.pca_issue_parts()
        request: IssueRequest = {
            "CertificateAuthorityArn": paa_arn,
            "Csr": csr_pem(device),
            "TemplateArn": parts["TemplateArn"],
            "SigningAlgorithm": parts["SigningAlgorithm"],
            "ApiPassthrough": parts["ApiPassthrough"],
            "Validity": parts["Validity"],
            "ValidityNotBefore": parts["ValidityNotBefore"],
            "IdempotencyToken": idempotency_token("pai", paa_arn, pai_arn, device.sha256),
        }
        pai_der = self.fetch(paa_arn, self.issue(request))
        check_pai_chain(pai_der, paa_der, arn=pai_arn, trusted_paa_sha256=self.trusted_paa_sha256)
        self._call(
            "import_certificate_authority_certificate",
            CertificateAuthorityArn=pai_arn,
            Certificate=_pem(pai_der),
            CertificateChain=_pem(paa_der),
        )
        return pai_arn, pai_der


def _serial_text(serial: int) -> str:
    """A serial as RevokeCertificate takes it: hex octets joined by colons (API reference example)."""
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")
    return ":".join(f"{b:02x}" for b in octets)


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def dac_validity(policy: ValidityPolicy, *, start: datetime, pai: x509.Certificate) -> Validity:
    """The DAC validity under a Private CA PAI: the policy, ending no later than the PAI (Private CA's rule)."""
    return policy.resolve(
        start, issuer_not_before=pai.not_valid_before_utc, issuer_not_after=pai.not_valid_after_utc, within_issuer=True
    )


def release_or_revoke(
    pca: PrivateCa, der: bytes, *, certificate_arn: str, device: DeviceCsr, profile: DacProfile, chain: CaChain, at: datetime
) -> int:
    """Gate a Private CA DAC; on refusal revoke it (the serial is in the refusal) and re-raise."""
    try:
        return check_issued_dac(der, device=device, profile=profile, chain=chain, at=at)
    except ReleaseRefused as refused:
        serial = refused.serial if refused.serial is not None else _serial_from(der)
        refused.context["certificate_arn"] = certificate_arn
        if serial is None:
            refused.context["revoked"] = False
            refused.context["not_revoked_because"] = "the certificate's serial cannot be read"
            raise
        try:
            pca.revoke(chain.arn, serial)
        except MatterPkiError as e:
            if e.retryable:
                raise
            refused.context["revoked"] = False
            refused.context["not_revoked_because"] = f"[{e.code}] {e.message}"
            raise refused from e
        refused.context["revoked"] = True
        raise


def _serial_from(der: bytes) -> int | None:
    try:
        serial: int = x509.load_der_x509_certificate(der).serial_number
    except ValueError:
        return None
    return serial


def issue_dac_on_pca(
    pca: PrivateCa,
    csr: bytes,
    *,
    ca_arn: str,
    pid: int,
    validity: ValidityPolicy | str = "issuer",
    common_name: str | None = "Matter DAC",
    now: datetime,
    token: str | None = None,
) -> PcaDac:
    """Intake, profile, issue on Private CA, wait, release gate (revoke on refusal): one DAC (the CLI path)."""
    device = load_device_csr(csr)
    check_pca_intake(device)
    chain = pca.ca_chain(ca_arn)
    policy = validity if isinstance(validity, ValidityPolicy) else ValidityPolicy.parse(validity)
    profile = DacProfile.for_issuer(
        chain.pai, pid=pid, validity=dac_validity(policy, start=now, pai=chain.pai), common_name=common_name
    )
    profile.check_issuer(chain.pai)
    request = build_dac_request(
        ca_arn=ca_arn,
        device=device,
        profile=profile,
        token=token or dac_token(pai_arn=ca_arn, pid=pid, key_id=device.key_id),
    )
    cert_arn = pca.issue(request)
    der = pca.fetch(ca_arn, cert_arn)
    serial = release_or_revoke(
        pca, der, certificate_arn=cert_arn, device=device, profile=profile, chain=chain, at=now
    )
    return PcaDac(der, serial, cert_arn, ca_arn, device.sha256)
