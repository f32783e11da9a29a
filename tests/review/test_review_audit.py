"""An audit log edited, cut, extended, rolled back or re-keyed by someone without the keys: always seen, never signed over."""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import TYPE_CHECKING

from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home


def _issue(home: Home, tmp_path: Path, tag: str, data: bytes | None = None) -> int:
    folder = tmp_path / f"csr-{tag}"
    write(folder, "dev.csr", data if data is not None else crafted.csr(crafted.key()))
    return home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder / "dev.csr"), "--out", str(tmp_path / f"out-{tag}")).code


def _log(home: Home) -> Path:
    return home.path / "audit" / "audit.log"


def _verify_fails_and_stays_failed(home: Home, tmp_path: Path, tag: str, *, issuing_refused: bool = True) -> None:
    """audit verify exits 1; the next issuing command and `audit seal` do not make it pass."""
    first = home.run("audit", "verify")
    assert first.code == 1, first
    assert home.run("ledger", "verify").code == 1
    if issuing_refused:
        assert _issue(home, tmp_path, tag) != 0
        assert not (tmp_path / f"out-{tag}" / "dev.pem").exists()
    else:
        _issue(home, tmp_path, tag)
    home.run("audit", "seal")
    again = home.run("audit", "verify")
    assert again.code == 1, again
    assert home.run("ledger", "verify").code == 1


def test_an_edited_byte_in_an_old_record_is_seen_and_never_sealed_over(home: Home, tmp_path: Path) -> None:
    """GIVEN an issued DAC WHEN the operator name of its dac.issued record is edited THEN audit verify exits 1,
    and neither a new run nor `audit seal` makes it pass (issuing itself goes on: appends check the tail only)."""
    assert _issue(home, tmp_path, "a") == 0
    log = _log(home)
    log.write_bytes(log.read_bytes().replace(b'"operator":"reviewer"', b'"operator":"reviewes"', 1))
    _verify_fails_and_stays_failed(home, tmp_path, "b", issuing_refused=False)


def test_dropping_the_last_records_and_the_head_is_seen(home: Home, tmp_path: Path) -> None:
    """GIVEN a run that ended with a refusal WHEN the last records and audit/head are deleted THEN audit verify exits 1
    and no later command (issuing or `audit seal`) signs the shortened log."""
    assert _issue(home, tmp_path, "a") == 0
    assert _issue(home, tmp_path, "refused", b"junk") == 1
    log = _log(home)
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-2]))
    (home.path / "audit" / "head").unlink()
    _verify_fails_and_stays_failed(home, tmp_path, "b")


def test_a_record_appended_by_hand_with_a_correct_hash_chain_is_never_signed_over(home: Home, tmp_path: Path) -> None:
    """GIVEN a forged `dac.revoked`-style record appended with the right prev hash and seq WHEN any command runs
    THEN audit verify keeps failing (unsigned tail) until an explicit `audit seal --discard-tail`, which is recorded."""
    assert _issue(home, tmp_path, "a") == 0
    log = _log(home)
    last = log.read_bytes().splitlines(keepends=True)[-1]
    record = {"event": "dac.revoked", "operator": "mallory", "prev": hashlib.sha256(last).hexdigest(),
              "seq": json.loads(last)["seq"] + 1, "serial": "01", "time": "2026-01-01T00:00:00Z"}
    with log.open("ab") as f:
        f.write(json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    run = home.run("audit", "verify")
    assert run.code == 1 and "unsigned" in run.out + run.err, run
    _issue(home, tmp_path, "b")
    assert not (tmp_path / "out-b" / "dev.pem").exists()
    assert home.run("audit", "seal").code != 0
    assert home.run("audit", "verify").code == 1
    run = home.run("audit", "seal", "--discard-tail", "record added by hand")
    assert run.code == 0, run
    assert home.run("audit", "verify").code == 0
    assert b"mallory" not in log.read_bytes().split(b"\n")[-2]
    assert _issue(home, tmp_path, "c") == 0


def test_a_rolled_back_audit_folder_is_refused(home: Home, tmp_path: Path) -> None:
    """GIVEN a copy of audit/ taken before two issuing runs WHEN it is put back THEN audit verify exits 1 and
    issuing refuses (audit.rollback)."""
    saved = tmp_path / "audit-saved"
    shutil.copytree(home.path / "audit", saved)
    assert _issue(home, tmp_path, "a") == 0
    assert _issue(home, tmp_path, "b") == 0
    shutil.rmtree(home.path / "audit")
    shutil.copytree(saved, home.path / "audit")
    run = home.run("audit", "verify")
    assert run.code == 1, run
    folder = tmp_path / "csr-c"
    write(folder, "dev.csr", crafted.csr(crafted.key()))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder / "dev.csr"), "--out", str(tmp_path / "out-c"))
    assert run.code == 1 and run.error_code == "audit.rollback", run


