"""The service's HTTP/1.1 connection (uvicorn's h11 protocol) with what a hostile network needs.

* The client certificate the TLS layer verified is put into every request's scope as the ASGI TLS
  extension (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM), so the application can
  match it against the station registry on *each request*, keep-alive connections included.
* A request's headers must arrive within ``header_timeout`` seconds of its first byte (or of the
  connection's start); otherwise the connection is closed. uvicorn alone waits forever for a
  trickled request line (slowloris).
* At most ``max_connections`` connections are served at once; further ones are closed at once.
* TLS handshakes must finish within ``handshake_timeout`` seconds (``ServiceLoop``; asyncio's default
  is 60), and a TLS close waits at most 2 s for the peer's close_notify (asyncio's default is 30).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from matter_pki.serve.logs import LOGGER

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope

    from matter_pki.serve.metrics import Metrics

log = logging.getLogger(LOGGER)


HANDSHAKE_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection limits."""

    header_timeout: float = 10.0
    max_connections: int = 256
    handshake_timeout: float = HANDSHAKE_TIMEOUT


class ServiceLoop(asyncio.SelectorEventLoop):
    """An event loop whose TLS servers give up on handshakes after ``handshake_timeout`` seconds."""

    handshake_timeout: ClassVar[float] = HANDSHAKE_TIMEOUT

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        """``loop.create_server`` with the service's TLS handshake timeout."""
        if kwargs.get("ssl") is not None:
            kwargs.setdefault("ssl_handshake_timeout", self.handshake_timeout)
            # A peer that never answers our close_notify would hold a graceful shutdown for
            # asyncio's default 30 s; the response was already delivered.
            kwargs.setdefault("ssl_shutdown_timeout", SHUTDOWN_TIMEOUT)
        return await super().create_server(*args, **kwargs)


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any]:
    """The ASGI TLS extension for one connection: the verified client certificate (PEM), version, cipher."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return {"client_cert_chain": [], "client_cert_name": None, "client_cert_error": "no TLS"}
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": ssl_object.version(),
        "cipher_suite": cipher[0] if cipher else None,
    }


class StationConnection(H11Protocol):
    """uvicorn's h11 protocol plus the TLS extension, a header timeout and a connection limit."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    metrics: ClassVar[Metrics | None] = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse beyond the limit; expose the client certificate; start the header clock."""
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > self.limits.max_connections:
            log.warning("connection limit reached", extra={"limit": self.limits.max_connections, "client": self.client})
            transport.close()
            return
        tls = tls_extension(transport)
        inner = self.app

        async def with_tls(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            cast("dict[str, Any]", scope).setdefault("extensions", {})["tls"] = tls
            await inner(scope, receive, send)

        self.app = with_tls
        self._arm()
        self._gauge()

    def data_received(self, data: bytes) -> None:
        """Feed h11; the header clock runs while a request's headers are incomplete."""
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the header clock."""
        self._disarm()
        super().connection_lost(exc)
        self._gauge()

    def _arm(self) -> None:
        if getattr(self, "_header_timer", None) is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout, self._header_timeout)

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("request headers not received in time", extra={"client": self.client, "timeout": self.limits.header_timeout})
            self.transport.close()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.connections.set(len(self.connections))


def protocol_class(limits: ConnectionLimits, metrics: Metrics | None) -> type[StationConnection]:
    """A ``StationConnection`` subclass bound to these limits and metrics (uvicorn instantiates the class)."""
    return type("BoundStationConnection", (StationConnection,), {"limits": limits, "metrics": metrics})


def loop_class(limits: ConnectionLimits) -> type[ServiceLoop]:
    """A ``ServiceLoop`` subclass with this handshake timeout."""
    return type("BoundServiceLoop", (ServiceLoop,), {"handshake_timeout": limits.handshake_timeout})
