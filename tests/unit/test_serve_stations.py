"""Station registry, quotas and ``station add``: files, encryption, scope checks, durability."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from matter_pki.audit import AuditLog
from matter_pki.backends.keyfile import load_key
from matter_pki.errors import MatterPkiError
from matter_pki.local.state import open_audit
from matter_pki.serve.stations import (
    Station,
    StationRegistry,
    add_station,
    check_station_name,
    list_stations,
    parse_quota,
    revoke_station,
)
from matter_pki.serve.tls import ServePaths, cert_sha256
from tests.unit.test_local_fixtures import PASSPHRASE, make_pki

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.test_local_fixtures import Pki

DAY = "2026-06-01"
STATION_PASS = b"station passphrase"


def _station(name: str, quota: int | None = None, sha: str | None = None) -> Station:
    return Station(
        name=name, pai="pai-1", pids=(0x8000,), quota_per_day=quota, cert_sha256=sha or name * 4, serial="01",
        not_after="2027-01-01T00:00:00Z", status="active", created_at="2026-01-01T00:00:00Z",
    )


def _add(pki: Pki, out: Path, name: str = "line-1", **kwargs: object) -> Station:
    args: dict[str, object] = {"pai_id": pki.pai_id, "pids": (0x8000,), "quota_per_day": None}
    args.update(kwargs)
    return add_station(
        pki.home, name=name, out_dir=out, passphrase=PASSPHRASE.encode(), station_passphrase=STATION_PASS,
        audit=open_audit(pki.home, pki.secrets), now=datetime.now(UTC), **args,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(("text", "value"), [("5000/day", 5000), ("12", 12), (" 3 / d ", 3), (None, None)])
def test_quota_forms(text: str | None, value: int | None) -> None:
    # GIVEN/WHEN a quota as typed THEN its daily number
    assert parse_quota(text) == value


@pytest.mark.parametrize("text", ["0/day", "-1", "5/week", "lots", "9999999999"])
def test_bad_quotas_are_coded(text: str) -> None:
    # GIVEN/WHEN a quota that is not a positive daily count THEN input.quota
    with pytest.raises(MatterPkiError) as caught:
        parse_quota(text)
    assert caught.value.code == "input.quota"


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 65, "é"])
def test_bad_station_names_are_coded(name: str) -> None:
    # GIVEN/WHEN a name that would not be safe in paths and logs THEN input.station_name
    with pytest.raises(MatterPkiError) as caught:
        check_station_name(name)
    assert caught.value.code == "input.station_name"


def test_registry_add_revoke_and_lookups(tmp_path: Path) -> None:
    # GIVEN a registry with a station
    with StationRegistry(tmp_path / "s.sqlite") as registry:
        registry.add(_station("a", sha="aa"))
        # WHEN the same name is added again, then the station revoked twice
        with pytest.raises(MatterPkiError) as dup:
            registry.add(_station("a", sha="bb"))
        revoked = registry.revoke("a", at="2026-06-01T00:00:00Z", reason="lost")
        with pytest.raises(MatterPkiError) as again:
            registry.revoke("a", at="2026-06-01T00:00:01Z", reason=None)
        with pytest.raises(MatterPkiError) as unknown:
            registry.revoke("nobody", at="2026-06-01T00:00:00Z", reason=None)
        found = registry.by_certificate("aa")
    # THEN each misuse has its code, and the lookup by certificate sees the revocation
    assert (dup.value.code, again.value.code, unknown.value.code) == (
        "serve.station_exists", "serve.station_already_revoked", "serve.station_unknown"
    )
    assert revoked.status == "revoked" and revoked.revocation_reason == "lost"
    assert found is not None and not found.active
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o777 == 0o600


def test_a_revocation_by_another_connection_is_seen_on_the_next_lookup(tmp_path: Path) -> None:
    # GIVEN a long-lived reader that already looked the station up (its cache is warm)
    path = tmp_path / "s.sqlite"
    with StationRegistry(path) as server_side:
        server_side.add(_station("a", sha="aa"))
        station = server_side.by_certificate("aa")
        assert station is not None and station.active
        # WHEN another process revokes it
        with StationRegistry(path) as cli_side:
            cli_side.revoke("a", at="2026-06-01T00:00:00Z", reason=None)
        # THEN the reader's next lookup sees it revoked, without reopening
        after = server_side.by_certificate("aa")
    assert after is not None and after.status == "revoked"


def test_quota_reservations_fit_partly_fit_or_are_refused(tmp_path: Path) -> None:
    # GIVEN a station allowed 5 a day and one without a quota
    quota, free = _station("q", quota=5), _station("f")
    with StationRegistry(tmp_path / "s.sqlite") as registry:
        # WHEN requests of 3, then 3 (of which 2 are already certified), then 1 are reserved in one transaction
        granted = registry.reserve([(quota, 3, 3), (quota, 3, 1), (quota, 1, 1), (free, 1000, 1000)], DAY)
        used = registry.used("q", DAY)
        # AND 2 are refunded
        registry.refund([("q", DAY, 2), ("q", DAY, 0)])
        after = registry.used("q", DAY)
        other_day = registry.used("q", "2026-06-02")
    # THEN 3 fit, the second only at its minimum, the third is refused; refunds come back
    assert granted == [3, 1, 1, 1000]
    assert used == 5 and after == 3 and other_day == 0


def test_quota_use_is_durable_across_connections(tmp_path: Path) -> None:
    # GIVEN a reservation committed by one connection
    path = tmp_path / "s.sqlite"
    with StationRegistry(path) as registry:
        registry.reserve([(_station("q", quota=2), 2, 2)], DAY)
    # WHEN the registry is opened again THEN the quota is spent
    with StationRegistry(path) as registry:
        assert registry.reserve([(_station("q", quota=2), 1, 1)], DAY) == [None]


def test_station_add_writes_an_encrypted_key_a_client_certificate_and_the_ca(tmp_path: Path) -> None:
    # GIVEN a home with a PAI for PID 8000
    pki = make_pki(tmp_path / "home")
    out = tmp_path / "line-1"
    # WHEN a station is added
    station = _add(pki, out, quota_per_day=100)
    # THEN its key is encrypted with the station passphrase only, mode 0600
    key_file = out / "station.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    key = load_key(key_file, STATION_PASS)
    with pytest.raises(MatterPkiError):
        load_key(key_file, PASSPHRASE.encode())
    # AND its certificate is for client authentication, named after it, issued by the service CA
    cert = x509.load_pem_x509_certificate((out / "station.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert cert.public_key() == key.public_key()
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "line-1"
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert ca == x509.load_pem_x509_certificate(ServePaths.of(pki.home).ca_cert.read_bytes())
    # AND the registry and the audit log know it
    assert station.cert_sha256 == cert_sha256(cert)
    [row] = list_stations(pki.home, datetime.now(UTC))
    assert (row["name"], row["pids"], row["quota_per_day"], row["used_today"]) == ("line-1", ["8000"], 100, 0)
    events = [r.event for r in AuditLog(pki.home.path).records()]
    assert "serve.ca_created" in events and "station.added" in events


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"pids": (0x8001,)}, "profile.pid_not_allowed"),
        ({"pai_id": "pai-9"}, "config.unknown_ca"),
        ({"pai_id": "paa"}, "input.ca_id"),
        ({"pids": ()}, "input.pid_required"),
        ({"name": "bad name"}, "input.station_name"),
    ],
)
def test_station_add_refuses_a_scope_the_pai_cannot_sign(tmp_path: Path, kwargs: dict[str, object], code: str) -> None:
    # GIVEN a PAI scoped to PID 8000
    pki = make_pki(tmp_path / "home")
    # WHEN a station is added for another PID, an unknown PAI, the PAA, no PID or a bad name
    with pytest.raises(MatterPkiError) as caught:
        _add(pki, tmp_path / "out", **kwargs)
    # THEN refused with the code, nothing registered, no files
    assert caught.value.code == code
    assert list_stations(pki.home, datetime.now(UTC)) == []
    assert not (tmp_path / "out" / "station.key").exists()


def test_station_add_never_overwrites_nor_reuses_a_name(tmp_path: Path) -> None:
    # GIVEN a station already written to a folder
    pki = make_pki(tmp_path / "home")
    _add(pki, tmp_path / "out")
    key = (tmp_path / "out" / "station.key").read_bytes()
    # WHEN another station is written to the same folder, or the name is reused after revocation
    with pytest.raises(MatterPkiError) as same_folder:
        _add(pki, tmp_path / "out", name="line-2")
    revoke_station(pki.home, "line-1", reason=None, audit=open_audit(pki.home, pki.secrets), now=datetime.now(UTC))
    with pytest.raises(MatterPkiError) as reused:
        _add(pki, tmp_path / "other")
    # THEN refused, the existing key untouched, the second station not registered
    assert same_folder.value.code == "input.exists" and reused.value.code == "serve.station_exists"
    assert (tmp_path / "out" / "station.key").read_bytes() == key
    assert [r["name"] for r in list_stations(pki.home, datetime.now(UTC))] == ["line-1"]


# -- add and revoke follow the commit protocol: announced before the registry holds the change -------
_KILL_AT = {
    # after the change is staged (nothing announced, nothing made)
    "staged": "orig = s.StationRegistry.stage\ndef stage(self, change):\n    orig(self, change)\n    os._exit(137)\n"
              "s.StationRegistry.stage = stage\n",
    # after the announcement, before the registry applies it
    "announced": "def apply(self, change_id, change):\n    os._exit(137)\ns.StationRegistry.apply = apply\n",
}


def _killed(pki: Pki, point: str, args: list[str], tmp_path: Path) -> None:
    """Run a ``station`` command in a child process that dies (SIGKILL-like, no clean-up) at ``point``."""
    import os
    import subprocess
    import sys

    from tests.unit.test_local_fixtures import cli_env

    code = f"import os\nfrom matter_pki.serve import stations as s\n{_KILL_AT[point]}from matter_pki.cli import main\nmain()\n"
    env = {**os.environ, **cli_env(pki.home.path), "MATTER_PKI_STATION_PASSPHRASE": STATION_PASS.decode()}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 137, done.stderr


def _station_records(pki: Pki, name: str) -> list[tuple[str, bool]]:
    log = AuditLog(pki.home.path)
    return [(r.event, bool(r.fields.get("recovered"))) for r in log.records() if r.fields.get("station") == name]


@pytest.mark.parametrize("point", sorted(_KILL_AT))
@pytest.mark.parametrize("op", ["add", "revoke"])
def test_a_station_change_killed_midway_is_never_made_unannounced_and_is_announced_once(
    tmp_path: Path, op: str, point: str
) -> None:
    from matter_pki.serve.stations import finish_station_changes
    from tests.unit.test_local_fixtures import cli_env, run_cli

    # GIVEN a home (with station line-0 to revoke)
    pki = make_pki(tmp_path / "home")
    line0 = _add(pki, tmp_path / "line-0", name="line-0")
    db = ServePaths.of(pki.home).stations_db
    name = "line-1" if op == "add" else "line-0"
    args = (["station", "add", "line-1", "--pai", pki.pai_id, "--pid", "8000", "--out", str(tmp_path / "line-1")]
            if op == "add" else ["station", "revoke", "line-0", "--reason", "stolen"])  # fmt: skip
    event = f"station.{'added' if op == 'add' else 'revoked'}"
    before = _station_records(pki, name)
    # WHEN the command is killed after staging / after announcing
    _killed(pki, point, args, tmp_path)
    # THEN the registry does not hold the change yet, and the log holds its announcement only past the staging point
    with StationRegistry(db) as registry:
        assert registry.exists("line-1") is False if op == "add" else registry.get("line-0").active
        if op == "revoke":  # a revocation in progress is honoured by the server at once
            seen = registry.by_certificate(line0.cert_sha256)
            assert seen is not None and not seen.active
    assert _station_records(pki, name) == before + ([(event, False)] if point == "announced" else [])
    # WHEN the next station command runs (or serve starts: finish_station_changes)
    if op == "add":
        finish_station_changes(pki.home, open_audit(pki.home, pki.secrets))
    else:
        refused = run_cli(["station", "revoke", "line-0"], cli_env(pki.home.path))
        assert refused.exit_code != 0 and "serve.station_already_revoked" in refused.stderr
    # THEN the change is made and announced exactly once (recovered when the killed run had not announced it)
    with StationRegistry(db) as registry:
        assert registry.get(name).active is (op == "add")
        assert registry.staged() == []
    assert _station_records(pki, name) == before + [(event, point == "staged")]
    assert run_cli(["audit", "verify"], cli_env(pki.home.path)).exit_code == 0
