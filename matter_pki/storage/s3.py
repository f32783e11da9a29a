"""The CSR inbox on S3: bounded reads, result lookup, create-only writes, a certificate-ARN tag.

Every call goes through an injected boto3 ``s3`` client. Errors are wrapped with ``storage.*``
codes: throttling/5xx/timeouts → ``TransientError``; missing permissions → ``ConfigError``.

Writes of ``.pem``/``.err`` are conditional (``IfNoneMatch="*"``): a second writer — an SQS
redelivery racing the first delivery — gets ``412 PreconditionFailed`` and keeps the first result.
Where the installed botocore predates ``IfNoneMatch`` the put is unconditional (the result-exists
check before issuing still holds, and both racers publish the same certificate because they share
the IdempotencyToken).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from matter_pki.backends.aws_pca import wrap_aws_error

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from botocore.client import BaseClient

    from matter_pki.errors import MatterPkiError

#: Tag on the CSR object naming the certificate Private CA issued for it (idempotency past 5 minutes).
CERTIFICATE_ARN_TAG = "matter-pki-certificate-arn"


@dataclass(frozen=True, slots=True)
class S3Object:
    """A bounded read: at most ``limit + 1`` bytes of the body and what S3 says about the rest."""

    body: bytes
    size: int
    version_id: str | None
    etag: str | None
    tag_count: int


class S3Store:
    """One boto3 S3 client; every method names its bucket."""

    def __init__(self, client: BaseClient) -> None:
        self.client = client
        members = client.meta.service_model.operation_model("PutObject").input_shape.members
        self.conditional_writes = "IfNoneMatch" in members

    def _fail(self, error: Exception, operation: str, bucket: str, key: str) -> MatterPkiError:
        return wrap_aws_error(error, operation=operation, prefix="storage", bucket=bucket, key=key)

    def keys(self, bucket: str, prefix: str) -> set[str]:
        """Every key under ``prefix`` (ListObjectsV2, all pages)."""
        found: set[str] = set()
        params: dict[str, object] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            try:
                response = self.client.list_objects_v2(**params)
            except Exception as e:
                raise self._fail(e, "list_objects_v2", bucket, prefix) from e
            found.update(o["Key"] for o in response.get("Contents", []))
            if not response.get("IsTruncated"):
                return found
            params["ContinuationToken"] = response["NextContinuationToken"]

    def existing(self, bucket: str, keys: Iterable[str], prefix: str) -> set[str]:
        """Which of ``keys`` exist, listing their common ``prefix`` (one call for a CSR's results)."""
        return set(keys) & self.keys(bucket, prefix)

    def read(self, bucket: str, key: str, *, version_id: str | None, limit: int) -> S3Object | None:
        """First ``limit + 1`` bytes of the object (version), or None when it no longer exists."""
        params: dict[str, object] = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{limit}"}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self.client.get_object(**params)
            body = response["Body"].read(limit + 1)
        except Exception as e:
            code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NoSuchVersion", "404"):
                return None
            if code == "InvalidRange":  # an empty object has no byte 0
                return S3Object(b"", 0, version_id, None, 0)
            raise self._fail(e, "get_object", bucket, key) from e
        size = _total_size(response.get("ContentRange"), response.get("ContentLength", len(body)))
        return S3Object(
            body,
            size,
            response.get("VersionId") or version_id,
            response.get("ETag"),
            int(response.get("TagCount", 0) or 0),
        )

    def tags(self, bucket: str, key: str, *, version_id: str | None) -> dict[str, str]:
        """The object's tags."""
        params: dict[str, object] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self.client.get_object_tagging(**params)
        except Exception as e:
            raise self._fail(e, "get_object_tagging", bucket, key) from e
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def put_tags(self, bucket: str, key: str, *, version_id: str | None, tags: Mapping[str, str]) -> None:
        """Replace the object's tags (S3 allows at most 10)."""
        params: dict[str, object] = {
            "Bucket": bucket,
            "Key": key,
            "Tagging": {"TagSet": [{"Key": k, "Value": v} for k, v in sorted(tags.items())][:10]},
        }
        if version_id:
            params["VersionId"] = version_id
        try:
            self.client.put_object_tagging(**params)
        except Exception as e:
            raise self._fail(e, "put_object_tagging", bucket, key) from e

    def create(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Write ``key`` only if it does not exist; False when another writer got there first."""
        params: dict[str, object] = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "Metadata": dict(metadata or {}),
        }
        if self.conditional_writes:
            params["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**params)
        except Exception as e:
            code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
            if code == "PreconditionFailed":
                return False
            raise self._fail(e, "put_object", bucket, key) from e
        return True

    def get(self, bucket: str, key: str, *, limit: int) -> bytes | None:
        """A whole small object (``.pem``/``.err``), or None when missing."""
        found = self.read(bucket, key, version_id=None, limit=limit)
        return None if found is None else found.body

    def put(
        self, bucket: str, key: str, body: bytes, *, content_type: str = "application/octet-stream"
    ) -> None:
        """Unconditional upload (the CLI's CSR submission)."""
        try:
            self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as e:
            raise self._fail(e, "put_object", bucket, key) from e


def _total_size(content_range: object, fallback: object) -> int:
    """Object size from ``Content-Range: bytes 0-N/TOTAL`` (a ranged GET's ContentLength is the part)."""
    if isinstance(content_range, str) and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(fallback) if isinstance(fallback, int) else 0
