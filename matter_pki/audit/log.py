"""The local audit log: one JSON object per line, each carrying the SHA-256 of the previous line."""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
LOG_NAME = "audit.log"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One parsed record."""

    seq: int
    time: str
    event: str
    operator: str
    prev: str
    fields: dict[str, Any]
    line: bytes


def _operator() -> str:
    try:
        return os.environ.get("MATTER_PKI_OPERATOR") or getpass.getuser()
    except Exception:
        return f"uid:{os.getuid()}"


class AuditLog:
    """Append-only log at ``<home>/audit/audit.log``; appends are serialised with a file lock."""

    def __init__(self, home: Path | str) -> None:
        self.dir = Path(home) / "audit"
        self.path = self.dir / LOG_NAME

    def record(self, event: str, *, operator: str | None = None, now: datetime | None = None, **fields: Any) -> AuditRecord:
        """Append one record; fields must be JSON-serialisable and never hold key material."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            seq, prev = self._tail(fd)
            body = {
                "seq": seq,
                "time": moment.isoformat().replace("+00:00", "Z"),
                "event": event,
                "operator": operator or _operator(),
                "prev": prev,
                **{k: v for k, v in fields.items() if v is not None},
            }
            line = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return AuditRecord(seq, body["time"], event, body["operator"], prev, fields, line)

    @staticmethod
    def _tail(fd: int) -> tuple[int, str]:
        size = os.lseek(fd, 0, os.SEEK_END)
        if size == 0:
            return 0, GENESIS
        chunk = min(size, 65536)
        os.lseek(fd, size - chunk, os.SEEK_SET)
        data = os.read(fd, chunk)
        last = data.rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
        seq = int(json.loads(last)["seq"]) + 1
        return seq, hashlib.sha256(last).hexdigest()

    def records(self) -> list[AuditRecord]:
        """Every record in order (no verification; see ``matter-pki audit verify``)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_bytes().splitlines(keepends=True):
            body = json.loads(line)
            fields = {k: v for k, v in body.items() if k not in ("seq", "time", "event", "operator", "prev")}
            out.append(AuditRecord(body["seq"], body["time"], body["event"], body["operator"], body["prev"], fields, line))
        return out
