"""The local audit log: one JSON object per line, each carrying the SHA-256 of the previous line.

Files in ``<home>/audit/``:

- ``audit.log``: the records. ``prev`` is the SHA-256 (hex) of the previous line including its
  newline (``"0" * 64`` for seq 0); ``seq`` counts from 0 with no gaps.
- ``audit-key.pem`` / ``audit-key.json``, ``audit-key.pub.pem``, ``binding.json``: the audit key,
  made once at ``init`` (see ``matter_pki.audit.seal``).
- ``head``: the last record's seq and hash, the seq of the last seal and the last ledger milestone,
  signed by the audit key at every append. A log that ends before the signed head was cut.
- ``lock``: serialises writers.

Every ``seal_every`` records (100 by default, ``$MATTER_PKI_AUDIT_SEAL_EVERY``, 0 = only on
``matter-pki audit seal``) an ``audit.sealed`` record signs the range since the previous seal.

Append protocol (one lock, two fsyncs, survives a kill or a full disk at any byte):

1. Check the log against the signed head: a tail the head does not cover (``audit.unsigned_tail``),
   a shorter log (``audit.truncated``) or a changed record (``audit.modified``) is refused, so new
   records never bury or bless evidence of tampering. Only ``seal(adopt_tail=...)`` /
   ``seal(discard_tail=...)``, an explicit operator action recorded in the log, deals with a tail.
2. Write the new head first (temp file, fsync, rename): it signs the new last record and carries
   the bytes about to be appended (the "pending" append).
3. Append those bytes to ``audit.log`` and fsync.

A kill or ``ENOSPC`` after step 2 leaves a log shorter than its head, whose missing bytes the head
holds: the next writer (any command, or ``audit seal``) finishes the append, because those bytes
hash-chain to the signed head. A failed step 3 is undone at once (the log is truncated back) and
reported as ``storage.disk_full``; nothing half-written is ever built upon.

Appends never go unsigned: without the audit key (no passphrase, no token PIN) a command refuses
before it changes anything. Limits: whoever holds the audit key can rewrite everything; a rollback
of the whole ``audit/`` folder is detected only with the ledger (``matter_pki.local.state``).
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _escape
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matter_pki.audit.seal import (
    HEAD_NAME,
    MAX_HEAD_BYTES,
    PASSPHRASE_ENV,
    SEAL_EVENT,
    AuditKey,
    Head,
    fingerprint,
    head_message,
    is_sha256_hex,
    read_audit_file,
    seal_message,
    sign,
    verify_signature,
)
from matter_pki.errors import AuditError
from matter_pki.storage.local import fsync_dir, storage_error, write_all

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cryptography.hazmat.primitives.asymmetric import ec

GENESIS = "0" * 64
LOG_NAME = "audit.log"
LOCK_NAME = "lock"
SEAL_EVERY_ENV = "MATTER_PKI_AUDIT_SEAL_EVERY"
DEFAULT_SEAL_EVERY = 100
RESERVED = frozenset({"seq", "time", "event", "operator", "prev"})
#: Records that name a ledger milestone (fields ``gen`` and ``chain``): the signed head names the last one.
LEDGER_EVENTS = frozenset({"ledger.committed", "ledger.recovered", "ledger.upgraded", "ledger.rebuilt"})
#: Longest record line accepted when reading.
MAX_LINE = 1024 * 1024
#: Most records in a single append; bigger groups are split (the head carries one append's bytes).
MAX_APPEND_RECORDS = 4096
_TAIL_CHUNK = 65536
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
#: Per set of keys (in insertion order): a getter of the values in sorted key order, and the line's format.
_FORMATS: dict[tuple[str, ...], tuple[Callable[[dict[str, Any]], tuple[Any, ...]], str]] = {}


def _encode(body: dict[str, Any]) -> bytes:
    """One record line: exactly ``_ENCODER.encode(body)`` and a newline.

    Records of one kind repeat the same keys, so their sorted order and the line's skeleton are
    computed once per key set; string values go through the JSON encoder's own escaping function
    and integers through ``int.__repr__``, as the encoder does. Anything else (a bool, a float, a
    nested value, a non-string key) takes the encoder itself.
    """
    keys = tuple(body)
    shape = _FORMATS.get(keys)
    if shape is None:
        if len(keys) < 2 or len(_FORMATS) > 256 or not all(type(k) is str for k in keys):
            return _ENCODER.encode(body).encode() + b"\n"
        order = sorted(keys)
        shape = _FORMATS[keys] = (itemgetter(*order), "{" + ",".join(_escape(k).replace("%", "%%") + ":%s" for k in order) + "}\n")
    get, skeleton = shape
    try:
        return (skeleton % tuple([_escape(v) if v.__class__ is str else _integer(v) for v in get(body)])).encode()
    except TypeError:
        return _ENCODER.encode(body).encode() + b"\n"


def _integer(value: object) -> str:
    if value.__class__ is int:
        return int.__repr__(value)
    raise TypeError("not a plain int or str")


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


def _check_records(records: list[tuple[str, dict[str, Any]]]) -> None:
    for event, fields in records:
        if event == SEAL_EVENT:
            raise AuditError("audit.reserved_event", f"{SEAL_EVENT!r} records are written only by seal()")
        clash = RESERVED & fields.keys()
        if clash:
            raise AuditError("audit.reserved_field", f"audit field names {sorted(clash)} are reserved")


@dataclass(frozen=True, slots=True)
class SealResult:
    """A seal just written."""

    record: AuditRecord
    first: int
    last: int


@dataclass(slots=True)
class _Tail:
    """The log as checked against its signed head: next seq, its prev, last seal, size, milestone."""

    seq: int
    prev: str
    sealed: int
    size: int
    ledger: str | None
    #: Bytes after the signed head: (first seq, last complete seq, byte offset, hash at the signed head).
    unsigned: tuple[int, int, int, str] | None = None


class AuditSession:
    """The log while its lock is held: appends here are serialised with every other writer."""

    def __init__(self, log: AuditLog, fd: int, tail: _Tail) -> None:
        self._log, self._fd, self._tail = log, fd, tail

    @property
    def next_seq(self) -> int:
        """The seq the next record gets."""
        return self._tail.seq

    @property
    def tail_hash(self) -> str:
        """SHA-256 of the last line (``GENESIS`` for an empty log)."""
        return self._tail.prev

    @property
    def ledger(self) -> tuple[int, str] | None:
        """The last ledger milestone the log announced: (transactions, chain), or None."""
        if not self._tail.ledger:
            return None
        gen, _, chain = self._tail.ledger.partition(":")
        return int(gen), chain

    def records_after(self, seq: int, hash_hex: str) -> list[AuditRecord] | None:
        """The records after ``seq`` (whose line must hash to ``hash_hex``); None when the log does not hold that line."""
        log = self._log
        end = self._tail.size
        if seq < 0:
            return [AuditRecord.from_line(line) for line in split_lines(_read_at(self._fd, 0, end))] if seq == -1 and \
                hash_hex == GENESIS else None
        if seq >= self._tail.seq:
            return None
        try:
            offset = log._offset_after(self._fd, seq, end)
            _s, found, _e = log._line_ending_at(self._fd, offset)
        except AuditError:
            return None
        if found != hash_hex:
            return None
        return [AuditRecord.from_line(line) for line in split_lines(_read_at(self._fd, offset, end - offset))]

    def seqs_for(self, count: int) -> list[int]:
        """The seqs the next ``count`` records will get (automatic seals fall between them)."""
        seq, sealed, every = self._tail.seq, self._tail.sealed, self._log.seal_every
        out = []
        for _ in range(count):
            out.append(seq)
            if every and seq - sealed >= every:
                seq += 1
                sealed = seq
            seq += 1
        return out

    def append(
        self, records: list[tuple[str, dict[str, Any]]], *, operator: str | None = None, now: datetime | None = None
    ) -> list[AuditRecord]:
        """Append records (and the seals they trigger); a ``LEDGER_EVENTS`` record sets the signed milestone."""
        _check_records(records)
        if not records:
            return []
        if self._tail.unsigned is not None:
            raise self._log.unsigned_error(self._tail)
        out: list[AuditRecord] = []
        # Very large groups are split: the head carries one append's bytes (records are under 1 KiB).
        for start in range(0, len(records), MAX_APPEND_RECORDS):
            out += self._log._append(self._fd, self._tail, records[start : start + MAX_APPEND_RECORDS], operator, now)
        return out


class AuditLog:
    """Append-only log at ``<home>/audit/audit.log``; appends are serialised with a file lock."""

    def __init__(
        self,
        home: Path | str,
        *,
        seal_every: int | None = None,
        passphrase: bytes | None = None,
        signer: Callable[[], ec.EllipticCurvePrivateKey] | None = None,
    ) -> None:
        self.dir = Path(home) / "audit"
        self.path = self.dir / LOG_NAME
        self.head_path = self.dir / HEAD_NAME
        self.seal_every = _seal_every_from_env() if seal_every is None else seal_every
        if passphrase is None and os.environ.get(PASSPHRASE_ENV):
            passphrase = os.environ[PASSPHRASE_ENV].encode()
        self.key = AuditKey(self.dir, passphrase)
        self._signer_source = signer or self.key.private_key
        self._signing_key: ec.EllipticCurvePrivateKey | None = None
        # (head file bytes, log size) after this instance's last append: lets the next append skip
        # re-reading and re-verifying when nothing else touched the log.
        self._checked: tuple[bytes, int, _Tail] | None = None
        self._active: AuditSession | None = None

    # -- writing -----------------------------------------------------------------------------
    def record(
        self, event: str, *, operator: str | None = None, now: datetime | None = None, **fields: Any
    ) -> AuditRecord:
        """Append one record; fields must be JSON-serialisable and never hold key material."""
        return self.record_many([(event, fields)], operator=operator, now=now)[0]

    def record_many(
        self, records: list[tuple[str, dict[str, Any]]], *, operator: str | None = None, now: datetime | None = None
    ) -> list[AuditRecord]:
        """Append several records at once: one lock, one head signature, two fsyncs.

        The log is exactly what consecutive ``record`` calls would write (same seqs, chain and
        automatic seals, a seal following the record that reaches the cadence); returns the
        records in order, without the seals. ``None`` field values are left out. Inside
        ``session()`` (same instance) the records go through that session, under its lock.
        """
        _check_records(records)
        if not records:
            return []
        if self._active is not None:
            return self._active.append(records, operator=operator, now=now)
        with self.session() as session:
            return session.append(records, operator=operator, now=now)

    @contextlib.contextmanager
    def session(self, *, allow_unsigned_tail: bool = False) -> Iterator[AuditSession]:
        """Hold the log's lock; the log is checked against its head (and a pending append finished)."""
        if self._active is not None:
            raise AuditError("audit.usage", "an audit session is already open in this process")
        with self._locked() as fd:
            tail = self._prepare(fd)
            if tail.unsigned is not None and not allow_unsigned_tail:
                raise self.unsigned_error(tail)
            self._active = AuditSession(self, fd, tail)
            try:
                yield self._active
            finally:
                self._active = None

    def unsigned_error(self, tail: _Tail) -> AuditError:
        """The refusal for records the signed head does not cover."""
        assert tail.unsigned is not None
        first, last, _offset, _hash = tail.unsigned
        span = f"seq {first}" if first >= last else f"seqs {first}..{last}"
        return AuditError(
            "audit.unsigned_tail",
            f"audit records {span} follow the signed head without a signature (appended by hand?); nothing is "
            "appended after them until an operator decides: `matter-pki audit seal --adopt-tail REASON` or "
            "`--discard-tail REASON`",
        )

    def seal(
        self, *, now: datetime | None = None, adopt_tail: str | None = None, discard_tail: str | None = None
    ) -> SealResult | None:
        """Seal every record since the last seal now; None when there is nothing new to seal.

        ``adopt_tail`` (a reason) puts records the head does not cover under the signature, with an
        ``audit.tail_adopted`` record naming them; ``discard_tail`` moves them out of the log into
        ``audit/discarded-<seq>-<sha256>.log`` with an ``audit.tail_discarded`` record. Without
        either, such a tail is refused (``audit.unsigned_tail``).
        """
        if adopt_tail is not None and discard_tail is not None:
            raise AuditError("audit.usage", "adopt or discard the unsigned tail, not both")
        for reason in (adopt_tail, discard_tail):
            if reason is not None and not reason.strip():
                raise AuditError("audit.usage", "give a reason for adopting or discarding the unsigned tail")
        with self._locked() as fd:
            tail = self._prepare(fd, adopting=adopt_tail is not None or discard_tail is not None)
            records: list[tuple[str, dict[str, Any]]] = []
            if tail.unsigned is not None:
                if adopt_tail is not None:
                    records.append(self._adoption(fd, tail, adopt_tail))
                elif discard_tail is not None:
                    records.append(self._discard(fd, tail, discard_tail))
                else:
                    raise self.unsigned_error(tail)
            if tail.seq == 0 and not records:
                return None
            signer = self._signer()
            if records:
                self._append(fd, tail, records, None, now)
            last = tail.seq - 1
            if last == tail.sealed:
                if not records:
                    # Already sealed: re-sign the head (without a pending append).
                    self._write_head(signer, Head(last, tail.prev, tail.sealed, "", "", ledger=tail.ledger), None)
                    return None
            first = tail.sealed + 1
            line = self._seal_line(signer, first=first, last=last, head=tail.prev, now=now)
            self._write(fd, tail, line, signer, sealed=last + 1, ledger=tail.ledger)
            record = AuditRecord.from_line(line)
            return SealResult(record, first, last)

    def _adoption(self, fd: int, tail: _Tail, reason: str) -> tuple[str, dict[str, Any]]:
        assert tail.unsigned is not None
        first, last, offset, _hash = tail.unsigned
        data = _read_at(fd, offset, tail.size - offset)
        if not data.endswith(b"\n"):
            raise AuditError(
                "audit.malformed", "the unsigned tail ends inside a record; discard it instead (--discard-tail)"
            )
        if any(json.loads(line).get("event") == SEAL_EVENT for line in split_lines(data)):
            raise AuditError("audit.seal_invalid", "the unsigned tail holds a seal nobody signed; discard it instead")
        tail.unsigned = None
        return "audit.tail_adopted", {
            "first": first, "last": last, "count": last - first + 1, "sha256": hashlib.sha256(data).hexdigest(),
            "reason": reason,
        }

    def _discard(self, fd: int, tail: _Tail, reason: str) -> tuple[str, dict[str, Any]]:
        assert tail.unsigned is not None
        first, _last, offset, signed_hash = tail.unsigned
        data = _read_at(fd, offset, tail.size - offset)
        digest = hashlib.sha256(data).hexdigest()
        name = f"discarded-{first}-{digest[:16]}.log"
        from matter_pki.storage.local import atomic_write

        atomic_write(self.dir / name, data, mode=0o600)
        try:
            os.ftruncate(fd, offset)
            os.fsync(fd)
        except OSError as e:
            raise storage_error(e, "audit/audit.log") from e
        tail.seq, tail.prev, tail.size, tail.unsigned = first, signed_hash, offset, None
        self._checked = None
        return "audit.tail_discarded", {"first_seq": first, "bytes": len(data), "sha256": digest, "file": name,
                                        "reason": reason}

    # -- the append itself -------------------------------------------------------------------
    def _append(
        self,
        fd: int,
        tail: _Tail,
        records: list[tuple[str, dict[str, Any]]],
        operator: str | None,
        now: datetime | None,
    ) -> list[AuditRecord]:
        signer = self._signer()
        milestone = tail.ledger
        who = operator or _operator()
        stamp = _timestamp(now)
        seq, prev, sealed = tail.seq, tail.prev, tail.sealed
        lines: list[bytes] = []
        written: list[AuditRecord] = []
        for event, fields in records:
            body = {"seq": seq, "time": stamp, "event": event, "operator": who, "prev": prev}
            extra = {k: v for k, v in fields.items() if v is not None}
            body.update(extra)
            if event in LEDGER_EVENTS:
                gen, chain = extra.get("gen"), extra.get("chain")
                if not isinstance(gen, int) or not isinstance(chain, str) or not is_sha256_hex(chain):
                    raise AuditError("audit.reserved_field", f"a {event!r} record needs an integer gen and a SHA-256 chain")
                milestone = f"{gen}:{chain}"
            line = _encode(body)
            lines.append(line)
            written.append(AuditRecord(seq, stamp, event, who, prev, extra, line))
            prev = line_hash(line)
            if self.seal_every and seq - sealed >= self.seal_every:
                seal_line = self._seal_line(signer, first=sealed + 1, last=seq, head=prev, now=now)
                lines.append(seal_line)
                seq += 1
                sealed = seq
                prev = line_hash(seal_line)
            seq += 1
        self._write(fd, tail, b"".join(lines), signer, sealed=sealed, ledger=milestone)
        return written

    def _write(
        self, fd: int, tail: _Tail, data: bytes, signer: ec.EllipticCurvePrivateKey, *, sealed: int, ledger: str | None
    ) -> None:
        """Head first (announcing ``data``), then the log; updates ``tail``."""
        last = split_lines(data)[-1]
        last_seq = tail.seq + data.count(b"\n") - 1
        head = Head(last_seq, line_hash(last), sealed, "", "", ledger=ledger)
        head_bytes = self._write_head(signer, head, (tail.seq - 1, tail.prev, tail.size, data))
        try:
            os.lseek(fd, tail.size, os.SEEK_SET)
            write_all(fd, data)
            os.fsync(fd)
        except OSError as e:
            # Undo at once: the head still announces these bytes, so the next writer can add them again.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, tail.size)
            self._checked = None
            raise storage_error(e, "audit/audit.log") from e
        tail.seq, tail.prev, tail.sealed, tail.ledger = last_seq + 1, head.hash, sealed, ledger
        tail.size += len(data)
        self._checked = (head_bytes, tail.size, _Tail(tail.seq, tail.prev, tail.sealed, tail.size, tail.ledger))

    def _write_head(
        self, signer: ec.EllipticCurvePrivateKey, head: Head, pending: tuple[int, str, int, bytes] | None
    ) -> bytes:
        signed = Head(
            head.seq, head.hash, head.sealed, fingerprint(signer.public_key()),
            sign(signer, head_message(head.seq, head.hash, head.sealed, head.ledger)), ledger=head.ledger,
            base=pending[:3] if pending else None, pending=pending[3] if pending else None,
        )
        data = signed.to_json()
        tmp = self.head_path.with_name(HEAD_NAME + ".tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
            try:
                write_all(out, data)
                os.fsync(out)
            finally:
                os.close(out)
            tmp.replace(self.head_path)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise storage_error(e, "audit/head") from e
        dir_fd = os.open(self.dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _O_CLOEXEC)
        try:
            fsync_dir(dir_fd)
        finally:
            os.close(dir_fd)
        return data

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

    def _signer(self) -> ec.EllipticCurvePrivateKey:
        if self._signing_key is None:
            key = self._signer_source()
            if fingerprint(key.public_key()) != fingerprint(self.key.public_key()):
                raise AuditError(
                    "audit.key_mismatch", "the audit signing key does not match audit/audit-key.pub.pem; refusing to sign"
                )
            self._signing_key = key
        return self._signing_key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        if not self.dir.is_dir():
            raise AuditError("audit.no_log", f"no audit folder {str(self.dir)!r}: restore it from a backup")
        lock = open_regular(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, "audit/lock")
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, "audit/audit.log")
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            os.close(lock)

    # -- consistency before appending --------------------------------------------------------
    def read_head(self) -> Head | None:
        """The head file, parsed but not verified; None when absent."""
        data = read_audit_file(self.head_path, MAX_HEAD_BYTES)
        return None if data is None else Head.parse(data)

    def _prepare(self, fd: int, *, adopting: bool = False) -> _Tail:
        """Check the log against its signed head, finishing an interrupted append; refuse anything else."""
        size = os.fstat(fd).st_size
        head_bytes = read_audit_file(self.head_path, MAX_HEAD_BYTES)
        if head_bytes is not None and self._checked is not None and self._checked[:2] == (head_bytes, size):
            cached = self._checked[2]
            return _Tail(cached.seq, cached.prev, cached.sealed, cached.size, cached.ledger)
        if head_bytes is None:
            if size == 0:
                return _Tail(0, GENESIS, -1, 0, None)
            if not adopting:
                raise AuditError(
                    "audit.head_missing",
                    "audit/head is missing although the log has records; restore it from a backup, or accept the "
                    "log as it is with `matter-pki audit seal --adopt-tail REASON`",
                )
            return self._unsigned_from(fd, size, -1, GENESIS, 0, -1, None)
        head = Head.parse(head_bytes)
        if head.key != fingerprint(self.key.public_key()) or not verify_signature(
            self.key.public_key(), head.message(), head.sig
        ):
            raise AuditError("audit.head_invalid", "audit/head signature is invalid; run `matter-pki audit verify`")
        if head.base is not None and head.pending is not None:
            return self._finish_pending(fd, size, head)
        complete = _complete_end(fd, size)
        end_seq, _end_hash, _ = self._line_ending_at(fd, complete)
        if end_seq < head.seq:
            raise AuditError(
                "audit.truncated",
                f"the audit log ends at seq {end_seq} but its signed head is seq {head.seq}; run `matter-pki audit verify`",
            )
        head_end = complete if end_seq == head.seq else self._offset_after(fd, head.seq, complete)
        _seq, hash_at_head, _ = self._line_ending_at(fd, head_end)
        if hash_at_head != head.hash:
            raise AuditError(
                "audit.modified", f"audit record seq {head.seq} does not match the signed head; run `matter-pki audit verify`"
            )
        if head_end < size:
            return self._unsigned_from(fd, size, head.seq, head.hash, head_end, head.sealed, head.ledger)
        return _Tail(head.seq + 1, head.hash, head.sealed, size, head.ledger)

    def _unsigned_from(
        self, fd: int, size: int, seq: int, hash_hex: str, offset: int, sealed: int, ledger: str | None
    ) -> _Tail:
        """Bytes after the signed position: complete records must chain on, else the log was altered."""
        data = _read_at(fd, offset, size - offset)
        prev, last = hash_hex, seq
        for line in split_lines(data):
            if not line.endswith(b"\n"):
                break  # a cut record: only --discard-tail can deal with it
            try:
                body = json.loads(line)
                ok = body["seq"] == last + 1 and body["prev"] == prev
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise AuditError(
                    "audit.modified", f"the audit log does not chain on after seq {last}; run `matter-pki audit verify`"
                )
            prev, last = line_hash(line), last + 1
        tail = _Tail(last + 1, prev, sealed, size, ledger)
        tail.unsigned = (seq + 1, last, offset, hash_hex)
        return tail

    def _finish_pending(self, fd: int, size: int, head: Head) -> _Tail:
        """The head announces an append: check its bytes chain to the head, then complete it if needed."""
        assert head.base is not None and head.pending is not None
        base_seq, base_hash, base_size = head.base
        pending = head.pending
        seq, prev = base_seq, base_hash
        lines = split_lines(pending)
        for line in lines:
            try:
                body = json.loads(line)
                ok = line.endswith(b"\n") and body["seq"] == seq + 1 and body["prev"] == prev
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                raise AuditError("audit.head_invalid", "audit/head announces bytes that do not chain; run `matter-pki audit verify`")
            seq, prev = seq + 1, line_hash(line)
        if (seq, prev) != (head.seq, head.hash):
            raise AuditError("audit.head_invalid", "audit/head announces bytes that do not end at its signed record")
        if size < base_size:
            raise AuditError(
                "audit.truncated", f"the audit log is {size} bytes, shorter than the {base_size} its head builds on"
            )
        if base_size:
            at_base_seq, at_base_hash, _ = self._line_ending_at(fd, base_size)
            if (at_base_seq, at_base_hash) != (base_seq, base_hash):
                raise AuditError("audit.modified", f"audit record seq {base_seq} does not match the signed head")
        elif base_seq != -1 or base_hash != GENESIS:
            raise AuditError("audit.head_invalid", "audit/head announces an append to an empty log with a wrong base")
        written = _read_at(fd, base_size, min(size - base_size, len(pending)))
        end = base_size + len(pending)
        if written != pending[: len(written)]:
            raise AuditError(
                "audit.modified", f"the audit log after seq {base_seq} differs from what its signed head announces"
            )
        if size > end:
            return self._unsigned_from(fd, size, head.seq, head.hash, end, head.sealed, head.ledger)
        if len(written) < len(pending):
            # A kill or a full disk interrupted this append: finish it.
            try:
                os.ftruncate(fd, base_size + len(written))
                os.lseek(fd, base_size + len(written), os.SEEK_SET)
                write_all(fd, pending[len(written) :])
                os.fsync(fd)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, base_size + len(written))
                raise storage_error(e, "audit/audit.log (finishing an interrupted append)") from e
        return _Tail(head.seq + 1, head.hash, head.sealed, end, head.ledger)

    def _line_ending_at(self, fd: int, end: int) -> tuple[int, str, int]:
        """(seq, hash, end) of the complete line ending at byte ``end`` ((-1, GENESIS, 0) for 0)."""
        if end == 0:
            return -1, GENESIS, 0
        line = _line_before(fd, end)
        try:
            seq = int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError("audit.malformed", "an audit record is unreadable; run `matter-pki audit verify`") from e
        return seq, line_hash(line), end

    def _offset_after(self, fd: int, seq: int, end: int) -> int:
        """Byte offset just after record ``seq`` (searching backwards from ``end``)."""
        pos = end
        while pos > 0:
            line = _line_before(fd, pos)
            try:
                at = int(json.loads(line)["seq"])
            except (ValueError, KeyError, TypeError) as e:
                raise AuditError("audit.malformed", "an audit record is unreadable; run `matter-pki audit verify`") from e
            if at == seq:
                return pos
            if at < seq:
                break
            pos -= len(line)
        raise AuditError("audit.modified", f"audit record seq {seq} (the signed head) is not where it belongs")

    # -- reading -----------------------------------------------------------------------------
    def iter_records(self) -> Iterator[AuditRecord]:
        """Every record in order, streamed (no verification; see ``matter_pki.audit.verify``)."""
        for line in iter_log_lines(self.path):
            try:
                yield AuditRecord.from_line(line)
            except (ValueError, KeyError, TypeError) as e:
                raise AuditError("audit.malformed", f"an audit record is unreadable: {e}; run `matter-pki audit verify`") from e

    def records(self) -> list[AuditRecord]:
        """Every record in order (no verification; see ``matter_pki.audit.verify``)."""
        return list(self.iter_records())


