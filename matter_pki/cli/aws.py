"""``matter-pki aws``: issue on AWS Private CA, submit CSRs to the signing bucket, create a PAI.

Thin commands over ``matter_pki.backends.aws_pca`` and ``matter_pki.storage.s3``; boto3 clients come
from ``make_client`` (the standard credential chain, ``--region``/``--profile``).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from matter_pki.cli.common import (
    BATCH_INTERRUPTED,
    ExitStatus,
    aws_client,
    aws_options,
    check_stdout_free,
    cli_errors,
    emit_json,
    example,
    format_option,
    read_file,
    read_input,
    write_output,
)
from matter_pki.csr import MAX_CSR_BYTES, load_device_csr
from matter_pki.errors import InputError, MatterPkiError
from matter_pki.idrules import parse_pid, parse_vid
from matter_pki.layout import CsrKey, parse_csr_key
from matter_pki.vidpid import format_hex16

if TYPE_CHECKING:
    from collections.abc import Callable

    from botocore.client import BaseClient

RESULT_LIMIT = 64 * 1024
EXIT_TIMEOUT = ExitStatus.RETRY_LATER  # --wait timed out: run again later to collect the answers
#: Seams for tests: client construction and the polling clock.
sleep: Callable[[float], None] = time.sleep
monotonic: Callable[[], float] = time.monotonic


def make_client(service: str, region: str | None, profile: str | None) -> BaseClient:
    """A boto3 client from the standard credential chain (tests replace this function)."""
    client: BaseClient = aws_client(service, region, profile)
    return client


def _pid(text: str) -> int:
    try:
        return parse_pid(text)
    except ValueError as e:
        raise InputError("input.pid", str(e)) from e


_aws_options = aws_options


@example("matter-pki aws submit --bucket B --pai-arn ARN --pid 8000 --csr csrs/ --wait")
@click.group("aws")
def aws_group() -> None:
    """AWS Private CA: issue DACs, submit CSRs to the signing pipeline, create PAIs."""


@example("matter-pki aws issue-dac --pai-arn ARN --pid 8000 --csr dev.csr -o - > dac.pem")
@aws_group.command("issue-dac")
@click.option("--pai-arn", required=True, help="Private CA ARN of the PAI.")
@click.option("--pid", "pid_text", required=True, help="Product ID (4 hex digits).")
@click.option("--csr", "csr_path", required=True, metavar="CSR", help="Device CSR (PEM or DER; a file or '-').")
@click.option(
    "-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, allow_dash=True),
    help="Where to write the DAC (PEM; '-': stdout).",
)
@click.option("--validity", default="issuer", show_default=True, help="issuer | no-expiry | number of days.")
@click.option("--common-name", default="Matter DAC", show_default=True, help="DAC subject CN.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@format_option()
@_aws_options
@cli_errors
def issue_dac_cmd(
    pai_arn: str, pid_text: str, csr_path: str, out_path: str, validity: str, common_name: str, force: bool,
    fmt: str, region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """Issue one DAC on Private CA, pass it through the release gate (refused: revoked) and write it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.backends.aws_pca import PrivateCa, issue_dac_on_pca
    from matter_pki.validity import ValidityPolicy

    check_stdout_free(out_path, fmt)
    pid = _pid(pid_text)
    parse_csr_key(f"{pai_arn}/{format_hex16(pid)}/check.csr", cloud=True)  # the ARN must be a CA ARN
    csr = read_input(csr_path, "CSR", max_bytes=MAX_CSR_BYTES)
    out = Path(out_path)
    if out_path != "-" and out.exists() and not force:
        raise InputError("input.exists", f"{out_path!r} exists; use --force to overwrite it")
    pca = PrivateCa(make_client("acm-pca", region, profile))
    issued = issue_dac_on_pca(
        pca, csr, ca_arn=pai_arn, pid=pid, validity=ValidityPolicy.parse(validity),
        common_name=common_name or None, now=datetime.now(UTC),
    )  # fmt: skip
    pem = x509.load_der_x509_certificate(issued.der).public_bytes(Encoding.PEM)
    where = write_output(out_path, pem, what="DAC file", overwrite=True)
    data = {
        "serial": f"{issued.serial:X}",
        "certificate_arn": issued.certificate_arn,
        "out": where,
        "csr_sha256": issued.csr_sha256,
    }
    if fmt == "json":
        emit_json(data)
    else:
        click.echo(f"issued DAC serial {data['serial']} -> {where}", err=out_path == "-")


