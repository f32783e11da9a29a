"""The HTTP API (Starlette): DACs for authenticated stations, every refusal a coded problem.

Routes (``openapi.json`` describes them; a test keeps both in step):

* ``POST /v1/pais/{pai}/dacs?pid=PID``: one CSR (DER or PEM, at most 4 KiB) → 201 with the DAC and the
  PAI as ``application/pem-certificate-chain`` (200 when the ledger already held it: a retry), or JSON
  on ``Accept: application/json``;
* ``POST /v1/pais/{pai}/dacs/batch?pid=PID``: ``{"csrs": [...]}`` → one result per CSR;
* ``GET /v1/dacs/{serial}``, ``GET /v1/pais``, ``GET /healthz``, ``GET /metrics``, ``GET /v1/openapi.json``.

Every request passes the ``Gate`` first: it recognises the station by the SHA-256 of its client
certificate in the registry (re-read when it changes, so a revocation applies to the next request),
refuses unknown and revoked stations, and writes the access log line and the request metrics.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import ssl
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from matter_pki.csr import MAX_CSR_BYTES
from matter_pki.errors import CsrError, InputError, MatterPkiError, ServiceError
from matter_pki.local.issue import der_to_pem
from matter_pki.local.ledger import parse_serial
from matter_pki.serve.logs import LOGGER
from matter_pki.serve.metrics import CONTENT_TYPE as METRICS_TYPE
from matter_pki.serve.problems import PROBLEM_TYPE, problem
from matter_pki.serve.stations import Station, StationRegistry, utc_day
from matter_pki.vidpid import parse_hex16

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from matter_pki.serve.batcher import Batcher
    from matter_pki.serve.engine import CsrOutcome, LedgerReader
    from matter_pki.serve.metrics import Metrics

log = logging.getLogger(LOGGER)

PEM_CHAIN = "application/pem-certificate-chain"
JSON_TYPE = "application/json"
CSR_TYPES = frozenset({"application/pkcs10", "application/x-pem-file", "application/octet-stream", "text/plain"})
# A batch entry: PEM text or base64 of the DER; 4 KiB of CSR is at most 5,464 base64 characters plus PEM armour.
BATCH_ENTRY_LIMIT = 6 * 1024
AUDITED_REFUSALS = frozenset({"serve.station_unknown", "serve.station_revoked", "serve.pai_not_allowed", "serve.pid_not_allowed"})


def openapi_document() -> bytes:
    """The checked-in OpenAPI document, as served."""
    return resources.files("matter_pki.serve").joinpath("openapi.json").read_bytes()


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits of the HTTP layer."""

    body_timeout: float = 10.0
    max_batch_request: int = 100


@dataclass
class ServiceContext:
    """What the handlers share: the batcher, the registry (event-loop thread), the reader thread, metrics."""

    batcher: Batcher
    stations_db: Path
    metrics: Metrics
    reader: LedgerReader
    reader_executor: ThreadPoolExecutor
    settings: ApiSettings = field(default_factory=ApiSettings)
    on_started: Callable[[], dict[str, Any]] | None = None
    on_stopped: Callable[[], None] | None = None
    registry: StationRegistry | None = None
    draining: bool = False

    async def read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a ledger or home read on the reader thread."""
        return await asyncio.get_running_loop().run_in_executor(self.reader_executor, fn, *args)


# -- helpers ---------------------------------------------------------------------------------------
def problem_response(code: str, message: str, request_id: str | None, **extra: Any) -> JSONResponse:
    """A problem details response; 408/413 close the connection, 429/503 say when to retry."""
    body = problem(code, message, request_id=request_id, **extra)
    status = body["status"]
    headers: dict[str, str] = {}
    if status in (408, 413):
        headers["connection"] = "close"
    if "retry_after" in extra:
        headers["retry-after"] = str(extra["retry_after"])
    elif status == 503:
        headers["retry-after"] = "1"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def negotiate(accept: str | None) -> str:
    """``application/pem-certificate-chain`` (the default) or ``application/json``, by the Accept header."""
    if not accept:
        return PEM_CHAIN
    ranges: list[tuple[float, str]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((q, media.lower()))
    for q, media in sorted(ranges, key=lambda r: -r[0]):
        if q <= 0:
            continue
        if media == JSON_TYPE:
            return JSON_TYPE
        if media in (PEM_CHAIN, "*/*", "application/*"):
            return PEM_CHAIN
    raise ServiceError("serve.not_acceptable", f"can answer {PEM_CHAIN} or {JSON_TYPE}, not {accept!r}")


def _media_type(request: Request) -> str | None:
    value = request.headers.get("content-type")
    return value.split(";")[0].strip().lower() if value else None


async def read_body(request: Request, limit: int, timeout: float, *, too_large: Callable[[int], MatterPkiError]) -> bytes:
    """The request body, refused when over ``limit`` bytes or not received within ``timeout`` seconds."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as e:
            raise InputError("input.content_length", "Content-Length is not a number") from e
        if size > limit:
            raise too_large(size)
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large(len(body))
    except TimeoutError as e:
        raise ServiceError("serve.timeout", f"the request body did not arrive within {timeout:g} s") from e
    return bytes(body)


