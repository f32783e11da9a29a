"""Local CA commands: ``init``, ``pai``, ``dac``, ``csr generate|export-key``, ``inbox run``, ``revoke``, ``crl publish``,
``ledger verify|rebuild``, ``home upgrade|rekey``.

Shared options: ``home_option`` (also refuses environment variables that contradict the home's
configuration), ``hex16_option`` (VID/PID, checked by ``matter_pki.idrules``), ``validity_options``;
everything else (formats, errors, secrets) comes from ``matter_pki.cli.common``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from matter_pki.backends.keyfile import KEY_MODE, encrypt_key
from matter_pki.backends.pkcs11 import MODULE_ENV, PIN_ENV, TOKEN_ENV, Pkcs11Config, resolve_module_token
from matter_pki.cli.common import (
    BATCH_INTERRUPTED,
    STDIO,
    ExitStatus,
    ca_passphrase,
    check_stdout_free,
    cli_errors,
    cli_secrets,
    device_passphrase,
    device_passphrase_option,
    emit_json,
    example,
    format_option,
    key_secret_options,
    note,
    pkcs11_pin,
    read_file,
    read_input,
    write_output,
)
from matter_pki.errors import CertificateError, ConfigError, InputError
from matter_pki.idrules import check_pid, check_vid, vid_note
from matter_pki.local import ca as ca_ops
from matter_pki.local import crl as crl_ops
from matter_pki.local.devices import generate_device_csrs, load_device_key
from matter_pki.local.home import HOME_ENV, PAA_ID, CaInfo, KeyStoreSettings, PkiHome
from matter_pki.local.inbox import run_inbox
from matter_pki.local.issue import RunTotals, der_to_pem, issue_files
from matter_pki.local.ledger import Ledger, iso, parse_serial, serial_hex
from matter_pki.vidpid import format_hex16, parse_hex16

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO

    from matter_pki.local.issue import Outcome
    from matter_pki.local.keys import Secrets

MAX_LISTED_REFUSALS = 20


def _hex16(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Option callback for a VID or PID: 1-4 hex digits, optional 0x, and a value Matter allows."""
    if value is None:
        return None
    what = (param.name or "value").upper()
    try:
        number = parse_hex16(value, what)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e
    return check_vid(number) if what == "VID" else check_pid(number)


