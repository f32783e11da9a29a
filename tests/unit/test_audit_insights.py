"""Logs Insights: canned query strings (pure), and execution with polling, paging and window splitting (Stubber)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from matter_pki.audit import insights
from matter_pki.audit.insights import MAX_ROWS, QUERIES, build_query, quote, run_query, split_window
from matter_pki.cli import audit as cli_audit
from matter_pki.cli import main
from matter_pki.errors import BackendError, ConfigError, InputError, TransientError

CA = "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
START = datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC)
END = datetime(2026, 6, 1, 0, 0, 9, tzinfo=UTC)  # a 10-second window: [t0, t0+9]
T0 = int(START.timestamp())


# -- query strings ----------------------------------------------------------------------------------
def test_ca_lifecycle_query() -> None:
    assert build_query("ca-lifecycle") == (
        "fields @timestamp, eventName, userIdentity.arn as principal, "
        "coalesce(requestParameters.certificateAuthorityArn, responseElements.certificateAuthorityArn) as ca, "
        "requestParameters.status as status, errorCode\n"
        '| filter eventSource = "acm-pca.amazonaws.com"\n'
        '| filter eventName in ["CreateCertificateAuthority", "ImportCertificateAuthorityCertificate", '
        '"UpdateCertificateAuthority", "DeleteCertificateAuthority", "RestoreCertificateAuthority"]\n'
        "| sort @timestamp asc"
    )


def test_ca_filter_matches_request_or_response_arn() -> None:
    # GIVEN a CA: a CreateCertificateAuthority event carries its ARN only in responseElements
    query = build_query("ca-lifecycle", ca_arn=CA)
    assert f'| filter requestParameters.certificateAuthorityArn = "{CA}" or responseElements.certificateAuthorityArn = "{CA}"\n' in query


def test_issued_per_ca_is_an_aggregation() -> None:
    assert build_query("issued-per-ca", ca_arn=CA).splitlines() == [
        'filter eventSource = "acm-pca.amazonaws.com"',
        '| filter eventName = "IssueCertificate"',
        "| filter not ispresent(errorCode)",
        f'| filter requestParameters.certificateAuthorityArn = "{CA}"',
        "| stats count(*) as issued by requestParameters.certificateAuthorityArn",
        "| sort issued desc",
    ]
    assert QUERIES["issued-per-ca"].aggregate and not QUERIES["issued"].aggregate


def test_revocations_query_selects_serial_and_reason() -> None:
    query = build_query("revocations")
    assert "requestParameters.certificateSerial as serial" in query
    assert "requestParameters.revocationReason as reason" in query
    assert '| filter eventName = "RevokeCertificate"' in query


def test_denied_query_covers_pca_and_matterpki_roles() -> None:
    query = build_query("denied")
    assert "| filter ispresent(errorCode)\n" in query
    assert "userIdentity.sessionContext.sessionIssuer.arn like /:role\\/MatterPKI\\//" in query
    assert 'eventSource = "acm-pca.amazonaws.com"' in query


def test_role_assumptions_query_uses_the_iam_path() -> None:
    query = build_query("role-assumptions")
    assert '| filter eventSource = "sts.amazonaws.com"' in query
    assert "| filter eventName like /^AssumeRole/" in query
    assert "| filter requestParameters.roleArn like /:role\\/MatterPKI\\//" in query
    with pytest.raises(InputError) as err:
        build_query("role-assumptions", ca_arn=CA)
    assert err.value.code == "input.ca_arn"


def test_bucket_access_needs_a_bucket() -> None:
    assert '| filter requestParameters.bucketName = "matter-audit-111122223333"' in build_query(
        "bucket-access", bucket="matter-audit-111122223333"
    )
    with pytest.raises(InputError):
        build_query("bucket-access")
    with pytest.raises(InputError):
        build_query("bucket-access", bucket='x" or 1=1')


@pytest.mark.parametrize("bad", [CA + '" or eventName = "x', "arn:aws:iam::111122223333:role/x", "*"])
def test_ca_arn_cannot_inject_query_text(bad: str) -> None:
    with pytest.raises(InputError) as err:
        build_query("revocations", ca_arn=bad)
    assert err.value.code == "input.ca_arn"


def test_unknown_query() -> None:
    with pytest.raises(InputError) as err:
        build_query("everything")
    assert err.value.code == "input.query"


def test_quote_escapes() -> None:
    assert quote('a"b\\c') == '"a\\"b\\\\c"'


def test_split_window_halves_inclusive_ranges() -> None:
    assert split_window(0, 9) == ((0, 4), (5, 9))
    assert split_window(0, 1) == ((0, 0), (1, 1))
    with pytest.raises(ValueError):
        split_window(5, 5)


# -- execution ------------------------------------------------------------------------------------
@pytest.fixture
def logs():
    client = boto3.client("logs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def row(i: int) -> list[dict[str, str]]:
    return [{"field": "@timestamp", "value": f"2026-06-01 00:00:0{i % 10}.000"}, {"field": "eventName", "value": f"E{i}"},
            {"field": "@ptr", "value": f"ptr{i}"}]


def expect_query(stub: Stubber, qid: str, window: tuple[int, int], want: int, query: str = "Q") -> None:
    stub.add_response(
        "start_query",
        {"queryId": qid},
        {"logGroupName": "MatterAudit", "startTime": window[0], "endTime": window[1], "queryString": query, "limit": want},
    )


def complete(stub: Stubber, qid: str, rows: list[int], **extra: object) -> None:
    stub.add_response("get_query_results", {"status": "Complete", "results": [row(i) for i in rows], **extra}, {"queryId": qid})


def test_polls_until_complete_and_drops_ptr(logs) -> None:
    client, stub = logs
    # GIVEN a query that is Scheduled, then Running, then Complete
    expect_query(stub, "q1", (T0, T0 + 9), MAX_ROWS)
    stub.add_response("get_query_results", {"status": "Scheduled", "results": []}, {"queryId": "q1"})
    stub.add_response("get_query_results", {"status": "Running", "results": [row(0)]}, {"queryId": "q1"})
    complete(stub, "q1", [0, 1])
    sleeps: list[float] = []
    # WHEN it runs
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, poll_interval=2.0,
                       sleep=sleeps.append)
    # THEN it waited twice and returned the final rows without @ptr
    assert sleeps == [2.0, 2.0]
    assert result.rows == [{"@timestamp": "2026-06-01 00:00:00.000", "eventName": "E0"},
                           {"@timestamp": "2026-06-01 00:00:01.000", "eventName": "E1"}]
    assert (result.windows, result.splits, result.truncated) == ([(T0, T0 + 9)], 0, False)
    assert result.columns == ["@timestamp", "eventName"]


def test_follows_next_token_pages(logs) -> None:
    client, stub = logs
    expect_query(stub, "q1", (T0, T0 + 9), MAX_ROWS)
    complete(stub, "q1", [0, 1], nextToken="page2")
    stub.add_response("get_query_results", {"status": "Complete", "results": [row(2)]}, {"queryId": "q1", "nextToken": "page2"})
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, sleep=lambda _s: None)
    assert [r["eventName"] for r in result.rows] == ["E0", "E1", "E2"]


def test_full_window_is_split_until_each_half_fits(logs) -> None:
    client, stub = logs
    # GIVEN a row cap of 3: [t0, t0+9] returns 3 rows (full), so it is halved;
    # [t0, t0+4] is still full and halved again; the rest fit
    expect_query(stub, "q1", (T0, T0 + 9), 3)
    complete(stub, "q1", [0, 1, 2])
    expect_query(stub, "q2", (T0, T0 + 4), 3)
    complete(stub, "q2", [0, 1, 2])
    expect_query(stub, "q3", (T0, T0 + 2), 3)
    complete(stub, "q3", [0, 1])
    expect_query(stub, "q4", (T0 + 3, T0 + 4), 3)
    complete(stub, "q4", [3, 4])
    expect_query(stub, "q5", (T0 + 5, T0 + 9), 3)
    complete(stub, "q5", [5])
    # WHEN it runs
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, max_rows=3, sleep=lambda _s: None)
    # THEN rows come from the three fitting windows, oldest first, and nothing is lost
    assert [r["eventName"] for r in result.rows] == ["E0", "E1", "E3", "E4", "E5"]
    assert result.windows == [(T0, T0 + 2), (T0 + 3, T0 + 4), (T0 + 5, T0 + 9)]
    assert (result.splits, result.truncated) == (2, False)


def test_split_at_the_real_10000_row_limit(logs) -> None:
    client, stub = logs
    big = list(range(MAX_ROWS))
    expect_query(stub, "q1", (T0, T0 + 9), MAX_ROWS)
    complete(stub, "q1", big)
    expect_query(stub, "q2", (T0, T0 + 4), MAX_ROWS)
    complete(stub, "q2", big[:6000])
    expect_query(stub, "q3", (T0 + 5, T0 + 9), MAX_ROWS)
    complete(stub, "q3", big[6000:9999] + [10_000, 10_001])
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, sleep=lambda _s: None)
    assert (len(result.rows), result.splits, len(result.windows)) == (10_001, 1, 2)


def test_one_second_window_that_is_still_full_is_marked_truncated(logs) -> None:
    client, stub = logs
    expect_query(stub, "q1", (T0, T0), 2)
    complete(stub, "q1", [0, 1])
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=START, max_rows=2, sleep=lambda _s: None)
    assert (len(result.rows), result.truncated) == (2, True)


def test_aggregations_are_not_split(logs) -> None:
    client, stub = logs
    expect_query(stub, "q1", (T0, T0 + 9), 2)
    complete(stub, "q1", [0, 1])
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, max_rows=2, aggregate=True,
                       sleep=lambda _s: None)
    assert (result.splits, result.truncated) == (0, True)


def test_limit_caps_rows_and_requests(logs) -> None:
    client, stub = logs
    # GIVEN --limit 4 with a cap of 3: the first window is full and split; its first half fills the limit
    expect_query(stub, "q1", (T0, T0 + 9), 3)
    complete(stub, "q1", [0, 1, 2])
    expect_query(stub, "q2", (T0, T0 + 4), 3)
    complete(stub, "q2", [0, 1])
    expect_query(stub, "q3", (T0 + 5, T0 + 9), 2)
    complete(stub, "q3", [5, 6])
    result = run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, limit=4, max_rows=3,
                       sleep=lambda _s: None)
    assert [r["eventName"] for r in result.rows] == ["E0", "E1", "E5", "E6"]


def test_failed_query_is_a_backend_error(logs) -> None:
    client, stub = logs
    expect_query(stub, "q1", (T0, T0 + 9), MAX_ROWS)
    stub.add_response("get_query_results", {"status": "Failed", "results": []}, {"queryId": "q1"})
    with pytest.raises(BackendError) as err:
        run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, sleep=lambda _s: None)
    assert err.value.code == "backend.query_failed"


def test_throttling_is_transient(logs) -> None:
    client, stub = logs
    stub.add_client_error("start_query", service_error_code="LimitExceededException", service_message="too many")
    with pytest.raises(TransientError) as err:
        run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, sleep=lambda _s: None)
    assert err.value.retryable and err.value.context["aws_code"] == "LimitExceededException"


@pytest.mark.parametrize(
    ("aws_code", "code"),
    [("AccessDeniedException", "config.aws_access_denied"), ("ExpiredTokenException", "config.aws_credentials")],
)
def test_denied_or_expired_credentials_are_a_configuration_error(logs, aws_code: str, code: str) -> None:
    # GIVEN CloudWatch Logs refusing the caller  WHEN queried  THEN a config.* error (exit 2: fix the role or
    # profile), classified by matter_pki.aws_errors like every other AWS caller, not retried
    client, stub = logs
    stub.add_client_error("start_query", service_error_code=aws_code, service_message="no", http_status_code=400)
    with pytest.raises(ConfigError) as err:
        run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, sleep=lambda _s: None)
    assert err.value.code == code and err.value.exit_code == 2 and not err.value.retryable


def test_polling_gives_up_after_the_timeout(logs) -> None:
    client, stub = logs
    expect_query(stub, "q1", (T0, T0 + 9), MAX_ROWS)
    for _ in range(3):
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
    with pytest.raises(TransientError) as err:
        run_query(client, log_group="MatterAudit", query="Q", start=START, end=END, poll_interval=1.0, timeout=2.0,
                  sleep=lambda _s: None)
    assert err.value.code == "backend.query_timeout"


def test_since_after_until_is_refused(logs) -> None:
    client, _stub = logs
    with pytest.raises(InputError):
        run_query(client, log_group="MatterAudit", query="Q", start=END, end=START)


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_runs_the_canned_query(logs, monkeypatch: pytest.MonkeyPatch) -> None:
    client, stub = logs
    monkeypatch.setattr(cli_audit, "_client", lambda service, region, profile=None: client)
    monkeypatch.setattr(cli_audit, "_sleep", lambda _s: None)
    query = build_query("revocations", ca_arn=CA)
    expect_query(stub, "q1", (T0, T0 + 9), 5, query=query)
    stub.add_response("get_query_results", {"status": "Complete", "results": [[
        {"field": "@timestamp", "value": "2026-06-01 00:00:03.000"}, {"field": "ca", "value": CA},
        {"field": "serial", "value": "5a01"}, {"field": "reason", "value": "KEY_COMPROMISE"},
    ]]}, {"queryId": "q1"})
    result = CliRunner().invoke(main, [
        "audit", "query", "--aws", "--log-group", "MatterAudit", "--query", "revocations", "--ca", CA,
        "--since", "2026-06-01T00:00:00Z", "--until", "2026-06-01T00:00:09Z", "--limit", "5", "--format", "json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["rows"] == [{"@timestamp": "2026-06-01 00:00:03.000", "ca": CA, "serial": "5a01", "reason": "KEY_COMPROMISE"}]
    assert (data["query"], data["windows"], data["truncated"]) == ("revocations", 1, False)


def test_cli_bad_arn_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_audit, "_client", lambda service, region, profile=None: pytest.fail("no AWS call expected"))
    result = CliRunner().invoke(main, ["audit", "query", "--aws", "--log-group", "G", "--query", "issued", "--ca", "nope"])
    assert result.exit_code == 2 and "error[input.ca_arn]" in result.output


def test_queries_are_listed() -> None:
    result = CliRunner().invoke(main, ["audit", "queries"])
    assert [line.split()[0] for line in result.output.splitlines()] == list(insights.QUERIES)
