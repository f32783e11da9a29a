"""Verify a local audit log: hash chain, seq order, every seal's signature, and the signed head.

The walk stops at the first problem and names the record: its 1-based line number, its seq and
why (``audit.*`` code). What each tampering looks like:

- a changed byte: the line no longer parses, or its hash no longer matches the next record's
  ``prev`` (or the signed head when it is the last line): that record is named;
- a deleted record: a seq is missing; reordered records: seqs out of order;
- an inserted record: a seq repeats or does not belong, while the chain continues around it;
- a truncated tail: the log ends before the seq of the signed ``audit/head``;
- a forged seal or head: its signature does not verify with the audit public key.

A consistent rewrite of the whole log needs the audit private key. The key is certified by the PAA
key at ``init`` (``audit/binding.json``): given the PAA certificate, a key swapped in without the
PAA key's consent is reported (``audit.key_unbound``). Pinning the key with ``expect_key`` (its
fingerprint) or ``public_key`` (a copy kept elsewhere) also rules it out.

An append a kill or a full disk interrupted (the signed head announces bytes the log does not hold
yet) is reported as ``audit.incomplete_append``: the next command, or ``matter-pki audit seal``,
finishes it. The files are opened without following symlinks and must be regular files; the log is
read through a memory map with an index of line offsets, so its size is not held in memory twice.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matter_pki.audit.log import GENESIS, LOG_NAME, open_regular
from matter_pki.audit.seal import (
    BINDING_NAME,
    HEAD_NAME,
    MAX_HEAD_BYTES,
    MAX_SMALL_FILE,
    PUB_NAME,
    SEAL_EVENT,
    Binding,
    Head,
    fingerprint,
    is_sha256_hex,
    load_public_key,
    read_audit_file,
    seal_message,
    verify_signature,
)
from matter_pki.errors import AuditError

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with the log."""

    code: str
    reason: str
    line: int | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"code": self.code, "line": self.line, "seq": self.seq, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of ``verify_log``."""

    records: int
    seals: int
    key: str | None
    head_seq: int | None
    problem: Problem | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "records": self.records,
            "seals": self.seals,
            "key": self.key,
            "head_seq": self.head_seq,
            "problem": self.problem.to_dict() if self.problem else None,
            "notes": list(self.notes),
        }


class _Raw:
    """Lines of a buffer (bytes or a memory map) by index, through an array of line start offsets."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self.data = data
        starts = array("Q", [0])
        pos, size = 0, len(data)
        while pos < size:
            cut = data.find(b"\n", pos)
            if cut < 0:
                break
            pos = cut + 1
            starts.append(pos)
        if starts[-1] == size:
            starts.pop()
        self.starts = starts
        self.size = size

    def __len__(self) -> int:
        return len(self.starts) if self.size else 0

    def __getitem__(self, i: int) -> bytes:
        end = self.starts[i + 1] if i + 1 < len(self.starts) else self.size
        return bytes(self.data[self.starts[i] : end])


class _Lines:
    """Raw lines with lazily parsed bodies (a small cache: the walk goes forward)."""

    def __init__(self, data: bytes | mmap.mmap) -> None:
        self.raw = _Raw(data)
        self._bodies: dict[int, dict[str, Any] | None] = {}

    def __len__(self) -> int:
        return len(self.raw)

    def hash(self, i: int) -> str:
        return hashlib.sha256(self.raw[i]).hexdigest()

    def body(self, i: int) -> dict[str, Any] | None:
        if i not in self._bodies:
            if len(self._bodies) > 4096:
                self._bodies.clear()
            self._bodies[i] = _parse(self.raw[i]) if 0 <= i < len(self.raw) else None
        return self._bodies[i]

    def seq(self, i: int) -> int | None:
        body = self.body(i)
        return body["seq"] if body else None

    def prev(self, i: int) -> str | None:
        body = self.body(i)
        return body["prev"] if body else None


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        body = json.loads(line)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if not isinstance(body.get("seq"), int) or isinstance(body.get("seq"), bool):
        return None
    if not all(isinstance(body.get(k), str) for k in ("time", "event", "operator")):
        return None
    if not is_sha256_hex(body.get("prev")):
        return None
    return body