def test_a_deleted_audit_folder_or_key_is_never_replaced_by_a_new_key(home: Home, tmp_path: Path) -> None:
    """GIVEN an issued DAC WHEN audit-key*, head (then the whole audit/) are deleted THEN every command refuses with a
    coded error, no audit key is created, and audit verify exits non-zero."""
    assert _issue(home, tmp_path, "a") == 0
    for f in (home.path / "audit").glob("audit-key*"):
        f.unlink()
    (home.path / "audit" / "head").unlink()
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csr-a" / "dev.csr"), "--out", str(tmp_path / "out-x"))
    assert run.code != 0 and run.error_code is not None and run.error_code.startswith("audit."), run
    assert not list((home.path / "audit").glob("audit-key*"))
    assert home.run("audit", "verify").code != 0
    shutil.rmtree(home.path / "audit")
    for args in (("revoke", "--serial", "01", "--reason", "superseded"), ("crl", "publish", "--pai", "pai-1"), ("audit", "seal")):
        run = home.run(*args)
        assert run.code != 0 and run.error_code is not None, (args, run)
        assert not (home.path / "audit" / "audit-key.pem").exists(), args
    assert home.run("audit", "verify").code != 0


def test_a_forged_history_under_an_attackers_audit_key_is_unbound(home: Home, tmp_path: Path) -> None:
    """GIVEN an attacker who replaces audit/ with a log signed by a key of their own (library-made, own passphrase)
    WHEN `audit verify` runs with nothing but the home THEN exit 1 (the PAA binding does not name that key)."""
    from matter_pki.audit import AuditLog
    from matter_pki.audit.log import AuditKey

    assert _issue(home, tmp_path, "a") == 0
    original = _log(home).read_bytes().splitlines()
    binding = (home.path / "audit" / "binding.json").read_bytes()
    shutil.rmtree(home.path / "audit")
    (home.path / "audit").mkdir(mode=0o700)
    AuditKey(home.path / "audit", b"attacker passphrase").create()
    (home.path / "audit" / "binding.json").write_bytes(binding)
    forged = AuditLog(home.path, passphrase=b"attacker passphrase")
    for line in original:
        rec = json.loads(line)
        fields = {k: v for k, v in rec.items() if k not in ("event", "seq", "prev", "time", "operator", "sig")}
        forged.record(rec["event"], operator=rec.get("operator"), **fields)
    for env in ({}, {"MATTER_PKI_PASSPHRASE": "attacker passphrase"}):
        run = home.run("audit", "verify", **env)
        assert run.code == 1 and "audit.key_unbound" in run.out + run.err, run
    assert _issue(home, tmp_path, "b") != 0
    assert not (tmp_path / "out-b" / "dev.pem").exists()


def test_the_fix_a_failed_verify_names_is_one_that_works(home: Home, tmp_path: Path) -> None:
    """GIVEN audit/head deleted WHEN `audit verify` fails THEN the command its message names is one the CLI accepts for
    that state (`audit seal --adopt-tail REASON`), not a plain `audit seal` that refuses."""
    assert _issue(home, tmp_path, "a") == 0
    (home.path / "audit" / "head").unlink()
    run = home.run("audit", "verify")
    assert run.code == 1 and "audit.head_missing" in run.out + run.err, run
    assert "--adopt-tail" in run.out + run.err, run
    assert home.run("audit", "seal").code != 0
