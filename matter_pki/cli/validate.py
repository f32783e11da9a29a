"""``validate-att-cert``, ``lint``, ``csr check`` and ``codes``."""

from __future__ import annotations

import sys

import click

from matter_pki.attestation import AttestationResult
from matter_pki.certparse import certificate_der_from_bytes
from matter_pki.cli.common import cli_errors, emit_json, parse_time, read_file
from matter_pki.csr import load_device_csr
from matter_pki.der import DerError
from matter_pki.errors import InputError
from matter_pki.findings import Severity, catalogue
from matter_pki.lint import lint
from matter_pki.validate import validate_att_cert

FORMATS = click.Choice(["text", "json"])


def _cert(path: str, what: str) -> bytes:
    try:
        return certificate_der_from_bytes(read_file(path, what))
    except DerError as e:
        raise InputError("input.certificate", f"{what} {path!r}: {e}") from e


@click.command("validate-att-cert")
@click.option("--paa", required=True, type=click.Path(dir_okay=False), help="PAA certificate (PEM, DER or hex).")
@click.option("--pai", required=True, type=click.Path(dir_okay=False), help="PAI certificate.")
@click.option("--dac", required=True, type=click.Path(dir_okay=False), help="DAC certificate.")
@click.option("--at", "at", default=None, help="Validation time (ISO 8601, default now).")
@click.option("--mode", type=click.Choice(["chip-cert", "commissioner"]), default="chip-cert", show_default=True,
              help="Check order: chip-cert validate-att-cert, or the commissioner's DAC verifier.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
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
    sys.exit(0 if result.ok else 1)


@click.command("lint")
@click.argument("cert", type=click.Path(dir_okay=False))
@click.option("--role", required=True, type=click.Choice(["paa", "pai", "dac", "crl", "crl-signer"]))
@click.option("--issuer", type=click.Path(dir_okay=False), help="Issuer certificate, to check linkage (for a CRL: its signer).")
@click.option("--fail-on", type=click.Choice(["fatal", "error", "warning", "notice"]), default="error", show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@cli_errors
def lint_cmd(cert: str, role: str, issuer: str | None, fail_on: str, fmt: str) -> None:
    """List every finding for one certificate; exit 1 when any reaches --fail-on."""
    data = read_file(cert, "CRL", max_bytes=4 * 1024 * 1024) if role == "crl" else _cert(cert, "certificate")
    findings = lint(data, role, _cert(issuer, "issuer") if issuer else None)
    if fmt == "json":
        emit_json([f.to_dict() for f in findings])
    else:
        for f in findings:
            click.echo(f"{f.severity.name:<8} {f.code:<40} {f.message}")
        if not findings:
            click.echo("no findings")
    threshold = Severity[fail_on.upper()]
    sys.exit(1 if any(f.severity >= threshold for f in findings) else 0)


@click.group("csr")
def csr_group() -> None:
    """Device CSR tools."""


@csr_group.command("check")
@click.argument("csr", type=click.Path(dir_okay=False))
@cli_errors
def csr_check(csr: str) -> None:
    """Run CSR intake on one file: prints its SHA-256 or a coded refusal (exit 1)."""
    accepted = load_device_csr(read_file(csr, "CSR", max_bytes=64 * 1024))
    click.echo(f"accepted: sha256={accepted.sha256}")


@click.command("codes")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True)
def codes_cmd(fmt: str) -> None:
    """Print every finding code with severity, chip check and spec clause."""
    rows = list(catalogue().values())
    if fmt == "json":
        emit_json([{"code": r.code, "severity": r.severity.name, "chip": r.chip, "clause": r.clause, "description": r.description} for r in rows])
    elif fmt == "csv":
        click.echo("code,severity,chip,clause")
        for r in rows:
            click.echo(f"{r.code},{r.severity.name},{r.chip},{r.clause}")
    else:
        for r in rows:
            click.echo(f"{r.code:<40} {r.severity.name:<8} {r.chip:<9} {r.description}")


def register(group: click.Group) -> None:
    """Attach these commands to the top-level group."""
    for cmd in (validate_cmd, lint_cmd, csr_group, codes_cmd):
        group.add_command(cmd)