def _unparseable(lines: _Lines, i: int) -> Problem:
    line = lines.raw[i]
    if not line.endswith(b"\n"):
        why = "is incomplete (the log was cut inside a record)"
    else:
        try:
            json.loads(line)
            why = "is not a well-formed audit record (a field is missing or has the wrong type)"
        except ValueError:
            why = "is not valid JSON"
    return Problem("audit.malformed", f"line {i + 1} (expected seq {i}) {why}", line=i + 1, seq=i)


def _seq_problem(lines: _Lines, i: int, prev_hash: str) -> Problem:
    """Line i holds the wrong seq: tell a deletion, a reordering and an insertion apart."""
    s = lines.seq(i)
    assert s is not None
    n = len(lines)
    if lines.prev(i) == prev_hash and (i + 1 >= n or lines.seq(i + 1) == i + 1):
        # It follows seq i-1 and is followed by seq i+1: only its own seq field changed.
        return Problem(
            "audit.modified",
            f"record seq {i} (line {i + 1}) was modified: its seq reads {s}, expected {i} (the chain around it is intact)",
            line=i + 1,
            seq=i,
        )
    if s < i:
        # Seq s already appeared (at line s): one of the two copies was inserted.
        nxt = next((j for j in range(i + 1, n) if lines.seq(j) == s + 1), None)
        if nxt is not None and lines.prev(nxt) == lines.hash(i):
            return Problem(
                "audit.inserted",
                f"line {s + 1} (seq {s}) was inserted: seq {s} appears again at line {i + 1}, "
                f"and the chain continues from line {i + 1}",
                line=s + 1,
                seq=s,
            )
        return Problem(
            "audit.inserted",
            f"line {i + 1} repeats seq {s} (first at line {s + 1}): a record was inserted or duplicated",
            line=i + 1,
            seq=s,
        )
    swapped = s == i + 1 and (i + 2 >= n or lines.seq(i + 2) == i + 2)
    if swapped and i + 1 < n and lines.seq(i + 1) == i and lines.prev(i + 1) == prev_hash:
        return Problem(
            "audit.reordered",
            f"records seq {i} and seq {i + 1} are swapped (seq {i} is at line {i + 2}, seq {i + 1} at line {i + 1})",
            line=i + 1,
            seq=i,
        )
    if i + 1 < n and lines.seq(i + 1) == i and lines.prev(i + 1) == prev_hash:
        return Problem(
            "audit.inserted",
            f"line {i + 1} (claiming seq {s}) was inserted: the chain continues from line {i} to line {i + 2}",
            line=i + 1,
            seq=s,
        )
    found = next((j for j in range(i + 1, n) if lines.seq(j) == i), None)
    if found is not None:
        return Problem(
            "audit.reordered",
            f"seq {i} belongs at line {i + 1} but is at line {found + 1} (line {i + 1} holds seq {s}): records reordered",
            line=i + 1,
            seq=i,
        )
    missing = f"record seq {i} is" if s == i + 1 else f"records seq {i}..{s - 1} are"
    return Problem(
        "audit.deleted", f"{missing} missing: line {i + 1} holds seq {s} (deleted)", line=i + 1, seq=i
    )


def _chain_problem(lines: _Lines, i: int, head: Head | None) -> Problem:
    """Line i's prev is not the hash of line i-1: name the record that was changed."""
    if i == 0:
        return Problem(
            "audit.modified", "record seq 0 (line 1) was modified: its prev is not the genesis value", line=1, seq=0
        )
    if i + 1 < len(lines):
        self_changed = lines.prev(i + 1) is not None and lines.prev(i + 1) != lines.hash(i)
    else:
        self_changed = head is not None and head.seq == i and head.hash != lines.hash(i)
    if self_changed:
        why = f"its prev is not the SHA-256 of line {i}, and its own hash no longer matches " + (
            f"the prev of seq {i + 1}" if i + 1 < len(lines) else "the signed head"
        )
        return Problem("audit.modified", f"record seq {i} (line {i + 1}) was modified: {why}", line=i + 1, seq=i)
    return Problem(
        "audit.modified",
        f"record seq {i - 1} (line {i}) was modified: its SHA-256 no longer matches the prev stored in seq {i}",
        line=i,
        seq=i - 1,
    )


