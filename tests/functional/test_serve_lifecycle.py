"""The signing service across its life: signals under load, a crash and the stations' retries, restarts, start-up errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from matter_pki.audit import AuditLog, verify_log
from matter_pki.local import ca as ca_ops
from matter_pki.local.home import PAA_ID, KeyStoreSettings, PkiHome
from matter_pki.local.keys import Secrets
from matter_pki.local.ledger import Ledger, serial_hex
from matter_pki.validate import validate_att_cert
from tests.functional.serve_helpers import (
    SERVE,
    Server,
    StationFiles,
    chain_of,
    der,
    make_station,
    start_server,
)
from tests.unit.test_local_fixtures import PASSPHRASE, PIN, Pki, Token, good_csr, make_pki

PKCS10 = {"content-type": "application/pkcs10"}


class Load:
    """Stations posting fresh CSRs in a loop until told to stop (bounded), recording what was acknowledged."""

    def __init__(self, server: Server, stations: list[StationFiles], per_station: int) -> None:
        self.server, self.stations = server, stations
        self.csrs = {s.name: [good_csr() for _ in range(per_station)] for s in stations}
        self.acked: dict[bytes, bytes] = {}  # CSR -> DAC DER, for every 201/200 received
        self.failed: list[bytes] = []  # CSRs whose request got no answer
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(s,)) for s in stations]

    def _run(self, station: StationFiles) -> None:
        client = httpx.Client(base_url=self.server.url, verify=station.ssl_context(), timeout=30)
        try:
            for csr in self.csrs[station.name]:
                if self.stop.is_set():
                    return
                try:
                    response = client.post("/v1/pais/pai-1/dacs", params={"pid": "8000"}, content=csr, headers=PKCS10)
                except httpx.TransportError:
                    with self.lock:
                        self.failed.append(csr)
                    time.sleep(0.05)
                    client.close()
                    client = httpx.Client(base_url=self.server.url, verify=station.ssl_context(), timeout=30)
                    continue
                if response.status_code in (200, 201):
                    with self.lock:
                        self.acked[csr] = der(chain_of(response.content)[0])
                else:
                    with self.lock:
                        self.failed.append(csr)
        finally:
            client.close()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def wait_for(self, acked: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < acked and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(self.acked) >= acked, f"only {len(self.acked)} acknowledged"

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


def _ledger_dacs(pki: Pki) -> dict[str, bytes]:
    with Ledger(pki.home.ledger_path) as ledger:
        return {e.serial: e.der for e in ledger.entries(ca="pai-1", kind="dac")}


def _setup(tmp_path: Path, stations: int = 3, **kwargs: object) -> tuple[Pki, list[StationFiles]]:
    pki = make_pki(tmp_path / "home")
    return pki, [make_station(pki, tmp_path, f"line-{i}", **kwargs) for i in range(stations)]  # type: ignore[arg-type]


def test_sigterm_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    # GIVEN three stations hammering the server
    pki, stations = _setup(tmp_path)
    server = start_server(pki.home, tmp_path / "serve.log")
    load = Load(server, stations, per_station=200)
    load.start()
    # and one request in flight for sure: its headers and half of its CSR are sent
    csr = good_csr()
    slow = stations[0].ssl_context().wrap_socket(
        socket.create_connection(("127.0.0.1", server.port), timeout=30), server_hostname="127.0.0.1"
    )
    slow.sendall(
        b"POST /v1/pais/pai-1/dacs?pid=8000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\n"
        + f"Content-Length: {len(csr)}\r\n\r\n".encode() + csr[:100]
    )
    try:
        load.wait_for(30)
        # WHEN the server gets SIGTERM in the middle of it
        signaled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        slow.sendall(csr[100:])
        reply = b""
        while chunk := slow.recv(65536):
            reply += chunk
        slow.close()
        status = server.process.wait(timeout=60)
    finally:
        slow.close()
        load.join()
    # THEN the request in flight was finished
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201"), head
    load.acked[csr] = der(chain_of(body)[0])
    # THEN it exits 0 after finishing in-flight requests, and every acknowledged DAC is in the ledger,
    # announced in the audit log, and valid
    assert status == 0
    assert time.monotonic() - signaled < 15
    ledger = _ledger_dacs(pki)
    acked = {serial_hex(x509.load_der_x509_certificate(d).serial_number): d for d in load.acked.values()}
    assert len(acked) == len(load.acked) >= 30
    assert all(ledger.get(serial) == dac for serial, dac in acked.items())
    report = verify_log(pki.home.path / "audit")
    assert report.ok, report.problem
    announced = [r.fields["serial"] for r in AuditLog(pki.home.path).records() if r.event == "dac.issued"]
    assert set(acked) <= set(announced)
    assert len(announced) == len(set(announced))
    paa, pai = der(pki.home.load_cert(PAA_ID)), der(pki.home.load_cert("pai-1"))
    now = datetime.now(UTC)
    assert all(validate_att_cert(paa=paa, pai=pai, dac=d, at=now, mode="commissioner").ok for d in acked.values())
    events = [e.get("event") for e in server.log()]
    assert "serve.stopped" in events


def test_a_crash_under_load_then_station_retries_give_exactly_one_dac_per_device(tmp_path: Path) -> None:
    # GIVEN stations hammering the server
    pki, stations = _setup(tmp_path)
    server = start_server(pki.home, tmp_path / "serve.log")
    load = Load(server, stations, per_station=100)
    load.start()
    try:
        load.wait_for(20)
        # WHEN the server is killed outright
        server.process.kill()
        server.process.wait(timeout=30)
    finally:
        load.join()
    ledger = _ledger_dacs(pki)
    # THEN every acknowledged DAC is in the ledger
    for dac in load.acked.values():
        assert ledger[serial_hex(x509.load_der_x509_certificate(dac).serial_number)] == dac
    # AND after a restart, every device's retry gets a DAC: the acknowledged ones the same, none twice
    restarted = start_server(pki.home, tmp_path / "serve2.log")
    try:
        sent = [csr for name in load.csrs for csr in load.csrs[name][: 40]]
        with restarted.client(stations[0]) as client:
            answers = {csr: client.post("/v1/pais/pai-1/dacs", params={"pid": "8000"}, content=csr, headers=PKCS10) for csr in sent}
    finally:
        assert restarted.stop() == 0
    assert all(r.status_code in (200, 201) for r in answers.values())
    for csr, dac in load.acked.items():
        if csr in answers:
            assert answers[csr].status_code == 200
            assert der(chain_of(answers[csr].content)[0]) == dac
    with Ledger(pki.home.ledger_path) as led:
        rows = led.entries(ca="pai-1", kind="dac")
    assert len({r.csr_sha256 for r in rows}) == len(rows)


def test_quota_use_survives_a_restart(tmp_path: Path) -> None:
    # GIVEN a station allowed 2 DACs a day that used them
    pki, [station] = _setup(tmp_path, stations=1, quota=2)
    server = start_server(pki.home, tmp_path / "a.log")
    try:
        with server.client(station) as client:
            codes = [client.post("/v1/pais/pai-1/dacs", content=good_csr(), headers=PKCS10).status_code for _ in range(2)]
    finally:
        assert server.stop() == 0
    # WHEN the server restarts
    again = start_server(pki.home, tmp_path / "b.log")
    try:
        with again.client(station) as client:
            refused = client.post("/v1/pais/pai-1/dacs", content=good_csr(), headers=PKCS10)
    finally:
        assert again.stop() == 0
    # THEN the quota is still spent
    assert codes == [201, 201]
    assert (refused.status_code, refused.json()["code"]) == (429, "serve.quota_exceeded")


def test_connections_beyond_the_limit_are_closed_and_others_still_served(tmp_path: Path) -> None:
    # GIVEN a server allowing 3 connections, and 3 idle station connections
    pki, [station] = _setup(tmp_path, stations=1)
    server = start_server(pki.home, tmp_path / "serve.log", "--max-connections", "3", "--header-timeout", "30")
    ctx = station.ssl_context()
    idle = [ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname="127.0.0.1") for _ in range(3)]
    try:
        # WHEN a fourth connects
        extra = ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port)), server_hostname="127.0.0.1")
        extra.settimeout(10)
        # THEN it is closed at once, and once the idle ones leave, stations are served again
        try:
            assert extra.recv(1) == b""
        except (ConnectionError, OSError):
            pass
        extra.close()
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        with server.client(station) as client:
            assert client.get("/healthz").status_code == 200
    finally:
        for sock in idle:
            sock.close()
        assert server.stop() == 0
    server.wait_log(lambda e: e.get("event") == "connection limit reached")


def _serve_once(pki: Pki, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MATTER_PKI_PASSPHRASE"}
    return subprocess.run(
        [*SERVE, "--home", str(pki.home.path), "--listen", "127.0.0.1:0", *args],
        env={**environment, **env}, capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.mark.parametrize(
    ("setup_secret", "code"),
    [("wrong", "key.passphrase_wrong"), ("missing", "key.passphrase_missing"), ("loose-file", "input.passphrase_file")],
)
def test_start_up_errors_are_one_coded_line(tmp_path: Path, setup_secret: str, code: str) -> None:
    # GIVEN a home with a station, and a bad way to give the passphrase
    pki, _stations = _setup(tmp_path, stations=1)
    env: dict[str, str] = {}
    args: list[str] = []
    if setup_secret == "wrong":
        env["MATTER_PKI_PASSPHRASE"] = "not it"
    elif setup_secret == "loose-file":
        secret = tmp_path / "passphrase"
        secret.write_text(PASSPHRASE + "\n")
        secret.chmod(0o644)
        args = ["--passphrase-file", str(secret)]
    # WHEN the server starts
    result = _serve_once(pki, *args, env=env)
    # THEN it exits non-zero with one coded line and no traceback
    assert result.returncode != 0
    assert f"error[{code}]" in result.stderr
    assert "Traceback" not in result.stderr


def test_passphrase_from_a_0600_file_is_read_once_and_never_a_flag(tmp_path: Path) -> None:
    # GIVEN the passphrase in a 0600 file and none in the environment
    pki, [station] = _setup(tmp_path, stations=1)
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    # WHEN the server starts with --passphrase-file
    server = start_server(pki.home, tmp_path / "serve.log", "--passphrase-file", str(secret), env={"MATTER_PKI_PASSPHRASE": ""})
    try:
        with server.client(station) as client:
            answer = client.post("/v1/pais/pai-1/dacs", content=good_csr(), headers=PKCS10)
        environ = Path(f"/proc/{server.process.pid}/environ").read_bytes()
    finally:
        assert server.stop() == 0
    # THEN it issues; there is no option taking the passphrase itself
    assert answer.status_code == 201
    assert PASSPHRASE.encode() not in environ
    help_text = subprocess.run([*SERVE, "--help"], capture_output=True, text=True, check=True).stdout
    assert "--passphrase " not in help_text and "--pin " not in help_text


def test_a_pkcs11_home_serves_with_the_pin_read_from_a_file(tmp_path: Path, softhsm_token: Token) -> None:
    # GIVEN a home whose PAA and PAI keys are on a token, and a station
    home = PkiHome(tmp_path / "home")
    settings = KeyStoreSettings(kind="pkcs11", module=softhsm_token.module, token=softhsm_token.label)
    secrets = Secrets.fixed(PASSPHRASE.encode(), PIN)
    now = datetime.now(UTC)
    ca_ops.init_paa(home, vid=0xFFF1, settings=settings, secrets=secrets, now=now)
    ca_ops.create_pai(home, pid=0x8000, secrets=secrets, now=now)
    station = make_station(Pki(home, "pai-1", secrets), tmp_path, "line-1")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o400)
    # WHEN the server starts with the PIN from a file (none in the environment) and a station asks twice
    server = start_server(home, tmp_path / "serve.log", "--pin-file", str(pin_file), env={"MATTER_PKI_PKCS11_PIN": ""})
    try:
        with server.client(station) as client:
            answers = [client.post("/v1/pais/pai-1/dacs", content=good_csr(), headers=PKCS10) for _ in range(2)]
    finally:
        assert server.stop() == 0
    # THEN the DACs are signed on the token and validate; the token key was opened once, at start
    assert [a.status_code for a in answers] == [201, 201]
    paa, pai = der(home.load_cert(PAA_ID)), der(home.load_cert("pai-1"))
    for a in answers:
        assert validate_att_cert(paa=paa, pai=pai, dac=der(chain_of(a.content)[0]), at=datetime.now(UTC), mode="commissioner").ok
    accessed = [r.fields for r in AuditLog(home.path).records() if r.event == "key.accessed" and r.fields.get("purpose") == "serve"]
    assert [(a["ca"], a["key_store"]) for a in accessed] == [("pai-1", "pkcs11")]
