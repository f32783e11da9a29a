"""The CSR inbox key layout shared by the S3 bucket and the local inbox folder.

``<CA id>/<PID>/<name>.csr`` → ``<CA id>/<PID>/<name>.pem`` (the DAC) or ``<name>.err`` (JSON:
code, message, request id). The CA id is a PAI ARN in the cloud and a PAI id locally. Names are
checked so that no key can climb out of its folder or collide with a result file. ``CsrKey`` is the
only place the ``.csr``/``.pem``/``.err`` names are made (cloud, local inbox and ``dac issue``).

The Lambda also keeps one claim per (PAI, PID, device key) under ``claims/`` (``claim_key``): the
durable record that makes issuance exactly-once (``matter_pki.pipeline.claims``). Its keys end in
``.json``, so the bucket's ``.csr`` notification never fires for them, and ``parse_csr_key``
refuses them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, TypedDict

from matter_pki.errors import InputError, MatterPkiError

MAX_KEY_LENGTH = 1024
CSR_SUFFIX, PEM_SUFFIX, ERR_SUFFIX = ".csr", ".pem", ".err"
CLAIMS_PREFIX = "claims/"
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PID_RE = re.compile(r"[0-9A-Fa-f]{4}")
_ARN_RE = re.compile(r"arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[0-9a-f-]{36}")
_LOCAL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\\]")


class ErrRecord(TypedDict, total=False):
    """Content of a ``<name>.err`` file."""

    code: str
    message: str
    request_id: str
    csr_key: str
    csr_sha256: str
    time: str
    #: A release-gate refusal: the serial of the certificate signed and withheld (never released).
    certificate_serial: str


@dataclass(frozen=True, slots=True)
class CsrKey:
    """A validated inbox key: CA id (PAI ARN or local id), PID and the CSR's base name."""

    ca: str
    pid: int
    name: str
    prefix: str

    @classmethod
    def named(cls, name: str, *, ca: str = "", pid: int = 0) -> CsrKey:
        """A key without a folder (``dac issue`` writes ``<name>.pem`` into its output folder)."""
        return cls(ca=ca, pid=pid, name=name, prefix="")

    @classmethod
    def unchecked(cls, key: str) -> CsrKey:
        """Split any ``.../<name>.csr`` key without checking it (to answer a refused key next to itself)."""
        folder, _, filename = key.rpartition("/")
        name = filename[: -len(CSR_SUFFIX)] if filename.endswith(CSR_SUFFIX) else filename
        return cls(ca="", pid=0, name=name, prefix=f"{folder}/" if folder else "")

    @property
    def csr(self) -> str:
        """The CSR key."""
        return f"{self.prefix}{self.name}{CSR_SUFFIX}"

    @property
    def pem(self) -> str:
        """Where the DAC goes."""
        return f"{self.prefix}{self.name}{PEM_SUFFIX}"

    @property
    def err(self) -> str:
        """Where a refusal goes."""
        return f"{self.prefix}{self.name}{ERR_SUFFIX}"

    @property
    def answers(self) -> tuple[str, str]:
        """``(pem, err)``: a CSR is answered when either exists."""
        return self.pem, self.err


def parse_csr_key(key: str, *, cloud: bool) -> CsrKey:
    """Check ``<CA>/<PID>/<name>.csr``; the CA part is a Private CA ARN (``cloud``) or a local PAI id.

    The ARN contains ``/`` itself (``certificate-authority/<uuid>``), so cloud keys have four
    segments. Raises InputError (``key.*``) for anything else, including ``..``, empty or hidden
    segments, non-hex PIDs and over-long keys.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InputError("key.length", f"object key must be 1..{MAX_KEY_LENGTH} characters")
    if _CONTROL_RE.search(key):
        raise InputError("key.characters", "object key contains control characters or backslashes")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InputError("key.segment", f"object key {key!r} has an empty, '.' or '..' segment")
    expected = 4 if cloud else 3
    if len(parts) != expected:
        shape = "<PAI ARN>/<PID>/<name>.csr" if cloud else "<PAI id>/<PID>/<name>.csr"
        raise InputError("key.shape", f"object key {key!r} must be {shape}")
    ca = "/".join(parts[: expected - 2])
    if cloud and not _ARN_RE.fullmatch(ca):
        raise InputError("key.ca", f"{ca!r} is not a Private CA certificate-authority ARN")
    if not cloud and not _LOCAL_ID_RE.fullmatch(ca):
        raise InputError("key.ca", f"{ca!r} is not a PAI id")
    pid_text, filename = parts[-2], parts[-1]
    if not _PID_RE.fullmatch(pid_text):
        raise InputError("key.pid", f"PID segment {pid_text!r} must be 4 hex digits")
    if not filename.endswith(CSR_SUFFIX):
        raise InputError("key.suffix", f"{filename!r} is not a .csr file")
    name = filename[: -len(CSR_SUFFIX)]
    if not _NAME_RE.fullmatch(name):
        raise InputError("key.name", f"CSR name {name!r} must be 1-128 of [A-Za-z0-9._-], starting alphanumeric")
    return CsrKey(ca=ca, pid=int(pid_text, 16), name=name, prefix="/".join(parts[:-1]) + "/")


def is_answer(key: str) -> bool:
    """True for a ``.pem`` or ``.err`` name (a result, not a CSR)."""
    return key.endswith((PEM_SUFFIX, ERR_SUFFIX))


def claim_key(ca: str, pid: int, key_id: str) -> str:
    """The claim of one (PAI, PID, device key): ``claims/<PAI ARN>/<PID>/<key id>.json`` (``csr.key_id_of_point``)."""
    if len(key_id) != 64 or any(c not in "0123456789abcdef" for c in key_id):
        raise InputError("key.claim", "a claim is named by the device key id (lower-case hex SHA-256 of its point)")
    return f"{CLAIMS_PREFIX}{ca}/{pid:04X}/{key_id}.json"


def key_binding_key(key_id: str) -> str:
    """Where a device key's first (PAI, PID) is recorded: ``claims/keys/<key id>.json`` (no PAI ARN starts with ``keys``)."""
    if len(key_id) != 64 or any(c not in "0123456789abcdef" for c in key_id):
        raise InputError("key.claim", "a claim is named by the device key id (lower-case hex SHA-256 of its point)")
    return f"{CLAIMS_PREFIX}keys/{key_id}.json"


def err_record(error: MatterPkiError, *, csr_key: str, request_id: str, time: str, csr_sha256: str | None = None) -> ErrRecord:
    """The ``.err`` content for a refused CSR."""
    record: ErrRecord = {
        "code": error.code,
        "message": error.message,
        "request_id": request_id,
        "csr_key": csr_key,
        "time": time,
    }
    if csr_sha256:
        record["csr_sha256"] = csr_sha256
    return record


def dumps_err(record: ErrRecord | dict[str, Any]) -> bytes:
    """Serialised ``.err`` bytes (stable key order, trailing newline)."""
    return (json.dumps(record, sort_keys=True) + "\n").encode()
