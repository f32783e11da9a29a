"""Select local audit records (who created, issued and revoked what) and render them as rows."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from matter_pki.errors import AuditError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from matter_pki.audit.log import AuditRecord

#: Columns every row has; other fields go to ``details``.
COLUMNS = ("seq", "time", "event", "operator", "ca", "serial", "details")


def normalize_serial(serial: str) -> str:
    """Upper-case hex without ``:``, spaces, a ``0x`` prefix or leading zeros (``0A:1b`` -> ``A1B``)."""
    text = serial.strip().replace(":", "").replace(" ", "")
    if text[:2].lower() == "0x":
        text = text[2:]
    return text.upper().lstrip("0") or "0"


def record_time(record: AuditRecord) -> datetime:
    """The record's time as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(record.time.replace("Z", "+00:00"))
    except ValueError as e:
        raise AuditError("audit.malformed", f"record seq {record.seq} has an unreadable time {record.time!r}") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFilter:
    """What ``audit query`` selects; every given criterion must match."""

    since: datetime | None = None
    until: datetime | None = None
    events: tuple[str, ...] = ()
    ca: str | None = None
    serial: str | None = None

    def __post_init__(self) -> None:
        for moment in (self.since, self.until):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("since/until must be timezone-aware")

    def matches(self, record: AuditRecord) -> bool:
        """True when the record passes every criterion."""
        if self.events and not any(fnmatch.fnmatchcase(record.event, pattern) for pattern in self.events):
            return False
        if self.ca is not None and record.fields.get("ca") != self.ca:
            return False
        if self.serial is not None:
            value = record.fields.get("serial")
            if not isinstance(value, str) or normalize_serial(value) != normalize_serial(self.serial):
                return False
        if self.since is not None or self.until is not None:
            moment = record_time(record)
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment > self.until:
                return False
        return True


def select(records: Iterable[AuditRecord], flt: RecordFilter) -> list[AuditRecord]:
    """Records matching ``flt``, in log order."""
    return [r for r in records if flt.matches(r)]


def to_row(record: AuditRecord) -> dict[str, str]:
    """One record as the flat row used by table and CSV output."""
    extra = {k: v for k, v in record.fields.items() if k not in ("ca", "serial")}
    return {
        "seq": str(record.seq),
        "time": record.time,
        "event": record.event,
        "operator": record.operator,
        "ca": _text(record.fields.get("ca")),
        "serial": _text(record.fields.get("serial")),
        "details": json.dumps(extra, sort_keys=True, separators=(",", ":")) if extra else "",
    }


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else json.dumps(value)


def rows_to_csv(rows: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    """CSV text with a header row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
