"""``matter-pki aws``: issue-dac, submit (with the whole moto pipeline behind it) and create-pai.

The Private CA is ``ModelPrivateCa`` (a MODEL of the documented templates, not AWS).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.cli import aws as aws_cli
from matter_pki.cli import main
from matter_pki.validate import validate_att_cert
from tests.lambdas.conftest import BUCKET, make_harness, mocked_aws
from tests.lambdas.fakes import REGION, ModelPrivateCa, p256_csr, rsa_csr

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto S3/SQS for the pipeline behind ``submit``."""
    with mocked_aws(monkeypatch):
        yield


def _use(monkeypatch: pytest.MonkeyPatch, fake: ModelPrivateCa) -> None:
    def make_client(service: str, region: str | None, profile: str | None) -> Any:
        return fake.client() if service == "acm-pca" else boto3.client("s3", region_name=REGION)

    monkeypatch.setattr(aws_cli, "make_client", make_client)


def _chain_der(fake: ModelPrivateCa, pai: str) -> tuple[bytes, bytes]:
    ca = fake.cas[pai]
    assert ca.cert is not None
    return ca.chain[-1].public_bytes(Encoding.DER), ca.cert.public_bytes(Encoding.DER)


def test_issue_dac_writes_a_validated_dac(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a PAI on (model) Private CA and a CSR file
    fake = ModelPrivateCa()
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    _use(monkeypatch, fake)
    (tmp_path / "d.csr").write_bytes(p256_csr())
    out = tmp_path / "d.pem"
    # WHEN issuing
    result = CliRunner().invoke(
        main,
        [
            "aws",
            "issue-dac",
            "--pai-arn",
            pai,
            "--pid",
            "8000",
            "--csr",
            str(tmp_path / "d.csr"),
            "--out",
            str(out),
            "--format",
            "json",
        ],
    )
    # THEN exit 0, the DAC is written and validates
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    dac = x509.load_pem_x509_certificate(out.read_bytes())
    assert int(data["serial"], 16) == dac.serial_number
    paa_der, pai_der = _chain_der(fake, pai)
    assert validate_att_cert(
        paa=paa_der,
        pai=pai_der,
        dac=dac.public_bytes(Encoding.DER),
        at=datetime.now(UTC) + timedelta(seconds=2),
    ).ok
    # AND running it again refuses to overwrite without --force
    again = CliRunner().invoke(
        main,
        [
            "aws",
            "issue-dac",
            "--pai-arn",
            pai,
            "--pid",
            "8000",
            "--csr",
            str(tmp_path / "d.csr"),
            "--out",
            str(out),
        ],
    )
    assert again.exit_code == 2 and "error[input.exists]" in again.output


@pytest.mark.parametrize(
    ("args", "exit_code", "code"),
    [
        (["--pid", "8001"], 1, "profile.pid_not_allowed"),
        (["--pid", "80G0"], 2, "input.pid"),
        (["--csr-rsa"], 1, "csr.key_not_ec"),
        (["--unknown-pai"], 1, "backend.ca_not_found"),
    ],
)
def test_issue_dac_errors_are_one_coded_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], exit_code: int, code: str
) -> None:
    # GIVEN a bad option, CSR or PAI
    fake = ModelPrivateCa()
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    _use(monkeypatch, fake)
    csr = tmp_path / "d.csr"
    csr.write_bytes(rsa_csr() if "--csr-rsa" in args else p256_csr())
    if "--unknown-pai" in args:
        pai = pai[:-4] + "0000"
    pid = args[1] if args[0] == "--pid" else "8000"
    # WHEN issuing THEN one line with the code, and the exit status
    result = CliRunner().invoke(
        main,
        [
            "aws",
            "issue-dac",
            "--pai-arn",
            pai,
            "--pid",
            pid,
            "--csr",
            str(csr),
            "--out",
            str(tmp_path / "o.pem"),
        ],
    )
    assert result.exit_code == exit_code
    assert f"error[{code}]" in result.output
    assert not (tmp_path / "o.pem").exists()


