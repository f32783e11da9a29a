"""S3 event notifications as they arrive in SQS message bodies."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from matter_pki.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, slots=True)
class S3ObjectRef:
    """One object named by an S3 event notification (key already URL-decoded)."""

    bucket: str
    key: str
    event_name: str = "ObjectCreated:Put"
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    event_time: datetime | None = None


def _event_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_s3_event(body: str | Mapping[str, object]) -> list[S3ObjectRef]:
    """Objects in an S3 event notification (an SQS message body); ``s3:TestEvent`` gives none.

    Keys arrive URL-encoded (``quote_plus``) and are decoded with ``unquote_plus``.
    Raises InputError ``event.malformed`` for anything that is not an S3 notification.
    """
    try:
        data = json.loads(body) if isinstance(body, str) else body
        if not isinstance(data, dict):
            raise TypeError("not an object")
        if data.get("Event") == "s3:TestEvent":
            return []
        refs = []
        for record in data["Records"]:
            s3 = record["s3"]
            obj = s3["object"]
            refs.append(
                S3ObjectRef(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    event_name=str(record.get("eventName", "")),
                    version_id=obj.get("versionId") or None,
                    etag=obj.get("eTag") or None,
                    size=int(obj["size"]) if isinstance(obj.get("size"), int) else None,
                    event_time=_event_time(record.get("eventTime")),
                )
            )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise InputError("event.malformed", f"SQS message is not an S3 event notification: {e}") from e
    return refs
