"""Local CA commands: ``init``, ``pai``, ``dac``, ``csr generate``, ``inbox run``, ``revoke``, ``crl publish``,
``ledger verify|rebuild``, ``home upgrade``."""

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

from matter_pki.backends.keyfile import passphrase_from_env
from matter_pki.backends.pkcs11 import MODULE_ENV, PIN_ENV, TOKEN_ENV, Pkcs11Config, resolve_module_token
from matter_pki.cli.common import cli_errors, emit_json, read_file
from matter_pki.errors import InputError, KeyStoreError
from matter_pki.local import ca as ca_ops
from matter_pki.local import crl as crl_ops
from matter_pki.local.devices import generate_device_csrs
from matter_pki.local.home import HOME_ENV, PAA_ID, KeyStoreSettings, PkiHome
from matter_pki.local.inbox import run_inbox
from matter_pki.local.issue import RunTotals, der_to_pem, issue_files
from matter_pki.local.keys import Secrets
from matter_pki.local.ledger import Ledger, parse_serial, serial_hex
from matter_pki.vidpid import parse_hex16

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO

    from matter_pki.local.issue import Outcome

FORMATS = click.Choice(["text", "json"])
MAX_LISTED_REFUSALS = 20


def _hex16(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """Option callback for a VID or PID: 1-4 hex digits, optional 0x."""
    if value is None:
        return None
    try:
        return parse_hex16(value, (param.name or "value").upper())
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from e


def hex16_option(*decls: str, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``HEX16`` option (VID/PID) parsed to an int."""
    return click.option(*decls, metavar="HEX16", callback=_hex16, help=help)


def home_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--home DIR`` (``$MATTER_PKI_HOME``, default ``~/.matter-pki``)."""
    return click.option(
        "--home", "home", type=click.Path(file_okay=False), default=None,
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


def _ask_passphrase(confirm: bool) -> bytes:
    value = passphrase_from_env()
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError("key.passphrase_missing", "no key passphrase: set MATTER_PKI_PASSPHRASE (no terminal to prompt)")
    return str(click.prompt("Key passphrase", hide_input=True, confirmation_prompt=confirm, err=True)).encode()


def _ask_pin() -> str:
    value = os.environ.get(PIN_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError("key.pkcs11_pin", f"no PKCS#11 user PIN: set {PIN_ENV} (no terminal to prompt)")
    return str(click.prompt("PKCS#11 user PIN", hide_input=True, err=True))


def _secrets() -> Secrets:
    return Secrets(passphrase_source=_ask_passphrase, pin_source=_ask_pin)


def _info(message: str) -> None:
    click.echo(message, err=True)


@contextlib.contextmanager
def _progress(enabled: bool, spool: IO[str] | None = None) -> Iterator[tuple[Callable[[int], None], Callable[[Outcome], None]]]:
    """A rich progress bar on stderr (only on a terminal); ``spool`` collects each result as a JSON line."""
    task: list[Any] = []
    if not (enabled and sys.stderr.isatty()):
        # No bar: rich is not even imported (start-up time counts at factory speed).
        def record(outcome: Outcome) -> None:
            if spool is not None:
                spool.write(json.dumps(outcome.to_dict()) + "\n")

        yield (lambda _total: None), record
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]DACs"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not console.is_terminal, transient=False,
    )
    done = [0]

    def start(total: int) -> None:
        task.append(progress.add_task("issue", total=total))

    def advance(outcome: Outcome) -> None:
        if spool is not None:
            spool.write(json.dumps(outcome.to_dict()) + "\n")
        done[0] += 1
        if task and done[0] >= 256:  # the bar moves per group of answers, not per answer (it costs)
            progress.advance(task[0], done[0])
            done[0] = 0

    with progress:
        yield start, advance
        if task and done[0]:
            progress.advance(task[0], done[0])


def _summary(totals: RunTotals, notes: list[str], fmt: str, extra: dict[str, Any], spool: IO[str] | None = None) -> None:
    counts = totals.counts
    refused = totals.refusals
    if fmt == "json":
        # Results were spooled to a temporary file as they came: memory does not grow with the CSRs.
        out = sys.stdout
        out.write("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v, default=str)}" for k, v in extra.items()))
        out.write(f', "counts": {json.dumps(counts)}, "notes": {json.dumps(notes)}, "results": [')
        if spool is not None:
            spool.seek(0)
            for i, line in enumerate(spool):
                out.write(("," if i else "") + "\n  " + line.rstrip("\n"))
        out.write("\n]}\n")
        out.flush()
        return
    for note in notes:
        _info(f"note: {note}")
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
@cli_errors
def init_cmd(
    home: str | None, vid: int | None, no_vid: bool, import_paa: str | None, cn: str | None,
    organization: str | None, validity_days: int | None, key_store: str, pkcs11_module: str | None,
    pkcs11_token: str | None,
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
        click.echo(f"imported PAA into {pki.path}")
        _info("PAIs are created by CSR: matter-pki pai create --csr-out pai.csr, then matter-pki pai import")
    else:
        info = ca_ops.init_paa(
            pki, vid=vid, common_name=cn, organization=organization, validity_days=validity_days,
            settings=settings, secrets=_secrets(), now=_now(),
        )
        scope = f"VID {info.vid:04X}" if info.vid is not None else "no VID"
        click.echo(f"created PAA ({scope}, {settings.kind} key) in {pki.path}")
        _info("next: matter-pki pai create --pid 8000")
    click.echo(f"certificate: {pki.cert_path(PAA_ID)}")


# -- pai -----------------------------------------------------------------------------------------
@click.group("pai")
def pai_group() -> None:
    """Product Attestation Intermediates."""


@pai_group.command("create")
@home_option
@hex16_option("--pid", help="Scope the PAI to one ProductID (e.g. 8000).")
@hex16_option("--vid", help="VendorID (default: the PAA's; required under a non-VID PAA).")
@click.option("--cn", help="PAI common name (default 'Matter PAI').")
@click.option("--o", "organization", help="PAI organization (O).")
@click.option("--validity-days", type=click.IntRange(min=1), help="PAI validity in days (default: no expiry).")
@click.option("--id", "pai_id", help="PAI id (default pai-<n>).")
@click.option("--csr-out", type=click.Path(dir_okay=False), help="Write a CSR for an external PAA instead of signing here.")
@cli_errors
def pai_create(
    home: str | None, pid: int | None, vid: int | None, cn: str | None, organization: str | None,
    validity_days: int | None, pai_id: str | None, csr_out: str | None,
) -> None:
    """Create a PAI; prints its id. With --csr-out, only the key and a CSR are made (then 'pai import')."""
    pki = PkiHome.resolve(home)
    args: dict[str, Any] = {
        "pid": pid, "vid": vid, "common_name": cn, "organization": organization,
        "validity_days": validity_days, "pai_id": pai_id, "secrets": _secrets(), "now": _now(),
    }
    if csr_out is None:
        info = ca_ops.create_pai(pki, **args)
        click.echo(info.id)
        _info(f"certificate: {pki.cert_path(info.id)}")
        return
    if Path(csr_out).exists():
        raise InputError("input.exists", f"{csr_out!r} exists; refusing to overwrite it")
    info, pem = ca_ops.create_pai_request(pki, **args)
    from matter_pki.storage.local import atomic_write

    atomic_write(csr_out, pem, exclusive=True)
    click.echo(info.id)
    _info(f"CSR written to {csr_out}; after the PAA owner signs it: matter-pki pai import --pai {info.id} --cert FILE")


@pai_group.command("import")
@home_option
@click.option("--pai", "pai_id", required=True, help="The pending PAI id printed by 'pai create --csr-out'.")
@click.option("--cert", required=True, type=click.Path(dir_okay=False), help="The PAI certificate signed by the PAA.")
@cli_errors
def pai_import(home: str | None, pai_id: str, cert: str) -> None:
    """Install the certificate issued by the external PAA for a pending PAI."""
    pki = PkiHome.resolve(home)
    info = ca_ops.import_pai(pki, pai_id, read_file(cert, "PAI certificate"), secrets=_secrets(), now=_now())
    click.echo(f"{info.id} is active")


@pai_group.command("list")
@home_option
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
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
@click.group("dac")
def dac_group() -> None:
    """Device Attestation Certificates."""


@dac_group.command("issue")
@home_option
@click.option("--pai", "pai_id", required=True, help="Issuing PAI id.")
@hex16_option("--pid", help="DAC ProductID (default: the PAI's PID).")
@click.option("--csr", "csr", required=True, type=click.Path(exists=True), help="A CSR file, or a folder of *.csr.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@validity_options
@click.option("--cn", default="Matter DAC", show_default=True, help="DAC common name.")
@click.option("--jobs", type=click.IntRange(min=0), default=1, show_default=True, help="Signing processes (0: one per core).")
@click.option("--bundle", "bundle", metavar="NAME",
              help="Also write one manifest of the batch: <out>/NAME.csv and <out>/NAME.jsonl.")
@click.option("--reissue-reason", metavar="TEXT",
              help="Allow a DAC for a device key already certified under another PAI or PID (recorded and audited).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@cli_errors
def dac_issue(
    home: str | None, pai_id: str, pid: int | None, csr: str, out: str, validity_days: int | None,
    no_expiry: bool, cn: str, jobs: int, bundle: str | None, reissue_reason: str | None, fmt: str,
) -> None:
    """Issue DACs: <name>.pem per CSR (plus pai.pem, paa.pem), <name>.err for refusals. Exit 1 if any refused."""
    pki = PkiHome.resolve(home)
    single = not Path(csr).is_dir()
    first: list[Outcome] = []
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(tempfile.TemporaryFile("w+")) if fmt == "json" else None
        start, advance = stack.enter_context(_progress(not single and fmt == "text", spool))

        def on_result(outcome: Outcome) -> None:
            if not first:
                first.append(outcome)
            advance(outcome)

        report = issue_files(
            pki, pai_id=pai_id, csr_path=Path(csr), out_dir=Path(out), secrets=_secrets(), now=_now(), pid=pid,
            validity_days=_days(validity_days, no_expiry), common_name=cn, jobs=jobs, on_start=start,
            on_result=on_result, reissue_reason=reissue_reason, bundle=bundle,
        )
        if single and fmt == "text" and first:
            o = first[0]
            if o.status == "refused":
                click.echo(f"error[{o.code}]: {o.message}", err=True)
            elif o.status == "skipped":
                click.echo(f"already answered: {Path(out) / o.name}.pem or .err exists")
            else:
                again = " (already in the ledger: same DAC)" if o.status == "reused" else ""
                click.echo(f"{Path(out) / o.name}.pem serial {o.serial}{again}")
        else:
            extra: dict[str, Any] = {"output": str(report.out_dir)}
            if report.totals.bundle:
                extra["bundle"] = [str(report.out_dir / name) for name in report.totals.bundle]
            _summary(report.totals, report.notes, fmt, extra, spool)
    sys.exit(1 if report.count("refused") else 0)


@dac_group.command("show")
@home_option
@click.argument("serial")
@click.option("--pai", "pai_id", help="Issuing CA id, when the serial is not unique.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--pem", "as_pem", is_flag=True, help="Print the certificate PEM instead.")
@cli_errors
def dac_show(home: str | None, serial: str, pai_id: str | None, fmt: str, as_pem: bool) -> None:
    """Show the ledger entry of a certificate by serial (hex)."""
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
        emit_json([e.to_dict() for e in entries] if len(entries) > 1 else entries[0].to_dict())
        return
    for i, e in enumerate(entries):
        if i:
            click.echo("")
        for key, value in e.to_dict().items():
            if value is not None:
                click.echo(f"{key + ':':<19}{value}")


# -- csr generate --------------------------------------------------------------------------------
@click.command("generate")
@home_option
@click.option("--count", type=click.IntRange(min=1), required=True, help="How many devices.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--prefix", default="device-", show_default=True, help="Name prefix (<prefix><n>.csr).")
@click.option("--start", type=click.IntRange(min=0), default=1, show_default=True, help="First number.")
@click.option("--key-store", type=click.Choice(["file", "pkcs11"]), default="file", show_default=True)
@click.option("--pkcs11-module", help=f"PKCS#11 library [env {MODULE_ENV}; default: the home's].")
@click.option("--pkcs11-token", help=f"PKCS#11 token label [env {TOKEN_ENV}; default: the home's].")
@cli_errors
def csr_generate(
    home: str | None, count: int, out: str, prefix: str, start: int, key_store: str,
    pkcs11_module: str | None, pkcs11_token: str | None,
) -> None:
    """Generate factory device key pairs (P-256) and CSRs: encrypted <name>.key files (0600) or HSM keys."""
    passphrase: bytes | None = None
    pkcs11: Pkcs11Config | None = None
    if key_store == "pkcs11":
        pki = PkiHome.resolve(home)
        if pki.is_initialized() and pki.key_store().kind == "pkcs11":
            pkcs11_module = pkcs11_module or pki.key_store().module
            pkcs11_token = pkcs11_token or pki.key_store().token
        pkcs11 = Pkcs11Config.from_env(pkcs11_module, pkcs11_token, pin=_ask_pin())
    else:
        passphrase = _ask_passphrase(True)
    made = generate_device_csrs(Path(out), count=count, prefix=prefix, start=start, passphrase=passphrase, pkcs11=pkcs11)
    where = "token " + pkcs11.token if pkcs11 else "encrypted .key files (0600)"
    click.echo(f"generated {len(made)} CSRs in {out} ({made[0].name} .. {made[-1].name}); keys in {where}")


# -- inbox ---------------------------------------------------------------------------------------
@click.group("inbox")
def inbox_group() -> None:
    """The local CSR inbox (<dir>/<PAI id>/<PID>/<name>.csr)."""


@inbox_group.command("run")
@home_option
@click.option("--dir", "inbox_dir", required=True, type=click.Path(exists=True, file_okay=False), help="Inbox folder.")
@validity_options
@click.option("--cn", default="Matter DAC", show_default=True, help="DAC common name.")
@click.option("--jobs", type=click.IntRange(min=0), default=1, show_default=True, help="Signing processes (0: one per core).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@cli_errors
def inbox_run(
    home: str | None, inbox_dir: str, validity_days: int | None, no_expiry: bool, cn: str, jobs: int, fmt: str
) -> None:
    """Answer every unanswered CSR in the inbox with <name>.pem or <name>.err (safe to re-run)."""
    pki = PkiHome.resolve(home)
    with contextlib.ExitStack() as stack:
        spool = stack.enter_context(tempfile.TemporaryFile("w+")) if fmt == "json" else None
        start, advance = stack.enter_context(_progress(fmt == "text", spool))
        report = run_inbox(
            pki, Path(inbox_dir), secrets=_secrets(), now=_now(), validity_days=_days(validity_days, no_expiry),
            common_name=cn, jobs=jobs, on_start=start, on_result=advance,
        )
        _summary(report.totals, report.notes, fmt, {"inbox": inbox_dir}, spool)


# -- revocation ----------------------------------------------------------------------------------
@click.command("revoke")
@home_option
@click.option("--serial", required=True, help="Serial number (hex).")
@click.option("--reason", required=True, help="keyCompromise, cACompromise, affiliationChanged, superseded, "
              "cessationOfOperation, privilegeWithdrawn or unspecified.")
@click.option("--pai", "pai_id", help="The DAC's issuing PAI (when the serial is not unique).")
@click.option("--paa", "is_pai", is_flag=True, help="The serial is a PAI's (issued by the PAA).")
@cli_errors
def revoke_cmd(home: str | None, serial: str, reason: str, pai_id: str | None, is_pai: bool) -> None:
    """Revoke a DAC or a PAI in the ledger; then run 'matter-pki crl publish'."""
    if pai_id and is_pai:
        raise InputError("input.revoke_scope", "use either --pai or --paa")
    pki = PkiHome.resolve(home)
    result = crl_ops.revoke(
        pki, serial=serial, reason=reason, ca=PAA_ID if is_pai else pai_id, now=_now(), secrets=_secrets()
    )
    entry = result.entry
    scope = "--paa" if entry.ca == PAA_ID else f"--pai {entry.ca}"
    if result.already:
        click.echo(f"already revoked: {entry.kind.upper()} {entry.serial} of {entry.ca} ({entry.revocation_reason}, "
                   f"{entry.revoked_at})")
    else:
        click.echo(f"revoked {entry.kind.upper()} {entry.serial} of {entry.ca} ({entry.revocation_reason})")
    _info(f"publish the CRL: matter-pki crl publish {scope}")


@click.group("crl")
def crl_group() -> None:
    """Certificate revocation lists."""


@crl_group.command("publish")
@home_option
@click.option("--pai", "pai_id", help="CRL of DACs issued by this PAI.")
@click.option("--paa", "is_paa", is_flag=True, help="CRL of PAIs issued by the PAA.")
@click.option("--next-update-days", type=click.IntRange(min=1), default=crl_ops.DEFAULT_NEXT_UPDATE_DAYS, show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@cli_errors
def crl_publish(home: str | None, pai_id: str | None, is_paa: bool, next_update_days: int, fmt: str) -> None:
    """Sign and write crl/<ca id>.crl (DER), .pem and .revocation-set.json."""
    if bool(pai_id) == is_paa:
        raise InputError("input.crl_scope", "give exactly one of --pai ID or --paa")
    pki = PkiHome.resolve(home)
    pub = crl_ops.publish_crl(
        pki, PAA_ID if is_paa else str(pai_id), secrets=_secrets(), now=_now(), next_update_days=next_update_days
    )
    data = {
        "ca": pub.ca, "crl_number": pub.crl_number, "revoked": pub.revoked, "crl": str(pub.der_path),
        "pem": str(pub.pem_path), "revocation_set": str(pub.revocation_set_path),
    }
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"CRL #{pub.crl_number} of {pub.ca}: {pub.revoked} revoked -> {pub.der_path}")
        click.echo(f"revocation set: {pub.revocation_set_path}")


# -- ledger / home maintenance -------------------------------------------------------------------
@click.group("ledger")
def ledger_group() -> None:
    """The issuance ledger: check it against the signed audit log, rebuild it from the log."""


@ledger_group.command("verify")
@home_option
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
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
        for note in report.notes:
            click.echo(f"note: {note}")
        if report.ok:
            counts = report.counts
            click.echo(f"ledger and audit log agree: {counts.get('ledger_transactions', 0)} ledger transactions, "
                       f"{counts.get('ledger_dacs', 0)} DACs each announced once, {counts.get('audit_records', 0)} audit records")
    sys.exit(0 if report.ok else 1)


@ledger_group.command("rebuild")
@home_option
@click.option("--from", "sources", multiple=True, type=click.Path(file_okay=False),
              help="A folder holding issued .pem files (searched recursively); repeatable.")
@click.option("--reason", required=True, help="Why the ledger is rebuilt (recorded in the audit log).")
@cli_errors
def ledger_rebuild(home: str | None, sources: tuple[str, ...], reason: str) -> None:
    """Make a new ledger from the verified audit log and the issued certificate files (the old one is kept aside)."""
    from matter_pki.local.repair import rebuild_ledger

    result = rebuild_ledger(PkiHome.resolve(home), sources=[Path(s) for s in sources], secrets=_secrets(), reason=reason)
    click.echo(f"rebuilt the ledger: {result.certificates} certificates, {result.revocations} revocations, "
               f"{result.crl_numbers} CRL numbers")
    if result.kept is not None:
        _info(f"the previous ledger file is kept as {result.kept}")


@click.group("home")
def home_group() -> None:
    """The PKI home itself."""


@home_group.command("upgrade")
@home_option
@cli_errors
def home_upgrade(home: str | None) -> None:
    """Bring a home made by an earlier version up to date (ledger format, audit key and its binding)."""
    from matter_pki.local.repair import upgrade_home

    done = upgrade_home(PkiHome.resolve(home), secrets=_secrets())
    if not done:
        click.echo("the home is up to date")
    for line in done:
        click.echo(line)


def register(group: click.Group) -> None:
    """Attach the local CA commands to the top-level group (``csr generate`` joins an existing ``csr`` group)."""
    for cmd in (init_cmd, pai_group, dac_group, inbox_group, revoke_cmd, crl_group, ledger_group, home_group):
        group.add_command(cmd)
    existing = group.commands.get("csr")
    if isinstance(existing, click.Group):
        existing.add_command(csr_generate)
    else:
        csr = click.Group("csr", help="Device CSR tools.")
        csr.add_command(csr_generate)
        group.add_command(csr)
