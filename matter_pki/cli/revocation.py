"""Revocation commands: ``crl-signer``, ``dcl revocation-point``, ``crl check``, ``revocation check``, ``aws revocation-point``.

``revocation check`` is its own command rather than a ``validate-att-cert`` option: the commissioner
runs revocation as a separate step after the chain verdict (matter-rules.md §0.2 step 13), and the
``validate-att-cert`` seam and its codes stay as they are. With ``--paa`` it runs both, in that order.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from matter_pki.cli.common import (
    ExitStatus,
    aws_options,
    check_stdout_free,
    cli_errors,
    emit_json,
    example,
    format_option,
    key_secret_options,
    note,
    parse_time,
    read_file,
    read_input,
    write_output,
)
from matter_pki.errors import InputError
from matter_pki.findings import Finding, Severity

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography import x509

    from matter_pki.revocation.dcl import RevocationPoint
    from matter_pki.revocation.setgen import PointReport

MAX_FETCH_BYTES = 4 * 1024 * 1024
FETCH_TIMEOUT = 10.0


def _local() -> Any:
    from matter_pki.cli import local

    return local


def _home_option(fn: Any) -> Any:
    return _local().home_option(fn)


def _cert(value: str, what: str) -> x509.Certificate:
    """A certificate given as a file, ``-`` (stdin) or inline PEM/hex, like validate-att-cert's."""
    from matter_pki.local.ca import load_certificate_bytes

    return load_certificate_bytes(read_input(value, what, max_bytes=64 * 1024), what)


def _print_findings(findings: Sequence[Finding]) -> None:
    for f in findings:
        click.echo(f"{f.severity.name:<8} {f.code:<32} {f.message}", err=f.severity >= Severity.ERROR)


# -- crl-signer ----------------------------------------------------------------------------------------
@example("matter-pki crl-signer create --pai pai-1 && matter-pki crl publish --pai pai-1 --signer signer-1 --url URL")
@click.group("crl-signer")
def crl_signer_group() -> None:
    """Delegated CRL signers issued by the PAA or a PAI (end-entity, keyUsage cRLSign)."""


@example("matter-pki crl-signer create --pai pai-1 --id pai-1-crl --format json")
@crl_signer_group.command("create")
@_home_option
@click.option("--pai", "pai_id", help="Issue from this PAI (it signs CRLs of its DACs).")
@click.option("--paa", "is_paa", is_flag=True, help="Issue from the PAA (it signs CRLs of PAIs).")
@click.option("--id", "signer_id", help="Signer id (default signer-<n>).")
@click.option("--cn", default="Matter CRL Signer", show_default=True, help="Subject common name.")
@click.option("--validity-days", type=click.IntRange(min=1), help="Validity (default: until the issuer's notAfter).")
@click.option("--digital-signature", is_flag=True, help="Also set digitalSignature in keyUsage.")
@key_secret_options
@format_option()
@cli_errors
def crl_signer_create(
    home: str | None, pai_id: str | None, is_paa: bool, signer_id: str | None, cn: str, validity_days: int | None,
    digital_signature: bool, fmt: str,
) -> None:  # fmt: skip
    """Create a delegated CRL signer; its key goes to the home's key store (file or PKCS#11)."""
    from matter_pki.local.crl_signers import create_crl_signer, signer_dir
    from matter_pki.local.home import PAA_ID, PkiHome

    if bool(pai_id) == is_paa:
        raise InputError("input.crl_scope", "give exactly one of --pai ID or --paa")
    local = _local()
    pki = PkiHome.resolve(home)
    info = create_crl_signer(
        pki, issuer=PAA_ID if is_paa else str(pai_id), secrets=local._secrets(), now=local._now(), signer_id=signer_id,
        common_name=cn, validity_days=validity_days, digital_signature=digital_signature,
    )  # fmt: skip
    cert_path = signer_dir(pki, info.id) / "cert.pem"
    if fmt == "json":
        emit_json({"id": info.id, "issuer": info.issuer, "certificate": str(cert_path), "key_store": info.key.store})
    else:
        click.echo(info.id)
        note(f"certificate: {cert_path}")


