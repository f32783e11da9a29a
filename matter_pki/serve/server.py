"""Start and stop the service: secrets read once, keys opened once, TLS with client certificates required.

Start-up, in order, each failure a coded error before anything listens: read the passphrase (and the
PKCS#11 PIN) once, from the environment (``--passphrase-file`` / ``--pin-file`` put a file's there), and
remove them from it; make sure the service CA and a current server certificate exist (``serve/``); open
every active PAI's key; bind the socket; serve.

Shutdown (SIGTERM or SIGINT): stop accepting connections, close idle ones, let every request already
received finish (up to ``shutdown_timeout`` seconds), answer everything queued, record
``serve.stopped``, exit 0. A request is answered only after its DAC is in the ledger and the audit
log, so nothing acknowledged is lost, whatever the signal.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from matter_pki.backends.pkcs11 import PIN_ENV
from matter_pki.errors import InputError, KeyStoreError
from matter_pki.local.keys import PASSPHRASE_ENV, Secrets
from matter_pki.local.state import open_audit
from matter_pki.serve import logs
from matter_pki.serve.app import ApiSettings, ServiceContext, create_app
from matter_pki.serve.batcher import Batcher
from matter_pki.serve.engine import IssuingEngine, LedgerReader
from matter_pki.serve.metrics import Metrics
from matter_pki.serve.protocol import ConnectionLimits, loop_class, protocol_class
from matter_pki.serve.stations import finish_station_changes
from matter_pki.serve.tls import DEFAULT_NAMES, ServePaths, ensure_server_cert

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from matter_pki.local.home import PkiHome


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Everything ``matter-pki serve`` is told (never a secret)."""

    host: str = "127.0.0.1"
    port: int = 8443
    names: tuple[str, ...] = ()
    validity_days: int | None = None
    common_name: str | None = "Matter DAC"
    max_batch: int = 256
    max_queue: int = 4096
    max_batch_request: int = 100
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    body_timeout: float = 10.0
    keep_alive: int = 5
    shutdown_timeout: int = 30
    refusal_flush: float = 1.0
    batch_wait: float = 0.005
    log_level: str = "info"

    def server_names(self) -> list[str]:
        """Names the server certificate must cover: the defaults, the listen host, ``--san``."""
        names = list(DEFAULT_NAMES)
        if self.host not in ("0.0.0.0", "::", ""):
            names.append(self.host)
        names.extend(self.names)
        return list(dict.fromkeys(n.lower() for n in names))


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InputError("input.listen", f"--listen {text!r} must be HOST:PORT, e.g. 127.0.0.1:8443")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def read_secrets(environ: MutableMapping[str, str] | None = None) -> tuple[Secrets, bytes]:
    """The passphrase and PIN, read once from the environment (``--passphrase-file``/``--pin-file`` put them there)."""
    env = os.environ if environ is None else environ
    passphrase = env.get(PASSPHRASE_ENV, "").encode()
    if not passphrase:
        raise KeyStoreError(
            "key.passphrase_missing",
            f"no passphrase: give --passphrase-file FILE or set {PASSPHRASE_ENV} (the service keys are always file keys)",
        )
    pin = env.get(PIN_ENV) or None
    # Child processes and later readers of the environment must not see them.
    env.pop(PASSPHRASE_ENV, None)
    env.pop(PIN_ENV, None)
    return Secrets.fixed(passphrase, pin), passphrase


def tls_context(paths: ServePaths, passphrase: bytes) -> ssl.SSLContext:
    """TLS 1.2+ server context: the server certificate, client certificates REQUIRED and chained to the service CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(paths.server_cert, paths.server_key, password=passphrase)
        ctx.load_verify_locations(cafile=paths.ca_cert)
    except (ssl.SSLError, OSError) as e:
        raise KeyStoreError("key.unreadable", f"cannot load the server certificate and key from {str(paths.root)!r}: {e}") from e
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def bind(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        raise InputError("input.listen", f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sock.setblocking(False)
    return sock


class Service:
    """One service process: built (and its keys opened) by ``prepare``, run by ``serve``."""

    def __init__(self, home: PkiHome, options: ServeOptions, secrets: Secrets, passphrase: bytes) -> None:
        self.home, self.options, self.secrets, self.passphrase = home, options, secrets, passphrase
        self.log = logs.configure(options.log_level)
        self.paths = ServePaths.of(home)
        # One audit log instance per thread (an instance's session is not shared): this one for the
        # main thread, the engine's for the signing thread (its DACs and the refusals it records).
        self.audit = open_audit(home, secrets)
        self.metrics = Metrics()
        engine_audit = open_audit(home, secrets)
        self.engine = IssuingEngine(
            home, secrets, engine_audit, validity_days=options.validity_days, common_name=options.common_name
        )
        self.batcher = Batcher(
            self.engine, engine_audit, self.paths.stations_db, self.metrics, max_batch=options.max_batch,
            max_queue=options.max_queue, refusal_flush=options.refusal_flush, batch_wait=options.batch_wait,
        )
        self.sock: socket.socket | None = None
        self.pais: list[str] = []

    def prepare(self) -> None:
        """Certificates, keys, socket: everything that can fail, before serving."""
        self.home.require()
        now = datetime.now(UTC).replace(microsecond=0)
        with self.home.lock():
            ensure_server_cert(self.home, self.paths, self.passphrase, self.options.server_names(), now, self.audit)
            # A station add or revoke killed midway is announced and made before any station is served.
            finish_station_changes(self.home, self.audit)
        self.ssl = tls_context(self.paths, self.passphrase)
        # Keys are opened on the signing thread, the only one that will ever use them.
        self.pais = self.batcher.executor.submit(self.engine.open_keys).result()
        self.sock = bind(self.options.host, self.options.port, backlog=self.options.limits.max_connections)

    @property
    def address(self) -> tuple[str, int]:
        """Where the service listens."""
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def _started(self) -> dict[str, Any]:
        host, port = self.address
        details: dict[str, Any] = {"host": host, "port": port, "pais": self.pais, "pid": os.getpid()}
        self.audit.record("serve.started", **details)
        return details

    def _stopped(self) -> None:
        self.audit.record("serve.stopped", pid=os.getpid())

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status (0 after a graceful shutdown)."""
        import uvicorn

        assert self.sock is not None
        ctx = ServiceContext(
            batcher=self.batcher, stations_db=self.paths.stations_db, metrics=self.metrics,
            reader=LedgerReader(self.home),
            reader_executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="matter-pki-reader"),
            settings=ApiSettings(body_timeout=self.options.body_timeout, max_batch_request=self.options.max_batch_request),
            on_started=self._started, on_stopped=self._stopped,
        )
        context = self.ssl
        config = uvicorn.Config(
            create_app(ctx),
            http=protocol_class(self.options.limits, self.metrics),
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=self.options.keep_alive,
            timeout_graceful_shutdown=self.options.shutdown_timeout,
            backlog=self.options.limits.max_connections,
            ssl_context_factory=lambda _config, _default: context,
        )
        server = uvicorn.Server(config)
        # uvicorn re-raises the signal it caught once it has shut down; with these handlers in place
        # that re-raise is a no-op and the process exits with status 0.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _s, _f: None)
        with asyncio.Runner(loop_factory=loop_class(self.options.limits)) as runner:
            runner.run(server.serve(sockets=[self.sock]))
        return 0 if server.started else 1
