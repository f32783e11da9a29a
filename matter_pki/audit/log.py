"""The local audit log: one JSON object per line, each carrying the SHA-256 of the previous line.

Files in ``<home>/audit/``:

- ``audit.log``: the records. ``prev`` is the SHA-256 (hex) of the previous line including its
  newline (``"0" * 64`` for seq 0); ``seq`` counts from 0 with no gaps.
- ``audit-key.pem`` / ``audit-key.pub.pem``: the audit key (see ``matter_pki.audit.seal``).
- ``head``: the last record's seq and hash and the seq of the last seal, signed by the audit key
  after every append. It is what makes a truncated tail detectable: a log that ends before the
  signed head was cut.

Every ``seal_every`` records (100 by default, ``$MATTER_PKI_AUDIT_SEAL_EVERY``, 0 = only on
``matter-pki audit seal``) an ``audit.sealed`` record signs the range since the previous seal.

When the audit key is encrypted and no passphrase is available, records are still appended (an
operation is never left unrecorded) but the head is not re-signed: ``audit verify`` then reports an
unsigned tail until ``matter-pki audit seal`` runs with the passphrase. Appending refuses (``audit.*``)
when the log no longer matches its signed head, so new records never bury evidence of tampering.

Limits: whoever holds the audit private key (and passphrase) can rewrite everything; rolling the
whole ``audit/`` folder back to an earlier consistent copy is not detectable locally. Keep a copy
of ``audit-key.pub.pem`` (``audit verify --public-key``/``--expect-key``) and export heads or seals
to write-once storage when that matters.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matter_pki.audit.seal import (
    HEAD_NAME,
    PASSPHRASE_ENV,
    SEAL_EVENT,
    AuditKey,
    Head,
    fingerprint,
    head_message,
    seal_message,
    sign,
    verify_signature,
)
from matter_pki.errors import AuditError, KeyStoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

GENESIS = "0" * 64
LOG_NAME = "audit.log"
SEAL_EVERY_ENV = "MATTER_PKI_AUDIT_SEAL_EVERY"
DEFAULT_SEAL_EVERY = 100
RESERVED = frozenset({"seq", "time", "event", "operator", "prev"})
_TAIL_CHUNK = 65536


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

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the record's line, i.e. the next record's ``prev``."""
        return line_hash(self.line)

    @classmethod
    def from_line(cls, line: bytes) -> AuditRecord:
        """Parse one line (raises ValueError/KeyError/TypeError when malformed)."""
        body = json.loads(line)
        if not isinstance(body, dict):
            raise TypeError("a record is a JSON object")
        fields = {k: v for k, v in body.items() if k not in RESERVED}
        return cls(body["seq"], body["time"], body["event"], body["operator"], body["prev"], fields, line)

    def to_dict(self) -> dict[str, Any]:
        """The record's fields without the chain hash (JSON-ready)."""
        return {"seq": self.seq, "time": self.time, "event": self.event, "operator": self.operator, **self.fields}


def line_hash(line: bytes) -> str:
    """SHA-256 (hex) of one log line including its newline."""
    return hashlib.sha256(line).hexdigest()