@example("matter-pki crl-signer list --format json")
@crl_signer_group.command("list")
@_home_option
@format_option()
@cli_errors
def crl_signer_list(home: str | None, fmt: str) -> None:
    """List the home's CRL signers."""
    from matter_pki.local.crl_signers import describe_signers
    from matter_pki.local.home import PkiHome

    rows = describe_signers(PkiHome.resolve(home))
    if fmt == "json":
        emit_json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:<16} {r['issuer']:<12} {r['status']:<8} {r['serial']:<42} {r['key_store'] or '-':<7} {r['subject']}")
    if not rows:
        click.echo("no CRL signers")


@example("matter-pki crl-signer revoke --id signer-1 --reason keyCompromise && matter-pki crl publish --pai pai-1")
@crl_signer_group.command("revoke")
@_home_option
@click.option("--id", "signer_id", required=True, help="The signer to revoke.")
@click.option("--reason", required=True, help="keyCompromise, superseded, cessationOfOperation, ...")
@key_secret_options
@format_option()
@cli_errors
def crl_signer_revoke(home: str | None, signer_id: str, reason: str, fmt: str) -> None:
    """Revoke a CRL signer: it can no longer sign; its issuer's next CRL lists it (the same command again: exit 0)."""
    from matter_pki.local.crl_signers import revoke_crl_signer
    from matter_pki.local.home import PAA_ID, PkiHome

    local = _local()
    result = revoke_crl_signer(PkiHome.resolve(home), signer_id, reason=reason, now=local._now(), secrets=local._secrets())
    row = result.row
    scope = "--paa" if row.issuer == PAA_ID else f"--pai {row.issuer}"
    if fmt == "json":
        emit_json({**row.to_dict(), "already": result.already})
        return
    if result.already:
        click.echo(f"already revoked: CRL signer {signer_id} (serial {row.serial}, {row.revocation_reason}, {row.revoked_at})")
    else:
        click.echo(f"revoked CRL signer {signer_id} (serial {row.serial}, {row.revocation_reason})")
    note(f"publish the issuer's CRL: matter-pki crl publish {scope}; announce a new signer on the DCL")


# -- dcl revocation-point ---------------------------------------------------------------------------
@example("matter-pki dcl revocation-point --pai pai-1 --url https://crl.example.com/pai-1.crl --out dcl/")
@click.group("dcl")
def dcl_group() -> None:
    """Distributed Compliance Ledger payloads."""


def _emit_point(
    point: RevocationPoint, findings: list[Finding], *, fmt: str, update: bool, out: str | None, account: str
) -> None:
    from matter_pki.revocation import dcl
    from matter_pki.storage.local import atomic_write

    errors = [f for f in findings if f.severity >= Severity.ERROR]
    if errors:
        if fmt == "json":
            emit_json({"ok": False, "point": point, "dcld": None, "findings": [f.to_dict() for f in findings]})
        else:
            _print_findings(errors)
        sys.exit(ExitStatus.REFUSED)
    certificate = delegator = None
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        certificate = str(folder / "crl-signer.pem")
        atomic_write(certificate, point["crlSignerCertificate"].encode())
        if point.get("crlSignerDelegator"):
            delegator = str(folder / "crl-signer-delegator.pem")
            atomic_write(delegator, point["crlSignerDelegator"].encode())
        atomic_write(folder / "revocation-point.json", (dcl.point_json(point) + "\n").encode())
    command = dcl.dcld_command(point, update=update, certificate=certificate, delegator=delegator, from_account=account)
    if fmt == "json":
        emit_json({"ok": True, "point": point, "dcld": command, "findings": [f.to_dict() for f in findings]})
        return
    for f in findings:
        note(f"note: [{f.code}] {f.message}")
    click.echo(dcl.point_json(point))
    click.echo("")
    click.echo(command)


def _existing(path: str | None) -> list[RevocationPoint]:
    from matter_pki.revocation.dcl import load_points

    return load_points(read_file(path, "existing points")) if path else []


