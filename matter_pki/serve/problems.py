"""RFC 9457 problem details carrying matter-pki's stable error codes, and the HTTP status of each code.

A problem is ``application/problem+json``::

    {"type": "urn:matter-pki:code:csr.key_curve", "title": "CSR refused", "status": 422,
     "detail": "CSR key is on secp384r1, must be P-256 (secp256r1)", "code": "csr.key_curve",
     "instance": "urn:uuid:...", "request_id": "..."}

``code`` is the same code the CLI prints (``error[csr.key_curve]``) and writes into ``.err`` files.
"""

from __future__ import annotations

from typing import Any, TypedDict

PROBLEM_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:matter-pki:code:"

# Codes the service itself adds (the rest come from the CA: csr.*, issue.*, profile.*, ...).
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
    # Station management and start-up (CLI only; listed here so every serve.* code has one entry).
    "serve.station_exists": (409, "Station name taken"),
    "serve.station_already_revoked": (409, "Station already revoked"),
    "serve.ca_missing": (503, "Service CA missing"),
}

# Exact codes first, then the first matching prefix.
_EXACT: dict[str, tuple[int, str]] = {
    "csr.too_large": (413, "CSR too large"),
    "issue.csr_already_issued": (409, "Device key already certified"),
    "issue.csr_revoked": (409, "Device key revoked"),
    "issue.key_reused": (409, "Device key already certified"),
    "issue.key_revoked": (409, "Device key revoked"),
    "issue.validation_failed": (500, "Issued DAC failed validation"),
    "issue.worker_died": (503, "Signing unavailable"),
    "issue.batch_order": (500, "Internal error"),
    "config.unknown_ca": (404, "Unknown CA"),
    "ledger.serial_unknown": (404, "Unknown certificate"),
    "storage.busy": (503, "Service busy"),
}
_PREFIX: tuple[tuple[str, int, str], ...] = (
    ("csr.", 422, "CSR refused"),
    ("profile.", 422, "Issuance refused"),
    ("issue.", 422, "Issuance refused"),
    ("cert.", 422, "Certificate refused"),
    ("input.", 400, "Invalid request"),
    ("key.", 503, "Signing key unavailable"),
    ("storage.", 503, "Storage unavailable"),
    ("audit.", 503, "Audit log unavailable"),
    ("config.", 503, "CA not configured for this request"),
)


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
    """(HTTP status, title) for an error code; unknown codes are 500."""
    if code in SERVICE_CODES:
        return SERVICE_CODES[code]
    if code in _EXACT:
        return _EXACT[code]
    for prefix, status, title in _PREFIX:
        if code.startswith(prefix):
            return status, title
    return 500, "Internal error"


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
