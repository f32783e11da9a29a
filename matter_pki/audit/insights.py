"""Canned CloudWatch Logs Insights queries over the CloudTrail log group, and their paged execution.

Query strings are built by pure functions (``build_query``). ``run_query`` runs one with
``StartQuery``, polls ``GetQueryResults`` until ``Complete`` (following ``nextToken`` pages), and
splits the time window in two whenever a window returns the row cap (10,000 by default): Logs
Insights then cannot say what was cut, so both halves are queried again until every window fits.
Rows come back oldest first (each query sorts ``@timestamp asc`` and windows run in order).
Aggregating queries (``stats``) are never split; hitting the cap there marks the result truncated.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from matter_pki.aws_errors import reader_error
from matter_pki.errors import BackendError, InputError, TransientError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

MAX_ROWS = 10_000
PCA_SOURCE = "acm-pca.amazonaws.com"
ROLE_PATH_RE = r"/:role\/MatterPKI\//"
_CA_ARN_RE = re.compile(r"arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/[A-Za-z0-9-]{1,64}")
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PENDING = frozenset({"Scheduled", "Running", "Unknown"})
_PRINCIPAL = "userIdentity.arn as principal"

CA_LIFECYCLE_EVENTS = (
    "CreateCertificateAuthority",
    "ImportCertificateAuthorityCertificate",
    "UpdateCertificateAuthority",
    "DeleteCertificateAuthority",
    "RestoreCertificateAuthority",
)


@dataclass(frozen=True, slots=True)
class CannedQuery:
    """One named query: its filters, and either displayed fields or a ``stats`` aggregation."""

    name: str
    title: str
    filters: tuple[str, ...]
    fields: tuple[str, ...] = ()
    stats: str | None = None
    ca_fields: tuple[str, ...] = ("requestParameters.certificateAuthorityArn",)
    needs_bucket: bool = False
    sort: str = "@timestamp asc"

    @property
    def aggregate(self) -> bool:
        """True for ``stats`` queries (never window-split)."""
        return self.stats is not None


QUERIES: dict[str, CannedQuery] = {
    q.name: q
    for q in (
        CannedQuery(
            "ca-lifecycle",
            "Private CAs created, activated (certificate imported), updated, deleted or restored",
            (f'eventSource = "{PCA_SOURCE}"', "eventName in [" + ", ".join(f'"{e}"' for e in CA_LIFECYCLE_EVENTS) + "]"),
            (
                "@timestamp",
                "eventName",
                _PRINCIPAL,
                "coalesce(requestParameters.certificateAuthorityArn, responseElements.certificateAuthorityArn) as ca",
                "requestParameters.status as status",
                "errorCode",
            ),
            ca_fields=("requestParameters.certificateAuthorityArn", "responseElements.certificateAuthorityArn"),
        ),
        CannedQuery(
            "issued",
            "Certificates issued (one row per IssueCertificate call that succeeded)",
            (f'eventSource = "{PCA_SOURCE}"', 'eventName = "IssueCertificate"', "not ispresent(errorCode)"),
            (
                "@timestamp",
                _PRINCIPAL,
                "requestParameters.certificateAuthorityArn as ca",
                "requestParameters.templateArn as template",
                "responseElements.certificateArn as certificate",
            ),
        ),
        CannedQuery(
            "issued-per-ca",
            "Number of certificates issued per CA",
            (f'eventSource = "{PCA_SOURCE}"', 'eventName = "IssueCertificate"', "not ispresent(errorCode)"),
            stats="count(*) as issued by requestParameters.certificateAuthorityArn",
            sort="issued desc",
        ),
        CannedQuery(
            "revocations",
            "Certificate revocations",
            (f'eventSource = "{PCA_SOURCE}"', 'eventName = "RevokeCertificate"'),
            (
                "@timestamp",
                _PRINCIPAL,
                "requestParameters.certificateAuthorityArn as ca",
                "requestParameters.certificateSerial as serial",
                "requestParameters.revocationReason as reason",
                "errorCode",
            ),
        ),
        CannedQuery(
            "denied",
            "Denied or failed calls to Private CA or by/for the /MatterPKI/ roles",
            (
                "ispresent(errorCode)",
                f'(eventSource = "{PCA_SOURCE}" or userIdentity.sessionContext.sessionIssuer.arn like {ROLE_PATH_RE}'
                f" or requestParameters.roleArn like {ROLE_PATH_RE})",
            ),
            (
                "@timestamp",
                "eventSource",
                "eventName",
                _PRINCIPAL,
                "errorCode",
                "errorMessage",
                "requestParameters.certificateAuthorityArn as ca",
                "sourceIPAddress",
            ),
        ),
        CannedQuery(
            "role-assumptions",
            "AssumeRole* calls for roles under the /MatterPKI/ IAM path",
            ('eventSource = "sts.amazonaws.com"', "eventName like /^AssumeRole/", f"requestParameters.roleArn like {ROLE_PATH_RE}"),
            (
                "@timestamp",
                "eventName",
                "requestParameters.roleArn as role",
                "requestParameters.roleSessionName as session",
                _PRINCIPAL,
                "sourceIPAddress",
                "errorCode",
            ),
            ca_fields=(),
        ),
        CannedQuery(
            "bucket-access",
            "S3 data events on the audit bucket (needs --bucket and S3 data events in the trail)",
            ('eventSource = "s3.amazonaws.com"',),
            (
                "@timestamp",
                "eventName",
                "requestParameters.key as key",
                _PRINCIPAL,
                "sourceIPAddress",
                "errorCode",
            ),
            ca_fields=(),
            needs_bucket=True,
        ),
    )
}


def quote(value: str) -> str:
    """A Logs Insights double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check_ca_arn(arn: str) -> str:
    """Accept only a Private CA ARN (it is placed inside a query string)."""
    if not _CA_ARN_RE.fullmatch(arn):
        raise InputError("input.ca_arn", f"{arn!r} is not a Private CA ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>)")
    return arn


