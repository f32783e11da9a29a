"""``matter-pki station add|list|revoke`` and ``serve`` argument errors, as a user runs them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cryptography import x509

from tests.unit.test_local_fixtures import cli_env, make_pki, run_cli, run_cli_process

if TYPE_CHECKING:
    from pathlib import Path

STATION_PASS = "a different secret"


def test_station_add_list_revoke(tmp_path: Path) -> None:
    # GIVEN a home with pai-1
    pki = make_pki(tmp_path / "home")
    env = cli_env(pki.home.path, MATTER_PKI_STATION_PASSPHRASE=STATION_PASS)
    # WHEN a station is added, listed and revoked
    added = run_cli(["station", "add", "line-1", "--pai", "pai-1", "--pid", "8000", "--quota", "500/day",
                     "--out", str(tmp_path / "line-1"), "--format", "json"], env)
    listed = run_cli(["station", "list", "--format", "json"], env)
    revoked = run_cli(["station", "revoke", "line-1", "--reason", "line closed"], env)
    again = run_cli(["station", "list", "--format", "json"], env)
    text = run_cli(["station", "list"], env)
    # THEN each step reports what it did
    assert added.exit_code == 0, added.output
    body = json.loads(added.output)
    assert (body["name"], body["pai"], body["pids"], body["quota_per_day"]) == ("line-1", "pai-1", ["8000"], 500)
    cert = x509.load_pem_x509_certificate((tmp_path / "line-1" / "station.pem").read_bytes())
    assert f"{cert.serial_number:X}" == body["serial"]
    assert json.loads(listed.output)[0]["status"] == "active"
    assert revoked.exit_code == 0 and "revoked station line-1" in revoked.output
    [row] = json.loads(again.output)
    assert (row["status"], row["revocation_reason"]) == ("revoked", "line closed")
    assert "line-1" in text.output and "revoked" in text.output


def test_station_key_passphrase_is_required_and_never_the_home_one(tmp_path: Path) -> None:
    # GIVEN a home, and no terminal to prompt on
    pki = make_pki(tmp_path / "home")
    args = ["station", "add", "line-1", "--pai", "pai-1", "--pid", "8000", "--out", str(tmp_path / "out")]
    # WHEN no station passphrase is given, or the home's is reused
    missing = run_cli_process(args, cli_env(pki.home.path))
    reused = run_cli_process(args, cli_env(pki.home.path, MATTER_PKI_STATION_PASSPHRASE="correct horse battery staple"))
    # THEN one coded line each, nothing written
    assert missing.returncode != 0 and "error[key.passphrase_missing]" in missing.stderr
    assert reused.returncode != 0 and "error[input.passphrase_reused]" in reused.stderr
    assert "Traceback" not in missing.stderr + reused.stderr
    assert not (tmp_path / "out").exists()


def test_station_errors_are_coded(tmp_path: Path) -> None:
    # GIVEN a home
    pki = make_pki(tmp_path / "home")
    env = cli_env(pki.home.path, MATTER_PKI_STATION_PASSPHRASE=STATION_PASS)
    # WHEN a bad quota, an unknown station, or a bad listen address is given
    quota = run_cli_process(["station", "add", "x", "--pai", "pai-1", "--pid", "8000", "--quota", "lots", "--out", str(tmp_path / "o")], env)
    unknown = run_cli_process(["station", "revoke", "ghost"], env)
    listen = run_cli_process(["serve", "--listen", "nowhere"], env)
    # THEN one coded line each, no traceback
    assert "error[input.quota]" in quota.stderr
    assert "error[serve.station_unknown]" in unknown.stderr
    assert "error[input.listen]" in listen.stderr
    assert all(r.returncode != 0 and "Traceback" not in r.stderr for r in (quota, unknown, listen))
