"""The signing service commands: ``serve`` and ``station add|list|revoke``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from matter_pki.cli.common import (
    ca_passphrase,
    cli_errors,
    cli_secrets,
    emit_json,
    example,
    format_option,
    key_secret_options,
    note,
    secret_file_option,
)
from matter_pki.cli.local import home_option
from matter_pki.errors import ConfigError, InputError, KeyStoreError
from matter_pki.local.home import PkiHome
from matter_pki.vidpid import parse_hex16

if TYPE_CHECKING:
    from matter_pki.audit import AuditLog

STATION_PASSPHRASE_ENV = "MATTER_PKI_STATION_PASSPHRASE"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _pids(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[int, ...]:
    try:
        return tuple(parse_hex16(v, "PID") for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e


def _station_passphrase() -> bytes:
    """The station key's passphrase: --key-passphrase-file / $MATTER_PKI_STATION_PASSPHRASE, else a prompt."""
    from matter_pki.backends.keyfile import passphrase_from_env

    value = passphrase_from_env(STATION_PASSPHRASE_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError(
            "key.passphrase_missing",
            f"no passphrase for the station key: set {STATION_PASSPHRASE_ENV} or give --key-passphrase-file",
        )
    return str(click.prompt("Station key passphrase", hide_input=True, confirmation_prompt=True, err=True)).encode()


def _audit(pki: PkiHome) -> AuditLog:
    """The home's audit log, signing with the home's audit key (encrypted file or token)."""
    from matter_pki.local.state import open_audit

    return open_audit(pki, cli_secrets())


# -- serve ---------------------------------------------------------------------------------------
@example(
    "matter-pki serve --home /var/lib/matter-pki --listen 0.0.0.0:8443 --san ca.factory.example \\",
    '    --passphrase-file "$CREDENTIALS_DIRECTORY/passphrase"',
)
@click.command("serve")
@home_option
@click.option("--listen", default="127.0.0.1:8443", show_default=True, help="HOST:PORT to listen on (port 0: any).")
@click.option("--san", "names", multiple=True, help="Extra DNS name or IP address for the server certificate (repeatable).")
@key_secret_options
@click.option("--validity-days", type=click.IntRange(min=1), help="DAC validity in days (default: no expiry).")
@click.option("--cn", default="Matter DAC", show_default=True, help="DAC common name.")
@click.option("--max-batch", type=click.IntRange(1, 4096), default=256, show_default=True, help="CSRs signed per batch at most.")
@click.option("--max-queue", type=click.IntRange(1, 1_000_000), default=4096, show_default=True, help="CSRs waiting at most (then 503).")
@click.option("--max-batch-request", type=click.IntRange(1, 1000), default=100, show_default=True, help="CSRs per batch request at most.")
@click.option("--max-connections", type=click.IntRange(1, 100_000), default=256, show_default=True, help="Open connections at most.")
@click.option("--header-timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True, help="Seconds to receive a request's headers.")
@click.option("--body-timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True, help="Seconds to receive a request's body.")
@click.option("--handshake-timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True, help="Seconds for the TLS handshake.")
@click.option("--keep-alive", type=click.IntRange(1, 3600), default=5, show_default=True, help="Seconds an idle connection stays open.")
@click.option("--shutdown-timeout", type=click.IntRange(1, 3600), default=30, show_default=True, help="Seconds in-flight requests get on SIGTERM.")
@click.option("--batch-wait", type=click.FloatRange(0, 1), default=0.005, show_default=True,
              help="Seconds a batch waits for more requests before signing (group commit).")
@click.option("--refusal-interval", type=click.FloatRange(0, 60), default=1.0, show_default=True,
              help="Seconds between audit flushes of refused requests (a flood is recorded as counts).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True)
@cli_errors
def serve_cmd(
    home: str | None, listen: str, names: tuple[str, ...], validity_days: int | None, cn: str, max_batch: int, max_queue: int, max_batch_request: int, max_connections: int,
    header_timeout: float, body_timeout: float, handshake_timeout: float, keep_alive: int, shutdown_timeout: int,
    batch_wait: float, refusal_interval: float, log_level: str,
) -> None:
    """Serve DACs over HTTPS to registered stations (client certificates required). JSON logs on stderr.

    The passphrase (and a PKCS#11 home's PIN) are read once, at start, and removed from the environment.
    """
    try:
        from matter_pki.serve.protocol import ConnectionLimits
        from matter_pki.serve.server import ServeOptions, Service, parse_listen, read_secrets
    except ImportError as e:
        raise ConfigError(
            "config.serve_missing", f"the signing service needs the 'serve' extra (starlette, uvicorn, prometheus-client): {e}"
        ) from e

    host, port = parse_listen(listen)
    options = ServeOptions(
        host=host, port=port, names=names, validity_days=validity_days, common_name=cn, max_batch=max_batch,
        max_queue=max_queue, max_batch_request=max_batch_request, body_timeout=body_timeout, keep_alive=keep_alive,
        shutdown_timeout=shutdown_timeout, refusal_flush=refusal_interval, batch_wait=batch_wait,
        log_level=log_level,
        limits=ConnectionLimits(header_timeout=header_timeout, max_connections=max_connections, handshake_timeout=handshake_timeout),
    )
    secrets, passphrase = read_secrets()
    service = Service(PkiHome.resolve(home), options, secrets, passphrase)
    service.prepare()
    sys.exit(service.serve())


# -- station -------------------------------------------------------------------------------------
@example("matter-pki station list --format json")
@click.group("station")
def station_group() -> None:
    """Production stations allowed to call 'matter-pki serve'."""


@example("MATTER_PKI_STATION_PASSPHRASE=... matter-pki station add line-1 --pai pai-1 --pid 8000 --quota 5000/day --out line-1/")
@station_group.command("add")
@home_option
@click.argument("name")
@click.option("--pai", "pai_id", required=True, help="The PAI this station signs with.")
@click.option("--pid", "pids", multiple=True, required=True, callback=_pids, metavar="HEX16", help="An allowed DAC ProductID (repeatable).")
@click.option("--quota", help="New DACs per UTC day at most, e.g. 5000/day (default: no limit).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder for station.key, station.pem, ca.pem, station.json.")
@click.option("--validity-days", type=click.IntRange(min=1), default=365, show_default=True, help="Client certificate validity.")
@key_secret_options
@secret_file_option(
    "--key-passphrase-file", STATION_PASSPHRASE_ENV,
    f"Read the station key's own passphrase from the first line of FILE (mode 0600) instead of {STATION_PASSPHRASE_ENV}.",
)
@format_option()
@cli_errors
def station_add(
    home: str | None, name: str, pai_id: str, pids: tuple[int, ...], quota: str | None, out: str, validity_days: int,
    fmt: str,
) -> None:
    """Register a station: writes its encrypted key, client certificate and the CA bundle into --out."""
    from matter_pki.serve.stations import add_station, parse_quota

    pki = PkiHome.resolve(home)
    per_day = parse_quota(quota)
    passphrase = ca_passphrase(False)
    station_passphrase = _station_passphrase()
    if station_passphrase == passphrase:
        raise InputError("input.passphrase_reused", "the station key must not be encrypted with the home passphrase")
    station = add_station(
        pki, name=name, pai_id=pai_id, pids=pids, quota_per_day=per_day, out_dir=Path(out), passphrase=passphrase,
        station_passphrase=station_passphrase, audit=_audit(pki), now=_now(), days=validity_days,
    )
    if fmt == "json":
        emit_json({**station.to_dict(), "out": out})
        return
    click.echo(f"station {station.name}: PAI {station.pai}, PID {', '.join(f'{p:04X}' for p in station.pids)}")
    note(f"files: {Path(out) / 'station.key'} (encrypted), station.pem, ca.pem, station.json")


@example("matter-pki station list --format json")
@station_group.command("list")
@home_option
@format_option()
@cli_errors
def station_list(home: str | None, fmt: str) -> None:
    """List stations: PAI, PIDs, quota and today's use, status."""
    from matter_pki.serve.stations import list_stations

    rows = list_stations(PkiHome.resolve(home), _now())
    if fmt == "json":
        emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "PAI", "PIDS", "QUOTA/DAY", "USED TODAY", "STATUS", "NOT AFTER"):
        table.add_column(column)
    for r in rows:
        quota: Any = r["quota_per_day"]
        table.add_row(
            r["name"], r["pai"], ",".join(r["pids"]), "-" if quota is None else str(quota), str(r["used_today"]),
            r["status"], r["not_after"],
        )
    Console(width=200).print(table)


@example("matter-pki station revoke line-1 --reason 'key stolen'")
@station_group.command("revoke")
@home_option
@click.argument("name")
@click.option("--reason", help="Why (recorded in the registry and the audit log).")
@key_secret_options
@format_option()
@cli_errors
def station_revoke(home: str | None, name: str, reason: str | None, fmt: str) -> None:
    """Revoke a station: a running server refuses it from its next request on."""
    from matter_pki.serve.stations import revoke_station

    pki = PkiHome.resolve(home)
    station = revoke_station(pki, name, reason=reason, audit=_audit(pki), now=_now())
    if fmt == "json":
        emit_json(station.to_dict())
        return
    click.echo(f"revoked station {station.name} at {station.revoked_at}")


def register(group: click.Group) -> None:
    """Attach ``serve`` and ``station`` to the top-level group."""
    group.add_command(serve_cmd)
    group.add_command(station_group)