def check_bucket(bucket: str) -> str:
    """Accept only an S3 bucket name."""
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise InputError("input.bucket", f"{bucket!r} is not an S3 bucket name")
    return bucket


def build_query(name: str, *, ca_arn: str | None = None, bucket: str | None = None) -> str:
    """The Logs Insights query string for canned query ``name``, optionally narrowed to one CA."""
    try:
        spec = QUERIES[name]
    except KeyError as e:
        raise InputError("input.query", f"unknown query {name!r}; choose one of {', '.join(QUERIES)}") from e
    filters = list(spec.filters)
    if spec.needs_bucket:
        if not bucket:
            raise InputError("input.bucket", f"query {name!r} needs the audit bucket name (--bucket)")
        filters.append(f"requestParameters.bucketName = {quote(check_bucket(bucket))}")
    if ca_arn is not None:
        if not spec.ca_fields:
            raise InputError("input.ca_arn", f"query {name!r} is not about one CA; drop --ca")
        literal = quote(check_ca_arn(ca_arn))
        filters.append(" or ".join(f"{f} = {literal}" for f in spec.ca_fields))
    parts = []
    if spec.fields:
        parts.append("fields " + ", ".join(spec.fields))
    # Consecutive filter commands are ANDed, so each condition keeps its own precedence.
    parts += [f"filter {f}" for f in filters]
    if spec.stats:
        parts.append(f"stats {spec.stats}")
    parts.append(f"sort {spec.sort}")
    return "\n| ".join(parts)


