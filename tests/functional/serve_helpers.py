"""Helpers for the signing-service tests: a real ``matter-pki serve`` in a child process, station clients."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.local.state import open_audit
from matter_pki.serve.stations import add_station
from tests.unit.test_local_fixtures import PASSPHRASE, Pki

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from matter_pki.local.home import PkiHome

STATION_PASSPHRASE = "station secret, not the home's"
SERVE = [sys.executable, "-c", "from matter_pki.cli import main; main()", "serve"]


@dataclass
class StationFiles:
    """What ``station add`` wrote for one station."""

    name: str
    folder: Path

    def ssl_context(self) -> ssl.SSLContext:
        """Trust the service CA, present the station certificate."""
        ctx = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        ctx.load_cert_chain(self.folder / "station.pem", self.folder / "station.key", password=STATION_PASSPHRASE)
        return ctx


def make_station(pki: Pki, root: Path, name: str, *, pai: str | None = None, pids: tuple[int, ...] = (0x8000,),
                 quota: int | None = None) -> StationFiles:
    """Register a station through the library (what ``station add`` calls)."""
    folder = root / "stations" / name
    add_station(
        pki.home, name=name, pai_id=pai or pki.pai_id, pids=pids, quota_per_day=quota, out_dir=folder,
        passphrase=PASSPHRASE.encode(), station_passphrase=STATION_PASSPHRASE.encode(),
        audit=open_audit(pki.home, pki.secrets), now=datetime.now(UTC),
    )
    return StationFiles(name, folder)


@dataclass
class Server:
    """A running ``matter-pki serve`` child process."""

    home: PkiHome
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    ca: Path = field(init=False)

    def __post_init__(self) -> None:
        self.ca = self.home.path / "serve" / "ca.pem"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"https://127.0.0.1:{self.port}"

    def client(self, station: StationFiles, **kwargs: Any) -> httpx.Client:
        """An HTTPS client presenting the station's certificate (keep-alive, one connection at a time)."""
        return httpx.Client(base_url=self.url, verify=station.ssl_context(), timeout=30, **kwargs)

    def log(self) -> list[dict[str, Any]]:
        """The JSON log lines so far."""
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"event": "<not json>", "line": line})
        return lines

    def wait_log(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        """The first log line matching ``predicate``, waiting for it (lines are written after the response)."""
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.log():
                if predicate(entry):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError("no such log line")
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the server and wait for it to exit; returns its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_server(home: PkiHome, log_path: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 60) -> Server:
    """Start ``matter-pki serve --listen 127.0.0.1:0`` and wait until it listens."""
    environment = {**os.environ, "MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_OPERATOR": "serve-test", **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SERVE, "--home", str(home.path), "--listen", "127.0.0.1:0", "--refusal-interval", "0.05", *extra],
            stdout=subprocess.DEVNULL, stderr=log, env=environment,
        )
    server = Server(home, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in server.log():
            if entry.get("event") == "serve.listening":
                server.port = int(entry["port"])
                return server
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"the server did not start: {log_path.read_text()}")


def chain_of(pem: bytes) -> list[x509.Certificate]:
    """Certificates of a PEM chain."""
    return x509.load_pem_x509_certificates(pem)


def der(cert: x509.Certificate) -> bytes:
    """DER of a certificate."""
    return cert.public_bytes(Encoding.DER)
