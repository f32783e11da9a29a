"""``matter-pki home upgrade``: homes made before device-key identity (format-1 ledger, no audit key binding,
a PKCS#11 home whose log was never signed) are refused until upgraded, then work as new ones."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from matter_pki.audit.seal import AuditKey, Head, fingerprint, head_message, sign
from tests.unit.test_local_fixtures import PASSPHRASE, Token, cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE certificates (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ca TEXT NOT NULL, serial TEXT NOT NULL, subject TEXT NOT NULL,
    pid INTEGER, csr_sha256 TEXT, not_before TEXT NOT NULL, not_after TEXT NOT NULL, issued_at TEXT NOT NULL,
    operator TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'issued', revocation_reason TEXT, revoked_at TEXT,
    der BLOB NOT NULL, audit_seq INTEGER, UNIQUE (ca, serial)
);
CREATE UNIQUE INDEX certificates_dac_csr ON certificates (ca, csr_sha256) WHERE kind = 'dac';
CREATE INDEX certificates_serial ON certificates (serial);
CREATE TABLE crl_state (ca TEXT PRIMARY KEY, crl_number INTEGER NOT NULL, published_at TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
"""


def make_legacy(home: Path, *, sign_head: bool) -> None:
    """Turn a current home into what the first version left: a format-1 ledger, a version-1 head, no binding."""
    db = sqlite3.connect(home / "ledger.sqlite")
    rows = db.execute(
        "SELECT c.kind, c.ca, c.serial, c.subject, c.pid, c.csr_sha256, c.not_before, c.not_after, c.issued_at, "
        "c.operator, CASE WHEN r.serial IS NULL THEN 'issued' ELSE 'revoked' END, r.reason, r.revoked_at, c.der, "
        "c.audit_seq FROM certificates c LEFT JOIN revocations r ON r.ca = c.ca AND r.serial = c.serial ORDER BY c.id"
    ).fetchall()
    crl = db.execute("SELECT ca, MAX(number), MAX(issued_at) FROM crl_numbers GROUP BY ca").fetchall()
    db.close()
    for suffix in ("", "-wal", "-shm"):
        (home / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    old = sqlite3.connect(home / "ledger.sqlite")
    old.executescript(_V1_SCHEMA)
    old.executemany(
        "INSERT INTO certificates (kind, ca, serial, subject, pid, csr_sha256, not_before, not_after, issued_at, operator, "
        "status, revocation_reason, revoked_at, der, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows,
    )
    old.executemany("INSERT INTO crl_state VALUES (?, ?, ?)", crl)
    old.commit()
    old.close()
    audit = home / "audit"
    (audit / "binding.json").unlink()
    head = Head.parse((audit / "head").read_bytes())
    if sign_head:
        key = AuditKey(audit, PASSPHRASE.encode()).private_key()
        v1 = Head(head.seq, head.hash, head.sealed, fingerprint(key.public_key()),
                  sign(key, head_message(head.seq, head.hash, head.sealed)))
        (audit / "head").write_bytes(v1.to_json())


def test_a_format_1_home_is_refused_until_upgraded_then_keeps_its_dacs(tmp_path: Path) -> None:
    # GIVEN a home of the first version with three DACs, one revoked, one CRL published
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 3)
    issue = ["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs")]
    assert run_cli([*issue, "--out", str(tmp_path / "out")], env).exit_code == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("dev-*.pem")}
    serial = json.loads(run_cli(["pai", "list", "--format", "json"], env).stdout)[0]["serial"]
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    dac_serial = db.execute("SELECT serial FROM certificates WHERE kind = 'dac' ORDER BY id LIMIT 1").fetchone()[0]
    db.close()
    assert run_cli(["revoke", "--serial", dac_serial, "--reason", "keyCompromise"], env).exit_code == 0
    assert run_cli(["crl", "publish", "--pai", "pai-1"], env).exit_code == 0
    make_legacy(tmp_path / "home", sign_head=True)
    # WHEN anything that changes state runs THEN it is refused with the migration command
    refused = run_cli([*issue, "--out", str(tmp_path / "out2")], env)
    # (exit 2: the home's configuration, like a missing home or passphrase; the registry classes it "usage")
    assert refused.exit_code == 2 and "error[ledger.old_format]" in refused.stderr and "home upgrade" in refused.stderr
    # WHEN the home is upgraded
    upgraded = run_cli(["home", "upgrade"], env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "migrated the ledger" in upgraded.stdout and "certified the audit key" in upgraded.stdout
    assert run_cli(["home", "upgrade"], env).stdout.strip() == "the home is up to date"
    # THEN it verifies, re-delivers the same DACs, keeps the revocation and the CRL numbering
    assert run_cli(["ledger", "verify"], env).exit_code == 0
    assert run_cli(["audit", "verify"], env).exit_code == 0
    again = run_cli([*issue, "--out", str(tmp_path / "out2"), "--format", "json"], env)
    assert json.loads(again.stdout)["counts"] == {"issued": 0, "reused": 2, "skipped": 0, "refused": 1}
    assert {p.name: p.read_bytes() for p in (tmp_path / "out2").glob("dev-*.pem")} == {
        k: v for k, v in first.items() if (tmp_path / "out2" / k).exists()
    }
    published = json.loads(run_cli(["crl", "publish", "--pai", "pai-1", "--format", "json"], env).stdout)
    assert (published["crl_number"], published["revoked"]) == (2, 1)
    assert serial


def test_a_pkcs11_home_without_an_audit_key_gets_one_on_the_token(tmp_path: Path, softhsm_token: Token) -> None:
    # GIVEN an HSM home of the first version: no passphrase ever, so no audit key and an unsigned log
    env = cli_env(tmp_path / "home", **softhsm_token.env())
    del env["MATTER_PKI_PASSPHRASE"]
    assert run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env).exit_code == 0
    assert run_cli(["pai", "create", "--pid", "8000"], env).exit_code == 0
    audit = tmp_path / "home" / "audit"
    make_legacy(tmp_path / "home", sign_head=False)
    for name in ("audit-key.json", "audit-key.pub.pem", "head"):
        (audit / name).unlink()
    assert run_cli(["audit", "verify"], env).exit_code == 1
    # WHEN it is upgraded with the token PIN alone
    upgraded = run_cli(["home", "upgrade"], env)
    assert upgraded.exit_code == 0, upgraded.output
    # THEN its audit key lives on the token, certified by the PAA key, and the log is signed and verifies
    assert json.loads((audit / "audit-key.json").read_text())["store"] == "pkcs11"
    assert not (audit / "audit-key.pem").exists()
    assert run_cli(["audit", "verify"], env).exit_code == 0
    assert run_cli(["ledger", "verify"], env).exit_code == 0
    write_csrs(tmp_path / "csrs", 2)
    assert run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "o")], env).exit_code == 0
    assert run_cli(["audit", "verify"], env).exit_code == 0


def test_a_new_pkcs11_home_has_a_signed_audit_log_without_any_passphrase(tmp_path: Path, softhsm_token: Token) -> None:
    env = cli_env(tmp_path / "home", **softhsm_token.env())
    del env["MATTER_PKI_PASSPHRASE"]
    assert run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env).exit_code == 0
    assert run_cli(["pai", "create", "--pid", "8000"], env).exit_code == 0
    verify = run_cli(["audit", "verify"], env)
    assert verify.exit_code == 0 and verify.output.startswith("audit log intact"), verify.output
    assert run_cli(["audit", "seal"], env).exit_code == 0
    assert run_cli(["audit", "verify"], env).exit_code == 0



