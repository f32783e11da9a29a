"""The CSR inbox on S3: bounded reads, HEAD lookups, conditional writes.

Every call goes through an injected boto3 ``s3`` client. Errors are wrapped by
``matter_pki.aws_errors`` with ``storage.*`` codes: throttling/5xx/timeouts → ``TransientError``;
missing permissions or bucket → ``ConfigError``.

Writes of ``.pem``/``.err`` and claims are conditional (S3 conditional writes, ``If-None-Match: *``
creates only; ``If-Match: <ETag>`` replaces only the version the writer read): a second writer gets
``412 PreconditionFailed`` and the first result stands. S3 is strongly consistent for reads after
writes (S3 user guide, "Amazon S3 data consistency model"), so a writer that lost sees the winner's
object on its next read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from matter_pki.aws_errors import error_fields, wrap_aws_error

if TYPE_CHECKING:
    from collections.abc import Mapping

    from botocore.client import BaseClient

    from matter_pki.errors import MatterPkiError

_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})


@dataclass(frozen=True, slots=True)
class S3Object:
    """A bounded read: at most ``limit + 1`` bytes of the body and what S3 says about the rest."""

    body: bytes
    size: int
    version_id: str | None
    etag: str | None
    tag_count: int = 0
    last_modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class S3Head:
    """What HeadObject says about an object's current version."""

    version_id: str | None
    etag: str | None
    size: int
    last_modified: datetime | None


class S3Store:
    """One boto3 S3 client; every method names its bucket."""

    def __init__(self, client: BaseClient) -> None:
        self.client = client
        members = client.meta.service_model.operation_model("PutObject").input_shape.members
        self.conditional_writes = "IfNoneMatch" in members and "IfMatch" in members

    def _fail(self, error: Exception, operation: str, bucket: str, key: str) -> MatterPkiError:
        return wrap_aws_error(error, operation=operation, prefix="storage", service="s3", bucket=bucket, key=key)

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

    def head(self, bucket: str, key: str) -> S3Head | None:
        """HeadObject of the current version, or None when the key does not exist."""
        try:
            response = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as e:
            if error_fields(e).code in _MISSING:
                return None
            raise self._fail(e, "head_object", bucket, key) from e
        return S3Head(
            response.get("VersionId"),
            response.get("ETag"),
            int(response.get("ContentLength", 0) or 0),
            _utc(response.get("LastModified")),
        )

    def exists(self, bucket: str, key: str) -> bool:
        """True when ``key`` exists (one HeadObject)."""
        return self.head(bucket, key) is not None

    def read(self, bucket: str, key: str, *, version_id: str | None, limit: int) -> S3Object | None:
        """First ``limit + 1`` bytes of the object (version; the current one if None), or None when missing."""
        params: dict[str, object] = {"Bucket": bucket, "Key": key, "Range": f"bytes=0-{limit}"}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self.client.get_object(**params)
            body = response["Body"].read(limit + 1)
        except Exception as e:
            code = error_fields(e).code
            if code in _MISSING:
                return None
            if code == "InvalidRange":  # an empty object has no byte 0
                return S3Object(b"", 0, version_id, None)
            raise self._fail(e, "get_object", bucket, key) from e
        size = _total_size(response.get("ContentRange"), response.get("ContentLength", len(body)))
        return S3Object(
            body,
            size,
            response.get("VersionId") or version_id,
            response.get("ETag"),
            int(response.get("TagCount", 0) or 0),
            _utc(response.get("LastModified")),
        )

    def write(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str,
        metadata: Mapping[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        """Conditional PutObject: create only (``if_match`` None) or replace only ``if_match``; the new ETag, or None on 412."""
        params: dict[str, object] = {
            "Bucket": bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "Metadata": dict(metadata or {}),
        }
        if self.conditional_writes:
            if if_match is None:
                params["IfNoneMatch"] = "*"
            else:
                params["IfMatch"] = if_match
        try:
            response = self.client.put_object(**params)
        except Exception as e:
            if error_fields(e).code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return None
            raise self._fail(e, "put_object", bucket, key) from e
        etag: str = response.get("ETag") or ""
        return etag

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
        return self.write(bucket, key, body, content_type=content_type, metadata=metadata) is not None

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


def _utc(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _total_size(content_range: object, fallback: object) -> int:
    """Object size from ``Content-Range: bytes 0-N/TOTAL`` (a ranged GET's ContentLength is the part)."""
    if isinstance(content_range, str) and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return int(fallback) if isinstance(fallback, int) else 0
