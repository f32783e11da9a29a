"""Request a Private CA audit report (every certificate issued or revoked by a CA) and download it from S3.

``CreateCertificateAuthorityAuditReport`` writes the report into the given bucket asynchronously;
``DescribeCertificateAuthorityAuditReport`` is polled until ``SUCCESS`` (``FAILED`` is an error),
then the object is fetched. The bucket policy must let ``acm-pca.amazonaws.com`` write to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, Protocol

from matter_pki.audit.insights import check_bucket, check_ca_arn
from matter_pki.aws_errors import reader_error
from matter_pki.errors import BackendError, StorageError, TransientError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ReportFormat = Literal["JSON", "CSV"]


class PcaClient(Protocol):
    """The acm-pca calls used here."""

    def create_certificate_authority_audit_report(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102

    def describe_certificate_authority_audit_report(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102


class S3Client(Protocol):
    """The S3 call used here."""

    def get_object(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class AuditReport:
    """A downloaded audit report."""

    report_id: str
    bucket: str
    key: str
    path: Path
    size: int


def fetch_audit_report(
    pca: PcaClient,
    s3: S3Client,
    *,
    ca_arn: str,
    bucket: str,
    out_dir: Path,
    response_format: ReportFormat = "JSON",
    poll_interval: float = 5.0,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> AuditReport:
    """Create the CA's audit report, wait for it, and save it in ``out_dir`` (named after its S3 key)."""
    check_ca_arn(ca_arn)
    check_bucket(bucket)
    created = _call(
        "acm-pca",
        pca.create_certificate_authority_audit_report,
        CertificateAuthorityArn=ca_arn,
        S3BucketName=bucket,
        AuditReportResponseFormat=response_format,
    )
    report_id, key = str(created["AuditReportId"]), str(created["S3Key"])
    waited = 0.0
    while True:
        described = _call(
            "acm-pca",
            pca.describe_certificate_authority_audit_report,
            CertificateAuthorityArn=ca_arn,
            AuditReportId=report_id,
        )
        status = described.get("AuditReportStatus")
        if status == "SUCCESS":
            break
        if status == "FAILED":
            raise BackendError("backend.audit_report_failed", f"Private CA audit report {report_id} FAILED", report_id=report_id)
        if waited >= timeout:
            raise TransientError("backend.audit_report_timeout", f"audit report {report_id} still {status} after {timeout:.0f}s")
        sleep(poll_interval)
        waited += poll_interval
    bucket = str(described.get("S3BucketName") or bucket)
    key = str(described.get("S3Key") or key)
    body = _call("s3", s3.get_object, Bucket=bucket, Key=key)["Body"].read()
    path = _save(out_dir, PurePosixPath(key).name or f"{report_id}.{response_format.lower()}", body)
    return AuditReport(report_id, bucket, key, path, len(body))


def _save(out_dir: Path, name: str, data: bytes) -> Path:
    if name in (".", "..") or "/" in name or "\\" in name:
        raise StorageError("storage.bad_name", f"refusing to write a report named {name!r}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as e:
        raise StorageError("storage.write", f"cannot write the audit report into {str(out_dir)!r}: {e.strerror}") from e
    return path


def _call(service: str, fn: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Mapping[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as e:
        raise reader_error(e, service=service) from e
