"""AWS Private CA backend: issue Matter DACs (and PAIs) from ``profiles`` request parts.

The profile decides everything (``DacProfile.pca_issue_parts()``): template, subject from the PAI's
VID and the requested PID, the minimal-DER keyUsage, SHA256WITHECDSA and the validity. This module
adds the CA ARN, the CSR (our re-encoded PEM, never the uploaded bytes) and an IdempotencyToken
derived from what identifies the request, checks what the service model cannot (enums, patterns,
base64, lengths), calls ``acm-pca`` through an injected boto3 client, and refuses to release a
certificate the chip-parity validator rejects or that is not the one requested.

botocore errors are wrapped at this edge: throttling, 5xx, timeouts and RequestInProgress become
``TransientError`` (retryable); a refused request (MalformedCSR, InvalidArgs, InvalidRequest,
ResourceNotFound, InvalidState, ...) becomes a permanent ``BackendError`` with a ``backend.*`` code;
missing credentials or permissions become ``ConfigError`` (an operator must act, no CSR is at fault).
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki.certparse import parse_certificate
from matter_pki.csr import load_device_csr
from matter_pki.errors import (
    BackendError,
    ConfigError,
    IssuanceError,
    MatterPkiError,
    StorageError,
    TransientError,
)
from matter_pki.findings import Severity
from matter_pki.issuance import check_released
from matter_pki.lint import lint
from matter_pki.profiles import (
    NO_EXPIRY,
    PCA_KEY_STORAGE,
    DacProfile,
    PaiProfile,
    PcaApiPassthrough,
    PcaValidity,
    Role,
    Validity,
)
from matter_pki.vidpid import extract_vid_pid, format_hex16

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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

# Error codes by botocore error ``Code``.
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
        "RequestInProgressException", "ServiceUnavailable", "ServiceUnavailableException",
        "InternalFailure", "InternalError", "InternalServerError", "InternalServerException",
        "RequestTimeout", "RequestTimeoutException", "ConcurrentModificationException",
        "ConditionalRequestConflict", "OperationAborted",
    }
)  # fmt: skip
_CONFIG_CODES = frozenset(
    {
        "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
        "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
        "AllAccessDisabled", "AccountProblem", "NoSuchBucket", "KMS.AccessDeniedException",
    }
)  # fmt: skip
_PERMANENT_CODES = {
    "MalformedCSRException": "backend.malformed_csr",
    "InvalidArgsException": "backend.invalid_args",
    "InvalidRequestException": "backend.invalid_request",
    "ValidationException": "backend.invalid_args",
    "ResourceNotFoundException": "backend.ca_not_found",
    "InvalidStateException": "backend.ca_state",
    "InvalidArnException": "backend.invalid_arn",
    "RequestFailedException": "backend.request_failed",
    "MalformedCertificateException": "backend.malformed_certificate",
    "CertificateMismatchException": "backend.certificate_mismatch",
}

ErrorKind = Literal["transient", "config", "permanent"]


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


def dac_token(*, bucket: str, key: str, version: str | None, csr_sha256: str) -> str:
    """Token for the CSR object ``bucket/key@version`` with content ``csr_sha256``.

    The CSR digest is included so that an unversioned key overwritten with another CSR within
    Private CA's five-minute window cannot be answered with the previous CSR's certificate.
    """
    return idempotency_token("dac", bucket, key, version or "", csr_sha256)


# -- errors ---------------------------------------------------------------------------------------
def _client_error_fields(error: Exception) -> tuple[str, str, int, str]:
    response = getattr(error, "response", None) or {}
    err = response.get("Error", {}) if isinstance(response, dict) else {}
    meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
    code = str(err.get("Code", "") or "")
    message = str(err.get("Message", "") or str(error))
    status = int(meta.get("HTTPStatusCode", 0) or 0)
    request_id = str(meta.get("RequestId", "") or "")
    return code, message, status, request_id


def classify_aws_error(error: Exception) -> tuple[ErrorKind, str]:
    """``(kind, aws_code)`` for a botocore exception: transient, config (operator) or permanent."""
    from botocore import exceptions as bce

    if isinstance(
        error,
        bce.ConnectionError | bce.HTTPClientError | bce.ReadTimeoutError | bce.ConnectTimeoutError,
    ):
        return "transient", type(error).__name__
    if isinstance(error, bce.NoCredentialsError | bce.PartialCredentialsError | bce.NoRegionError):
        return "config", type(error).__name__
    if isinstance(error, bce.ParamValidationError):
        return "permanent", "ParamValidationError"
    if isinstance(error, bce.ClientError):
        code, _message, status, _rid = _client_error_fields(error)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return "transient", code
        if code in _CONFIG_CODES or status == 403:
            return "config", code
        return "permanent", code
    return "permanent", type(error).__name__


def wrap_aws_error(
    error: Exception, *, operation: str, prefix: str = "backend", **context: str
) -> MatterPkiError:
    """The matter-pki error for a botocore exception (raise it ``from error``)."""
    kind, aws_code = classify_aws_error(error)
    _code, message, status, request_id = _client_error_fields(error)
    fields: dict[str, str | int] = {"operation": operation, "aws_code": aws_code, **context}
    if request_id:
        fields["aws_request_id"] = request_id
    if status:
        fields["http_status"] = status
    text = f"{operation}: {aws_code}: {message}" if aws_code else f"{operation}: {message}"
    if kind == "transient":
        return TransientError(f"{prefix}.transient", text, **fields)
    if kind == "config":
        credentials = "Credential" in aws_code or "Token" in aws_code or "AccessKey" in aws_code
        return ConfigError(
            "config.aws_credentials" if credentials else "config.aws_access_denied", text, **fields
        )
    if prefix == "storage":
        return StorageError("storage.aws_error", text, **fields)
    if aws_code == "ParamValidationError":
        return BackendError("backend.request_invalid", text, **fields)
    return BackendError(_PERMANENT_CODES.get(aws_code, "backend.aws_error"), text, **fields)


# -- request checks -------------------------------------------------------------------------------
def _bad(message: str) -> BackendError:
    return BackendError("backend.request_invalid", message)


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
    body = base64.encodebytes(device.der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + b"\n".join(lines)
        + b"\n-----END CERTIFICATE REQUEST-----\n"
    )


def build_dac_request(*, ca_arn: str, device: DeviceCsr, profile: DacProfile, token: str) -> IssueRequest:
    """The full, checked ``IssueCertificate`` request for one DAC."""
    parts = profile.pca_issue_parts()
    request: IssueRequest = {
        "CertificateAuthorityArn": ca_arn,
        "Csr": csr_pem(device),
        "TemplateArn": parts["TemplateArn"],
        "SigningAlgorithm": parts["SigningAlgorithm"],
        "ApiPassthrough": parts["ApiPassthrough"],
        "Validity": parts["Validity"],
        "ValidityNotBefore": parts["ValidityNotBefore"],
        "IdempotencyToken": token,
    }
    check_issue_request(request)
    return request


# -- validity -------------------------------------------------------------------------------------
def parse_validity_policy(text: str) -> str:
    """``issuer`` (until the PAI's notAfter), ``no-expiry`` (99991231235959Z) or a number of days."""
    value = text.strip().lower()
    if value in ("issuer", "no-expiry"):
        return value
    days = value[:-1] if value.endswith("d") else value
    if days.isdigit() and int(days) > 0:
        return str(int(days))
    raise ConfigError(
        "config.dac_validity", f"DAC validity {text!r} must be 'issuer', 'no-expiry' or a number of days"
    )


def dac_validity(policy: str, *, start: datetime, pai: x509.Certificate) -> Validity:
    """The DAC validity for ``policy``, starting at ``start`` (never before the PAI's notBefore)."""
    begin = max(start.astimezone(UTC).replace(microsecond=0), pai.not_valid_before_utc)
    if policy == "no-expiry":
        return Validity.no_expiry(begin)
    if policy == "issuer":
        end = pai.not_valid_after_utc
        return Validity.no_expiry(begin) if end >= NO_EXPIRY else Validity(not_before=begin, not_after=end)
    validity = Validity.for_days(begin, int(policy))
    if validity.not_after > pai.not_valid_after_utc:
        raise ConfigError(
            "config.dac_validity_beyond_pai",
            f"a {policy}-day DAC would outlive its PAI (notAfter {pai.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}); "
            "Private CA refuses it: shorten the validity or use 'issuer'",
        )
    return validity


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
        raise BackendError(
            "backend.paa_not_trusted", f"{arn} chains to a PAA that is not in the trusted list", ca_arn=arn
        )
    for der, role, issuer in ((paa_der, Role.PAA, None), (pai_der, Role.PAI, paa_der)):
        errors = [f for f in lint(der, role, issuer=issuer) if f.severity >= Severity.ERROR]
        if errors:
            raise BackendError(
                f"backend.ca_not_{role.value}",
                f"{arn}: its {role.value.upper()} certificate breaks [{errors[0].code}] {errors[0].message}",
                ca_arn=arn,
            )


# -- issued certificate checks ---------------------------------------------------------------------
def check_issued_dac(
    der: bytes, *, device: DeviceCsr, profile: DacProfile, chain: CaChain, at: datetime
) -> int:
    """Validate a Private CA DAC (PAA → PAI → DAC, commissioner order) and that it is the one requested.

    Returns its serial. Raises IssuanceError ``issue.validation_failed`` or ``issue.not_as_requested``.
    """
    check_released(
        der,
        pai_der=chain.pai_der,
        paa_der=chain.paa_der,
        at=max(at, profile.validity.not_before + timedelta(seconds=1)),
    )
    cert = x509.load_der_x509_certificate(der)
    point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    if point != device.public_point:
        raise IssuanceError(
            "issue.not_as_requested", "the DAC Private CA returned does not certify the CSR's key"
        )
    ids = extract_vid_pid(parse_certificate(der).subject)
    if (ids.vid, ids.pid) != (profile.vid, profile.pid):
        raise IssuanceError(
            "issue.not_as_requested",
            f"the DAC carries VID/PID {ids.vid}/{ids.pid}, requested "
            f"{format_hex16(profile.vid or 0)}/{format_hex16(profile.pid or 0)}",
        )
    serial: int = cert.serial_number
    return serial


# -- the client wrapper ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PcaDac:
    """A DAC issued on Private CA and checked."""

    der: bytes
    serial: int
    certificate_arn: str
    ca_arn: str
    csr_sha256: str


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
    ) -> None:
        self.client = client
        self.waiter_delay = waiter_delay
        self.waiter_max_attempts = waiter_max_attempts
        self.cache_seconds = cache_seconds
        self.trusted_paa_sha256 = trusted_paa_sha256
        self._monotonic = monotonic
        self._chains: dict[str, CaChain] = {}
        self._lock = threading.Lock()
        self._arn_locks: dict[str, threading.Lock] = {}
        self.chain_fetches = 0

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
                e, operation=operation, ca_arn=str(params.get("CertificateAuthorityArn", ""))
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
            raise BackendError(
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
        """Send ``IssueCertificate``; returns the certificate ARN."""
        check_issue_request(request)
        response = self._call("issue_certificate", **request)
        arn = response.get("CertificateArn")
        if not isinstance(arn, str) or not arn.startswith(
            request["CertificateAuthorityArn"] + "/certificate/"
        ):
            raise BackendError("backend.bad_response", f"IssueCertificate returned certificate ARN {arn!r}")
        return arn

    def fetch(self, ca_arn: str, certificate_arn: str) -> bytes:
        """Wait for the certificate (``certificate_issued`` waiter), then return its DER."""
        from botocore.exceptions import WaiterError

        waiter = self.client.get_waiter("certificate_issued")
        try:
            waiter.wait(
                CertificateAuthorityArn=ca_arn,
                CertificateArn=certificate_arn,
                WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
            )
        except WaiterError as e:
            last = e.last_response or {}
            code = str(last.get("Error", {}).get("Code", ""))
            if not code or code == "RequestInProgressException":
                raise TransientError(
                    "backend.transient", f"certificate {certificate_arn} still pending: {e}", ca_arn=ca_arn
                ) from e
            raise wrap_aws_error(
                _as_client_error(last, "GetCertificate"), operation="get_certificate", ca_arn=ca_arn
            ) from e
        response = self._call(
            "get_certificate", CertificateAuthorityArn=ca_arn, CertificateArn=certificate_arn
        )
        certs = _pem_certificates(str(response.get("Certificate", "")))
        if len(certs) != 1:
            raise BackendError("backend.bad_response", f"GetCertificate returned {len(certs)} certificates")
        return certs[0]

    # -- PAI on Private CA ------------------------------------------------------------------------
    def root_certificate(self, paa_arn: str) -> bytes:
        """The PAA (root CA) certificate, DER."""
        response = self._call("get_certificate_authority_certificate", CertificateAuthorityArn=paa_arn)
        certs = _pem_certificates(str(response.get("Certificate", "")))
        if len(certs) != 1:
            raise BackendError("backend.ca_not_paa", f"{paa_arn} has no certificate", ca_arn=paa_arn)
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


def _pem(der: bytes) -> bytes:
    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)