@example("matter-pki dcl revocation-point --pai pai-1 --signer signer-1 --url https://crl.example.com/pai-1.crl --format json")
@dcl_group.command("revocation-point")
@_home_option
@click.option("--pai", "pai_id", help="The point for this PAI's CRL (its DACs).")
@click.option("--paa", "is_paa", is_flag=True, help="The point for the PAA's CRL (its PAIs).")
@click.option("--signer", "signer_id", help="The CRL is signed by this delegated CRL signer.")
@click.option("--url", required=True, help="dataURL: where the DER CRL is published (http or https).")
@click.option("--label", help="Label (default '<CN> CRL'); unique per VID and issuer.")
@click.option("--vid", "vid_text", help="For a non-VID PAA: the VID it is registered under on the DCL.")
@click.option("--update", is_flag=True, help="Print update-revocation-point (the point exists) instead of add.")
@click.option("--existing", type=click.Path(dir_okay=False), help="Points already on the DCL (dcld query pki revocation-points output).")
@click.option("--out", type=click.Path(file_okay=False), help="Write revocation-point.json and the PEMs the command names.")
@click.option("--from", "account", default="$DCL_ACCOUNT", show_default=True, help="dcld key name of the vendor account.")
@format_option()
@cli_errors
def dcl_revocation_point(
    home: str | None, pai_id: str | None, is_paa: bool, signer_id: str | None, url: str, label: str | None,
    vid_text: str | None, update: bool, existing: str | None, out: str | None, account: str, fmt: str,
) -> None:  # fmt: skip
    """Print the DCL add-revocation-point payload (JSON) and dcld command, after checking every DCL and SDK rule."""
    from matter_pki.local import crl_signers
    from matter_pki.local.home import PAA_ID, PkiHome
    from matter_pki.revocation import dcl
    from matter_pki.vidpid import parse_hex16

    if bool(pai_id) == is_paa:
        raise InputError("input.crl_scope", "give exactly one of --pai ID or --paa")
    pki = PkiHome.resolve(home).require()
    ca_id = PAA_ID if is_paa else str(pai_id)
    ca_cert, paa = pki.load_cert(ca_id), pki.load_cert(PAA_ID)
    signer, delegator = ca_cert, None
    if signer_id is not None:
        signer, _row = crl_signers.active_signer(pki, signer_id, ca_id)
        delegator = ca_cert
    try:
        vid = parse_hex16(vid_text, "VID") if vid_text else None
    except ValueError as e:
        raise InputError("input.vid", str(e)) from e
    registered = vid if is_paa and pki.ca_info(PAA_ID).vid is None else None
    point = dcl.build_revocation_point(
        signer=signer, delegator=delegator, paa=paa, is_paa=is_paa, data_url=url, label=label, vid=vid
    )
    findings = dcl.check_revocation_point(point, paa=paa, registered_vid=registered, existing=_existing(existing), update=update)
    _emit_point(point, findings, fmt=fmt, update=update, out=out, account=account)


