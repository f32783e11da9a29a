"""Delegated CRL signers live in the journaled ledger: created and revoked through one commit each, announced once,
covered by the ledger/audit cross-check (an edit, a rollback or a cut announcement is found), rebuilt and migrated
with their CRL numbering."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509

from matter_pki.storage import local as storage
from tests.functional.test_local_faults import _DiskFull
from tests.functional.test_local_tamper import code_of, copy_ledger, restore_ledger
from tests.functional.test_local_upgrade import make_legacy
from tests.unit.test_local_fixtures import cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

URL = "https://crl.example.com/matter/signer.crl"


def _ok(args: list[str], env: dict[str, str]) -> Any:
    result = run_cli([*args, "--format", "json"], env)
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return json.loads(result.stdout)


def _events(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (home / "audit" / "audit.log").read_text().splitlines()]


def _home_with_signers(tmp_path: Path) -> dict[str, str]:
    """pai-1 with 3 DACs in out/, signers s1 (revoked) and s2 (one CRL published)."""
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 3)
    _ok(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env)
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s1"], env)
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s2"], env)
    _ok(["crl-signer", "revoke", "--id", "s1", "--reason", "keyCompromise"], env)
    assert _ok(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)["crl_number"] == 1
    return env


def test_signers_are_journaled_and_announced_once(tmp_path: Path) -> None:
    # GIVEN two signers, one revoked, one that signed a CRL
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    # THEN each creation and the revocation are announced exactly once, and the home verifies
    events = _events(home)
    assert sorted(e["signer"] for e in events if e["event"] == "crl_signer.created") == ["s1", "s2"]
    assert [(e["signer"], e["reason"]) for e in events if e["event"] == "crl_signer.revoked"] == [("s1", "keyCompromise")]
    verified = run_cli(["ledger", "verify", "--format", "json"], env)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"], verified.output
    # AND revoking again with the same reason reports it (exit 0), nothing is announced twice
    again = run_cli(["crl-signer", "revoke", "--id", "s1", "--reason", "keyCompromise"], env)
    assert again.exit_code == 0 and again.stdout.startswith("already revoked"), again.output
    assert [e["event"] for e in _events(home)].count("crl_signer.revoked") == 1
    # AND the PAI's direct CRL lists the revoked signer
    _ok(["crl", "publish", "--pai", "pai-1"], env)
    s1 = x509.load_pem_x509_certificate((home / "crl-signers" / "s1" / "cert.pem").read_bytes())
    crl = x509.load_der_x509_crl((home / "crl" / "pai-1.crl").read_bytes())
    assert [r.serial_number for r in crl] == [s1.serial_number]


def test_an_edited_signer_row_or_an_undone_signer_revocation_is_refused(tmp_path: Path) -> None:
    # GIVEN the home, and its ledger edited by hand: the revocation of s1 deleted (an "un-revocation")
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    db = sqlite3.connect(home / "ledger.sqlite")
    with db:
        db.execute("DELETE FROM revocations WHERE ca = 'pai-1' AND serial = "
                   "(SELECT serial FROM crl_signers WHERE id = 's1')")  # fmt: skip
    db.close()
    # WHEN the revoked signer is asked to sign again THEN the ledger is refused (nothing signed)
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", URL], env)
    assert refused.exit_code == 1 and code_of(refused) == "ledger.corrupt", refused.output
    assert not (home / "crl" / "s1.crl").exists()
    assert run_cli(["ledger", "verify"], env).exit_code == 1


def test_a_ledger_copy_from_before_a_signer_revocation_is_refused(tmp_path: Path) -> None:
    # GIVEN a copy of the ledger taken while s2 was still valid, then s2 revoked
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    copy_ledger(home, tmp_path / "old.sqlite")
    _ok(["crl-signer", "revoke", "--id", "s2", "--reason", "superseded"], env)
    # WHEN the old copy is put back (s2 valid again in it)
    restore_ledger(home, tmp_path / "old.sqlite")
    # THEN s2 cannot sign: the ledger is behind the signed audit log
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)
    assert refused.exit_code == 1 and code_of(refused) == "ledger.rollback", refused.output


def test_a_signer_revocation_whose_announcement_was_cut_is_announced_by_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the disk full while the revocation of s2 is announced (its ledger transaction went through)
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setattr(storage, "os_write", _DiskFull(0))
    failed = run_cli(["crl-signer", "revoke", "--id", "s2", "--reason", "superseded"], env)
    monkeypatch.undo()
    # THEN the error says the revocation is in the ledger, and it holds: s2 no longer signs
    assert failed.exit_code == 3 and "error[storage.disk_full]" in failed.stderr and "recorded in the ledger" in failed.stderr
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)
    assert refused.exit_code == 2 and "error[input.signer_revoked]" in refused.stderr
    # AND that next command announced it, once, as recovered; the log and the ledger verify
    revoked = [e for e in _events(home) if e["event"] == "crl_signer.revoked" and e["signer"] == "s2"]
    assert [(e["reason"], e.get("recovered")) for e in revoked] == [("superseded", True)]
    assert run_cli(["ledger", "verify"], env).exit_code == 0
    assert run_cli(["audit", "verify"], env).exit_code == 0


def test_a_rebuilt_ledger_keeps_the_signers_and_their_crl_numbers(tmp_path: Path) -> None:
    # GIVEN the home, s2's CRL published twice (numbers 1, 2), then the ledger lost
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    assert _ok(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)["crl_number"] == 2
    for suffix in ("", "-wal", "-shm"):
        (home / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    # WHEN it is rebuilt from the audit log and the issued files
    rebuilt = _ok(["ledger", "rebuild", "--from", str(tmp_path / "out"), "--reason", "disk lost"], env)
    # THEN both signers are back, s1 still revoked; s2's next CRL takes number 3 (never 1 again)
    assert rebuilt["crl_signers"] == 2
    listed = {r["id"]: r["status"] for r in _ok(["crl-signer", "list"], env)}
    assert listed == {"s1": "revoked", "s2": "issued"}
    assert _ok(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)["crl_number"] == 3
    assert _ok(["crl", "publish", "--pai", "pai-1"], env)["crl_number"] == 1  # the PAI's own numbering
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", URL], env)
    assert refused.exit_code == 2 and "error[input.signer_revoked]" in refused.stderr
    assert run_cli(["ledger", "verify"], env).exit_code == 0


_V1_SIGNERS = """
CREATE TABLE crl_signers (
    id TEXT PRIMARY KEY, issuer TEXT NOT NULL, serial TEXT NOT NULL, subject TEXT NOT NULL, not_before TEXT NOT NULL,
    not_after TEXT NOT NULL, issued_at TEXT NOT NULL, operator TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'revoked')), revocation_reason TEXT,
    revoked_at TEXT, der BLOB NOT NULL, UNIQUE (issuer, serial)
);
"""


def test_home_upgrade_migrates_the_signers_of_a_format_1_ledger(tmp_path: Path) -> None:
    # GIVEN a first-version home whose ledger kept signers in a mutable table (s1 revoked) and
    # s2's CRL numbering under "signer:s2"
    env = _home_with_signers(tmp_path)
    home = tmp_path / "home"
    db = sqlite3.connect(home / "ledger.sqlite")
    signers = db.execute(
        "SELECT s.id, s.issuer, s.serial, s.subject, s.not_before, s.not_after, s.issued_at, s.operator, "
        "CASE WHEN r.serial IS NULL THEN 'issued' ELSE 'revoked' END, r.reason, r.revoked_at, s.der "
        "FROM crl_signers s LEFT JOIN revocations r ON r.ca = s.issuer AND r.serial = s.serial ORDER BY s.rowid"
    ).fetchall()
    db.close()
    make_legacy(home, sign_head=True)
    old = sqlite3.connect(home / "ledger.sqlite")
    old.executescript(_V1_SIGNERS)
    old.executemany("INSERT INTO crl_signers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", signers)
    old.commit()
    old.close()
    # WHEN the home is upgraded
    upgraded = run_cli(["home", "upgrade"], env)
    assert upgraded.exit_code == 0, upgraded.output
    # THEN the signers are in the journaled ledger with their state, and s2's numbering goes on
    listed = {r["id"]: r["status"] for r in _ok(["crl-signer", "list"], env)}
    assert listed == {"s1": "revoked", "s2": "issued"}
    assert _ok(["crl", "publish", "--pai", "pai-1", "--signer", "s2", "--url", URL], env)["crl_number"] == 2
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", URL], env)
    assert refused.exit_code == 2 and "error[input.signer_revoked]" in refused.stderr


def test_a_new_signer_whose_key_store_hands_back_a_key_already_in_use_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a home with a DAC and a signer s1, and a key store that returns a key it already holds (a device key,
    # the PAI's key, s1's key) instead of a new one
    from matter_pki.errors import IssuanceError
    from matter_pki.local import crl_signers
    from matter_pki.local.home import KeyRef
    from tests.unit.test_local_fixtures import NOW, good_csr

    pki = make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    home = tmp_path / "home"
    device_csr = good_csr()
    (tmp_path / "dev.csr").write_bytes(device_csr)
    _ok(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "dev.csr"), "--out", str(tmp_path / "out")], env)
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s1"], env)
    in_use = {
        "device key": x509.load_pem_x509_csr(device_csr).public_key(),
        "PAI key": pki.home.load_cert("pai-1").public_key(),
        "signer key": x509.load_pem_x509_certificate((home / "crl-signers" / "s1" / "cert.pem").read_bytes()).public_key(),
        "revoked device key": _revoked_device_key(tmp_path, env),  # never certified again, as a signer neither
    }
    before = _events(home)
    for what, public in in_use.items():
        monkeypatch.setattr(crl_signers, "_generate_key", lambda *_a, public=public: (KeyRef(store="file", file="key.pem"), public))
        # WHEN a signer is created THEN it is refused as a reused key, and nothing of it remains
        with pytest.raises(IssuanceError) as err:
            crl_signers.create_crl_signer(pki.home, issuer="pai-1", secrets=pki.secrets, now=NOW, signer_id="s9")
        assert err.value.code == "issue.key_reused", what
        assert not (home / "crl-signers" / "s9").exists(), what
    db = sqlite3.connect(home / "ledger.sqlite")
    assert [r[0] for r in db.execute("SELECT id FROM crl_signers")] == ["s1"]
    db.close()
    assert [e["event"] for e in _events(home)[len(before):] if e["event"] == "crl_signer.created"] == []
    assert run_cli(["ledger", "verify"], env).exit_code == 0


def _revoked_device_key(tmp_path: Path, env: dict[str, str]) -> Any:
    """The public key of a device whose DAC was issued and then revoked."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.unit.test_local_fixtures import csr_for

    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "rev.csr").write_bytes(csr_for(key))
    _ok(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "rev.csr"), "--out", str(tmp_path / "out")], env)
    serial = x509.load_pem_x509_certificate((tmp_path / "out" / "rev.pem").read_bytes()).serial_number
    _ok(["revoke", "--serial", f"{serial:X}", "--reason", "keyCompromise"], env)
    return key.public_key()