def _operator() -> str:
    try:
        return os.environ.get("MATTER_PKI_OPERATOR") or getpass.getuser()
    except Exception:
        return f"uid:{os.getuid()}"


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _timestamp(now: datetime | None) -> str:
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise AuditError("audit.naive_time", "audit record time must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _seal_every_from_env() -> int:
    value = os.environ.get(SEAL_EVERY_ENV)
    if not value:
        return DEFAULT_SEAL_EVERY
    try:
        every = int(value)
    except ValueError as e:
        raise AuditError("audit.config", f"{SEAL_EVERY_ENV}={value!r} is not a whole number") from e
    if every < 0:
        raise AuditError("audit.config", f"{SEAL_EVERY_ENV} must be 0 (no automatic seals) or more")
    return every


@dataclass(frozen=True, slots=True)
class SealResult:
    """A seal just written."""

    record: AuditRecord
    first: int
    last: int


class AuditLog:
    """Append-only log at ``<home>/audit/audit.log``; appends are serialised with a file lock."""

    def __init__(
        self, home: Path | str, *, seal_every: int | None = None, passphrase: bytes | None = None
    ) -> None:
        self.dir = Path(home) / "audit"
        self.path = self.dir / LOG_NAME
        self.head_path = self.dir / HEAD_NAME
        self.seal_every = _seal_every_from_env() if seal_every is None else seal_every
        if passphrase is None and os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode()
        self.key = AuditKey(self.dir, passphrase)
        self._signing_key: ec.EllipticCurvePrivateKey | None = None
        # (head file bytes, tail seq, tail hash) after this instance's last append: lets the next
        # append skip re-reading the log when nothing else touched it (e.g. a long unsigned tail).
        self._checked: tuple[bytes, int, str] | None = None

    # -- writing -----------------------------------------------------------------------------
    def record(
        self, event: str, *, operator: str | None = None, now: datetime | None = None, **fields: Any
    ) -> AuditRecord:
        """Append one record; fields must be JSON-serialisable and never hold key material."""
        return self.record_many([(event, fields)], operator=operator, now=now)[0]

    def record_many(
        self, records: list[tuple[str, dict[str, Any]]], *, operator: str | None = None, now: datetime | None = None
    ) -> list[AuditRecord]:
        """Append several records at once: one lock, one write + fsync, one head signature.

        The log is exactly what consecutive ``record`` calls would write (same seqs, chain and
        automatic seals, a seal following the record that reaches the cadence); returns the
        records in order, without the seals. ``None`` field values are left out, as in ``record``.
        """
        for event, fields in records:
            if event == SEAL_EVENT:
                raise AuditError("audit.reserved_event", f"{SEAL_EVENT!r} records are written only by seal()")
            clash = RESERVED & fields.keys()
            if clash:
                raise AuditError("audit.reserved_field", f"audit field names {sorted(clash)} are reserved")
        if not records:
            return []
        who = operator or _operator()
        with self._locked() as fd:
            seq, prev, sealed = self._check_tail(fd)
            signer_error: AuditError | None = None
            try:
                signer = self._signer()
            except AuditError as e:
                # As in a lone append: the records are still written (unsealed), then the error is raised.
                signer, signer_error = None, e
            lines: list[bytes] = []
            written: list[AuditRecord] = []
            for event, fields in records:
                body = {
                    "seq": seq,
                    "time": _timestamp(now),
                    "event": event,
                    "operator": who,
                    "prev": prev,
                    **{k: v for k, v in fields.items() if v is not None},
                }
                line = _encode(body)
                lines.append(line)
                written.append(AuditRecord.from_line(line))
                last_seq, prev = seq, line_hash(line)
                if signer is not None and self.seal_every and last_seq - sealed >= self.seal_every:
                    seal_line = self._seal_line(signer, first=sealed + 1, last=last_seq, head=prev, now=now)
                    lines.append(seal_line)
                    sealed = last_seq = last_seq + 1
                    prev = line_hash(seal_line)
                seq = last_seq + 1
            _append(fd, b"".join(lines))
            if signer is not None:
                self._write_head(signer, seq - 1, prev, sealed)
            self._remember(seq - 1, prev)
        if signer_error is not None:
            raise signer_error
        return written

    def _remember(self, tail_seq: int, tail_hash: str) -> None:
        try:
            self._checked = (self.head_path.read_bytes(), tail_seq, tail_hash)
        except FileNotFoundError:
            self._checked = None

    def seal(self, *, now: datetime | None = None) -> SealResult | None:
        """Seal every record since the last seal now; None when there is nothing new to seal."""
        with self._locked() as fd:
            seq, prev, sealed = self._check_tail(fd)
            if seq == 0:
                return None
            signer = self._signer(required=True)
            assert signer is not None
            last = seq - 1
            if last == sealed:
                self._write_head(signer, last, prev, sealed)
                return None
            record = self._write_seal(fd, signer, first=sealed + 1, last=last, head=prev, now=now)
            self._write_head(signer, record.seq, record.hash, record.seq)
            self._remember(record.seq, record.hash)
            return SealResult(record, sealed + 1, last)

    def _write_seal(
        self, fd: int, signer: ec.EllipticCurvePrivateKey, *, first: int, last: int, head: str, now: datetime | None
    ) -> AuditRecord:
        line = self._seal_line(signer, first=first, last=last, head=head, now=now)
        _append(fd, line)
        return AuditRecord.from_line(line)

    def _seal_line(
        self, signer: ec.EllipticCurvePrivateKey, *, first: int, last: int, head: str, now: datetime | None
    ) -> bytes:
        count = last - first + 1
        body = {
            "seq": last + 1,
            "time": _timestamp(now),
            "event": SEAL_EVENT,
            "operator": _operator(),
            "prev": head,
            "first": first,
            "last": last,
            "count": count,
            "head": head,
            "key": fingerprint(signer.public_key()),
            "sig": sign(signer, seal_message(first, last, count, head)),
        }
        return _encode(body)

    def _write_head(self, signer: ec.EllipticCurvePrivateKey, seq: int, hash_hex: str, sealed: int) -> None:
        head = Head(seq, hash_hex, sealed, fingerprint(signer.public_key()), sign(signer, head_message(seq, hash_hex, sealed)))
        tmp = self.head_path.with_name(HEAD_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, head.to_json())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(self.head_path)

    def _signer(self, *, required: bool = False) -> ec.EllipticCurvePrivateKey | None:
        if self._signing_key is not None and self.key.key_path.exists():
            return self._signing_key
        if not self.key.key_path.exists():
            if self.key.pub_path.exists():
                raise AuditError("audit.key_missing", f"audit key {str(self.key.key_path)!r} is missing; cannot sign")
            try:
                self._signing_key = self.key.create()
            except KeyStoreError:
                if required:
                    raise
                # Records are still written (hash-chained); `audit verify` reports the unsigned tail
                # until `audit seal` runs with the passphrase.
                return None
        else:
            self._signing_key = self.key.private_key() if required else self.key.signer()
        return self._signing_key

    class _Lock:
        def __init__(self, path: Path) -> None:
            self.path = path
            self.fd = -1

        def __enter__(self) -> int:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
            return self.fd

        def __exit__(self, *exc: object) -> None:
            os.close(self.fd)

    def _locked(self) -> AuditLog._Lock:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return AuditLog._Lock(self.path)

    # -- consistency before appending --------------------------------------------------------
    def read_head(self) -> Head | None:
        """The head file, parsed but not verified; None when absent."""
        try:
            return Head.parse(self.head_path.read_bytes())
        except FileNotFoundError:
            return None

    def _check_tail(self, fd: int) -> tuple[int, str, int]:
        """Next seq, its prev and the last seal's seq; refuses a log that no longer matches its signed head."""
        last = _last_line(fd)
        tail_seq, tail_hash = -1, GENESIS
        if last is not None:
            try:
                tail_seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError) as e:
                raise AuditError(
                    "audit.malformed", "the last audit record is unreadable; run `matter-pki audit verify`"
                ) from e
            tail_hash = line_hash(last)
        try:
            head_bytes: bytes | None = self.head_path.read_bytes()
        except FileNotFoundError:
            head_bytes = None
        if head_bytes is not None and self._checked == (head_bytes, tail_seq, tail_hash):
            return tail_seq + 1, tail_hash, Head.parse(head_bytes).sealed
        head = Head.parse(head_bytes) if head_bytes is not None else None
        if head is None:
            if self.key.exists():
                raise AuditError(
                    "audit.head_missing", "audit/head is missing although the log is signed; run `matter-pki audit verify`"
                )
            # A log written before heads existed (or a new log): adopt it, find its last seal.
            return tail_seq + 1, tail_hash, self._last_seal_seq()
        if not verify_signature(self.key.public_key(), head.message(), head.sig):
            raise AuditError("audit.head_invalid", "audit/head signature is invalid; run `matter-pki audit verify`")
        if head.seq > tail_seq:
            raise AuditError(
                "audit.truncated",
                f"the audit log ends at seq {tail_seq} but its signed head is seq {head.seq}; "
                "run `matter-pki audit verify`",
            )
        at_head = last if head.seq == tail_seq else self._line_at(head.seq)
        if at_head is None or line_hash(at_head) != head.hash:
            raise AuditError(
                "audit.modified",
                f"audit record seq {head.seq} does not match the signed head; run `matter-pki audit verify`",
            )
        return tail_seq + 1, tail_hash, head.sealed

    def _last_seal_seq(self) -> int:
        sealed = -1
        for record in self.records():
            if record.event == SEAL_EVENT:
                sealed = record.seq
        return sealed

    def _line_at(self, seq: int) -> bytes | None:
        lines = split_lines(self.path.read_bytes())
        return lines[seq] if seq < len(lines) else None

    # -- reading -----------------------------------------------------------------------------
    def records(self) -> list[AuditRecord]:
        """Every record in order (no verification; see ``matter_pki.audit.verify``)."""
        if not self.path.exists():
            return []
        return [AuditRecord.from_line(line) for line in split_lines(self.path.read_bytes())]


def split_lines(data: bytes) -> list[bytes]:
    """Lines split on ``\\n`` only, each keeping its newline; a final unterminated piece is kept as is."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _append(fd: int, line: bytes) -> None:
    os.write(fd, line)
    os.fsync(fd)


def _last_line(fd: int) -> bytes | None:
    """The last complete line of the file (with its newline), read backwards in chunks."""
    size = os.lseek(fd, 0, os.SEEK_END)
    if size == 0:
        return None
    os.lseek(fd, size - 1, os.SEEK_SET)
    if os.read(fd, 1) != b"\n":
        raise AuditError("audit.malformed", "the audit log ends with an incomplete record; run `matter-pki audit verify`")
    data = b""
    pos = size
    while pos > 0:
        step = min(pos, _TAIL_CHUNK)
        pos -= step
        os.lseek(fd, pos, os.SEEK_SET)
        data = os.read(fd, step) + data
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0:
            return data[cut + 1 :]
    return data