def hex16_option(*decls: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``HEX16`` option (VID/PID) parsed to an int."""
    return click.option(*decls, metavar="HEX16", callback=_hex16, help=help)


def check_environment(home: PkiHome) -> None:
    """Refuse environment variables that contradict the home's configuration (``config.env_conflict``).

    The home's key store (module, token) is what its keys were made in; an environment variable naming
    another one would otherwise be silently ignored.
    """
    if not home.is_initialized():
        return
    settings = home.key_store()
    if settings.kind != "pkcs11":
        return
    for env, configured in ((MODULE_ENV, settings.module), (TOKEN_ENV, settings.token)):
        value = os.environ.get(env)
        if value and configured and value != configured:
            raise ConfigError(
                "config.env_conflict",
                f"{env}={value!r} but the home {str(home.path)!r} keeps its keys in {configured!r}: "
                f"unset {env} (the home's configuration is used)",
            )


def _check_home(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if not ctx.resilient_parsing:
        check_environment(PkiHome.resolve(value))
    return value


def home_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--home DIR`` (``$MATTER_PKI_HOME``, default ``~/.matter-pki``), checked against the environment."""
    return click.option(
        "--home", "home", type=click.Path(file_okay=False), default=None, callback=_check_home,
        help=f"PKI home folder [env {HOME_ENV}; default ~/.matter-pki].",
    )(fn)


def validity_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--validity-days N`` / ``--no-expiry`` (the default: 99991231235959Z)."""
    fn = click.option("--no-expiry", is_flag=True, help="notAfter 99991231235959Z (the default).")(fn)
    return click.option("--validity-days", type=click.IntRange(min=1), default=None, help="Validity in days.")(fn)


def _days(validity_days: int | None, no_expiry: bool) -> int | None:
    if validity_days is not None and no_expiry:
        raise InputError("input.validity", "use either --validity-days or --no-expiry, not both")
    return validity_days


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


_ask_passphrase = ca_passphrase
_ask_pin = pkcs11_pin


def _secrets() -> Secrets:
    return cli_secrets()


def _info(message: str) -> None:
    note(message)


@contextlib.contextmanager
def _progress(label: str, enabled: bool) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A rich progress bar on stderr (only on a terminal): ``start(total)``, then ``advance(done)``."""
    if not (enabled and sys.stderr.isatty()):
        # No bar: rich is not even imported (start-up time counts at factory speed).
        yield (lambda _total: None), (lambda _done: None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not console.is_terminal, transient=False,
        # No refresh thread: the issuing process must stay single-threaded so its signing workers and its
        # writer are forked (a thread would make them spawn and turn the writer off); the bar is redrawn per group.
        auto_refresh=False,
    )
    task: list[Any] = []
    pending = [0]

    def start(total: int) -> None:
        task.append(progress.add_task(label, total=total))
        progress.refresh()

    def advance(done: int) -> None:
        pending[0] += done
        if task and pending[0] >= 256:  # the bar moves per group of answers, not per answer (it costs)
            progress.advance(task[0], pending[0])
            progress.refresh()
            pending[0] = 0

    with progress:
        yield start, advance
        if task and pending[0]:
            progress.advance(task[0], pending[0])
            progress.refresh()


class _Results:
    """What a batch command remembers of its outcomes: the first, the count refused earlier, and (JSON) a spool.

    Nothing grows with the number of CSRs: in JSON mode each result goes to a temporary file as it
    comes, and is copied to stdout at the end.
    """

    def __init__(self, stack: contextlib.ExitStack, fmt: str, advance: Callable[[int], None]) -> None:
        self.spool: IO[str] | None = stack.enter_context(tempfile.TemporaryFile("w+")) if fmt == "json" else None
        self.advance = advance
        self.first: Outcome | None = None
        #: CSRs skipped because an earlier run refused them (an ``.err`` without a DAC).
        self.refused_earlier = 0

    def __call__(self, outcome: Outcome) -> None:
        if self.first is None:
            self.first = outcome
        if outcome.status == "skipped" and outcome.code is not None:
            self.refused_earlier += 1
        if self.spool is not None:
            self.spool.write(json.dumps(outcome.to_dict()) + "\n")
        self.advance(1)


def _summary(totals: RunTotals, notes: list[str], fmt: str, extra: dict[str, Any], results: _Results) -> None:
    counts = totals.counts
    refused = totals.refusals
    earlier = results.refused_earlier
    if earlier:
        notes = [*notes, f"{earlier} of the CSRs already answered were refused by an earlier run (.err); "
                 "re-examine them with --retry-refused"]  # fmt: skip
    if fmt == "json":
        # Results were spooled to a temporary file as they came: memory does not grow with the CSRs.
        head = {**extra, "counts": counts, "refused_earlier": earlier, "notes": notes}
        out = sys.stdout
        out.write("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in head.items()))
        out.write(', "results": [')
        if results.spool is not None:
            results.spool.seek(0)
            for i, line in enumerate(results.spool):
                out.write(("," if i else "") + "\n  " + line.rstrip("\n"))
        out.write("\n]}\n")
        out.flush()
        return
    for line in notes:
        _info(f"note: {line}")
    click.echo(
        f"issued {counts['issued']}, re-delivered from ledger {counts['reused']}, "
        f"already answered {counts['skipped']}, refused {counts['refused']}"
    )
    for o in refused[:MAX_LISTED_REFUSALS]:
        click.echo(f"  refused {o.key}: [{o.code}] {o.message}")
    if counts["refused"] > MAX_LISTED_REFUSALS:
        click.echo(f"  ... and {counts['refused'] - MAX_LISTED_REFUSALS} more (see the .err files)")
    for key, value in extra.items():
        if value:
            click.echo(f"{key}: {value}")


# -- init ----------------------------------------------------------------------------------------
@example("MATTER_PKI_PASSPHRASE=... matter-pki init --vid FFF1 --cn 'ACME PAA'")
@click.command("init")
@home_option
@hex16_option("--vid", help="VendorID of a VID-scoped PAA (e.g. FFF1).")
@click.option("--no-vid", is_flag=True, help="Create a non-VID-scoped PAA.")
@click.option("--import-paa", type=click.Path(dir_okay=False), help="Work under an existing PAA (certificate only).")
@click.option("--cn", help="PAA common name (default 'Matter PAA').")
@click.option("--o", "organization", help="PAA organization (O).")
@click.option("--validity-days", type=click.IntRange(min=1), help="PAA validity in days (default: no expiry).")
@click.option("--key-store", type=click.Choice(["file", "pkcs11"]), default="file", show_default=True)
@click.option("--pkcs11-module", help=f"PKCS#11 library [env {MODULE_ENV}].")
@click.option("--pkcs11-token", help=f"PKCS#11 token label [env {TOKEN_ENV}]; PIN from {PIN_ENV}.")
@key_secret_options
@format_option()
@cli_errors
def init_cmd(
    home: str | None, vid: int | None, no_vid: bool, import_paa: str | None, cn: str | None,
    organization: str | None, validity_days: int | None, key_store: str, pkcs11_module: str | None,
    pkcs11_token: str | None, fmt: str,
) -> None:
    """Create a PKI home with a new PAA (--vid or --no-vid), or under an imported PAA (--import-paa)."""
    if sum((vid is not None, no_vid, import_paa is not None)) != 1:
        raise InputError("input.init_mode", "give exactly one of --vid, --no-vid or --import-paa")
    pki = PkiHome.resolve(home)
    settings = KeyStoreSettings(kind="file")
    if key_store == "pkcs11":
        module, token = resolve_module_token(pkcs11_module, pkcs11_token)
        settings = KeyStoreSettings(kind="pkcs11", module=module, token=token)
    if import_paa is not None:
        if cn or organization or validity_days:
            raise InputError("input.init_mode", "--cn, --o and --validity-days do not apply to an imported PAA")
        info = ca_ops.import_paa(
            pki, read_file(import_paa, "PAA certificate"), settings=settings, secrets=_secrets(), now=_now()
        )
        text = f"imported PAA into {pki.path}"
        hint = "PAIs are created by CSR: matter-pki pai create --csr-out pai.csr, then matter-pki pai import"
    else:
        info = ca_ops.init_paa(
            pki, vid=vid, common_name=cn, organization=organization, validity_days=validity_days,
            settings=settings, secrets=_secrets(), now=_now(),
        )
        scope = f"VID {info.vid:04X}" if info.vid is not None else "no VID"
        text = f"created PAA ({scope}, {settings.kind} key) in {pki.path}"
        hint = "next: matter-pki pai create --pid 8000"
    if fmt == "json":
        emit_json(_ca_data(pki, info))
        return
    click.echo(text)
    click.echo(f"certificate: {pki.cert_path(PAA_ID)}")
    _ca_notes(info)
    _info(hint)


def _ca_data(pki: PkiHome, info: CaInfo, **extra: Any) -> dict[str, Any]:
    """The JSON of ``init``, ``pai create`` and ``pai import`` (one shape for the three)."""
    cert = pki.cert_path(info.id)
    return {
        "id": info.id, "role": info.role, "state": info.state, "home": str(pki.path),
        "vid": format_hex16(info.vid) if info.vid is not None else None,
        "pid": format_hex16(info.pid) if info.pid is not None else None,
        "imported": info.imported, "certificate": str(cert) if cert.exists() else None,
        "csr": None, **extra, "notes": [n for n in (vid_note(info.vid),) if n],
    }  # fmt: skip


def _ca_notes(info: CaInfo) -> None:
    note_text = vid_note(info.vid)
    if note_text:
        _info(f"note: {note_text}")


# -- pai -----------------------------------------------------------------------------------------
@example("matter-pki pai list --format json")
@click.group("pai")
def pai_group() -> None:
    """Product Attestation Intermediates."""


@example("matter-pki pai create --pid 8000", "matter-pki pai create --csr-out - > pai.csr   # under an imported PAA")
@pai_group.command("create")
@home_option
@hex16_option("--pid", help="Scope the PAI to one ProductID (e.g. 8000).")
@hex16_option("--vid", help="VendorID (default: the PAA's; required under a non-VID PAA).")
@click.option("--cn", help="PAI common name (default 'Matter PAI').")
@click.option("--o", "organization", help="PAI organization (O).")
@click.option("--validity-days", type=click.IntRange(min=1), help="PAI validity in days (default: no expiry).")
@click.option("--id", "pai_id", help="PAI id (default pai-<n>).")
@click.option("--csr-out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write a CSR for an external PAA instead of signing here ('-': stdout).")
@key_secret_options
@format_option()
@cli_errors
def pai_create(
    home: str | None, pid: int | None, vid: int | None, cn: str | None, organization: str | None,
    validity_days: int | None, pai_id: str | None, csr_out: str | None, fmt: str,
) -> None:
    """Create a PAI; prints its id. With --csr-out, only the key and a CSR are made (then 'pai import')."""
    check_stdout_free(csr_out, fmt)
    pki = PkiHome.resolve(home)
    args: dict[str, Any] = {
        "pid": pid, "vid": vid, "common_name": cn, "organization": organization,
        "validity_days": validity_days, "pai_id": pai_id, "secrets": _secrets(), "now": _now(),
    }
    if csr_out is None:
        info = ca_ops.create_pai(pki, **args)
        if fmt == "json":
            emit_json(_ca_data(pki, info))
            return
        click.echo(info.id)
        _info(f"certificate: {pki.cert_path(info.id)}")
        _ca_notes(info)
        return
    if csr_out != STDIO and Path(csr_out).exists():
        raise InputError("input.exists", f"{csr_out!r} exists; refusing to overwrite it")
    info, pem = ca_ops.create_pai_request(pki, **args)
    where = write_output(csr_out, pem, what="CSR file")
    if fmt == "json":
        emit_json(_ca_data(pki, info, csr=where))
        return
    if csr_out != STDIO:
        click.echo(info.id)
    _ca_notes(info)
    _info(f"CSR written to {where}; after the PAA owner signs it: matter-pki pai import --pai {info.id} --cert FILE")


@example("matter-pki pai import --pai pai-1 --cert pai.pem")
@pai_group.command("import")
@home_option
@click.option("--pai", "pai_id", required=True, help="The pending PAI id printed by 'pai create --csr-out'.")
@click.option("--cert", required=True, metavar="CERT", help="The PAI certificate signed by the PAA (a file or '-').")
@key_secret_options
@format_option()
@cli_errors
def pai_import(home: str | None, pai_id: str, cert: str, fmt: str) -> None:
    """Install the certificate issued by the external PAA for a pending PAI."""
    from matter_pki.cli.common import read_input

    pki = PkiHome.resolve(home)
    info = ca_ops.import_pai(pki, pai_id, read_input(cert, "PAI certificate"), secrets=_secrets(), now=_now())
    if fmt == "json":
        emit_json(_ca_data(pki, info))
        return
    click.echo(f"{info.id} is active")


@example("matter-pki pai list --all")
@pai_group.command("list")
@home_option
@format_option()
@click.option("--all", "include_paa", is_flag=True, help="Include the PAA.")
@cli_errors
def pai_list(home: str | None, fmt: str, include_paa: bool) -> None:
    """List the PAIs of the home."""
    rows = ca_ops.describe_cas(PkiHome.resolve(home), include_paa=include_paa)
    if fmt == "json":
        emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "VID", "PID", "STATE", "KEY", "SERIAL", "NOT AFTER", "DACS", "REVOKED"):
        table.add_column(column)
    for r in rows:
        state = "revoked" if r.get("revoked") else r["state"]
        table.add_row(
            r["id"], r["vid"] or "-", r["pid"] or "-", state, r["key_store"] or "external",
            r.get("serial", "-"), r.get("not_after", "-"), str(r.get("dacs_issued", "-")), str(r.get("dacs_revoked", "-")),
        )
    Console(width=200).print(table)


# -- dac -----------------------------------------------------------------------------------------
@example("matter-pki dac list --status revoked --format csv")
@click.group("dac")
def dac_group() -> None:
    """Device Attestation Certificates."""


@example(
    "matter-pki dac issue --pai pai-1 --pid 8000 --csr csrs/ --out dacs/ --jobs 0 --bundle line-7",
    "matter-pki dac issue --pai pai-2 --pid 8001 --csr moved/ --out dacs2/ --reissue-reason 'product line moved to 8001'",
)
@dac_group.command("issue")
@home_option
@click.option("--pai", "pai_id", required=True, help="Issuing PAI id.")
@hex16_option("--pid", help="DAC ProductID (default: the PAI's PID).")
@click.option("--csr", "csr", required=True, type=click.Path(exists=True), help="A CSR file, or a folder of *.csr.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@validity_options
@click.option("--cn", default="Matter DAC", show_default=True, help="DAC common name.")
@click.option("--jobs", type=click.IntRange(min=0), default=1, show_default=True, help="Signing processes (0: one per core).")
@click.option("--retry-refused", is_flag=True, help="Examine CSRs refused by an earlier run (<name>.err) again.")
@click.option("--bundle", "bundle", metavar="NAME",
              help="Also write one manifest of the batch: <out>/NAME.csv and <out>/NAME.jsonl.")
@click.option("--reissue-reason", metavar="TEXT",
              help="Allow a DAC for a device key already certified under another PAI or PID (recorded and audited).")
@key_secret_options
@format_option()
@cli_errors(interrupted=BATCH_INTERRUPTED)
def dac_issue(
    home: str | None, pai_id: str, pid: int | None, csr: str, out: str, validity_days: int | None,
    no_expiry: bool, cn: str, jobs: int, retry_refused: bool, bundle: str | None, reissue_reason: str | None, fmt: str,
) -> None:
    """Issue DACs: <name>.pem per CSR (plus pai.pem, paa.pem), <name>.err for refusals. Exit 1 if any refused."""
    pki = PkiHome.resolve(home)
    single = not Path(csr).is_dir()
    if not single:
        _require_csrs(Path(csr), [])
    with contextlib.ExitStack() as stack:
        start, advance = stack.enter_context(_progress("DACs", not single and fmt == "text"))
        results = _Results(stack, fmt, advance)
        report = issue_files(
            pki, pai_id=pai_id, csr_path=Path(csr), out_dir=Path(out), secrets=_secrets(), now=_now(), pid=pid,
            validity_days=_days(validity_days, no_expiry), common_name=cn, jobs=jobs, on_start=start,
            on_result=results, retry_refused=retry_refused, reissue_reason=reissue_reason, bundle=bundle,
        )
        if not single:
            _require_csrs(Path(csr), report.notes, sum(report.totals.counts.values()))
        o = results.first
        if single and fmt == "text" and o is not None:
            if o.status == "refused":
                click.echo(f"error[{o.code}]: {o.message}", err=True)
            elif o.status == "skipped" and o.code is not None:
                click.echo(f"already refused by an earlier run: {Path(out) / o.name}.err")
                _info("note: re-examine it with --retry-refused")
            elif o.status == "skipped":
                click.echo(f"already answered: {Path(out) / o.name}.pem exists")
            else:
                again = " (already in the ledger: same DAC)" if o.status == "reused" else ""
                click.echo(f"{Path(out) / o.name}.pem serial {o.serial}{again}")
        else:
            extra: dict[str, Any] = {"output": str(report.out_dir)}
            if report.totals.bundle:
                extra["bundle"] = [str(report.out_dir / name) for name in report.totals.bundle]
            _summary(report.totals, report.notes, fmt, extra, results)
    sys.exit(ExitStatus.REFUSED if report.count("refused") else ExitStatus.OK)


def _require_csrs(folder: Path, notes: list[str], answered: int | None = None) -> None:
    """An empty batch is an error (``input.no_csr``), not a run that answers nothing."""
    if answered is None:
        with os.scandir(folder) as entries:
            if any(e.name.endswith(".csr") for e in entries):
                return
    elif answered:
        return
    for line in notes:
        _info(f"note: {line}")
    raise InputError("input.no_csr", f"no <name>.csr to answer in {str(folder)!r}")


@example("matter-pki dac show 5A3F09C1D2 --pem > dac.pem")
@dac_group.command("show")
@home_option
@click.argument("serial")
@click.option("--pai", "pai_id", help="Issuing CA id, when the serial is not unique.")
@format_option()
@click.option("--pem", "as_pem", is_flag=True, help="Print the certificate PEM instead.")
@cli_errors
def dac_show(home: str | None, serial: str, pai_id: str | None, fmt: str, as_pem: bool) -> None:
    """Show the ledger entries of a certificate serial (hex); JSON is always a list."""
    pki = PkiHome.resolve(home).require()
    with Ledger(pki.ledger_path) as ledger:
        entries = ledger.find_serial(serial_hex(parse_serial(serial)), pai_id)
    if not entries:
        raise InputError("ledger.serial_unknown", f"no certificate with serial {serial} in this home")
    if as_pem:
        for e in entries:
            click.echo(der_to_pem(e.der).decode(), nl=False)
        return
    if fmt == "json":
        emit_json([e.to_dict() for e in entries])
        return
    for i, e in enumerate(entries):
        if i:
            click.echo("")
        for key, value in e.to_dict().items():
            if value is not None:
                click.echo(f"{key + ':':<19}{value}")


LIST_COLUMNS = (
    "serial", "ca", "pid", "status", "issued_at", "not_before", "not_after", "operator", "revocation_reason",
    "revoked_at", "csr_sha256", "subject",
)  # fmt: skip


@example("matter-pki dac list --pai pai-1 --since 7d --format csv > issued.csv")
@dac_group.command("list")
@home_option
@click.option("--pai", "pai_id", help="Only DACs issued by this PAI.")
@hex16_option("--pid", help="Only DACs with this ProductID.")
@click.option("--status", type=click.Choice(["any", "issued", "revoked"]), default="any", show_default=True)
@click.option("--since", help="Issued at or after: ISO 8601, or an age such as 24h / 7d.")
@click.option("--until", help="Issued before: ISO 8601, or an age.")
@format_option("csv")
@cli_errors
def dac_list(
    home: str | None, pai_id: str | None, pid: int | None, status: str, since: str | None, until: str | None, fmt: str
) -> None:
    """The ledger's DACs (the 'openssl ca' index of this PKI), oldest first; JSON is a list."""
    from matter_pki.cli.common import parse_when

    pki = PkiHome.resolve(home).require()
    start, end = parse_when(since), parse_when(until)
    with Ledger(pki.ledger_path) as ledger:
        entries = ledger.entries(ca=pai_id, kind="dac")
    rows = [
        e.to_dict() for e in entries
        if (pid is None or e.pid == pid) and status in ("any", e.status)
        and (start is None or e.issued_at >= iso(start)) and (end is None or e.issued_at < iso(end))
    ]  # fmt: skip
    if fmt == "json":
        emit_json(rows)
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=LIST_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for r in rows:
            click.echo(f"{r['serial']:<42} {r['ca']:<12} {r['pid'] or '-':<5} {r['status']:<8} {r['issued_at']}")
        _info(f"{len(rows)} DAC(s)")


# -- csr generate / export-key --------------------------------------------------------------------
#: The Ctrl-C line of ``csr generate``.
CSR_GENERATE_INTERRUPTED = "interrupted; re-run the same command to finish: devices already written are kept"


@example(
    "MATTER_PKI_DEVICE_PASSPHRASE=... matter-pki csr generate --count 20000 --out csrs",
    "matter-pki csr generate --count 20000 --out csrs --device-passphrase-file <(pass show factory/devices)",
)
@click.command("generate")
@home_option
@click.option("--count", type=click.IntRange(min=1), required=True, help="How many devices.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--prefix", default="device-", show_default=True, help="Name prefix (<prefix><n>.csr).")
@click.option("--start", type=click.IntRange(min=0), default=1, show_default=True, help="First number.")
@click.option("--jobs", type=click.IntRange(min=0), default=0, show_default=True, help="Worker processes (0: one per core).")
@click.option("--key-store", type=click.Choice(["file", "pkcs11"]), default="file", show_default=True)
@click.option("--pkcs11-module", help=f"PKCS#11 library [env {MODULE_ENV}; default: the home's].")
@click.option("--pkcs11-token", help=f"PKCS#11 token label [env {TOKEN_ENV}; default: the home's].")
@device_passphrase_option
@format_option()
@cli_errors(interrupted=CSR_GENERATE_INTERRUPTED)
def csr_generate(
    home: str | None, count: int, out: str, prefix: str, start: int, jobs: int, key_store: str,
    pkcs11_module: str | None, pkcs11_token: str | None, fmt: str,
) -> None:
    """Generate factory device key pairs (P-256) and CSRs: sealed <name>.key files (0600) or HSM keys.

    Device keys have their own passphrase, never the CA's. Re-running the same command after an
    interruption finishes the run.
    """
    passphrase: bytes | None = None
    pkcs11: Pkcs11Config | None = None
    if key_store == "pkcs11":
        pki = PkiHome.resolve(home)
        if pki.is_initialized() and pki.key_store().kind == "pkcs11":
            pkcs11_module = pkcs11_module or pki.key_store().module
            pkcs11_token = pkcs11_token or pki.key_store().token
        pkcs11 = Pkcs11Config.from_env(pkcs11_module, pkcs11_token, pin=_ask_pin())
    else:
        passphrase = device_passphrase(True)
    with _progress("CSRs", fmt == "text") as (on_start, on_progress):
        report = generate_device_csrs(
            Path(out), count=count, prefix=prefix, start=start, passphrase=passphrase, pkcs11=pkcs11, jobs=jobs,
            on_start=on_start, on_progress=on_progress,
        )
    if fmt == "json":
        emit_json({
            "out": out, "count": count, "first": report.first, "last": report.last, "key_store": report.key_store,
            "token": pkcs11.token if pkcs11 else None, "kept": report.kept, "rebuilt": report.rebuilt,
            "resumed": report.resumed,
        })  # fmt: skip
        return
    where = f"token {pkcs11.token}" if pkcs11 else "sealed .key files (0600)"
    click.echo(f"generated {report.made} devices in {out} ({report.first} .. {report.last}); keys in {where}")
    if report.resumed:
        click.echo(f"finished an interrupted run: {report.kept} devices were complete, {report.rebuilt} CSRs re-made from their keys")


@example(
    "matter-pki csr export-key csrs/device-00042.key --dac dacs/device-00042.pem --key-format der | flash-tool --dac-key -",
    "matter-pki csr export-key csrs/device-00042.key --key-format encrypted-pem -o station/device-00042.pem",
)
@click.command("export-key")
@click.argument("key_file", type=click.Path(dir_okay=False))
@click.option("--key-format", type=click.Choice(["pem", "der", "encrypted-pem"]), default="pem", show_default=True,
              help="PKCS#8 private key: PEM, DER, or PEM encrypted with the device-key passphrase.")  # fmt: skip
@click.option("-o", "--out", "out", default=STDIO, show_default=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="Output file ('-': stdout, a pipe); only encrypted-pem goes to a file (a new one, mode 0600).")  # fmt: skip
@click.option("--dac", "dac_file", help="Refuse unless this DAC (file, '-' or inline PEM/hex) certifies the key.")
@device_passphrase_option
@format_option()
@cli_errors
def csr_export_key(key_file: str, key_format: str, out: str, dac_file: str | None, fmt: str) -> None:
    """Decrypt one device key made by 'csr generate', for a flashing step (plain keys only to a pipe)."""
    check_stdout_free(out, fmt)
    dac = ca_ops.load_certificate_bytes(read_input(dac_file, "DAC"), "DAC") if dac_file else None
    if key_format != "encrypted-pem" and out != STDIO:
        raise InputError("input.plaintext_key", "an unencrypted key is only written to a pipe (-o -), or use --key-format encrypted-pem")
    if key_format != "encrypted-pem" and sys.stdout.isatty():
        raise InputError("input.plaintext_key", "refusing to print a private key on a terminal: pipe it to the flashing tool")
    if out != STDIO and Path(out).exists():
        raise InputError("input.exists", f"{out!r} exists; refusing to overwrite it")
    passphrase = device_passphrase(False)
    key = load_device_key(key_file, passphrase)
    if dac is not None and dac.public_key() != key.public_key():
        raise CertificateError("cert.key_mismatch", f"{dac_file!r} certifies another key than {key_file!r}")
    if key_format == "encrypted-pem":
        data = encrypt_key(key, passphrase)
    else:
        data = key.private_bytes(Encoding.DER if key_format == "der" else Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    where = write_output(out, data, what="key file", mode=KEY_MODE)
    if fmt == "json":
        emit_json({"key": key_file, "name": Path(key_file).stem, "out": where, "key_format": key_format,
                   "dac_checked": dac is not None})  # fmt: skip
    elif out != STDIO:
        click.echo(f"{Path(key_file).stem}: key written to {where} (encrypted PKCS#8, mode 0600)")


# -- inbox ---------------------------------------------------------------------------------------
@example("matter-pki inbox run --dir inbox --jobs 0")
@click.group("inbox")
def inbox_group() -> None:
    """The local CSR inbox (<dir>/<PAI id>/<PID>/<name>.csr)."""


@example("matter-pki inbox run --dir inbox --retry-refused")
@inbox_group.command("run")
@home_option
@click.option("--dir", "inbox_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Inbox folder.")
@validity_options
@click.option("--cn", default="Matter DAC", show_default=True, help="DAC common name.")
@click.option("--jobs", type=click.IntRange(min=0), default=1, show_default=True, help="Signing processes (0: one per core).")
@click.option("--retry-refused", is_flag=True, help="Examine CSRs refused by an earlier run (<name>.err) again.")
@key_secret_options
@format_option()
@cli_errors(interrupted=BATCH_INTERRUPTED)
def inbox_run(
    home: str | None, inbox_dir: str, validity_days: int | None, no_expiry: bool, cn: str, jobs: int,
    retry_refused: bool, fmt: str,
) -> None:
    """Answer every unanswered CSR in the inbox with <name>.pem or <name>.err (safe to re-run)."""
    pki = PkiHome.resolve(home)
    with contextlib.ExitStack() as stack:
        start, advance = stack.enter_context(_progress("DACs", fmt == "text"))
        results = _Results(stack, fmt, advance)
        report = run_inbox(
            pki, Path(inbox_dir), secrets=_secrets(), now=_now(), validity_days=_days(validity_days, no_expiry),
            common_name=cn, jobs=jobs, on_start=start, on_result=results, retry_refused=retry_refused,
        )
        if not report.notes:
            _require_csrs(Path(inbox_dir), report.notes, sum(report.totals.counts.values()))  # the wrong folder?
        _summary(report.totals, report.notes, fmt, {"inbox": inbox_dir}, results)


# -- revocation ----------------------------------------------------------------------------------
@example("matter-pki revoke --serial 5A3F09C1D2 --reason keyCompromise && matter-pki crl publish --pai pai-1")
@click.command("revoke")
@home_option
@click.option("--serial", required=True, help="Serial number (hex).")
@click.option("--reason", required=True, help="keyCompromise, cACompromise, affiliationChanged, superseded, "
              "cessationOfOperation, privilegeWithdrawn or unspecified.")
@click.option("--pai", "pai_id", help="The DAC's issuing PAI (when the serial is not unique).")
@click.option("--paa", "is_pai", is_flag=True, help="The serial is a PAI's (issued by the PAA).")
@key_secret_options
@format_option()
@cli_errors
def revoke_cmd(home: str | None, serial: str, reason: str, pai_id: str | None, is_pai: bool, fmt: str) -> None:
    """Revoke a DAC or a PAI in the ledger; then run 'matter-pki crl publish'."""
    if pai_id and is_pai:
        raise InputError("input.revoke_scope", "use either --pai or --paa")
    pki = PkiHome.resolve(home)
    result = crl_ops.revoke(
        pki, serial=serial, reason=reason, ca=PAA_ID if is_pai else pai_id, now=_now(), secrets=_secrets()
    )
    entry = result.entry
    scope = "--paa" if entry.ca == PAA_ID else f"--pai {entry.ca}"
    if fmt == "json":
        emit_json({**entry.to_dict(), "already": result.already})
        return
    if result.already:
        click.echo(f"already revoked: {entry.kind.upper()} {entry.serial} of {entry.ca} ({entry.revocation_reason}, "
                   f"{entry.revoked_at})")
    else:
        click.echo(f"revoked {entry.kind.upper()} {entry.serial} of {entry.ca} ({entry.revocation_reason})")
    _info(f"publish the CRL: matter-pki crl publish {scope}")


@example("matter-pki crl publish --pai pai-1")
@click.group("crl")
def crl_group() -> None:
    """Certificate revocation lists."""


@example("matter-pki crl publish --paa --next-update-days 30 --format json")
@crl_group.command("publish")
@home_option
@click.option("--pai", "pai_id", help="CRL of DACs issued by this PAI.")
@click.option("--paa", "is_paa", is_flag=True, help="CRL of PAIs issued by the PAA.")
@click.option("--next-update-days", type=click.IntRange(min=1), default=crl_ops.DEFAULT_NEXT_UPDATE_DAYS, show_default=True)
@click.option("--url", help="The DCL point's dataURL, written into an IssuingDistributionPoint (required with --signer).")
@click.option("--signer", "signer_id", help="Sign an indirect CRL with this delegated CRL signer ('crl-signer create').")
@key_secret_options
@format_option()
@cli_errors
def crl_publish(
    home: str | None, pai_id: str | None, is_paa: bool, next_update_days: int, url: str | None, signer_id: str | None,
    fmt: str,
) -> None:  # fmt: skip
    """Sign, check (the SDK's revocation-set rules) and write crl/<ca id or signer id>.crl (DER), .pem, .revocation-set.json."""
    if bool(pai_id) == is_paa:
        raise InputError("input.crl_scope", "give exactly one of --pai ID or --paa")
    pki = PkiHome.resolve(home)
    pub = crl_ops.publish_crl(
        pki, PAA_ID if is_paa else str(pai_id), secrets=_secrets(), now=_now(), next_update_days=next_update_days,
        signer_id=signer_id, url=url,
    )  # fmt: skip
    data = {
        "ca": pub.ca, "crl_number": pub.crl_number, "revoked": pub.revoked, "crl": str(pub.der_path),
        "pem": str(pub.pem_path), "revocation_set": str(pub.revocation_set_path), "signer": pub.signer, "url": pub.url,
    }
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"CRL #{pub.crl_number} of {pub.ca}: {pub.revoked} revoked -> {pub.der_path}")
        click.echo(f"revocation set: {pub.revocation_set_path}")


# -- ledger / home maintenance -------------------------------------------------------------------
@example("matter-pki ledger verify && matter-pki ledger rebuild --from dacs/ --reason 'ledger lost with disk'")
@click.group("ledger")
def ledger_group() -> None:
    """The issuance ledger: check it against the signed audit log, rebuild it from the log."""


@example("matter-pki ledger verify --format json")
@ledger_group.command("verify")
@home_option
@format_option()
@cli_errors
def ledger_verify(home: str | None, fmt: str) -> None:
    """Check the audit log, the ledger, and each against the other. Exit 0 intact, 1 not."""
    from matter_pki.local.repair import verify_home

    report = verify_home(PkiHome.resolve(home))
    if fmt == "json":
        emit_json(report.to_dict())
    else:
        for code, reason in report.problems:
            click.echo(f"FAILED [{code}] {reason}")
        for line in report.notes:
            click.echo(f"note: {line}")
        if report.ok:
            counts = report.counts
            click.echo(f"ledger and audit log agree: {counts.get('ledger_transactions', 0)} ledger transactions, "
                       f"{counts.get('ledger_dacs', 0)} DACs each announced once, {counts.get('audit_records', 0)} audit records")
    sys.exit(ExitStatus.OK if report.ok else ExitStatus.REFUSED)


@example("matter-pki ledger rebuild --from dacs/ --from inbox/ --reason 'restored from the audit log after a disk loss'")
@ledger_group.command("rebuild")
@home_option
@click.option("--from", "sources", multiple=True, type=click.Path(file_okay=False),
              help="A folder holding issued .pem files (searched recursively); repeatable.")
@click.option("--reason", required=True, help="Why the ledger is rebuilt (recorded in the audit log).")
@key_secret_options
@format_option()
@cli_errors
def ledger_rebuild(home: str | None, sources: tuple[str, ...], reason: str, fmt: str) -> None:
    """Make a new ledger from the verified audit log and the issued certificate files (the old one is kept aside)."""
    from matter_pki.local.repair import rebuild_ledger

    result = rebuild_ledger(PkiHome.resolve(home), sources=[Path(s) for s in sources], secrets=_secrets(), reason=reason)
    if fmt == "json":
        emit_json({"certificates": result.certificates, "revocations": result.revocations,
                   "crl_numbers": result.crl_numbers, "crl_signers": result.crl_signers,
                   "kept": str(result.kept) if result.kept else None, "chain": result.chain})  # fmt: skip
        return
    click.echo(f"rebuilt the ledger: {result.certificates} certificates, {result.crl_signers} CRL signers, "
               f"{result.revocations} revocations, {result.crl_numbers} CRL numbers")
    if result.kept is not None:
        _info(f"the previous ledger file is kept as {result.kept}")


@example("matter-pki home upgrade")
@click.group("home")
def home_group() -> None:
    """The PKI home itself."""


@example("MATTER_PKI_PASSPHRASE=... matter-pki home upgrade --format json")
@home_group.command("upgrade")
@home_option
@key_secret_options
@format_option()
@cli_errors
def home_upgrade(home: str | None, fmt: str) -> None:
    """Bring a home made by an earlier version up to date (ledger format, audit key and its binding)."""
    from matter_pki.local.repair import upgrade_home

    done = upgrade_home(PkiHome.resolve(home), secrets=_secrets())
    if fmt == "json":
        emit_json({"upgraded": bool(done), "done": done})
        return
    if not done:
        click.echo("the home is up to date")
    for line in done:
        click.echo(line)


@example("matter-pki home rekey --passphrase-file /run/secrets/ca-passphrase")
@home_group.command("rekey")
@home_option
@key_secret_options
@format_option()
@cli_errors
def home_rekey(home: str | None, fmt: str) -> None:
    """Re-encrypt the home's key files whose key derivation is weak (same passphrase; audited)."""
    from matter_pki.local.rekey import current_kdf, rekey_home

    report = rekey_home(PkiHome.resolve(home), _secrets())
    if fmt == "json":
        emit_json(report.to_dict())
        return
    if not report.rekeyed:
        click.echo(f"every key file ({len(report.files)}) already uses {current_kdf()} or stronger")
        return
    for path in report.rekeyed:
        click.echo(f"re-encrypted {path}")
    note(f"{len(report.rekeyed)} key file(s) now use {current_kdf()}; replace older copies (backups) of them")


def register(group: click.Group) -> None:
    """Attach the local CA commands to the top-level group (``csr generate``/``export-key`` join an existing ``csr`` group)."""
    for cmd in (init_cmd, pai_group, dac_group, inbox_group, revoke_cmd, crl_group, ledger_group, home_group):
        group.add_command(cmd)
    existing = group.commands.get("csr")
    if isinstance(existing, click.Group):
        existing.add_command(csr_generate)
        existing.add_command(csr_export_key)
    else:
        csr = example("matter-pki csr generate --count 10 --out csrs")(click.Group("csr", help="Device CSR tools."))
        csr.add_command(csr_generate)
        csr.add_command(csr_export_key)
        group.add_command(csr)