def test_submit_uploads_waits_and_downloads(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the whole pipeline (moto S3 → SQS → handler) and a folder of CSRs, one refused locally, one by the signer
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    _use(monkeypatch, h.pca)
    monkeypatch.setattr(aws_cli, "sleep", lambda _s: h.drain())  # the Lambda runs while the CLI waits
    folder = tmp_path / "csrs"
    folder.mkdir()
    for n in range(3):
        (folder / f"dev-{n}.csr").write_bytes(p256_csr())
    (folder / "rsa.csr").write_bytes(rsa_csr())
    (folder / "bad name.csr").write_bytes(p256_csr())
    out = tmp_path / "out"
    # WHEN submitting with --wait (the RSA CSR is let through with --no-check to reach the signer)
    result = CliRunner().invoke(
        main,
        ["aws", "submit", "--bucket", BUCKET, "--pai-arn", pai, "--pid", "8000", "--csr", str(folder),
         "--wait", "--out", str(out), "--no-check", "--format", "json", "--progress"],
    )  # fmt: skip
    # THEN exit 1 (one refusal), three DACs and one .err downloaded, the bad name never uploaded
    assert result.exit_code == 1, result.output
    states = {r["name"]: r["state"] for r in json.loads(result.stdout)}
    assert states == {
        "dev-0": "pem",
        "dev-1": "pem",
        "dev-2": "pem",
        "rsa": "err",
        "bad name": "refused-locally",
    }
    assert sorted(p.name for p in out.iterdir()) == ["dev-0.pem", "dev-1.pem", "dev-2.pem", "rsa.err"]
    assert json.loads((out / "rsa.err").read_text())["code"] == "csr.key_not_ec"
    assert f"{pai}/8000/bad name.csr" not in h.keys()


def test_submit_all_good_exits_zero_and_skips_already_answered(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN two CSRs, submitted and answered once
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    _use(monkeypatch, h.pca)
    monkeypatch.setattr(aws_cli, "sleep", lambda _s: h.drain())
    for n in range(2):
        (tmp_path / f"d{n}.csr").write_bytes(p256_csr())
    args = [
        "aws",
        "submit",
        "--bucket",
        BUCKET,
        "--pai-arn",
        pai,
        "--pid",
        "8000",
        "--csr",
        str(tmp_path),
        "--wait",
    ]
    assert CliRunner().invoke(main, args).exit_code == 0
    first = (tmp_path / "d0.pem").read_bytes()
    # WHEN submitted again
    result = CliRunner().invoke(main, args)
    # THEN nothing is re-uploaded (the answers exist), the same DACs are downloaded, exit 0
    assert result.exit_code == 0
    assert (tmp_path / "d0.pem").read_bytes() == first
    assert len(h.pca.certificates) == 2
    assert len(h.s3.list_object_versions(Bucket=BUCKET, Prefix=f"{pai}/8000/d0.csr")["Versions"]) == 1


def test_submit_times_out_with_exit_3(aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN no signer running and a clock that moves 10 s per poll
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    _use(monkeypatch, h.pca)
    clock = [0.0]
    monkeypatch.setattr(aws_cli, "monotonic", lambda: clock[0])
    monkeypatch.setattr(aws_cli, "sleep", lambda s: clock.__setitem__(0, clock[0] + 10))
    (tmp_path / "d.csr").write_bytes(p256_csr())
    # WHEN waiting 30 s THEN exit 3 and the CSR is reported as uploaded (still pending)
    result = CliRunner().invoke(
        main,
        [
            "aws",
            "submit",
            "--bucket",
            BUCKET,
            "--pai-arn",
            pai,
            "--pid",
            "8000",
            "--csr",
            str(tmp_path / "d.csr"),
            "--wait",
            "--timeout",
            "30",
        ],
    )
    assert result.exit_code == 3
    assert "d: uploaded" in result.output


def test_create_pai_prints_the_arn_and_writes_the_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a PAA on (model) Private CA
    fake = ModelPrivateCa()
    paa = fake.add_paa()
    _use(monkeypatch, fake)
    fake_waiter_delay(monkeypatch)
    # WHEN a product-scoped PAI is created
    result = CliRunner().invoke(
        main,
        [
            "aws",
            "create-pai",
            "--paa-arn",
            paa,
            "--vid",
            "FFF1",
            "--pid",
            "8003",
            "--out",
            str(tmp_path / "pai.pem"),
        ],
    )
    # THEN its ARN is printed, it is active, and the written certificate is the CA's
    assert result.exit_code == 0, result.output
    arn = result.output.strip()
    assert fake.cas[arn].state == "ACTIVE"
    assert x509.load_pem_x509_certificate((tmp_path / "pai.pem").read_bytes()) == fake.cas[arn].cert


def fake_waiter_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiters without delay (the fake CA answers at once)."""
    from matter_pki.backends import aws_pca

    original = aws_pca.PrivateCa.__init__

    def init(self: Any, client: Any, **kwargs: Any) -> None:
        original(self, client, **{**kwargs, "waiter_delay": 0})

    monkeypatch.setattr(aws_pca.PrivateCa, "__init__", init)
