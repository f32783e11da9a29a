"""The ledger and the signed audit log vouch for each other: deleting, emptying, rolling back or editing either
one is refused with a coded error (and ``ledger rebuild`` recovers from the log and the issued files)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from matter_pki.audit.seal import AuditKey
from tests.unit.test_local_fixtures import CLI_PREFIX, cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def issued(tmp_path: Path) -> dict[str, str]:
    """A home with 6 DACs issued into out/ (one revoked, the PAI CRL published once); returns the CLI env."""
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 6)
    assert run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env).exit_code == 0
    serial = x509.load_pem_x509_certificate((tmp_path / "out" / "dev-0000.pem").read_bytes()).serial_number
    assert run_cli(["revoke", "--serial", f"{serial:X}", "--reason", "keyCompromise"], env).exit_code == 0
    assert run_cli(["crl", "publish", "--pai", "pai-1"], env).exit_code == 0
    return env


def checkpointed(home: Path) -> Path:
    """Fold the WAL into ledger.sqlite (as a copy taken with the CA at rest would be) and return its path."""
    db = sqlite3.connect(home / "ledger.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return home / "ledger.sqlite"


def copy_ledger(home: Path, to: Path) -> None:
    shutil.copy(checkpointed(home), to)


def restore_ledger(home: Path, source: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (home / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(source, home / "ledger.sqlite")


def dac_count(home: Path) -> int:
    return sqlite3.connect(home / "ledger.sqlite").execute("SELECT COUNT(*) FROM certificates WHERE kind='dac'").fetchone()[0]


def code_of(result: object) -> str:
    text = getattr(result, "stderr", "") or getattr(result, "output", "")
    return text.split("]", 1)[0].split("[", 1)[-1]


def reissue(env: dict[str, str], tmp_path: Path, out: str = "again"):  # type: ignore[no-untyped-def]
    return run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / out)], env)


def test_an_intact_home_verifies(tmp_path: Path, issued: dict[str, str]) -> None:
    result = run_cli(["ledger", "verify"], issued)
    assert result.exit_code == 0, result.output
    assert "6 DACs each announced once" in result.output
    assert run_cli(["audit", "verify"], issued).exit_code == 0


@pytest.mark.parametrize("how", ["deleted", "emptied"])
def test_a_missing_ledger_is_refused_and_rebuilt_from_the_log_and_the_files(
    tmp_path: Path, issued: dict[str, str], how: str
) -> None:
    home = tmp_path / "home"
    serials = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("dev-*.pem")}
    # GIVEN the ledger deleted or emptied
    for suffix in ("", "-wal", "-shm"):
        (home / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    if how == "emptied":
        (home / "ledger.sqlite").write_bytes(b"")
    # WHEN DACs are asked for again, a DAC revoked, a CRL published
    results = [reissue(issued, tmp_path), run_cli(["revoke", "--serial", "01", "--reason", "superseded"], issued),
               run_cli(["crl", "publish", "--pai", "pai-1"], issued)]
    # THEN each is refused with ledger.missing and names the recovery command; nothing was issued
    for result in results:
        assert result.exit_code != 0 and code_of(result) == "ledger.missing", result.output
        assert "matter-pki ledger rebuild" in result.stderr
    assert not (tmp_path / "again").exists() or not list((tmp_path / "again").glob("dev-*"))
    assert run_cli(["ledger", "verify"], issued).exit_code == 1
    # WHEN the operator rebuilds the ledger from the audit log and the issued files
    rebuilt = run_cli(["ledger", "rebuild", "--from", str(tmp_path / "out"), "--reason", "ledger lost"], issued)
    assert rebuilt.exit_code == 0, rebuilt.output
    # THEN the home verifies, the same DACs are re-delivered (never re-signed), the revocation holds
    assert run_cli(["ledger", "verify"], issued).exit_code == 0
    again = json.loads(run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out",
                                str(tmp_path / "again"), "--format", "json"], issued).stdout)
    assert again["counts"] == {"issued": 0, "reused": 5, "skipped": 0, "refused": 1}
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").glob("dev-*.pem")} == {
        k: v for k, v in serials.items() if k != "dev-0000.pem"
    }
    assert json.loads((tmp_path / "again" / "dev-0000.err").read_text())["code"] == "issue.key_revoked"
    published = json.loads(run_cli(["crl", "publish", "--pai", "pai-1", "--format", "json"], issued).stdout)
    assert (published["crl_number"], published["revoked"]) == (2, 1)


def test_an_older_copy_of_the_ledger_is_refused(tmp_path: Path, issued: dict[str, str]) -> None:
    home = tmp_path / "home"
    # GIVEN a copy of the ledger taken now, then more DACs, a revocation and a second CRL
    copy_ledger(home, tmp_path / "old.sqlite")
    write_csrs(tmp_path / "more", 3, prefix="more-")
    run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "more"), "--out", str(tmp_path / "out")], issued)
    serial = x509.load_pem_x509_certificate((tmp_path / "out" / "dev-0001.pem").read_bytes()).serial_number
    assert run_cli(["revoke", "--serial", f"{serial:X}", "--reason", "keyCompromise"], issued).exit_code == 0
    assert json.loads(run_cli(["crl", "publish", "--pai", "pai-1", "--format", "json"], issued).stdout)["crl_number"] == 2
    # WHEN the old copy is put back
    restore_ledger(home, tmp_path / "old.sqlite")
    # THEN issuing, revoking and publishing are refused with ledger.rollback: no re-issue, no un-revocation,
    # no CRL number reused
    for result in (reissue(issued, tmp_path), run_cli(["crl", "publish", "--pai", "pai-1"], issued),
                   run_cli(["revoke", "--serial", "01", "--reason", "superseded"], issued)):
        assert result.exit_code != 0 and code_of(result) == "ledger.rollback", result.output
    assert len(json.loads((home / "crl" / "pai-1.revocation-set.json").read_text())[0]["revoked_serial_numbers"]) == 2
    verify = run_cli(["ledger", "verify", "--format", "json"], issued)
    assert [p["code"] for p in json.loads(verify.stdout)["problems"]] == ["ledger.rollback"]


@pytest.mark.parametrize(
    "edit",
    [
        "DELETE FROM revocations",  # an un-revocation
        "DELETE FROM certificates WHERE kind = 'dac' AND id = (SELECT MAX(id) FROM certificates)",
        "UPDATE certificates SET key_id = '00' || substr(key_id, 3) WHERE kind = 'dac'",
        "UPDATE certificates SET key_tag = key_tag + 1 WHERE kind = 'dac'",  # the row hides from key lookups
        "DELETE FROM crl_numbers",  # CRL numbering restarting at 1
    ],
)
def test_a_hand_edited_ledger_is_refused(tmp_path: Path, issued: dict[str, str], edit: str) -> None:
    home = tmp_path / "home"
    db = sqlite3.connect(checkpointed(home))
    db.execute(edit)
    db.commit()
    db.close()
    before = dac_count(home)
    for result in (reissue(issued, tmp_path), run_cli(["crl", "publish", "--pai", "pai-1"], issued)):
        assert result.exit_code != 0 and code_of(result) == "ledger.corrupt", result.output
    assert dac_count(home) == before
    assert run_cli(["ledger", "verify"], issued).exit_code == 1


def test_a_flipped_byte_in_the_key_index_is_refused(tmp_path: Path, issued: dict[str, str]) -> None:
    # GIVEN one byte changed inside the device-key index entry of a DAC (the table row is untouched)
    home = tmp_path / "home"
    path = checkpointed(home)
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'certificates_key'").fetchone()[0]
    tag = db.execute("SELECT key_tag FROM certificates WHERE kind = 'dac' ORDER BY id LIMIT 1").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    page = data[(root - 1) * page_size : root * page_size]
    at = page.find(tag.to_bytes(8, "big", signed=True))
    assert at > 0, "the key's index entry is in the index page"
    data[(root - 1) * page_size + at + 7] ^= 0x01
    path.write_bytes(bytes(data))
    # WHEN that device asks again THEN the run is refused with ledger.corrupt, and no second DAC exists
    result = reissue(issued, tmp_path)
    assert result.exit_code != 0 and code_of(result) == "ledger.corrupt", result.output
    assert dac_count(home) == 6


def test_a_rolled_back_audit_folder_is_detected_through_the_ledger(tmp_path: Path, issued: dict[str, str]) -> None:
    home = tmp_path / "home"
    # GIVEN a copy of audit/ taken now, then more DACs, then the copy put back (a consistent older log)
    shutil.copytree(home / "audit", tmp_path / "audit-copy")
    write_csrs(tmp_path / "more", 2, prefix="more-")
    assert run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "more"), "--out", str(tmp_path / "out")], issued).exit_code == 0
    shutil.rmtree(home / "audit")
    shutil.copytree(tmp_path / "audit-copy", home / "audit")
    # THEN `audit verify` fails with audit.rollback, and so does every command that would append
    verify = run_cli(["audit", "verify"], issued)
    assert verify.exit_code == 1 and "[audit.rollback]" in verify.output
    result = reissue(issued, tmp_path)
    assert result.exit_code != 0 and code_of(result) == "audit.rollback", result.output


def test_a_deleted_audit_key_is_never_replaced(tmp_path: Path, issued: dict[str, str]) -> None:
    home = tmp_path / "home"
    for name in ("audit-key.pem", "audit-key.pub.pem", "head"):
        (home / "audit" / name).unlink()
    result = reissue(issued, tmp_path)
    assert result.exit_code != 0 and code_of(result) in ("audit.key_missing", "audit.head_missing"), result.output
    assert not (home / "audit" / "audit-key.pem").exists() and not (home / "audit" / "audit-key.pub.pem").exists()


def test_a_forged_log_under_a_new_audit_key_is_visible_without_outside_help(tmp_path: Path, issued: dict[str, str]) -> None:
    # GIVEN the whole audit folder replaced: a new key (the attacker's passphrase) signing a rewritten history
    from matter_pki.audit import AuditLog

    home = tmp_path / "home"
    binding = (home / "audit" / "binding.json").read_bytes()
    shutil.rmtree(home / "audit")
    (home / "audit").mkdir()
    AuditKey(home / "audit", b"mallory").create()
    (home / "audit" / "binding.json").write_bytes(binding)  # the old binding, kept to look genuine
    log = AuditLog(home, passphrase=b"mallory")
    log.record("paa.created", ca="paa", serial="01")
    # THEN audit verify fails: the PAA key never certified this audit key
    result = run_cli(["audit", "verify"], issued)
    assert result.exit_code == 1 and "[audit.key_unbound]" in result.output, result.output


def test_audit_files_that_are_not_regular_files_are_refused(tmp_path: Path, issued: dict[str, str]) -> None:
    home = tmp_path / "home"
    audit = home / "audit"
    for name, make in (("head", "zero"), ("audit.log", "zero"), ("audit.log", "fifo"), ("head", "fifo")):
        saved = tmp_path / f"saved-{name}"
        shutil.move(audit / name, saved)
        if make == "zero":
            (audit / name).symlink_to("/dev/zero")
        else:
            os.mkfifo(audit / name)
        # WHEN verify and an appending command run THEN each ends quickly with a coded refusal
        for args in (["audit", "verify"], ["revoke", "--serial", "01", "--reason", "superseded"]):
            proc = subprocess.run([*CLI_PREFIX, *args], env={**os.environ, **issued}, capture_output=True, text=True,
                                  timeout=60, check=False)
            assert proc.returncode != 0, (name, make, args)
            assert "audit.not_regular" in proc.stderr + proc.stdout, (name, make, args, proc.stderr, proc.stdout)
            assert "Traceback" not in proc.stderr
        (audit / name).unlink()
        shutil.move(saved, audit / name)
    assert run_cli(["audit", "verify"], issued).exit_code == 0