# -- crl check -------------------------------------------------------------------------------------
def fetch_url(url: str) -> bytes:
    """GET a CRL (http or https only, at most 4 MiB, 10 s); ``input.fetch`` on any failure."""
    import urllib.error
    import urllib.request

    from matter_pki.revocation.rules import data_url_problem

    problem = data_url_problem(url)
    if problem:
        raise InputError("input.fetch", f"{url!r}: {problem}")
    request = urllib.request.Request(url, headers={"User-Agent": "matter-pki crl check"})  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
            data: bytes = response.read(MAX_FETCH_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise InputError("input.fetch", f"cannot fetch {url!r}: {e}") from e
    if len(data) > MAX_FETCH_BYTES:
        raise InputError("input.fetch", f"{url!r} serves over {MAX_FETCH_BYTES} bytes")
    return data


def _point_key(point: RevocationPoint) -> tuple[object, object, object]:
    return point.get("vid"), point.get("label"), point.get("issuerSubjectKeyID")


def _report_text(reports: Sequence[PointReport]) -> None:
    for report in reports:
        verdict = "kept" if report.accepted else "DROPPED"
        click.echo(f"point {report.point.get('label')!r} ({report.point.get('dataURL')}): {verdict} by the SDK's algorithm")
        for step in report.steps:
            mark = "ok  " if step.ok else "FAIL"
            click.echo(f"  step {step.step:<4} [{step.origin:<5}] {mark} {step.title}: {step.detail}")
            for f in step.findings:
                if not step.ok or f.severity >= Severity.WARNING:
                    click.echo(f"      {f.severity.name:<8} {f.code}: {f.message}")


@example("matter-pki crl check --point dcl/revocation-point.json --crl ~/.matter-pki/crl/pai-1.crl --paa paa.pem")
@click.command("check")
@click.option("--point", "point_path", required=True, type=click.Path(dir_okay=False),
              help="The revocation point(s): JSON as printed by 'dcl revocation-point --format json' or dcld.")
@click.option("--crl", "crl_path", type=click.Path(dir_okay=False), help="The CRL exactly as the dataURL serves it (DER).")
@click.option("--fetch", is_flag=True, help="Fetch each point's CRL from its dataURL instead.")
@click.option("--paa", "paa_path", required=True, metavar="CERT", help="The PAA the signer chains to (a file, '-' or the PEM).")
@click.option("--dcl-points", type=click.Path(dir_okay=False), help="The other points on the DCL (for the IDP rule, step 7b).")
@click.option("--cert", "extra_certs", multiple=True, metavar="CERT", help="More DCL certificates (e.g. PAIs).")
@click.option("--at", default=None, help="Time for the CRL validity check (ISO 8601, default now).")
@click.option("--revocation-set-out", type=click.Path(dir_okay=False), help="Write the resulting revocation set (JSON).")
@format_option()
@cli_errors
def crl_check(
    point_path: str, crl_path: str | None, fetch: bool, paa_path: str, dcl_points: str | None,
    extra_certs: tuple[str, ...], at: str | None, revocation_set_out: str | None, fmt: str,
) -> None:  # fmt: skip
    """Dry-run the SDK's revocation-set algorithm (generate_revocation_set.py) step by step, plus extra checks.

    Exit 0 when every point is kept and no step reports an error; 1 otherwise.
    """
    import json

    from matter_pki.revocation import setgen
    from matter_pki.revocation.dcl import load_points
    from matter_pki.storage.local import atomic_write

    points = load_points(read_file(point_path, "revocation point"))
    if bool(crl_path) == fetch:
        raise InputError("input.crl_source", "give exactly one of --crl FILE or --fetch")
    if crl_path and len(points) != 1:
        raise InputError("input.crl_source", "--crl checks one point; use --fetch for several")
    crl_bytes = read_file(crl_path, "CRL", max_bytes=MAX_FETCH_BYTES) if crl_path else None
    reports = setgen.generate_revocation_set(
        points,
        fetch_crl=lambda p: crl_bytes if crl_bytes is not None else fetch_url(str(p.get("dataURL"))),
        trusted_paas=[_cert(paa_path, "PAA")],
        known_certificates=[_cert(c, "certificate") for c in extra_certs],
        other_points=[p for p in _existing(dcl_points) if _point_key(p) not in {_point_key(q) for q in points}],
        at=parse_time(at),
    )
    if revocation_set_out:
        atomic_write(revocation_set_out, (json.dumps(setgen.revocation_set(reports), indent=2) + "\n").encode())
    failed = any(not r.accepted or r.failed for r in reports)
    if fmt == "json":
        emit_json({"ok": not failed, "points": [r.to_dict() for r in reports]})
    else:
        _report_text(reports)
    sys.exit(ExitStatus.REFUSED if failed else ExitStatus.OK)


# -- revocation check ------------------------------------------------------------------------------
@example("matter-pki revocation check --revocation-set set.json -d dac.pem -i pai.pem -a paa.pem")
@click.group("revocation")
def revocation_group() -> None:
    """The commissioner's revocation check."""


@example("matter-pki revocation check --revocation-set set.json -d dac.pem -i pai.pem --format json")
@revocation_group.command("check")
@click.option("--revocation-set", "set_path", required=True, type=click.Path(dir_okay=False), help="Revocation set (JSON).")
@click.option("-d", "--dac", required=True, metavar="CERT", help="DAC: a file (PEM, DER or hex), '-' for stdin, or the PEM/hex itself.")
@click.option("-i", "--pai", required=True, metavar="CERT", help="PAI.")
@click.option("-a", "--paa", metavar="CERT", help="Also validate the chain first (commissioner order).")
@click.option("--at", default=None, help="Validation time for the chain (ISO 8601, default now).")
@format_option()
@cli_errors
def revocation_check(set_path: str, dac: str, pai: str, paa: str | None, at: str | None, fmt: str) -> None:
    """Answer 0, kPaiRevoked 202, kDacRevoked 302 or kPaiAndDacRevoked 208 as the SDK's revocation delegate does.

    Exit 0 not revoked, 1 revoked (or, with --paa, an invalid chain: ``stage`` is then ``chain``).
    """
    from matter_pki.cli.validate import _cert as cert_der
    from matter_pki.revocation.delegate import check_revocation, load_revocation_set

    dac_der, pai_der = cert_der(dac, "DAC"), cert_der(pai, "PAI")
    if paa is not None:
        from matter_pki.validate import validate_att_cert

        chain = validate_att_cert(paa=cert_der(paa, "PAA"), pai=pai_der, dac=dac_der, at=parse_time(at), mode="commissioner")
        if not chain.ok:
            if fmt == "json":
                emit_json({"stage": "chain", "code": int(chain.result), "result": chain.result.name, "reason": chain.reason,
                           "dac_revoked": None, "pai_revoked": None, "dac_notes": [], "pai_notes": [], "warnings": []})  # fmt: skip
            else:
                click.echo(f"invalid: {chain.result.label} [{chain.code}] {chain.reason}")
            sys.exit(ExitStatus.REFUSED)
    rset = load_revocation_set(read_file(set_path, "revocation set", max_bytes=64 * 1024 * 1024))
    verdict = check_revocation(dac=dac_der, pai=pai_der, revocation_set=rset)
    if fmt == "json":
        emit_json({"stage": "revocation", **verdict.to_dict(), "reason": None})
    else:
        for w in verdict.warnings:
            click.echo(f"warning: [{w.code}] {w.message}", err=True)
        label = "not revoked" if verdict.code == 0 else "revoked"
        click.echo(f"{label}: {verdict.result.label}")
        for who, lookup in (("DAC", verdict.dac), ("PAI", verdict.pai)):
            for note in lookup.notes:
                click.echo(f"  {who}: {note}")
    sys.exit(ExitStatus.OK if verdict.code == 0 else ExitStatus.REFUSED)


# -- aws ------------------------------------------------------------------------------------------
@example("matter-pki aws revocation-point --outputs cdk-outputs.json --pai 1 --out dcl/")
@click.command("revocation-point")
@click.option("--outputs", "outputs_path", type=click.Path(dir_okay=False), help="cdk deploy --outputs-file JSON.")
@click.option("--stack", help="Stack name in the outputs file (when several hold the outputs).")
@click.option("--pai", "pai_index", type=click.IntRange(min=1), help="PAI number in the outputs (PAI<n>).")
@click.option("--ca-arn", help="The PAI's Private CA ARN (instead of --pai).")
@click.option("--crl-base-url", help="Base URL serving the CRL bucket (default: output CrlBaseUrl).")
@click.option("--pai-cert", metavar="CERT", help="PAI certificate (default: fetched from Private CA).")
@click.option("--paa-cert", metavar="CERT", help="PAA certificate (default: fetched from Private CA).")
@click.option("--signer-cert", metavar="CERT", help="The KMS delegated signer ('aws crl-signer'): announce its CRL instead.")
@click.option("--url", help="dataURL (default <CrlBaseUrl>/crl/<CA id>.crl, or .../delegated-crl/<CA id>.crl with --signer-cert).")
@click.option("--label", help="Label (default '<CN> CRL').")
@click.option("--existing", type=click.Path(dir_okay=False), help="Points already on the DCL (dcld query output).")
@click.option("--out", type=click.Path(file_okay=False), help="Write revocation-point.json and the PEMs the command names.")
@click.option("--from", "account", default="$DCL_ACCOUNT", show_default=True, help="dcld key name of the vendor account.")
@format_option()
@aws_options
@cli_errors
def aws_revocation_point(
    outputs_path: str | None, stack: str | None, pai_index: int | None, ca_arn: str | None, crl_base_url: str | None,
    pai_cert: str | None, paa_cert: str | None, signer_cert: str | None, url: str | None, label: str | None,
    existing: str | None, out: str | None, account: str, fmt: str, region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """The DCL point for a Private CA PAI's CRL (at <CrlBaseUrl>/crl/<CA id>.crl) or its KMS signer's CRL, checked."""
    from matter_pki.backends import aws_crl
    from matter_pki.revocation import dcl

    outputs = aws_crl.load_cdk_outputs(read_file(outputs_path, "CDK outputs")) if outputs_path else {}
    if (pai_index is None) == (ca_arn is None):
        raise InputError("input.ca_arn", "give exactly one of --pai N (from --outputs) or --ca-arn ARN")
    arn = ca_arn or aws_crl.pai_arn_from_outputs(outputs, int(pai_index or 0), stack)
    if url is None:
        base = crl_base_url or aws_crl.output(outputs, aws_crl.CRL_BASE_URL_OUTPUT, stack)
        url = aws_crl.private_ca_crl_url(base, arn)
        if signer_cert:
            url = url.replace(f"/{aws_crl.PCA_CRL_PREFIX}", f"/{aws_crl.DELEGATED_CRL_PREFIX}")
    if pai_cert and paa_cert:
        pai, paa = _cert(pai_cert, "PAI"), _cert(paa_cert, "PAA")
    else:
        from matter_pki.backends.aws_pca import PrivateCa
        from matter_pki.cli.aws import make_client

        chain = PrivateCa(make_client("acm-pca", region, profile)).ca_chain(arn)
        pai = _cert(pai_cert, "PAI") if pai_cert else chain.pai
        paa = _cert(paa_cert, "PAA") if paa_cert else chain.paa
    if signer_cert:
        signer = aws_crl.check_signer_certificate(read_input(signer_cert, "signer certificate"), pai=pai)
        point = dcl.build_revocation_point(signer=signer, delegator=pai, paa=paa, is_paa=False, data_url=url, label=label)
    else:
        point = dcl.build_revocation_point(signer=pai, delegator=None, paa=paa, is_paa=False, data_url=url, label=label)
    findings = dcl.check_revocation_point(point, paa=paa, existing=_existing(existing))
    _emit_point(point, findings, fmt=fmt, update=False, out=out, account=account)


@example("matter-pki aws crl-signer --pai-arn ARN --kms-key-id alias/matter-crl-signer -o crl-signer.pem")
@click.command("crl-signer")
@click.option("--pai-arn", required=True, help="The Private CA PAI that issues the signer.")
@click.option("--kms-key-id", required=True, help="The ECC_NIST_P256 SIGN_VERIFY KMS key (id, ARN or alias).")
@click.option(
    "-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write the signer certificate (PEM; '-': stdout).",
)
@click.option("--validity-days", type=click.IntRange(min=1), help="Validity (default: until the PAI's notAfter).")
@click.option("--cn", default="Matter CRL Signer", show_default=True, help="Subject common name.")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@format_option()
@aws_options
@cli_errors
def aws_crl_signer(
    pai_arn: str, kms_key_id: str, out_path: str, validity_days: int | None, cn: str, force: bool, fmt: str,
    region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """Have a Private CA PAI issue a delegated CRL signer for a KMS key (CSR signed in KMS), check it, write it."""
    from datetime import timedelta

    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.backends.aws_crl import issue_kms_crl_signer
    from matter_pki.backends.aws_pca import PrivateCa, idempotency_token
    from matter_pki.backends.kms import KmsEcPrivateKey
    from matter_pki.cli.aws import make_client
    from matter_pki.local.ca import start_under
    from matter_pki.profiles import Validity

    check_stdout_free(out_path, fmt)
    if out_path != "-" and Path(out_path).exists() and not force:
        raise InputError("input.exists", f"{out_path!r} exists; use --force to overwrite it")
    pca = PrivateCa(make_client("acm-pca", region, profile))
    key = KmsEcPrivateKey(make_client("kms", region, profile), kms_key_id)
    pai = pca.ca_chain(pai_arn).pai
    start = start_under(pai, _local()._now())
    end = pai.not_valid_after_utc if validity_days is None else min(pai.not_valid_after_utc, start + timedelta(days=validity_days))
    signer = issue_kms_crl_signer(
        pca, key, pai_arn=pai_arn, validity=Validity(not_before=start, not_after=end), common_name=cn,
        token=idempotency_token("crl-signer", pai_arn, key.key_arn, str(int(start.timestamp()))),
    )  # fmt: skip
    where = write_output(out_path, signer.certificate.public_bytes(Encoding.PEM), what="signer certificate", overwrite=True)
    data = {
        "serial": f"{signer.certificate.serial_number:X}", "pai_arn": pai_arn, "kms_key_arn": key.key_arn,
        "not_after": signer.certificate.not_valid_after_utc.isoformat(), "out": where,
    }  # fmt: skip
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"CRL signer {data['serial']} issued by {pai_arn} -> {where}", err=out_path == "-")


@example("matter-pki aws publish-crl --pai-arn ARN --kms-key-id alias/matter-crl-signer --signer-cert crl-signer.pem "
         "--audit-report report.json --bucket CRL-BUCKET --url https://CDN/delegated-crl/CA-ID.crl")
@click.command("publish-crl")
@click.option("--pai-arn", required=True, help="The Private CA PAI whose revocations the CRL lists.")
@click.option("--kms-key-id", required=True, help="The signer's KMS key.")
@click.option("--signer-cert", required=True, metavar="CERT", help="The signer certificate ('aws crl-signer'; a file, '-' or the PEM).")
@click.option("--audit-report", required=True, type=click.Path(dir_okay=False), help="The PAI's Private CA audit report (JSON): the revocation records.")
@click.option("--bucket", required=True, help="The CRL bucket (stack output CrlBucketName).")
@click.option("--url", required=True, help="The dataURL (and IDP URI) the CRL is served at.")
@click.option("--key", "object_key", help="Object key (default delegated-crl/<CA id>.crl).")
@click.option("--next-update-days", type=click.IntRange(min=1, max=3650), default=30, show_default=True)
@format_option()
@aws_options
@cli_errors
def aws_publish_crl(
    pai_arn: str, kms_key_id: str, signer_cert: str, audit_report: str, bucket: str, url: str, object_key: str | None,
    next_update_days: int, fmt: str, region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """Build the PAI's indirect CRL from its revocation records, sign it in KMS, check it, upload it."""
    from matter_pki.backends import aws_crl
    from matter_pki.backends.aws_pca import PrivateCa
    from matter_pki.backends.kms import KmsEcPrivateKey
    from matter_pki.cli.aws import make_client

    chain = PrivateCa(make_client("acm-pca", region, profile)).ca_chain(pai_arn)
    signer = aws_crl.check_signer_certificate(read_input(signer_cert, "signer certificate"), pai=chain.pai)
    key = KmsEcPrivateKey(make_client("kms", region, profile), kms_key_id)
    revocations = aws_crl.revocations_from_audit_report(read_file(audit_report, "audit report", max_bytes=256 * 1024 * 1024))
    published = aws_crl.publish_kms_crl(
        s3=make_client("s3", region, profile), key=key, signer=signer, pai=chain.pai, paa=chain.paa,
        revocations=revocations, bucket=bucket, object_key=object_key or f"{aws_crl.DELEGATED_CRL_PREFIX}{aws_crl.ca_id(pai_arn)}.crl",
        url=url, now=_local()._now(), next_update_days=next_update_days,
    )  # fmt: skip
    data = {"bucket": published.bucket, "key": published.key, "url": url, "crl_number": published.crl_number,
            "revoked": published.revoked}  # fmt: skip
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"CRL #{published.crl_number}: {published.revoked} revoked -> s3://{published.bucket}/{published.key}")


def register(main: click.Group) -> None:
    """Attach the revocation commands (``crl check`` joins ``crl``; the AWS ones join ``aws``)."""
    for group_cmd in (crl_signer_group, dcl_group, revocation_group):
        main.add_command(group_cmd)
    joins: list[tuple[str, click.Command, str]] = [
        ("crl", crl_check, "Certificate revocation lists."),
        ("aws", aws_revocation_point, "AWS Private CA."),
        ("aws", aws_crl_signer, "AWS Private CA."),
        ("aws", aws_publish_crl, "AWS Private CA."),
    ]
    for parent, cmd, text in joins:
        existing = main.commands.get(parent)
        group = existing if isinstance(existing, click.Group) else click.Group(parent, help=text)
        if existing is None:
            main.add_command(group)
        group.add_command(cmd)