def _seal_problem(body: dict[str, Any], i: int, last_seal: int, prev_hash: str, key: ec.EllipticCurvePublicKey,
                  key_fp: str) -> Problem | None:
    first, last, count, head = body.get("first"), body.get("last"), body.get("count"), body.get("head")
    where = f"seal seq {i} (line {i + 1})"
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (first, last, count)):
        return Problem("audit.seal_invalid", f"{where} lacks its first/last/count fields", line=i + 1, seq=i)
    assert isinstance(first, int) and isinstance(last, int) and isinstance(count, int)
    if first != last_seal + 1 or last != i - 1 or count != last - first + 1:
        return Problem(
            "audit.seal_invalid",
            f"{where} covers seq {first}..{last} (count {count}); expected {last_seal + 1}..{i - 1}",
            line=i + 1,
            seq=i,
        )
    if head != prev_hash:
        return Problem("audit.seal_invalid", f"{where}: its head is not the hash of seq {last}", line=i + 1, seq=i)
    if body.get("key") != key_fp:
        return Problem("audit.seal_invalid", f"{where} was made with another key ({body.get('key')})", line=i + 1, seq=i)
    if not verify_signature(key, seal_message(first, last, count, head), body.get("sig")):
        return Problem("audit.seal_invalid", f"{where}: signature does not verify", line=i + 1, seq=i)
    return None


def _head_problem(lines: _Lines, head: Head | None, head_error: str | None, last_seal: int,
                  key: ec.EllipticCurvePublicKey, key_fp: str) -> Problem | None:
    n = len(lines)
    if head_error:
        return Problem("audit.head_invalid", head_error)
    if head is None:
        if n == 0:
            return None
        return Problem(
            "audit.head_missing",
            f"audit/{HEAD_NAME} is missing: the tail after the last seal cannot be shown to be complete "
            "(restore it from a backup; a log written before heads existed: `matter-pki audit seal --adopt-tail REASON`)",
        )
    if head.key != key_fp or not verify_signature(key, head.message(), head.sig):
        return Problem("audit.head_invalid", f"audit/{HEAD_NAME}: signature does not verify with the audit key")
    if n == 0:
        return Problem(
            "audit.truncated",
            f"the audit log is empty or missing but the signed head is seq {head.seq}: every record was deleted",
            line=1,
            seq=0,
        )
    if head.seq > n - 1:
        missing = f"seq {n}" if head.seq == n else f"seq {n}..{head.seq}"
        return Problem(
            "audit.truncated",
            f"the log ends at line {n} (seq {n - 1}) but the signed head is seq {head.seq}: "
            f"{missing} missing (truncated)",
            line=n + 1,
            seq=n,
        )
    if head.hash != lines.hash(head.seq):
        return Problem(
            "audit.modified",
            f"record seq {head.seq} (line {head.seq + 1}) was modified: it does not match the signed head",
            line=head.seq + 1,
            seq=head.seq,
        )
    if head.sealed != last_seal:
        return Problem("audit.head_invalid", f"audit/{HEAD_NAME} names seal seq {head.sealed}; the last seal is {last_seal}")
    if head.seq < n - 1:
        return Problem(
            "audit.unsigned_tail",
            f"records seq {head.seq + 1}..{n - 1} (lines {head.seq + 2}..{n}) follow the signed head without a "
            "signature (appended by hand?); an operator decides with `matter-pki audit seal --adopt-tail REASON` "
            "or `--discard-tail REASON`",
            line=head.seq + 2,
            seq=head.seq + 1,
        )
    return None


def verify_log(
    audit_dir: Path,
    *,
    public_key: bytes | None = None,
    expect_key: str | None = None,
    paa_der: bytes | None = None,
    home_id: str | None = None,
) -> VerifyReport:
    """Verify ``audit_dir`` (``<home>/audit``); raises ``AuditError`` when the log is absent or unreadable.

    With ``paa_der`` (the home's PAA certificate), the audit key must be certified by the PAA key
    (``binding.json``); without it the binding is not checked.
    """
    log_path, head_path = audit_dir / LOG_NAME, audit_dir / HEAD_NAME
    head_bytes = read_audit_file(head_path, MAX_HEAD_BYTES)
    if not os.path.lexists(log_path) and head_bytes is None:
        raise AuditError("audit.no_log", f"no audit log in {str(audit_dir)!r}")
    fd = open_regular(log_path, os.O_RDONLY, "audit/audit.log") if os.path.lexists(log_path) else -1
    try:
        size = os.fstat(fd).st_size if fd >= 0 else 0
        data: bytes | mmap.mmap = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else b""
        try:
            return _verify(audit_dir, data, head_bytes, public_key, expect_key, paa_der, home_id)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()
    finally:
        if fd >= 0:
            os.close(fd)


