"""``validate-att-cert``, ``lint``, ``csr check`` and ``codes``."""

from __future__ import annotations

import sys

import click

from matter_pki.attestation import AttestationResult
from matter_pki.certparse import certificate_der_from_bytes
from matter_pki.cli.common import (
    EXIT_STATUS_BY_CLASS,
    ExitStatus,
    cli_errors,
    emit_json,
    example,
    format_option,
    note,
    parse_time,
    read_input,
)
from matter_pki.csr import MAX_CSR_BYTES, load_device_csr
from matter_pki.der import DerError
from matter_pki.errorcodes import registry
from matter_pki.errors import InputError
from matter_pki.findings import Severity, catalogue
from matter_pki.lint import lint, roles
from matter_pki.validate import validate_att_cert

CERT_HELP = "a file (PEM, DER or hex), '-' for stdin, or the PEM/hex itself"


def _cert(value: str, what: str) -> bytes:
    try:
        return certificate_der_from_bytes(read_input(value, what))
    except DerError as e:
        shown = value if len(value) <= 64 else value[:61] + "..."
        raise InputError("input.certificate", f"{what} {shown!r}: {e}") from e


@example("matter-pki validate-att-cert -a paa.pem -i pai.pem -d dac.pem --format json")
@click.command("validate-att-cert")
@click.option("-a", "--paa", required=True, metavar="CERT", help=f"PAA certificate: {CERT_HELP}.")
@click.option("-i", "--pai", required=True, metavar="CERT", help="PAI certificate.")
@click.option("-d", "--dac", required=True, metavar="CERT", help="DAC certificate.")
@click.option("--at", "at", default=None, help="Validation time (ISO 8601, default now).")
@click.option("--mode", type=click.Choice(["chip-cert", "commissioner"]), default="chip-cert", show_default=True,
              help="Check order: chip-cert validate-att-cert, or the commissioner's DAC verifier.")
@format_option()
@cli_errors
def validate_cmd(paa: str, pai: str, dac: str, at: str | None, mode: str, fmt: str) -> None:
    """Validate a PAA -> PAI -> DAC chain as the Matter SDK does. Exit 0 valid, 1 invalid, 2 usage."""
    result = validate_att_cert(
        paa=_cert(paa, "PAA"), pai=_cert(pai, "PAI"), dac=_cert(dac, "DAC"), at=parse_time(at), mode=mode  # type: ignore[arg-type]
    )
    if fmt == "json":
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"valid: {AttestationResult.kSuccess.label}")
    else:
        click.echo(f"invalid: {result.result.label} [{result.code}] {result.reason}")
    if fmt != "json":  # where a BoringSSL-based commissioner reads the chain differently: notes on stderr
        for d in result.divergences:
            note(f"note[{d.code}] {d.role}: {d.message}")
        if result.boringssl_result is not None:
            note(f"note: a BoringSSL-based commissioner would answer {result.boringssl_result.label}")
    sys.exit(ExitStatus.OK if result.ok else ExitStatus.REFUSED)


@example("matter-pki lint dac.pem --role dac --issuer pai.pem --fail-on warning")
@click.command("lint")
@click.argument("cert", metavar="CERT")
@click.option("--role", required=True, type=click.Choice(roles()), help="What CERT is linted as (each role's rules).")
@click.option("--issuer", metavar="CERT", help="Issuer certificate, to check linkage (for a CRL: its signer).")
@click.option("--fail-on", type=click.Choice(["fatal", "error", "warning", "notice"]), default="error", show_default=True)
@format_option()
@cli_errors
def lint_cmd(cert: str, role: str, issuer: str | None, fail_on: str, fmt: str) -> None:
    """List every finding for one certificate or CRL (CERT: a file, '-' or the PEM); exit 1 when any reaches --fail-on."""
    data = read_input(cert, "CRL", max_bytes=4 * 1024 * 1024) if role == "crl" else _cert(cert, "certificate")
    findings = lint(data, role, _cert(issuer, "issuer") if issuer else None)
    if fmt == "json":
        emit_json([f.to_dict() for f in findings])
    else:
        for f in findings:
            click.echo(f"{f.severity.name:<8} {f.code:<40} {f.message}")
        if not findings:
            click.echo("no findings")
    threshold = Severity[fail_on.upper()]
    sys.exit(ExitStatus.REFUSED if any(f.severity >= threshold for f in findings) else ExitStatus.OK)


@example("matter-pki csr check dev.csr")
@click.group("csr")
def csr_group() -> None:
    """Device CSR tools."""


@example("openssl req -new -key dev.key -config certificates/config.ssl | matter-pki csr check -")
@csr_group.command("check")
@click.argument("csr", metavar="CSR")
@format_option()
@cli_errors
def csr_check(csr: str, fmt: str) -> None:
    """Run CSR intake on one CSR (a file or '-'): prints its SHA-256, or a coded refusal (exit 1)."""
    accepted = load_device_csr(read_input(csr, "CSR", max_bytes=MAX_CSR_BYTES))
    if fmt == "json":
        emit_json({"accepted": True, "sha256": accepted.sha256})
    else:
        click.echo(f"accepted: sha256={accepted.sha256}")


def code_rows() -> list[dict[str, str]]:
    """Finding codes (``codes.csv``) then error codes (``error_codes.csv``), in one shape."""
    rows = [
        {"code": r.code, "kind": "finding", "severity": r.severity.name, "exit": "-", "chip": r.chip,
         "clause": r.clause, "description": r.description}
        for r in catalogue().values()
    ]  # fmt: skip
    rows += [
        {"code": r.code, "kind": "error", "severity": "-", "exit": str(int(EXIT_STATUS_BY_CLASS[r.exit])), "chip": "-",
         "clause": r.clause, "description": r.description}
        for r in registry().values()
    ]  # fmt: skip
    return rows


@example("matter-pki codes --kind error --format csv")
@click.command("codes")
@click.option("--kind", type=click.Choice(["all", "finding", "error"]), default="all", show_default=True,
              help="Finding codes (lint/validate) or error codes (error[...] lines), or both.")
@format_option("csv")
def codes_cmd(kind: str, fmt: str) -> None:
    """Every finding code (severity, chip check) and error code (exit status), with its spec/SDK clause."""
    rows = [r for r in code_rows() if kind in ("all", r["kind"])]
    if fmt == "json":
        emit_json(rows)
    elif fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        for r in rows:
            status = r["severity"] if r["kind"] == "finding" else f"exit {r['exit']}"
            click.echo(f"{r['code']:<40} {status:<8} {r['chip']:<9} {r['description']}")


def register(group: click.Group) -> None:
    """Attach these commands to the top-level group."""
    for cmd in (validate_cmd, lint_cmd, csr_group, codes_cmd):
        group.add_command(cmd)
