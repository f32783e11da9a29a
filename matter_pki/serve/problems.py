"""RFC 9457 problem details carrying matter-pki's stable error codes, and the HTTP status of each code.

A problem is ``application/problem+json``::

    {"type": "urn:matter-pki:code:csr.key_curve", "title": "CSR refused", "status": 422,
     "detail": "CSR key is on secp384r1, must be P-256 (secp256r1)", "code": "csr.key_curve",
     "instance": "urn:uuid:...", "request_id": "..."}

``code`` is the same code the CLI prints (``error[csr.key_curve]``) and writes into ``.err`` files.
"""

from __future__ import annotations

from typing import Any, TypedDict

from matter_pki.errorcodes import ExitClass, registry

PROBLEM_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:matter-pki:code:"

# What a code means is decided once, in the error-code registry (``error_codes.csv``): its exit class.
# A code's HTTP status follows from it, with finer statuses only where HTTP has them (below):
# refused -> 422, usage -> 400, retry -> 503 (with Retry-After), internal -> 500. Codes of the service's own
# resources (keys, storage, the audit log, the ledger, the home's configuration) are 503 whatever their class: for an
# operator at the CLI they are "fix it", for a station they are "retry when the operator has".
STATUS_BY_EXIT_CLASS: dict[ExitClass, tuple[int, str]] = {
    ExitClass.REFUSED: (422, "Request refused"),
    ExitClass.USAGE: (400, "Invalid request"),
    ExitClass.RETRY: (503, "Service busy"),
    ExitClass.INTERRUPTED: (503, "Service interrupted"),
    ExitClass.INTERNAL: (500, "Internal error"),
}
#: Statuses that tell a station to send the same request again later (the "retry" exit class).
RETRY_STATUSES = frozenset({408, 429, 503})
SERVER_SIDE: tuple[tuple[str, str], ...] = (
    ("key.", "Signing key unavailable"),
    ("storage.", "Storage unavailable"),
    ("audit.", "Audit log unavailable"),
    ("ledger.", "Ledger unavailable"),
    ("config.", "CA not configured for this request"),
)
_TITLES: tuple[tuple[str, str], ...] = (
    ("csr.", "CSR refused"),
    ("profile.", "Issuance refused"),
    ("issue.", "Issuance refused"),
    ("cert.", "Certificate refused"),
)

# Codes the service itself answers with (their exit class is in the registry too).
SERVICE_CODES: dict[str, tuple[int, str]] = {
    "serve.station_unknown": (403, "Station not registered"),
    "serve.station_revoked": (403, "Station revoked"),
    "serve.pai_not_allowed": (403, "PAI not allowed for this station"),
    "serve.pid_not_allowed": (403, "PID not allowed for this station"),
    "serve.quota_exceeded": (429, "Daily quota exhausted"),
    "serve.busy": (503, "Service busy"),
    "serve.shutting_down": (503, "Service shutting down"),
    "serve.timeout": (408, "Request not received in time"),
    "serve.body_too_large": (413, "Request body too large"),
    "serve.media_type": (415, "Unsupported media type"),
    "serve.not_acceptable": (406, "Not acceptable"),
    "serve.not_found": (404, "Not found"),
    "serve.method": (405, "Method not allowed"),
    "serve.batch_invalid": (400, "Batch request invalid"),
    "serve.internal": (500, "Internal error"),
}

# CA codes with a finer status than their exit class gives.
_EXACT: dict[str, tuple[int, str]] = {
    "csr.too_large": (413, "CSR too large"),
    "issue.key_reused": (409, "Device key already certified"),
    "issue.key_revoked": (409, "Device key revoked"),
    # The PAI cannot issue anymore: final for the station (sending again does not help), the operator's to fix.
    "issue.ca_revoked": (409, "Issuing CA revoked"),
    "issue.ca_expired": (409, "Issuing CA expired"),
    # The release check refused a DAC the CA signed: final for this CSR (a refusal), but the CA's fault.
    "issue.validation_failed": (500, "Issued DAC failed validation"),
    "issue.worker_died": (503, "Signing unavailable"),
    "config.unknown_ca": (404, "Unknown CA"),
    "ledger.serial_unknown": (404, "Unknown certificate"),
    "storage.busy": (503, "Service busy"),
}


class Problem(TypedDict, total=False):
    """The JSON body of a problem response."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str
    request_id: str


def status_of(code: str) -> tuple[int, str]:
    """(HTTP status, title) for an error code: its own entry, the service's resources, else its exit class."""
    if code in SERVICE_CODES:
        return SERVICE_CODES[code]
    if code in _EXACT:
        return _EXACT[code]
    for prefix, title in SERVER_SIDE:
        if code.startswith(prefix):
            return 503, title
    known = registry().get(code)
    if known is None:
        return 500, "Internal error"
    status, title = STATUS_BY_EXIT_CLASS[known.exit]
    if known.exit is ExitClass.REFUSED:
        title = next((t for prefix, t in _TITLES if code.startswith(prefix)), title)
    return status, title


def problem(code: str, detail: str, *, request_id: str | None = None, **extra: Any) -> Problem:
    """The problem body for one coded error (``extra`` members such as ``retry_after`` are added)."""
    status, title = status_of(code)
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": " ".join(detail.split()),
        "code": code,
    }
    if request_id:
        body["instance"] = f"urn:uuid:{request_id}"
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    return body  # type: ignore[return-value]