@dataclass
class _Item:
    name: str
    path: Path
    key: str
    state: str = "pending"  # pending | uploaded | exists | refused-locally | pem | err
    detail: str = ""


def _csr_files(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.iterdir() if p.suffix == ".csr" and p.is_file())
    return [target]


def _plan(files: list[Path], pai_arn: str, pid: int, check: bool) -> list[_Item]:
    items: list[_Item] = []
    names: set[str] = set()
    for path in files:
        key = f"{pai_arn}/{format_hex16(pid)}/{path.stem}.csr"
        item = _Item(path.stem, path, key)
        try:
            parse_csr_key(key, cloud=True)
            if path.stem in names:
                raise InputError("input.duplicate_name", f"two CSRs are named {path.stem!r}")
            names.add(path.stem)
            body = read_file(path, "CSR", max_bytes=MAX_CSR_BYTES)
            if check:
                load_device_csr(body)
        except MatterPkiError as e:
            item.state, item.detail = "refused-locally", e.one_line()
        items.append(item)
    return items


def _progress(total: int, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]DACs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=not enabled, transient=False,
    )  # fmt: skip
    task = bar.add_task("answered", total=total)
    bar.start()
    return (lambda done: bar.update(task, completed=done)), bar.stop


@example("matter-pki aws submit --bucket B --pai-arn ARN --pid 8000 --csr csrs/ --wait --timeout 300")
@aws_group.command("submit")
@click.option("--bucket", required=True, help="The signing pipeline's input bucket.")
@click.option("--pai-arn", required=True, help="Private CA ARN of the PAI to sign with.")
@click.option("--pid", "pid_text", required=True, help="Product ID (4 hex digits).")
@click.option(
    "--csr", "csr_path", required=True, type=click.Path(exists=True), help="A .csr file or a folder of them."
)
@click.option("--wait", is_flag=True, help="Wait for each <name>.pem / <name>.err and download it.")
@click.option("--timeout", default=600.0, show_default=True, type=float, help="Seconds to wait with --wait.")
@click.option(
    "--poll", default=2.0, show_default=True, type=float, help="Seconds between listings with --wait."
)
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Download folder (default: next to the CSRs)."
)
@click.option("--no-check", is_flag=True, help="Upload without checking the CSRs locally first.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@format_option()
@_aws_options
@cli_errors(interrupted=BATCH_INTERRUPTED)
def submit_cmd(
    bucket: str, pai_arn: str, pid_text: str, csr_path: str, wait: bool, timeout: float, poll: float,
    out_dir: str | None, no_check: bool, progress: bool | None, fmt: str, region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """Upload CSRs as <PAI ARN>/<PID>/<name>.csr; with --wait, download <name>.pem or <name>.err.

    Exit 0 when every CSR got a DAC, 1 when any was refused, 3 (retry later) on --timeout.
    """
    from matter_pki.storage.local import atomic_write
    from matter_pki.storage.s3 import S3Store

    pid = _pid(pid_text)
    target = Path(csr_path)
    items = _plan(_csr_files(target), pai_arn, pid, check=not no_check)
    if not items:
        raise InputError("input.no_csr", f"no .csr files in {csr_path!r}")
    store = S3Store(make_client("s3", region, profile))
    prefix = f"{pai_arn}/{format_hex16(pid)}/"
    present = _listing(store, bucket, prefix)
    for item in items:
        if item.state != "pending":
            continue
        if any(answer in present for answer in CsrKey.unchecked(item.key).answers):
            item.state = "exists"  # the pipeline would skip it; fetch the existing answer instead
            continue
        store.put(bucket, item.key, item.path.read_bytes(), content_type="application/pkcs10")
        item.state = "uploaded"
    destination = Path(out_dir) if out_dir else (target if target.is_dir() else target.parent)
    timed_out = False
    if wait:
        waiting = [i for i in items if i.state in ("uploaded", "exists")]
        show = sys.stderr.isatty() if progress is None else progress
        update, stop = _progress(len(waiting), show)
        deadline = monotonic() + timeout
        try:
            while True:
                present = _listing(store, bucket, prefix)
                for item in waiting:
                    _collect(store, bucket, item, present, destination, atomic_write)
                update(sum(i.state in ("pem", "err") for i in waiting))
                if all(i.state in ("pem", "err") for i in waiting):
                    break
                if monotonic() >= deadline:
                    timed_out = True
                    break
                sleep(poll)
        finally:
            stop()
    _report(items, fmt)
    if timed_out:
        sys.exit(EXIT_TIMEOUT)
    sys.exit(ExitStatus.REFUSED if any(i.state in ("err", "refused-locally") for i in items) else ExitStatus.OK)


def _listing(store: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = store.keys(bucket, prefix)
    return keys


def _collect(
    store: Any, bucket: str, item: _Item, present: set[str], folder: Path, write: Callable[..., None]
) -> None:
    if item.state in ("pem", "err"):
        return
    answers, local = CsrKey.unchecked(item.key), CsrKey.named(item.name)
    for suffix, name, download in (("pem", answers.pem, local.pem), ("err", answers.err, local.err)):
        if name in present:
            body = store.get(bucket, name, limit=RESULT_LIMIT)
            if body is None:
                return
            folder.mkdir(parents=True, exist_ok=True)
            write(folder / download, body)
            item.state = suffix
            if suffix == "err":
                import json

                try:
                    record = json.loads(body)
                    item.detail = f"error[{record.get('code')}]: {record.get('message')}"
                except ValueError:
                    item.detail = "unreadable .err"
            else:
                item.detail = str(folder / local.pem)
            return


def _report(items: list[_Item], fmt: str) -> None:
    if fmt == "json":
        emit_json([{"name": i.name, "key": i.key, "state": i.state, "detail": i.detail} for i in items])
        return
    for i in items:
        click.echo(f"{i.name}: {i.state}{': ' + i.detail if i.detail else ''}")


@example("matter-pki aws create-pai --paa-arn ARN --vid FFF1 --pid 8000 -o pai.pem")
@aws_group.command("create-pai")
@click.option("--paa-arn", required=True, help="Private CA ARN of the PAA (root).")
@click.option("--vid", "vid_text", required=True, help="Vendor ID (4 hex digits).")
@click.option("--pid", "pid_text", default=None, help="Product ID for a product-scoped PAI.")
@click.option("--common-name", default="Matter PAI", show_default=True)
@click.option(
    "--days", default=None, type=int, help="Validity in days (default: no expiry, 99991231235959Z)."
)
@click.option(
    "-o", "--out", "out_path", type=click.Path(dir_okay=False, allow_dash=True),
    help="Write the PAI certificate (PEM) here ('-': stdout).",
)
@format_option()
@_aws_options
@cli_errors
def create_pai_cmd(
    paa_arn: str, vid_text: str, pid_text: str | None, common_name: str, days: int | None, out_path: str | None,
    fmt: str, region: str | None, profile: str | None,
) -> None:  # fmt: skip
    """Create a subordinate CA, sign it with the PAA (PathLen0 template), check and import it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.backends.aws_pca import PrivateCa
    from matter_pki.profiles import PaiProfile, Validity

    check_stdout_free(out_path, fmt)
    if out_path and out_path != "-" and Path(out_path).exists():
        raise InputError("input.exists", f"{out_path!r} exists; refusing to overwrite it (nothing was created)")
    try:
        vid = parse_vid(vid_text)
    except ValueError as e:
        raise InputError("input.vid", str(e)) from e
    pid = _pid(pid_text) if pid_text else None
    start = datetime.now(UTC).replace(microsecond=0)
    validity = Validity.for_days(start, days) if days else Validity.no_expiry(start)
    pai_profile = PaiProfile(vid=vid, pid=pid, common_name=common_name, validity=validity)
    pca = PrivateCa(make_client("acm-pca", region, profile))
    arn, der = pca.create_pai(paa_arn=paa_arn, profile=pai_profile)
    where = None
    if out_path:
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        where = write_output(out_path, pem, what="PAI file")
    if fmt == "json":
        emit_json({"pai_arn": arn, "out": where})
    else:
        click.echo(arn, err=out_path == "-")


def register(main: click.Group) -> None:
    """Attach ``aws`` to the top-level command."""
    main.add_command(aws_group)
