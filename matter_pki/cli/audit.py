"""``matter-pki audit``: query, verify and seal the local audit log; AWS audit evidence (Logs Insights,
Private CA audit reports, CloudTrail digest validation)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from matter_pki.audit.insights import QUERIES, build_query, run_query
from matter_pki.audit.log import AuditLog
from matter_pki.audit.pca_report import fetch_audit_report
from matter_pki.audit.query import COLUMNS, RecordFilter, rows_to_csv, select, to_row
from matter_pki.audit.trail import CloudTrailKeys, StaticKeys, verify_trail
from matter_pki.audit.verify import verify_log
from matter_pki.cli.common import (
    aws_client,
    aws_options,
    cli_errors,
    cli_secrets,
    emit_json,
    example,
    format_option,
    key_secret_options,
    parse_when,
    read_file,
)
from matter_pki.errors import ConfigError, InputError

if TYPE_CHECKING:
    from collections.abc import Sequence

HOME_ENV = "MATTER_PKI_HOME"
DEFAULT_HOME = "~/.matter-pki"
DEFAULT_AWS_WINDOW = timedelta(days=7)

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False),
    default=None,
    help=f"PKI home (default ${HOME_ENV}, else {DEFAULT_HOME}).",
)


def _client(service: str, region: str | None, profile: str | None = None) -> Any:
    """A boto3 client (tests replace this function)."""
    return aws_client(service, region, profile)


def _sleep(seconds: float) -> None:
    """Polling delay (tests replace this function)."""
    time.sleep(seconds)


def _home(value: str | None) -> Path:
    path = Path(value or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser()
    if not path.is_dir():
        raise InputError("input.home", f"PKI home {str(path)!r} does not exist (use --home or ${HOME_ENV})")
    return path


_when = parse_when


@example("matter-pki audit verify && matter-pki audit query --since 7d --event 'dac.*' --format csv")
@click.group("audit")
def audit_group() -> None:
    """Audit trail: who created, issued and revoked what, and proof that the record is intact."""


# -- query ----------------------------------------------------------------------------------------
@example("matter-pki audit query --since 24h --event dac.refused --format json")
@audit_group.command("query")
@home_option
@click.option("--since", help="Oldest time: ISO 8601, 'now', or an age like 24h / 7d.")
@click.option("--until", help="Newest time (default now).")
@click.option("--event", "events", multiple=True, help="Event type or glob (dac.issued, 'cert.*'); repeatable. Local only.")
@click.option("--ca", help="CA id (local) or Private CA ARN (--aws).")
@click.option("--serial", help="Certificate serial in hex (colons and case ignored). Local only.")
@format_option("csv", aliases={"table": "text"})
@click.option("--aws", is_flag=True, help="Query CloudTrail in CloudWatch Logs with Logs Insights instead.")
@click.option("--log-group", help="CloudTrail log group (with --aws), e.g. MatterAudit.")
@click.option("--query", "query_name", type=click.Choice(list(QUERIES)), default="ca-lifecycle", show_default=True,
              help="Canned Logs Insights query (with --aws).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows (with --aws).")
@click.option("--bucket", help="Audit bucket name for --query bucket-access.")
@aws_options
@cli_errors
def query_cmd(home: str | None, since: str | None, until: str | None, events: tuple[str, ...], ca: str | None,
              serial: str | None, fmt: str, aws: bool, log_group: str | None, query_name: str, limit: int | None,
              bucket: str | None, region: str | None, profile: str | None) -> None:
    """List audit records (local log), or run a canned Logs Insights query over CloudTrail (--aws)."""
    if aws:
        if events or serial or home:
            raise InputError("input.usage", "--event, --serial and --home apply to the local log, not --aws")
        if not log_group:
            raise InputError("input.usage", "--aws needs --log-group (the CloudTrail log group, e.g. MatterAudit)")
        _aws_query(log_group, query_name, since, until, ca, limit, bucket, region, profile, fmt)
        return
    if log_group or limit or bucket or region or profile:
        raise InputError("input.usage", "--log-group, --limit, --bucket, --region and --profile need --aws")
    log = AuditLog(_home(home))
    flt = RecordFilter(
        since=_when(since),
        until=_when(until),
        events=events,
        ca=ca,
        serial=serial,
    )
    records = select(log.records(), flt)
    if fmt == "json":
        emit_json([r.to_dict() for r in records])
    elif fmt == "csv":
        click.echo(rows_to_csv([to_row(r) for r in records], COLUMNS), nl=False)
    else:
        _table([to_row(r) for r in records], COLUMNS, f"{len(records)} audit record(s)")


def _aws_query(log_group: str, name: str, since: str | None, until: str | None, ca: str | None, limit: int | None,
               bucket: str | None, region: str | None, profile: str | None, fmt: str) -> None:
    query = build_query(name, ca_arn=ca, bucket=bucket)
    end = _when(until) or datetime.now(UTC).replace(microsecond=0)
    start = _when(since) or end - DEFAULT_AWS_WINDOW
    result = run_query(
        _client("logs", region, profile), log_group=log_group, query=query, start=start, end=end, limit=limit,
        aggregate=QUERIES[name].aggregate, sleep=_sleep,
    )
    if fmt == "json":
        emit_json({"query": name, "log_group": log_group, "since": start.isoformat(), "until": end.isoformat(),
                   "windows": len(result.windows), "truncated": result.truncated, "rows": result.rows})
    elif fmt == "csv":
        click.echo(rows_to_csv(result.rows, result.columns), nl=False)
    else:
        note = f" in {len(result.windows)} windows" if len(result.windows) > 1 else ""
        _table(result.rows, result.columns, f"{QUERIES[name].title}: {len(result.rows)} row(s){note}")
    if result.truncated:
        click.echo("warning: a one-second window or an aggregation hit the row limit; results are incomplete", err=True)


def _table(rows: Sequence[dict[str, str]], columns: Sequence[str], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(row.get(c, "") for c in columns))
    Console(file=sys.stdout, width=200).print(table)


# -- verify / seal --------------------------------------------------------------------------------
@example("matter-pki audit verify --expect-key SHA256:... --format json")
@audit_group.command("verify")
@home_option
@click.option("--public-key", "public_key", type=click.Path(dir_okay=False),
              help="Audit public key kept elsewhere (default <home>/audit/audit-key.pub.pem).")
@click.option("--expect-key", help="Fail unless the audit key has this SHA-256 fingerprint.")
@format_option()
@cli_errors
def verify_cmd(home: str | None, public_key: str | None, expect_key: str | None, fmt: str) -> None:
    """Check the hash chain, every seal and the signed head. Exit 0 intact, 1 tampered, 2 usage."""
    audit_dir = _home(home) / "audit"
    if not (audit_dir / "audit.log").exists() and not (audit_dir / "head").exists():
        raise ConfigError("config.no_audit_log", f"no audit log in {str(audit_dir)!r}")
    key = read_file(public_key, "audit public key") if public_key else None
    from matter_pki.local.home import PkiHome
    from matter_pki.local.repair import ledger_problem, verify_audit

    pki = PkiHome(_home(home))
    report = verify_audit(pki, public_key=key, expect_key=expect_key) if pki.is_initialized() else verify_log(
        audit_dir, public_key=key, expect_key=expect_key
    )
    if report.ok and pki.is_initialized():
        # The ledger vouches for the log: a log rolled back as a whole is consistent, but behind its ledger.
        problem = ledger_problem(pki)
        if problem is not None:
            report = replace(report, problem=problem)
    if fmt == "json":
        emit_json(report.to_dict())
    elif report.problem:
        p = report.problem
        where = f" at line {p.line} (seq {p.seq})" if p.line is not None else ""
        click.echo(f"audit log FAILED verification{where}: [{p.code}] {p.reason}")
    else:
        click.echo(f"audit log intact: {report.records} records, {report.seals} seals, head seq {report.head_seq}, "
                   f"key {report.key}")
        for note in report.notes:
            click.echo(f"note: {note}")
    sys.exit(0 if report.ok else 1)


@example(
    "MATTER_PKI_PASSPHRASE=... matter-pki audit seal",
    "matter-pki audit seal --passphrase-file pass.txt --adopt-tail 'records appended by the nightly export, checked by J. Doe'",
)
@audit_group.command("seal")
@home_option
@click.option("--adopt-tail", metavar="REASON",
              help="Put records the signed head does not cover under the signature (recorded with the reason).")
@click.option("--discard-tail", metavar="REASON",
              help="Move records the signed head does not cover out of the log (recorded with the reason).")
@key_secret_options
@format_option()
@cli_errors
def seal_cmd(home: str | None, adopt_tail: str | None, discard_tail: str | None, fmt: str) -> None:
    """Sign every record since the last seal now; finishes an interrupted append (needs the audit key)."""
    from matter_pki.local.home import PkiHome
    from matter_pki.local.state import audit_signer

    pki = PkiHome(_home(home))
    signer = audit_signer(pki, cli_secrets()) if pki.is_initialized() else None
    result = AuditLog(pki.path, signer=signer).seal(adopt_tail=adopt_tail, discard_tail=discard_tail)
    if fmt == "json":
        emit_json({"sealed": result is not None, "first": result.first if result else None,
                   "last": result.last if result else None, "seal_seq": result.record.seq if result else None,
                   "tail": "adopted" if adopt_tail is not None else "discarded" if discard_tail is not None else None})
        return
    if result is None:
        click.echo("nothing to seal: the log is empty or already sealed")
    else:
        click.echo(f"sealed seq {result.first}..{result.last} ({result.last - result.first + 1} records) "
                   f"with seal record seq {result.record.seq}")


# -- AWS evidence ---------------------------------------------------------------------------------
@example("matter-pki audit report --aws --ca arn:aws:acm-pca:...:certificate-authority/... --bucket B --out reports/")
@audit_group.command("report")
@click.option("--aws", is_flag=True, help="Private CA audit report (required: the only kind for now).")
@click.option("--ca", "ca_arn", required=True, help="Private CA ARN.")
@click.option("--bucket", required=True, help="S3 bucket Private CA writes the report into.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--report-format", type=click.Choice(["JSON", "CSV"]), default="JSON", show_default=True)
@aws_options
@format_option()
@cli_errors
def report_cmd(aws: bool, ca_arn: str, bucket: str, out_dir: str, report_format: str, region: str | None,
               profile: str | None, fmt: str) -> None:
    """Request a Private CA audit report (issued and revoked certificates), wait, and download it."""
    if not aws:
        raise InputError("input.usage", "only --aws reports exist; for the local log use `matter-pki audit query`")
    report = fetch_audit_report(
        _client("acm-pca", region, profile), _client("s3", region, profile), ca_arn=ca_arn, bucket=bucket, out_dir=Path(out_dir),
        response_format=report_format,  # type: ignore[arg-type]
        sleep=_sleep,
    )
    if fmt == "json":
        emit_json({"report_id": report.report_id, "bucket": report.bucket, "key": report.key, "path": str(report.path),
                   "size": report.size})
        return
    click.echo(f"audit report {report.report_id}: s3://{report.bucket}/{report.key} -> {report.path} ({report.size} bytes)")


@example("matter-pki audit verify-trail --bucket B --prefix trail/ --region eu-west-1")
@audit_group.command("verify-trail")
@click.option("--bucket", required=True, help="CloudTrail bucket.")
@click.option("--prefix", default="", help="Trail S3 key prefix (the part before AWSLogs/).")
@click.option("--region", help="Only digests delivered from this region (and query its public keys there).")
@click.option("--profile", default=None, help="AWS named profile (default: AWS_PROFILE / default).")
@click.option("--public-key-file", "key_files", multiple=True, type=click.Path(dir_okay=False),
              help="CloudTrail public key (PEM/DER); repeatable. Default: cloudtrail ListPublicKeys.")
@format_option()
@click.option("--verbose", is_flag=True, help="Also list valid files.")
@cli_errors
def verify_trail_cmd(bucket: str, prefix: str, region: str | None, profile: str | None, key_files: tuple[str, ...],
                     fmt: str, verbose: bool) -> None:
    """Validate CloudTrail digest and log files like `aws cloudtrail validate-logs`. Exit 0 valid, 1 not."""
    keys: StaticKeys | CloudTrailKeys
    if key_files:
        keys = StaticKeys.from_bytes(read_file(f, "public key") for f in key_files)
    else:
        keys = CloudTrailKeys(lambda r: _client("cloudtrail", r, profile))
    report = verify_trail(_client("s3", region, profile), bucket=bucket, prefix=prefix, keys=keys, region=region)
    if fmt == "json":
        emit_json({"ok": report.ok, "entries": [e.to_dict() for e in report.entries]})
    else:
        for entry in report.entries:
            if verbose or not entry.valid or entry.kind == "gap":
                click.echo(entry.line())
        if not report.entries:
            click.echo(f"no digest files under s3://{bucket}/{prefix}")
        for kind in ("digest", "log"):
            good, bad = report.count(kind, True), report.count(kind, False)
            if good + bad:
                click.echo(f"{good}/{good + bad} {kind} files valid" + (f", {bad} INVALID" if bad else ""))
    sys.exit(0 if report.ok else 1)


@example("matter-pki audit queries --format json")
@audit_group.command("queries")
@format_option()
def queries_cmd(fmt: str) -> None:
    """List the canned Logs Insights queries."""
    if fmt == "json":
        emit_json([{"name": name, "title": spec.title} for name, spec in QUERIES.items()])
        return
    for name, spec in QUERIES.items():
        click.echo(f"{name:<18} {spec.title}")


def register(main: click.Group) -> None:
    """Attach ``audit`` to the top-level command."""
    main.add_command(audit_group)


__all__ = ["audit_group", "register"]