def split_window(start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Halve an inclusive ``[start, end]`` window of epoch seconds into two non-overlapping windows."""
    if end <= start:
        raise ValueError("a one-second window cannot be split")
    mid = start + (end - start) // 2
    return (start, mid), (mid + 1, end)


def epoch_seconds(moment: datetime) -> int:
    """Whole epoch seconds of an aware datetime."""
    if moment.tzinfo is None:
        raise InputError("input.time", "times must be timezone-aware")
    return int(moment.timestamp())


class LogsClient(Protocol):
    """The two CloudWatch Logs calls used here (a boto3 ``logs`` client)."""

    def start_query(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102

    def get_query_results(self, **kwargs: Any) -> Mapping[str, Any]: ...  # noqa: D102


@dataclass(slots=True)
class InsightsResult:
    """Rows of one canned query over all windows."""

    query: str
    rows: list[dict[str, str]] = field(default_factory=list)
    windows: list[tuple[int, int]] = field(default_factory=list)
    splits: int = 0
    truncated: bool = False

    @property
    def columns(self) -> list[str]:
        """Field names in first-seen order."""
        seen: dict[str, None] = {}
        for row in self.rows:
            seen.update(dict.fromkeys(row))
        return list(seen)


def run_query(
    client: LogsClient,
    *,
    log_group: str,
    query: str,
    start: datetime,
    end: datetime,
    limit: int | None = None,
    aggregate: bool = False,
    max_rows: int = MAX_ROWS,
    poll_interval: float = 1.0,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
) -> InsightsResult:
    """Run ``query`` over ``[start, end]``, splitting windows that hit ``max_rows``; at most ``limit`` rows."""
    if limit is not None and limit < 1:
        raise InputError("input.limit", "--limit must be at least 1")
    first, last = epoch_seconds(start), epoch_seconds(end)
    if last < first:
        raise InputError("input.time", "--since must not be after --until")
    result = InsightsResult(query)
    pending = [(first, last)]
    while pending:
        window = pending.pop(0)
        want = max_rows if limit is None else min(max_rows, limit - len(result.rows))
        rows = _run_once(client, log_group, query, window, want, poll_interval, timeout, sleep)
        if len(rows) >= max_rows and want == max_rows:
            if not aggregate and window[1] > window[0]:
                pending[0:0] = split_window(*window)
                result.splits += 1
                continue
            result.truncated = True
        result.rows.extend(rows)
        result.windows.append(window)
        if limit is not None and len(result.rows) >= limit:
            del result.rows[limit:]
            break
    return result


def _run_once(
    client: LogsClient,
    log_group: str,
    query: str,
    window: tuple[int, int],
    want: int,
    poll_interval: float,
    timeout: float,
    sleep: Callable[[float], None],
) -> list[dict[str, str]]:
    started = _call(client.start_query, logGroupName=log_group, startTime=window[0], endTime=window[1],
                    queryString=query, limit=want)
    query_id = str(started["queryId"])
    waited = 0.0
    while True:
        response = _call(client.get_query_results, queryId=query_id)
        status = response.get("status")
        if status == "Complete":
            break
        if status not in _PENDING:
            raise BackendError("backend.query_failed", f"Logs Insights query {query_id} ended {status}", query_id=query_id)
        if waited >= timeout:
            raise TransientError("backend.query_timeout", f"Logs Insights query {query_id} still {status} after {timeout:.0f}s")
        sleep(poll_interval)
        waited += poll_interval
    rows = [_row(r) for r in response.get("results", [])]
    token = response.get("nextToken")
    while token and len(rows) < want:
        response = _call(client.get_query_results, queryId=query_id, nextToken=token)
        rows += [_row(r) for r in response.get("results", [])]
        token = response.get("nextToken")
    return rows[:want]


def _row(fields: list[Mapping[str, str]]) -> dict[str, str]:
    return {f["field"]: f.get("value", "") for f in fields if f.get("field") != "@ptr"}


def _call(fn: Callable[..., Mapping[str, Any]], **kwargs: Any) -> Mapping[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kwargs)
    except (ClientError, BotoCoreError) as e:
        raise reader_error(e, service="logs") from e