def _csr_too_large(size: int) -> MatterPkiError:
    return CsrError("csr.too_large", f"CSR is {size} bytes, over the {MAX_CSR_BYTES}-byte limit")


def station_of(request: Request) -> Station:
    """The authenticated station (set by the gate)."""
    station = request.state.station
    assert isinstance(station, Station)
    return station


def seconds_to_midnight(now: datetime) -> int:
    """Seconds until the next UTC day (when a daily quota resets)."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    return max(1, int(midnight - now.timestamp()))


# -- the gate --------------------------------------------------------------------------------------
class Gate:
    """Station authentication, request id, access log and request metrics around the whole API."""

    def __init__(self, app: ASGIApp, ctx: ServiceContext) -> None:
        self.app, self.ctx = app, ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then pass the request on; log and count it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = [0]

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        who: str | None = None
        try:
            try:
                station = self.authenticate(scope)
            except ServiceError as e:
                state["code"], who = e.code, e.context.get("station", "?")
                await self.ctx.batcher.refuse(who or "?", e.code, e.message, request_id)
                await problem_response(e.code, e.message, request_id)(scope, receive, tagged)
                return
            state["station"], who = station, station.name
            await self.app(scope, receive, tagged)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            code = state.get("code")
            self.ctx.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.ctx.metrics.latency.labels(endpoint).observe(elapsed)
            if code and not state.get("csr_level"):
                self.ctx.metrics.refused.labels(code).inc()
            log.info(
                "request",
                extra={
                    "request_id": request_id, "station": who,
                    "method": scope.get("method"), "path": scope.get("path"), "status": status[0], "code": code,
                    "serial": state.get("serial"), "duration_ms": round(elapsed * 1000, 2),
                },
            )

    def authenticate(self, scope: Scope) -> Station:
        """The active station presenting this connection's client certificate."""
        tls = (scope.get("extensions") or {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or []
        if not chain:
            raise ServiceError("serve.station_unknown", "no client certificate was presented", station="-")
        sha = hashlib.sha256(ssl.PEM_cert_to_DER_cert(chain[0])).hexdigest()
        assert self.ctx.registry is not None
        station = self.ctx.registry.by_certificate(sha)
        if station is None:
            raise ServiceError(
                "serve.station_unknown", "this client certificate belongs to no registered station", station=f"sha256:{sha}"
            )
        if not station.active:
            raise ServiceError(
                "serve.station_revoked", f"station {station.name!r} was revoked at {station.revoked_at}", station=station.name
            )
        return station


# -- handlers --------------------------------------------------------------------------------------
Handler: TypeAlias = "Callable[[Request], Awaitable[Response]]"


def coded(fn: Handler) -> Handler:
    """Turn a MatterPkiError raised by a handler into its problem response (auditing authorization refusals)."""

    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except MatterPkiError as e:
            request.state.code = e.code
            ctx: ServiceContext = request.app.state.ctx
            if e.code in AUDITED_REFUSALS:
                station = station_of(request)
                await ctx.batcher.refuse(
                    station.name, e.code, e.message, request.state.request_id,
                    pai=request.path_params.get("pai"), pid=e.context.get("pid"),
                )
            extra: dict[str, Any] = {}
            if e.code == "serve.quota_exceeded":
                extra["retry_after"] = seconds_to_midnight(datetime.now(UTC))
            return problem_response(e.code, e.message, request.state.request_id, **extra)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def authorize(request: Request) -> tuple[Station, str, int]:
    """The station, PAI and PID of a signing request, if the station may use them."""
    station = station_of(request)
    pai = request.path_params["pai"]
    if pai != station.pai:
        raise ServiceError("serve.pai_not_allowed", f"station {station.name!r} may not sign with PAI {pai!r}")
    text = request.query_params.get("pid")
    if text is None:
        if len(station.pids) != 1:
            raise InputError("input.pid_required", "give the DAC's ProductID: ?pid=8000")
        return station, pai, station.pids[0]
    try:
        pid = parse_hex16(text, "PID")
    except ValueError as e:
        raise InputError("input.pid", str(e)) from e
    if pid not in station.pids:
        allowed = ", ".join(f"{p:04X}" for p in station.pids)
        raise ServiceError("serve.pid_not_allowed", f"station {station.name!r} may sign PID {allowed}, not {pid:04X}", pid=pid)
    return station, pai, pid


def _dac_json(o: CsrOutcome, pai_id: str, pid: int, pai_der: bytes) -> dict[str, Any]:
    assert o.dac_der is not None
    return {
        "status": o.status, "serial": o.serial, "pai": pai_id, "pid": f"{pid:04X}",
        "dac": der_to_pem(o.dac_der).decode(), "pai_certificate": der_to_pem(pai_der).decode(),
    }


@coded
async def issue_one(request: Request) -> Response:
    """POST /v1/pais/{pai}/dacs: one CSR → its DAC."""
    ctx: ServiceContext = request.app.state.ctx
    station, pai_id, pid = authorize(request)
    answer = negotiate(request.headers.get("accept"))
    media = _media_type(request)
    if media is not None and media not in CSR_TYPES:
        raise ServiceError(
            "serve.media_type",
            f"send the CSR as application/pkcs10 (DER or PEM), not {media!r} (curl: -H 'Content-Type: application/pkcs10')",
        )
    csr = await read_body(request, MAX_CSR_BYTES, ctx.settings.body_timeout, too_large=_csr_too_large)
    result = await ctx.batcher.submit(station, pai_id, pid, [csr], request.state.request_id)
    if result.error is not None:
        raise result.error
    assert result.outcomes is not None
    o = result.outcomes[0]
    if o.status == "refused":
        request.state.code, request.state.csr_level = o.code, True
        return problem_response(o.code or "serve.internal", o.message or "", request.state.request_id)
    request.state.serial = o.serial
    pai_der, _paa = await ctx.read(ctx.reader.chain, pai_id)
    status = 201 if o.status == "issued" else 200
    headers = {"location": f"/v1/dacs/{o.serial}"}
    if answer == JSON_TYPE:
        body = {**_dac_json(o, pai_id, pid, pai_der), "request_id": request.state.request_id}
        return JSONResponse(body, status_code=status, headers=headers)
    assert o.dac_der is not None
    return Response(der_to_pem(o.dac_der) + der_to_pem(pai_der), status_code=status, media_type=PEM_CHAIN, headers=headers)


def parse_batch(body: bytes, max_entries: int) -> list[bytes]:
    """The CSRs of a batch request ``{"csrs": [PEM or base64 DER, ...]}``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ServiceError("serve.batch_invalid", f"the body is not JSON: {e}") from e
    csrs = data.get("csrs") if isinstance(data, dict) else None
    if not isinstance(csrs, list) or not csrs:
        raise ServiceError("serve.batch_invalid", 'the body must be {"csrs": [...]} with at least one CSR')
    if len(csrs) > max_entries:
        raise ServiceError("serve.batch_invalid", f"{len(csrs)} CSRs in one request; at most {max_entries}")
    out = []
    for i, entry in enumerate(csrs):
        if not isinstance(entry, str) or len(entry) > BATCH_ENTRY_LIMIT:
            raise ServiceError("serve.batch_invalid", f"csrs[{i}] must be a string of at most {BATCH_ENTRY_LIMIT} characters")
        text = entry.encode()
        if b"-----BEGIN" in text:
            out.append(text)
            continue
        try:
            out.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            out.append(text)  # CSR intake refuses it with its own code (csr.malformed)
    return out


@coded
async def issue_many(request: Request) -> Response:
    """POST /v1/pais/{pai}/dacs/batch: many CSRs → one result each."""
    ctx: ServiceContext = request.app.state.ctx
    station, pai_id, pid = authorize(request)
    accept = request.headers.get("accept")
    if accept is not None and not any(t in accept for t in (JSON_TYPE, "*/*", "application/*")):
        raise ServiceError("serve.not_acceptable", f"the batch endpoint answers {JSON_TYPE}, not {accept!r}")
    if _media_type(request) != JSON_TYPE:
        raise ServiceError("serve.media_type", "send the batch as application/json")
    limit = ctx.settings.max_batch_request * (BATCH_ENTRY_LIMIT + 8) + 1024

    def too_large(size: int) -> MatterPkiError:
        return ServiceError("serve.body_too_large", f"the batch is {size} bytes, over the {limit}-byte limit")

    body = await read_body(request, limit, ctx.settings.body_timeout, too_large=too_large)
    csrs = parse_batch(body, ctx.settings.max_batch_request)
    result = await ctx.batcher.submit(station, pai_id, pid, csrs, request.state.request_id)
    if result.error is not None:
        raise result.error
    assert result.outcomes is not None
    pai_der, _paa = await ctx.read(ctx.reader.chain, pai_id)
    results: list[dict[str, Any]] = []
    for i, o in enumerate(result.outcomes):
        if o.status == "refused":
            code = o.code or "serve.internal"
            results.append({"index": i, "status": "refused", "problem": problem(code, o.message or "")})
        else:
            assert o.dac_der is not None
            results.append({"index": i, "status": o.status, "serial": o.serial, "dac": der_to_pem(o.dac_der).decode()})
    counts = {s: sum(1 for r in results if r["status"] == s) for s in ("issued", "reused", "refused")}
    body_out = {
        "request_id": request.state.request_id, "pai": pai_id, "pid": f"{pid:04X}",
        "pai_certificate": der_to_pem(pai_der).decode(), "counts": counts, "results": results,
    }
    return JSONResponse(body_out)


@coded
async def get_dac(request: Request) -> Response:
    """GET /v1/dacs/{serial}: a DAC of the station's PAI from the ledger."""
    ctx: ServiceContext = request.app.state.ctx
    station = station_of(request)
    answer = negotiate(request.headers.get("accept"))
    serial = parse_serial(request.path_params["serial"])
    entry = await ctx.read(ctx.reader.dac, serial, station.pai)
    if entry is None:
        raise InputError("ledger.serial_unknown", f"no DAC with serial {request.path_params['serial']} from PAI {station.pai!r}")
    pai_der, _paa = await ctx.read(ctx.reader.chain, station.pai)
    request.state.serial = entry.serial
    if answer == JSON_TYPE:
        info = entry.to_dict()
        info.update(dac=der_to_pem(entry.der).decode(), pai_certificate=der_to_pem(pai_der).decode())
        return JSONResponse(info)
    return Response(
        der_to_pem(entry.der) + der_to_pem(pai_der), media_type=PEM_CHAIN, headers={"x-dac-status": entry.status}
    )


@coded
async def list_pais(request: Request) -> Response:
    """GET /v1/pais: the PAI this station may use, its PIDs and today's quota."""
    ctx: ServiceContext = request.app.state.ctx
    station = station_of(request)
    info = await ctx.read(ctx.reader.describe_pai, station.pai)
    assert ctx.registry is not None
    used = ctx.registry.used(station.name, utc_day(datetime.now(UTC)))
    quota = station.quota_per_day
    info.update(
        station_pids=[f"{p:04X}" for p in station.pids],
        quota={"per_day": quota, "used_today": used, "remaining": None if quota is None else max(0, quota - used)},
    )
    return JSONResponse({"station": station.name, "pais": [info]})


async def health(request: Request) -> Response:
    """GET /healthz: ok, or draining during shutdown."""
    ctx: ServiceContext = request.app.state.ctx
    body = {
        "status": "draining" if ctx.draining else "ok",
        "queue_depth": ctx.batcher.queued,
        "seconds_since_last_batch": round(time.monotonic() - ctx.batcher.last_cycle, 3),
    }
    return JSONResponse(body, status_code=503 if ctx.draining else 200)


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus text exposition."""
    ctx: ServiceContext = request.app.state.ctx
    return Response(ctx.metrics.render(), media_type=METRICS_TYPE)


async def openapi(request: Request) -> Response:
    """GET /v1/openapi.json: the API description."""
    return Response(openapi_document(), media_type=JSON_TYPE)


ROUTES = [
    Route("/v1/pais/{pai}/dacs", issue_one, methods=["POST"]),
    Route("/v1/pais/{pai}/dacs/batch", issue_many, methods=["POST"]),
    Route("/v1/dacs/{serial}", get_dac, methods=["GET"]),
    Route("/v1/pais", list_pais, methods=["GET"]),
    Route("/v1/openapi.json", openapi, methods=["GET"]),
    Route("/healthz", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "serve.not_found", 405: "serve.method"}.get(exc.status_code, "serve.internal")
    request.state.code = code
    response = problem_response(code, str(exc.detail), request.state.request_id)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra={"request_id": request.state.request_id})
    request.state.code = "serve.internal"
    return problem_response("serve.internal", "internal error; see the service log", request.state.request_id)


def create_app(ctx: ServiceContext) -> ASGIApp:
    """The ASGI application: the gate around the Starlette router."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        ctx.registry = StationRegistry(ctx.stations_db)
        ctx.batcher.start()
        if ctx.on_started is not None:
            details = await ctx.batcher.call(ctx.on_started)
            log.info("serve.listening", extra=details)
        try:
            yield
        finally:
            ctx.draining = True
            await ctx.batcher.drain()
            if ctx.on_stopped is not None:
                await ctx.batcher.call(ctx.on_stopped)
            await ctx.batcher.close()
            await ctx.read(ctx.reader.close)
            ctx.reader_executor.shutdown(wait=True)
            ctx.registry.close()
            log.info("serve.stopped")

    app = Starlette(
        routes=ROUTES,
        exception_handlers={HTTPException: _http_error, Exception: _crash},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return Gate(app, ctx)
