"""``matter-pki audit report --aws``: request a Private CA audit report, poll, download (Stubber + moto S3)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from moto import mock_aws

from matter_pki.audit.pca_report import fetch_audit_report
from matter_pki.cli import audit as cli_audit
from matter_pki.cli import main
from matter_pki.errors import BackendError, InputError, OperatorError

if TYPE_CHECKING:
    from pathlib import Path

REGION = "eu-west-1"
CA = "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
BUCKET = "matter-pca-audit"
KEY = "audit-report/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/5a1b2c3d-0000-4000-8000-000000000001.json"
REPORT = [{"awsAccountId": "111122223333", "certificateArn": CA + "/certificate/ab12", "serial": "5a:01",
           "subject": "CN=Matter DAC", "notBefore": "2026-06-01T00:00:00Z", "notAfter": "9999-12-31T23:59:59Z",
           "issuedAt": "2026-06-01T00:00:00Z", "revokedAt": "2026-06-03T00:00:00Z", "revocationReason": "KEY_COMPROMISE"}]


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


@pytest.fixture
def pca():
    client = boto3.client("acm-pca", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def expect_report(stub: Stubber, statuses: list[str], fmt: str = "JSON", key: str = KEY) -> None:
    stub.add_response(
        "create_certificate_authority_audit_report",
        {"AuditReportId": "5a1b2c3d-0000-4000-8000-000000000001", "S3Key": key},
        {"CertificateAuthorityArn": CA, "S3BucketName": BUCKET, "AuditReportResponseFormat": fmt},
    )
    for status in statuses:
        body = {"AuditReportStatus": status}
        if status == "SUCCESS":
            body |= {"S3BucketName": BUCKET, "S3Key": key}
        stub.add_response(
            "describe_certificate_authority_audit_report",
            body,
            {"CertificateAuthorityArn": CA, "AuditReportId": "5a1b2c3d-0000-4000-8000-000000000001"},
        )


def test_report_is_requested_polled_and_downloaded(pca, s3, tmp_path: Path) -> None:
    client, stub = pca
    # GIVEN Private CA takes two polls to write the report into the bucket
    expect_report(stub, ["CREATING", "CREATING", "SUCCESS"])
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(REPORT).encode())
    sleeps: list[float] = []
    # WHEN the report is fetched
    report = fetch_audit_report(client, s3, ca_arn=CA, bucket=BUCKET, out_dir=tmp_path / "reports",
                                poll_interval=3.0, sleep=sleeps.append)
    # THEN the bytes in S3 are saved under the report's own name
    assert sleeps == [3.0, 3.0]
    assert report.path == tmp_path / "reports" / "5a1b2c3d-0000-4000-8000-000000000001.json"
    assert json.loads(report.path.read_bytes()) == REPORT
    assert (report.bucket, report.key, report.size) == (BUCKET, KEY, len(json.dumps(REPORT)))


def test_failed_report_is_an_error(pca, s3, tmp_path: Path) -> None:
    client, stub = pca
    expect_report(stub, ["CREATING", "FAILED"])
    with pytest.raises(BackendError) as err:
        fetch_audit_report(client, s3, ca_arn=CA, bucket=BUCKET, out_dir=tmp_path, sleep=lambda _s: None)
    assert err.value.code == "backend.audit_report_failed"
    assert list(tmp_path.iterdir()) == []


def test_missing_object_is_a_backend_error(pca, s3, tmp_path: Path) -> None:
    client, stub = pca
    expect_report(stub, ["SUCCESS"])
    with pytest.raises(BackendError) as err:
        fetch_audit_report(client, s3, ca_arn=CA, bucket=BUCKET, out_dir=tmp_path, sleep=lambda _s: None)
    assert err.value.context["aws_code"] == "NoSuchKey"


def test_bucket_policy_refusal_on_create_is_an_operator_error(pca, s3, tmp_path: Path) -> None:
    client, stub = pca
    stub.add_client_error("create_certificate_authority_audit_report", service_error_code="InvalidArgsException",
                          service_message="bucket policy does not allow acm-pca")
    with pytest.raises(BackendError) as err:
        fetch_audit_report(client, s3, ca_arn=CA, bucket=BUCKET, out_dir=tmp_path, sleep=lambda _s: None)
    # Private CA's InvalidArgsException here means the bucket policy: an operator's fix, named by aws_errors
    assert isinstance(err.value, OperatorError)
    assert (err.value.code, err.value.retryable) == ("backend.invalid_args", False)


def test_bad_arn_is_refused_before_any_call(pca, s3, tmp_path: Path) -> None:
    client, _stub = pca
    with pytest.raises(InputError):
        fetch_audit_report(client, s3, ca_arn="arn:aws:s3:::bucket", bucket=BUCKET, out_dir=tmp_path)


def test_cli_downloads_csv(pca, s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = pca
    csv_key = KEY.replace(".json", ".csv")
    expect_report(stub, ["SUCCESS"], fmt="CSV", key=csv_key)
    body = b"awsAccountId,serial\n111122223333,5a:01\n"
    s3.put_object(Bucket=BUCKET, Key=csv_key, Body=body)
    clients = {"acm-pca": client, "s3": s3}
    monkeypatch.setattr(cli_audit, "_client", lambda service, region, profile=None: clients[service])
    monkeypatch.setattr(cli_audit, "_sleep", lambda _s: None)
    result = CliRunner().invoke(main, ["audit", "report", "--aws", "--ca", CA, "--bucket", BUCKET,
                                       "--out", str(tmp_path), "--report-format", "CSV"])
    assert result.exit_code == 0, result.output
    saved = tmp_path / "5a1b2c3d-0000-4000-8000-000000000001.csv"
    assert saved.read_bytes() == body
    assert result.output.strip().endswith(f"-> {saved} ({len(body)} bytes)")


def test_cli_without_aws_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["audit", "report", "--ca", CA, "--bucket", BUCKET])
    assert result.exit_code == 2 and "error[input.usage]" in result.output
