"""Key files at rest: every key the home writes uses the key-file KDF; weak files are refused until `home rekey`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization

from matter_pki.backends import keyfile
from matter_pki.errors import StorageError
from matter_pki.local import rekey
from matter_pki.local.home import PkiHome
from matter_pki.local.keys import Secrets
from matter_pki.local.state import open_audit
from matter_pki.serve.tls import ServePaths, ensure_server_cert
from tests.functional.test_local_upgrade import make_legacy
from tests.unit.test_local_fixtures import PASSPHRASE, cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

STATION_PASS = "the station's own secret"


def _events(home: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (home / "audit" / "audit.log").read_text().splitlines()]


def _weaken(path: Path) -> None:
    """Re-encrypt a key file as earlier versions wrote it (BestAvailableEncryption: PBKDF2 x 2048)."""
    key = keyfile.load_key(path, PASSPHRASE.encode())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSPHRASE.encode())))  # fmt: skip


def _kdf(path: Path) -> keyfile.KeyFileKdf | None:
    return keyfile.key_file_kdf(path.read_bytes())


CURRENT = keyfile.KeyFileKdf("pbkdf2", "hmacWithSHA256", keyfile.PBKDF2_ITERATIONS)


def test_every_key_file_the_home_writes_uses_the_key_file_kdf(tmp_path: Path) -> None:
    # GIVEN a home with a PAA, a PAI, a CRL signer, a station (service CA, station key) and a server certificate
    pki = make_pki(tmp_path / "home")
    env = cli_env(pki.home.path, MATTER_PKI_STATION_PASSPHRASE=STATION_PASS)
    assert run_cli(["crl-signer", "create", "--pai", "pai-1", "--id", "s1"], env).exit_code == 0
    added = run_cli(["station", "add", "line-1", "--pai", "pai-1", "--pid", "8000", "--out", str(tmp_path / "st")], env)
    assert added.exit_code == 0, added.output
    ensure_server_cert(pki.home, ServePaths.of(pki.home), PASSPHRASE.encode(), ["localhost"], datetime.now(UTC),
                       open_audit(pki.home, pki.secrets))  # fmt: skip
    # THEN every encrypted key file in the home, and the station's, uses PBKDF2-HMAC-SHA256 at the configured count
    files = [p for p in [*pki.home.path.rglob("*.pem"), tmp_path / "st" / "station.key"]
             if keyfile.ENCRYPTED_PEM_LABEL in p.read_bytes()]  # fmt: skip
    names = sorted(str(p.relative_to(tmp_path)) for p in files)
    assert names == sorted([
        "home/audit/audit-key.pem", "home/ca/paa/key.pem", "home/ca/pai-1/key.pem", "home/crl-signers/s1/key.pem",
        "home/serve/ca-key.pem", "home/serve/server-key.pem", "st/station.key",
    ])  # fmt: skip
    assert {str(p.relative_to(tmp_path)): _kdf(p) for p in files} == {n: CURRENT for n in names}
    # AND home rekey finds nothing to do (and announces nothing)
    before = len(_events(pki.home.path))
    done = run_cli(["home", "rekey", "--format", "json"], env)
    assert done.exit_code == 0 and json.loads(done.stdout)["rekeyed"] == [], done.output
    assert len(_events(pki.home.path)) == before


def test_weak_key_files_are_refused_until_home_rekey_re_encrypts_them_audited(tmp_path: Path) -> None:
    # GIVEN a home whose PAI key and audit key files were written by an earlier version (PBKDF2 x 2048)
    pki = make_pki(tmp_path / "home")
    home = pki.home.path
    env = cli_env(home)
    for path in (home / "ca" / "pai-1" / "key.pem", home / "audit" / "audit-key.pem"):
        _weaken(path)
    write_csrs(tmp_path / "csrs", 2)
    issue = ["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")]
    log_before = (home / "audit" / "audit.log").read_bytes()
    # WHEN a DAC is asked for THEN it is refused with the fix named, nothing issued, nothing appended
    refused = run_cli(issue, env)
    assert refused.exit_code == 2 and "error[key.kdf_weak]" in refused.stderr and "home rekey" in refused.stderr
    assert not list((tmp_path / "out").glob("*.pem")) if (tmp_path / "out").exists() else True
    assert (home / "audit" / "audit.log").read_bytes() == log_before
    # WHEN the home is re-keyed
    done = run_cli(["home", "rekey", "--format", "json"], env)
    # THEN exactly those two files are re-encrypted, announced first in one record, and the keys are unchanged
    assert done.exit_code == 0, done.output
    body = json.loads(done.stdout)
    assert body["rekeyed"] == ["ca/pai-1/key.pem", "audit/audit-key.pem"] and body["kdf"] == rekey.current_kdf()
    assert [e["files"] for e in _events(home) if e["event"] == rekey.REKEY_EVENT] == [body["rekeyed"]]
    assert _kdf(home / "ca" / "pai-1" / "key.pem") == CURRENT and _kdf(home / "audit" / "audit-key.pem") == CURRENT
    assert run_cli(["audit", "verify"], env).exit_code == 0
    # AND the CA issues again (with the same key: the DACs chain to the PAI)
    issued = run_cli([*issue, "--format", "json"], env)
    assert issued.exit_code == 0 and json.loads(issued.stdout)["counts"]["issued"] == 2, issued.output
    # AND a second rekey has nothing to do and announces nothing
    again = run_cli(["home", "rekey"], env)
    assert again.exit_code == 0 and "already uses" in again.stdout
    assert len([e for e in _events(home) if e["event"] == rekey.REKEY_EVENT]) == 1


def test_rekey_with_a_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "home")
    key_file = pki.home.path / "ca" / "pai-1" / "key.pem"
    _weaken(key_file)
    before = key_file.read_bytes(), (pki.home.path / "audit" / "audit.log").read_bytes()
    result = run_cli(["home", "rekey"], cli_env(pki.home.path, MATTER_PKI_PASSPHRASE="not the passphrase"))
    assert result.exit_code == 1 and "error[key.passphrase_wrong]" in result.stderr
    assert (key_file.read_bytes(), (pki.home.path / "audit" / "audit.log").read_bytes()) == before


def test_a_rekey_that_fails_after_its_announcement_is_finished_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN three weak key files, and a disk that fails the second rewrite
    pki = make_pki(tmp_path / "home")
    home = pki.home.path
    weak = [home / "ca" / "paa" / "key.pem", home / "ca" / "pai-1" / "key.pem", home / "audit" / "audit-key.pem"]
    for path in weak:
        _weaken(path)
    calls: list[Path] = []
    real = rekey.atomic_write

    def failing(path: Path, data: bytes, **kw: Any) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise StorageError("storage.disk_full", "no space left on device")
        real(path, data, **kw)

    monkeypatch.setattr(rekey, "atomic_write", failing)
    with pytest.raises(StorageError):
        rekey.rekey_home(PkiHome(home), Secrets.fixed(PASSPHRASE.encode()))
    # THEN the announcement names all three; the first file is re-encrypted, the other two untouched and still weak
    assert [e["files"] for e in _events(home) if e["event"] == rekey.REKEY_EVENT] == [
        ["ca/paa/key.pem", "ca/pai-1/key.pem", "audit/audit-key.pem"]
    ]
    assert [bool(_kdf(p) and _kdf(p).strong) for p in weak] == [True, False, False]  # type: ignore[union-attr]
    # WHEN the command runs again THEN it finishes, announcing what it still re-encrypts
    monkeypatch.setattr(rekey, "atomic_write", real)
    report = rekey.rekey_home(PkiHome(home), Secrets.fixed(PASSPHRASE.encode()))
    assert report.rekeyed == ["ca/pai-1/key.pem", "audit/audit-key.pem"]
    assert all(_kdf(p) == CURRENT for p in weak)
    assert run_cli(["audit", "verify"], cli_env(home)).exit_code == 0


def test_home_upgrade_re_encrypts_the_key_files_of_an_earlier_version(tmp_path: Path) -> None:
    # GIVEN a home of the first version: format-1 ledger, version-1 head, no binding, and weak key files
    pki = make_pki(tmp_path / "home")
    home = pki.home.path
    env = cli_env(home)
    make_legacy(home, sign_head=False)
    for path in (home / "ca" / "paa" / "key.pem", home / "ca" / "pai-1" / "key.pem", home / "audit" / "audit-key.pem"):
        _weaken(path)
    # WHEN it is upgraded THEN the key files are re-encrypted too, and the home verifies and issues
    upgraded = run_cli(["home", "upgrade"], env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "re-encrypted 3 key file(s)" in upgraded.stdout
    assert run_cli(["audit", "verify"], env).exit_code == 0
    write_csrs(tmp_path / "csrs", 1)
    issued = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "o")], env)
    assert issued.exit_code == 0, issued.output