def _verify(
    audit_dir: Path,
    data: bytes | mmap.mmap,
    head_bytes: bytes | None,
    public_key: bytes | None,
    expect_key: str | None,
    paa_der: bytes | None,
    home_id: str | None,
) -> VerifyReport:
    head: Head | None = None
    head_error: str | None = None
    if head_bytes is not None:
        try:
            head = Head.parse(head_bytes)
        except AuditError as e:
            head_error = e.message
    incomplete = False
    if head is not None and head.base is not None and head.pending is not None:
        base_size, pending = head.base[2], head.pending
        written = bytes(data[base_size:]) if len(data) >= base_size else None
        if written is not None and len(written) < len(pending) and pending.startswith(written):
            # An interrupted append: verify the log as the next writer will complete it.
            incomplete = True
            data = bytes(data[:base_size]) + pending
    lines = _Lines(data)

    def report(problem: Problem | None, seals: int = 0, key_fp: str | None = None, notes: tuple[str, ...] = ()) -> VerifyReport:
        return VerifyReport(len(lines), seals, key_fp, head.seq if head else None, problem, notes)

    pub_path = audit_dir / PUB_NAME
    if public_key is None:
        public_key = read_audit_file(pub_path, MAX_SMALL_FILE)
        if public_key is None:
            if len(lines) and head is None:
                return report(Problem("audit.head_missing", "the log was never signed: no audit key and no head"))
            return report(Problem("audit.key_missing", f"audit public key {str(pub_path)!r} is missing"))
    key = load_public_key(public_key, "the audit public key")
    key_fp = fingerprint(key)
    if expect_key and key_fp != expect_key.lower().removeprefix("sha256:"):
        return report(Problem("audit.key_mismatch", f"the audit key is {key_fp}, not the expected {expect_key}"), 0, key_fp)
    if paa_der is not None:
        problem = _binding_problem(audit_dir, key_fp, paa_der, home_id)
        if problem is not None:
            return report(problem, 0, key_fp)

    prev_hash, last_seal, seals = GENESIS, -1, 0
    for i in range(len(lines)):
        body = lines.body(i)
        if body is None:
            return report(_unparseable(lines, i), seals, key_fp)
        if body["seq"] != i:
            return report(_seq_problem(lines, i, prev_hash), seals, key_fp)
        if body["prev"] != prev_hash:
            return report(_chain_problem(lines, i, head), seals, key_fp)
        if body["event"] == SEAL_EVENT:
            problem = _seal_problem(body, i, last_seal, prev_hash, key, key_fp)
            if problem:
                return report(problem, seals, key_fp)
            last_seal, seals = i, seals + 1
        prev_hash = lines.hash(i)
    problem = _head_problem(lines, head, head_error, last_seal, key, key_fp)
    if problem is None and incomplete:
        assert head is not None
        problem = Problem(
            "audit.incomplete_append",
            f"an append was interrupted: records up to seq {head.seq} are announced by the signed head but not all "
            "written yet; the next matter-pki command (or `matter-pki audit seal`) finishes it",
        )
    notes: tuple[str, ...] = ()
    if problem is None and len(lines) and last_seal < len(lines) - 1:
        notes = (f"records seq {last_seal + 1}..{len(lines) - 1} are covered by the signed head, not yet by a seal",)
    if problem is None and paa_der is None:
        notes += ("the audit key's binding to the PAA was not checked",)
    return report(problem, seals, key_fp, notes)


def _binding_problem(audit_dir: Path, key_fp: str, paa_der: bytes, home_id: str | None) -> Problem | None:
    data = read_audit_file(audit_dir / BINDING_NAME, MAX_SMALL_FILE)
    if data is None:
        return Problem(
            "audit.key_unbound",
            f"audit/{BINDING_NAME} is missing: nothing shows the PAA key certified this audit key "
            "(a home created before bindings existed: run `matter-pki home upgrade`)",
        )
    try:
        binding = Binding.parse(data)
    except AuditError as e:
        return Problem("audit.key_unbound", e.message)
    why = binding.problem(home_id=home_id, key_fp=key_fp, paa_der=paa_der)
    return Problem("audit.key_unbound", f"the audit key is not certified by this home's PAA: {why}") if why else None
