"""The local audit log: append-only records, automatic and manual seals, the signed head, the audit key."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization

from matter_pki.audit import AuditLog, verify_log
from matter_pki.audit.log import GENESIS
from matter_pki.audit.seal import Head, head_message, seal_message, verify_signature
from matter_pki.errors import AuditError, KeyStoreError, StorageError
from tests.unit.test_local_fixtures import new_audit_log

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit key is always stored encrypted, so the default test environment has a passphrase.
    monkeypatch.setenv("MATTER_PKI_PASSPHRASE", "audit-test-passphrase")
    for name in ("MATTER_PKI_AUDIT_SEAL_EVERY",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MATTER_PKI_OPERATOR", "alice")


def lines(home: Path) -> list[dict]:
    return [json.loads(x) for x in (home / "audit" / "audit.log").read_bytes().splitlines()]


def test_records_are_hash_chained_json_lines(tmp_path: Path) -> None:
    # GIVEN a new home WHEN three operations are recorded
    log = new_audit_log(tmp_path)
    first = log.record("paa.created", ca="paa", now=NOW)
    log.record("dac.issued", ca="pai-1", serial="5A01", pid="8000", now=NOW)
    log.record("cert.revoked", ca="pai-1", serial="5A01", reason="keyCompromise", now=NOW)
    # THEN each line carries the SHA-256 of the previous line, and the fields as given
    raw = (tmp_path / "audit" / "audit.log").read_bytes().splitlines(keepends=True)
    bodies = [json.loads(x) for x in raw]
    assert [b["seq"] for b in bodies] == [0, 1, 2]
    assert bodies[0]["prev"] == GENESIS
    assert bodies[1]["prev"] == hashlib.sha256(raw[0]).hexdigest()
    assert bodies[2]["prev"] == hashlib.sha256(raw[1]).hexdigest()
    assert bodies[1] | {"prev": None} == {
        "seq": 1, "time": "2026-06-01T12:00:00Z", "event": "dac.issued", "operator": "alice", "prev": None,
        "ca": "pai-1", "serial": "5A01", "pid": "8000",
    }
    assert first.seq == 0 and first.fields == {"ca": "paa"}


def test_record_keeps_the_seed_call_signature_and_returns_the_seq(tmp_path: Path) -> None:
    # GIVEN the call other commands make (operator and None fields, like local issuance does)
    rec = new_audit_log(tmp_path).record("dac.issued", ca="pai-1", serial="01", operator="bob", recovered=None)
    # THEN None fields are dropped, the operator is kept, and .seq is usable
    assert (rec.seq, rec.operator, rec.fields) == (0, "bob", {"ca": "pai-1", "serial": "01"})
    assert AuditLog(tmp_path).records()[0].line == rec.line


def test_reserved_names_are_refused(tmp_path: Path) -> None:
    log = new_audit_log(tmp_path)
    with pytest.raises(AuditError) as err:
        log.record("dac.issued", prev="0" * 64)
    assert err.value.code == "audit.reserved_field"
    with pytest.raises(AuditError) as err:
        log.record("audit.sealed")
    assert err.value.code == "audit.reserved_event"


def test_appending_never_mints_an_audit_key(tmp_path: Path) -> None:
    # GIVEN an audit folder whose key was deleted (or never made)
    (tmp_path / "audit").mkdir()
    # WHEN a record is written THEN it is refused and no key appears: only init makes the audit key
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path).record("paa.created", ca="paa")
    assert err.value.code == "audit.key_missing"
    assert sorted(p.name for p in (tmp_path / "audit").iterdir() if p.name.startswith("audit-key")) == []
    assert (tmp_path / "audit" / "audit.log").read_bytes() == b""


def test_the_first_record_gets_a_signed_head(tmp_path: Path) -> None:
    new_audit_log(tmp_path).record("paa.created", ca="paa")
    audit = tmp_path / "audit"
    assert (audit / "audit-key.pem").stat().st_mode & 0o777 == 0o600
    assert (audit / "audit-key.pem").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pub = serialization.load_pem_public_key((audit / "audit-key.pub.pem").read_bytes())
    head = Head.parse((audit / "head").read_bytes())
    last = (audit / "audit.log").read_bytes()
    assert (head.seq, head.hash, head.sealed) == (0, hashlib.sha256(last).hexdigest(), -1)
    assert verify_signature(pub, head_message(0, head.hash, -1), head.sig)  # type: ignore[arg-type]


def test_without_the_passphrase_nothing_is_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a log with one record WHEN another is written without the passphrase
    new_audit_log(tmp_path).record("paa.created", ca="paa")
    before = (tmp_path / "audit" / "audit.log").read_bytes()
    monkeypatch.delenv("MATTER_PKI_PASSPHRASE")
    with pytest.raises(KeyStoreError) as err:
        AuditLog(tmp_path).record("dac.issued", ca="pai-1", serial="01")
    # THEN it is refused before anything is written: no record ever goes unsigned
    assert err.value.code == "key.passphrase_missing"
    assert (tmp_path / "audit" / "audit.log").read_bytes() == before
    assert verify_log(tmp_path / "audit").ok


def test_audit_key_is_encrypted_with_the_passphrase(tmp_path: Path) -> None:
    new_audit_log(tmp_path, passphrase="correct horse").record("paa.created", ca="paa")
    pem = (tmp_path / "audit" / "audit-key.pem").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    serialization.load_pem_private_key(pem, b"correct horse")
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, b"wrong")


def test_seal_every_n_records(tmp_path: Path) -> None:
    # GIVEN seals every 10 records WHEN 25 records are written
    log = new_audit_log(tmp_path, seal_every=10)
    for i in range(25):
        log.record("dac.issued", ca="pai-1", serial=f"{i:02X}", now=NOW)
    # THEN seals sit at seq 10 (covering 0..9) and seq 21 (covering 11..20), each signing the head hash
    bodies = lines(tmp_path)
    seals = [b for b in bodies if b["event"] == "audit.sealed"]
    assert [(s["seq"], s["first"], s["last"], s["count"]) for s in seals] == [(10, 0, 9, 10), (21, 11, 20, 10)]
    raw = (tmp_path / "audit" / "audit.log").read_bytes().splitlines(keepends=True)
    pub = serialization.load_pem_public_key((tmp_path / "audit" / "audit-key.pub.pem").read_bytes())
    for s in seals:
        assert s["head"] == hashlib.sha256(raw[s["last"]]).hexdigest() == s["prev"]
        assert verify_signature(pub, seal_message(s["first"], s["last"], s["count"], s["head"]), s["sig"])  # type: ignore[arg-type]
    assert len(bodies) == 27


def test_seal_every_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATTER_PKI_AUDIT_SEAL_EVERY", "3")
    log = new_audit_log(tmp_path)
    for _ in range(4):
        log.record("key.accessed", ca="pai-1")
    assert [b["event"] for b in lines(tmp_path)][3] == "audit.sealed"
    monkeypatch.setenv("MATTER_PKI_AUDIT_SEAL_EVERY", "-1")
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path)
    assert err.value.code == "audit.config"


def test_manual_seal_covers_the_tail_and_is_idempotent(tmp_path: Path) -> None:
    log = new_audit_log(tmp_path, seal_every=0)
    assert log.seal() is None  # empty log: nothing to seal
    for _ in range(3):
        log.record("dac.issued", ca="pai-1")
    result = log.seal()
    assert result is not None and (result.first, result.last, result.record.seq) == (0, 2, 3)
    assert log.seal() is None
    assert verify_log(tmp_path / "audit").ok


def test_legacy_log_without_a_head_is_adopted_only_on_request(tmp_path: Path) -> None:
    # GIVEN a log written by the first version (no head), whose key now exists
    log = new_audit_log(tmp_path)
    line0 = json.dumps({"seq": 0, "time": "2026-01-01T00:00:00Z", "event": "paa.created", "operator": "x",
                        "prev": GENESIS, "ca": "paa"}, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    (tmp_path / "audit" / "audit.log").write_bytes(line0)
    # THEN the old records stay readable, verify reports the missing head, appending and plain seals refuse
    assert AuditLog(tmp_path).records()[0].fields == {"ca": "paa"}
    assert verify_log(tmp_path / "audit").problem.code == "audit.head_missing"  # type: ignore[union-attr]
    for attempt in (lambda: log.record("dac.issued"), log.seal):
        with pytest.raises(AuditError) as err:
            attempt()
        assert err.value.code == "audit.head_missing"
    # WHEN an operator adopts it THEN the adoption is recorded and signed, and the log verifies
    log.seal(adopt_tail="written before heads existed")
    adopted = [r for r in log.records() if r.event == "audit.tail_adopted"]
    assert [(r.fields["first"], r.fields["last"], r.fields["reason"]) for r in adopted] == [
        (0, 0, "written before heads existed")
    ]
    assert verify_log(tmp_path / "audit").ok


def test_a_hand_appended_record_is_never_signed_over(tmp_path: Path) -> None:
    # GIVEN a signed log and a record appended by hand, chained correctly
    log = new_audit_log(tmp_path)
    last = log.record("dac.issued", ca="pai-1", serial="01")
    forged = {"seq": last.seq + 1, "time": "2026-01-01T00:00:00Z", "event": "cert.revoked", "operator": "mallory",
              "prev": last.hash, "ca": "pai-1", "serial": "01"}
    with (tmp_path / "audit" / "audit.log").open("ab") as fh:
        fh.write(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    # THEN verify flags it, and neither a new record nor a plain seal extends or signs it
    assert verify_log(tmp_path / "audit").problem.code == "audit.unsigned_tail"  # type: ignore[union-attr]
    for attempt in (lambda: AuditLog(tmp_path).record("key.accessed", ca="x"), AuditLog(tmp_path).seal):
        with pytest.raises(AuditError) as err:
            attempt()
        assert err.value.code == "audit.unsigned_tail"
    assert verify_log(tmp_path / "audit").problem.code == "audit.unsigned_tail"  # type: ignore[union-attr]
    # WHEN an operator discards it THEN it leaves the log for a side file, with a signed record saying so
    AuditLog(tmp_path).seal(discard_tail="appended by hand")
    discarded = [r for r in AuditLog(tmp_path).records() if r.event == "audit.tail_discarded"]
    assert len(discarded) == 1 and (tmp_path / "audit" / discarded[0].fields["file"]).read_bytes().startswith(b'{"ca"')
    assert not [r for r in AuditLog(tmp_path).records() if r.operator == "mallory"]
    assert verify_log(tmp_path / "audit").ok


def test_append_refuses_a_truncated_log(tmp_path: Path) -> None:
    # GIVEN a signed log of three appends, cut back to its first record
    log = new_audit_log(tmp_path)
    for _ in range(3):
        log.record("dac.issued", ca="pai-1")
    path = tmp_path / "audit" / "audit.log"
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:1]))
    # WHEN another record is written THEN it is refused, so the evidence is not buried
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path).record("dac.issued", ca="pai-1")
    assert err.value.code == "audit.truncated"
    assert len(path.read_bytes().splitlines()) == 1


def test_cutting_the_last_append_is_undone_by_the_next_writer(tmp_path: Path) -> None:
    # GIVEN the last append removed (its bytes are still announced by the signed head)
    log = new_audit_log(tmp_path)
    for _ in range(3):
        log.record("dac.issued", ca="pai-1")
    path = tmp_path / "audit" / "audit.log"
    whole = path.read_bytes()
    path.write_bytes(b"".join(whole.splitlines(keepends=True)[:2]))
    assert verify_log(tmp_path / "audit").problem.code == "audit.incomplete_append"  # type: ignore[union-attr]
    # WHEN the next record is written THEN the removed record is back, byte for byte, before it
    AuditLog(tmp_path).record("key.accessed", ca="pai-1")
    assert path.read_bytes().startswith(whole)
    assert verify_log(tmp_path / "audit").ok


def test_append_refuses_when_head_was_deleted(tmp_path: Path) -> None:
    new_audit_log(tmp_path).record("dac.issued", ca="pai-1")
    (tmp_path / "audit" / "head").unlink()
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path).record("dac.issued", ca="pai-1")
    assert err.value.code == "audit.head_missing"


def test_append_refuses_a_forged_head(tmp_path: Path) -> None:
    new_audit_log(tmp_path).record("dac.issued", ca="pai-1")
    head_path = tmp_path / "audit" / "head"
    head = json.loads(head_path.read_bytes())
    head["sealed"] = 0
    head_path.write_text(json.dumps(head))
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path).record("dac.issued", ca="pai-1")
    assert err.value.code == "audit.head_invalid"


def test_naive_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AuditError) as err:
        new_audit_log(tmp_path).record("dac.issued", now=datetime(2026, 1, 1))  # noqa: DTZ001
    assert err.value.code == "audit.naive_time"


def _shape(body: dict) -> dict:
    """A record without what depends on the home's audit key or a seal's (randomised) ECDSA signature."""
    return {k: v for k, v in body.items() if k not in ("prev", "sig", "head", "key")}


def test_record_many_writes_what_consecutive_records_would(tmp_path: Path) -> None:
    # GIVEN two homes sealing every 10 records, one written record by record, one in groups of 7
    one, many = tmp_path / "one", tmp_path / "many"
    records = [("dac.issued", {"ca": "pai-1", "serial": f"{i:02X}", "recovered": None}) for i in range(25)]
    log_one = new_audit_log(one, seal_every=10)
    for event, fields in records:
        log_one.record(event, operator="bob", now=NOW, **fields)
    log_many = new_audit_log(many, seal_every=10)
    returned = []
    for start in range(0, len(records), 7):
        returned += log_many.record_many(records[start : start + 7], operator="bob", now=NOW)
    # THEN the logs have the same records and seals at the same seqs, chained line to line
    assert [_shape(b) for b in lines(many)] == [_shape(b) for b in lines(one)]
    raw = (many / "audit" / "audit.log").read_bytes().splitlines(keepends=True)
    assert [json.loads(x)["prev"] for x in raw] == [GENESIS] + [hashlib.sha256(x).hexdigest() for x in raw[:-1]]
    assert [(b["seq"], b["first"], b["last"]) for b in lines(many) if b["event"] == "audit.sealed"] == [(10, 0, 9), (21, 11, 20)]
    # AND the returned records are the non-seal ones, with their seqs; `audit verify` passes and appends continue
    assert [r.seq for r in returned] == [b["seq"] for b in lines(many) if b["event"] == "dac.issued"]
    assert [r.line for r in returned] == [x for x in raw if json.loads(x)["event"] == "dac.issued"]
    assert verify_log(many / "audit").ok
    assert AuditLog(many).record("key.accessed", ca="pai-1").seq == 27
    assert AuditLog(many).record_many([]) == []
    assert verify_log(many / "audit").ok


def test_record_many_refuses_reserved_names_before_writing(tmp_path: Path) -> None:
    log = new_audit_log(tmp_path)
    for batch in ([("dac.issued", {"ca": "a"}), ("audit.sealed", {})], [("dac.issued", {"seq": 1})]):
        with pytest.raises(AuditError):
            log.record_many(batch)
    assert log.records() == []


class _Killed(BaseException):
    """Stands for SIGKILL in the middle of a write."""


@pytest.mark.parametrize("how", ["killed", "disk_full"])
@pytest.mark.parametrize("cut", [0, 1, 57, 300])
def test_an_append_cut_at_any_byte_is_finished_by_the_next_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, cut: int
) -> None:
    # GIVEN a log sealing every 3 records, and an append of 4 records (with a seal) cut after `cut` bytes
    from matter_pki.storage import local as storage

    log = new_audit_log(tmp_path, seal_every=3)
    log.record("key.accessed", ca="paa")
    real = storage.os_write
    calls = {"n": 0}

    def cut_write(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 2:  # the head went through; the log write is cut
            real(fd, bytes(data[:cut]))
            raise _Killed if how == "killed" else OSError(28, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(storage, "os_write", cut_write)
    with pytest.raises((_Killed, StorageError)) as err:
        AuditLog(tmp_path, seal_every=3).record_many([("dac.issued", {"serial": f"0{i}"}) for i in range(4)])
    monkeypatch.setattr(storage, "os_write", real)
    if how == "disk_full":
        assert err.value.code == "storage.disk_full"  # type: ignore[union-attr]
    # THEN verify calls it an interrupted append (not tampering), and the next writer finishes it
    assert verify_log(tmp_path / "audit").problem.code == "audit.incomplete_append"  # type: ignore[union-attr]
    AuditLog(tmp_path, seal_every=3).record("key.accessed", ca="pai-1")
    report = verify_log(tmp_path / "audit")
    assert report.ok, report.problem
    events = [r.event for r in AuditLog(tmp_path).records()]
    assert events.count("dac.issued") == 4 and "key.accessed" in events[-2:]


def test_head_files_that_are_not_plain_small_files_are_refused(tmp_path: Path) -> None:
    new_audit_log(tmp_path).record("paa.created", ca="paa")
    head = tmp_path / "audit" / "head"
    saved = head.read_bytes()
    head.write_bytes(b" " * (17 * 1024 * 1024))
    with pytest.raises(AuditError) as err:
        AuditLog(tmp_path).record("key.accessed")
    assert err.value.code == "audit.oversized"
    head.unlink()
    head.symlink_to("/dev/zero")
    with pytest.raises(AuditError) as err:
        verify_log(tmp_path / "audit")
    assert err.value.code == "audit.not_regular"
    head.unlink()
    head.write_bytes(saved)
    assert verify_log(tmp_path / "audit").ok