def iter_log_lines(path: Path) -> Iterator[bytes]:
    """Lines of a log file, streamed; ``audit.not_regular`` / ``audit.malformed`` (line over ``MAX_LINE``)."""
    try:
        fd = open_regular(path, os.O_RDONLY, f"audit/{path.name}")
    except AuditError as e:
        if e.code == "audit.missing":
            return
        raise
    with os.fdopen(fd, "rb", buffering=1 << 20) as fh:
        while True:
            line = fh.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                raise AuditError("audit.malformed", f"an audit record is over {MAX_LINE} bytes; run `matter-pki audit verify`")
            yield line


def open_regular(path: Path, flags: int, what: str) -> int:
    """Open without following a symlink or blocking on a FIFO; refuse anything but a regular file."""
    try:
        fd = os.open(path, flags | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, 0o600)
    except FileNotFoundError as e:
        raise AuditError("audit.missing", f"{what} does not exist") from e
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            raise AuditError("audit.not_regular", f"{what} is a symlink or a device; refused") from e
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise storage_error(e, what) from e
        raise AuditError("audit.unreadable", f"cannot open {what}: {e.strerror}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise AuditError("audit.not_regular", f"{what} is not a regular file; refused")
    if flags & (os.O_RDWR | os.O_WRONLY):
        # Blocking mode from here on (regular files never block anyway).
        os.set_blocking(fd, True)
    return fd


def split_lines(data: bytes) -> list[bytes]:
    """Lines split on ``\\n`` only, each keeping its newline; a final unterminated piece is kept as is."""
    parts = data.split(b"\n")
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _read_at(fd: int, offset: int, length: int) -> bytes:
    chunks: list[bytes] = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 20), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _complete_end(fd: int, size: int) -> int:
    """Offset just after the last newline of the first ``size`` bytes (0 when there is none)."""
    pos = size
    while pos > 0:
        step = min(pos, _TAIL_CHUNK)
        chunk = _read_at(fd, pos - step, step)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return pos - step + cut + 1
        pos -= step
    return 0


def _line_before(fd: int, end: int) -> bytes:
    """The complete line (with its newline) that ends at byte ``end``."""
    if _read_at(fd, end - 1, 1) != b"\n":
        raise AuditError("audit.malformed", "the audit log ends inside a record; run `matter-pki audit verify`")
    data = b""
    pos = end
    while pos > 0:
        step = min(pos, _TAIL_CHUNK)
        pos -= step
        data = _read_at(fd, pos, step) + data
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0:
            return data[cut + 1 :]
        if len(data) > MAX_LINE:
            raise AuditError("audit.malformed", f"an audit record is over {MAX_LINE} bytes")
    return data


__all__ = ["GENESIS", "AuditLog", "AuditRecord", "AuditSession", "SealResult", "iter_log_lines", "line_hash",
           "split_lines"]