def _as_client_error(response: Mapping[str, object], operation: str) -> Exception:
    from botocore.exceptions import ClientError

    error: Exception = ClientError(dict(response), operation)
    return error


def issue_dac_on_pca(
    pca: PrivateCa,
    csr: bytes,
    *,
    ca_arn: str,
    pid: int,
    validity: str = "issuer",
    common_name: str | None = "Matter DAC",
    now: datetime,
    token: str | None = None,
) -> PcaDac:
    """Intake, profile, issue on Private CA, wait, validate: one DAC (the CLI path)."""
    device = load_device_csr(csr)
    chain = pca.ca_chain(ca_arn)
    profile = DacProfile.for_issuer(
        chain.pai, pid=pid, validity=dac_validity(validity, start=now, pai=chain.pai), common_name=common_name
    )
    profile.check_issuer(chain.pai)
    request = build_dac_request(
        ca_arn=ca_arn,
        device=device,
        profile=profile,
        token=token or idempotency_token("dac-cli", ca_arn, format_hex16(pid), device.sha256),
    )
    cert_arn = pca.issue(request)
    der = pca.fetch(ca_arn, cert_arn)
    serial = check_issued_dac(der, device=device, profile=profile, chain=chain, at=now)
    return PcaDac(der, serial, cert_arn, ca_arn, device.sha256)
