"""Which AWS errors are retryable, which need an operator, which answer a request: one table for every AWS caller.

Used by ``storage.s3``, ``backends.aws_pca`` and the audit readers (``audit.insights``, ``audit.trail``,
``audit.pca_report``). Four kinds:

* ``transient``: throttling, 5xx, timeouts, a request still in progress. Retrying later may succeed.
  botocore's retry mode (``adaptive`` in the Lambda) retries these inside one call; past that the
  caller fails the unit of work so that it comes back (an SQS redelivery), never answers it.
* ``quota``: a quota that time does not refill (Private CA ``LimitExceededException``: certificates
  per CA, CAs per account). An operator must raise it; retrying only burns calls.
* ``config``: credentials, permissions, a missing bucket or CA, a CA that is not ACTIVE, a request the
  service refuses although it passed our checks (``InvalidArgsException``): an operator must act.
* ``permanent``: the request itself is at fault (``MalformedCSRException``), or an error we do not
  know (treated as ``config`` by callers that answer requests, so nothing is wrongly refused).

Service-specific meanings override the defaults (CloudWatch Logs reports too many concurrent
queries as ``LimitExceededException``, which is transient there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from matter_pki.errors import (
    BackendError,
    ConfigError,
    MatterPkiError,
    OperatorError,
    StorageError,
    TransientError,
)

if TYPE_CHECKING:
    from botocore.client import BaseClient

ErrorKind = Literal["transient", "quota", "config", "permanent"]

#: The single list of retryable error codes (throttling, server-side and in-progress conditions).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
        "RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown",
        "RequestInProgressException", "ServiceUnavailable", "ServiceUnavailableException",
        "InternalFailure", "InternalError", "InternalServerError", "InternalServerException",
        "RequestTimeout", "RequestTimeoutException", "ConcurrentModificationException",
        "ConditionalRequestConflict", "OperationAborted", "PriorRequestNotComplete",
    }
)  # fmt: skip
#: Quotas that do not refill with time (Private CA API reference, LimitExceededException).
QUOTA_CODES = frozenset({"LimitExceededException"})
#: Credentials and permissions: an operator must act (``ConfigError``).
ACCESS_CODES = frozenset(
    {
        "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
        "ExpiredToken", "ExpiredTokenException", "SignatureDoesNotMatch", "InvalidAccessKeyId",
        "AllAccessDisabled", "AccountProblem", "NoSuchBucket", "KMS.AccessDeniedException",
    }
)  # fmt: skip
#: A missing or unusable resource, or a request refused although it passed our checks: an operator must act.
SETUP_CODES = frozenset(
    {
        "ResourceNotFoundException", "InvalidStateException", "InvalidArnException", "InvalidArgsException",
        "InvalidRequestException", "ValidationException", "RequestFailedException", "InvalidPolicyException",
        "LockoutPreventedException",
    }
)  # fmt: skip
#: Per-service meanings that differ from the tables above.
SERVICE_OVERRIDES: dict[str, dict[str, ErrorKind]] = {
    # CloudWatch Logs: LimitExceededException = too many concurrent Logs Insights queries.
    "logs": {"LimitExceededException": "transient"},
}
#: Private CA error code → stable matter-pki code (the class comes from the kind).
PCA_CODES = {
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
    "LimitExceededException": "backend.quota_exceeded",
}
#: Error codes that blame the request (a ``.err`` answer), not the set-up.
REQUEST_CODES = frozenset({"MalformedCSRException", "MalformedCertificateException", "CertificateMismatchException"})


@dataclass(frozen=True, slots=True)
class AwsErrorFields:
    """What a botocore exception says: error code, message, HTTP status and request id."""

    code: str
    message: str
    status: int
    request_id: str


def error_fields(error: BaseException) -> AwsErrorFields:
    """The fields of a botocore ``ClientError`` (empty ones for any other exception)."""
    response: Any = getattr(error, "response", None) or {}
    err = response.get("Error", {}) if isinstance(response, dict) else {}
    meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
    return AwsErrorFields(
        code=str(err.get("Code", "") or ""),
        message=str(err.get("Message", "") or str(error)),
        status=int(meta.get("HTTPStatusCode", 0) or 0),
        request_id=str(meta.get("RequestId", "") or ""),
    )


def classify_aws_error(error: BaseException, *, service: str | None = None) -> tuple[ErrorKind, str]:
    """``(kind, aws_code)`` for a botocore exception."""
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
    if not isinstance(error, bce.ClientError):
        return "permanent", type(error).__name__
    fields = error_fields(error)
    code = fields.code
    override = SERVICE_OVERRIDES.get(service or "", {}).get(code)
    if override is not None:
        return override, code
    if code in RETRYABLE_CODES or fields.status >= 500 or fields.status == 429:
        return "transient", code
    if code in QUOTA_CODES:
        return "quota", code
    if code in ACCESS_CODES or code in SETUP_CODES or fields.status == 403:
        return "config", code
    return "permanent", code


def is_retryable(error: BaseException, *, service: str | None = None) -> bool:
    """True when retrying the same call later may succeed."""
    return classify_aws_error(error, service=service)[0] == "transient"


def wrap_aws_error(
    error: BaseException, *, operation: str, prefix: str = "backend", service: str | None = None, **context: Any
) -> MatterPkiError:
    """The matter-pki error for a botocore exception (raise it ``from error``).

    transient → ``TransientError <prefix>.transient``; credentials/permissions → ``ConfigError``;
    storage → ``StorageError``; Private CA: quota and set-up errors → ``OperatorError`` (never a
    per-request answer), request errors (MalformedCSR) → ``BackendError``.
    """
    kind, aws_code = classify_aws_error(error, service=service)
    fields = error_fields(error)
    extra: dict[str, Any] = {"operation": operation, "aws_code": aws_code, **context}
    if fields.request_id:
        extra["aws_request_id"] = fields.request_id
    if fields.status:
        extra["http_status"] = fields.status
    text = f"{operation}: {aws_code}: {fields.message}" if aws_code else f"{operation}: {fields.message}"
    if kind == "transient":
        return TransientError(f"{prefix}.transient", text, **extra)
    if aws_code in ACCESS_CODES or aws_code.endswith("CredentialsError") or (kind == "config" and fields.status == 403):
        credentials = "Credential" in aws_code or "Token" in aws_code or "AccessKey" in aws_code
        return ConfigError("config.aws_credentials" if credentials else "config.aws_access_denied", text, **extra)
    if kind == "config" and aws_code == "NoRegionError":
        return ConfigError("config.aws_region", text, **extra)
    if prefix == "storage":
        if kind in ("config", "quota"):
            return ConfigError("config.aws_resource", text, **extra)
        return StorageError("storage.aws_error", text, **extra)
    if aws_code == "ParamValidationError":
        return OperatorError("backend.request_invalid", text, **extra)
    code = PCA_CODES.get(aws_code, "backend.aws_error")
    if aws_code in REQUEST_CODES:
        return BackendError(code, text, **extra)
    return OperatorError(code, text, **extra)


def reader_error(error: BaseException, *, service: str) -> MatterPkiError:
    """The error for a failed read-only call of the audit tools (raise it ``from error``).

    Credentials, permissions and missing resources → the ``ConfigError`` of ``wrap_aws_error`` (exit 2:
    fix the set-up); throttling, 5xx and connection errors → ``TransientError backend.<service>``
    (exit 3: retry later); anything else → ``BackendError backend.<service>`` (exit 1).
    """
    kind, aws_code = classify_aws_error(error, service=service)
    if kind == "config":
        return wrap_aws_error(error, operation=service, prefix="storage" if service == "s3" else "backend", service=service)
    fields = error_fields(error)
    text = f"{service} {aws_code}: {fields.message}" if aws_code else f"{service} call failed: {fields.message}"
    extra: dict[str, Any] = {"aws_code": aws_code}
    if fields.request_id:
        extra["aws_request_id"] = fields.request_id
    cls = TransientError if kind == "transient" else BackendError
    return cls(f"backend.{service}", text, **extra)


def stop_retrying_quota_errors(client: BaseClient) -> None:
    """botocore's standard and adaptive modes retry ``LimitExceededException`` as throttling; a quota is not.

    A ``needs-retry`` handler registered first that returns False ends the retry loop (botocore
    ``Endpoint._needs_retry``); any other answer is left to botocore's own retry handler.
    """
    service = client.meta.service_model.service_id.hyphenize()

    def veto(response: Any = None, **_: Any) -> bool | None:
        if response is None:
            return None
        parsed = response[1] if isinstance(response, tuple) and len(response) == 2 else {}
        code = parsed.get("Error", {}).get("Code", "") if isinstance(parsed, dict) else ""
        if code in QUOTA_CODES and code not in SERVICE_OVERRIDES.get(service, {}):
            return False
        return None

    client.meta.events.register_first(f"needs-retry.{service}", veto, unique_id=f"matter-pki-quota-{service}")
