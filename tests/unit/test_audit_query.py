"""``matter-pki audit query`` over the local log: filters by time, event, CA and serial; table, JSON, CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from matter_pki.audit import AuditLog
from matter_pki.audit.query import RecordFilter, normalize_serial, select
from matter_pki.cli import main
from tests.unit.test_local_fixtures import new_audit_log

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit key is always stored encrypted, so the default test environment has a passphrase.
    monkeypatch.setenv("MATTER_PKI_PASSPHRASE", "audit-test-passphrase")
    for name in ("MATTER_PKI_AUDIT_SEAL_EVERY", "MATTER_PKI_HOME"):
        monkeypatch.delenv(name, raising=False)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 6, day, hour, 0, 0, tzinfo=UTC)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Who created, issued and revoked what, over three days."""
    log = new_audit_log(tmp_path)
    log.record("paa.created", ca="paa", operator="alice", vid="FFF1", now=at(1))
    log.record("pai.created", ca="pai-1", operator="alice", pid="8000", now=at(1, 13))
    log.record("dac.issued", ca="pai-1", serial="5A:01", operator="bob", pid="8000", now=at(2))
    log.record("dac.issued", ca="pai-1", serial="5A02", operator="bob", pid="8000", now=at(2, 13))
    log.record("dac.refused", ca="pai-1", operator="bob", code="csr.key_not_ec", now=at(2, 14))
    log.record("cert.revoked", ca="pai-1", serial="005a01", operator="carol", reason="keyCompromise", now=at(3))
    return tmp_path


def query(home: Path, *args: str):
    return CliRunner().invoke(main, ["audit", "query", "--home", str(home), *args])


def seqs_json(result) -> list[int]:
    assert result.exit_code == 0, result.output
    return [r["seq"] for r in json.loads(result.output)]


def test_serial_normalisation() -> None:
    assert normalize_serial("5A:01") == normalize_serial("005a01") == normalize_serial("0x5A01") == "5A01"
    assert normalize_serial("00") == "0"


def test_filter_requires_aware_times() -> None:
    with pytest.raises(ValueError):
        RecordFilter(since=datetime(2026, 1, 1))  # noqa: DTZ001


def test_everything_by_default(home: Path) -> None:
    assert seqs_json(query(home, "--format", "json")) == [0, 1, 2, 3, 4, 5]


def test_serial_finds_issue_and_revocation_whatever_the_spelling(home: Path) -> None:
    # GIVEN serial 5A01 recorded as "5A:01" at issuance and "005a01" at revocation
    result = query(home, "--serial", "5a01", "--format", "json")
    # THEN both records come back, with who did what
    rows = json.loads(result.output)
    assert [(r["event"], r["operator"]) for r in rows] == [("dac.issued", "bob"), ("cert.revoked", "carol")]


def test_event_globs_and_repeats(home: Path) -> None:
    assert seqs_json(query(home, "--event", "*.created", "--format", "json")) == [0, 1]
    assert seqs_json(query(home, "--event", "dac.issued", "--event", "cert.revoked", "--format", "json")) == [2, 3, 5]


def test_ca_and_time_window(home: Path) -> None:
    result = query(home, "--ca", "pai-1", "--since", "2026-06-02T00:00:00Z", "--until", "2026-06-02T13:30:00Z",
                   "--format", "json")
    assert seqs_json(result) == [2, 3]


def test_csv_has_fixed_columns_and_details(home: Path) -> None:
    result = query(home, "--event", "cert.revoked", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["seq", "time", "event", "operator", "ca", "serial", "details"]
    assert rows == [{"seq": "5", "time": "2026-06-03T12:00:00Z", "event": "cert.revoked", "operator": "carol",
                     "ca": "pai-1", "serial": "005a01", "details": '{"reason":"keyCompromise"}'}]


def test_table_is_the_default(home: Path) -> None:
    result = query(home, "--event", "dac.*")
    assert result.exit_code == 0
    assert "3 audit record(s)" in result.output
    assert "csr.key_not_ec" in result.output and "5A02" in result.output


def test_seals_are_queryable(tmp_path: Path) -> None:
    log = new_audit_log(tmp_path, seal_every=2)
    for _ in range(2):
        log.record("dac.issued", ca="pai-1")
    rows = json.loads(query(tmp_path, "--event", "audit.sealed", "--format", "json").output)
    assert [(r["first"], r["last"], r["count"]) for r in rows] == [(0, 1, 2)]


def test_relative_since_reaches_back(home: Path) -> None:
    # "36500d" is a hundred years before now: every fixture record is newer.
    assert seqs_json(query(home, "--since", "36500d", "--format", "json")) == [0, 1, 2, 3, 4, 5]


def test_select_is_pure(home: Path) -> None:
    records = AuditLog(home).records()
    assert [r.seq for r in select(records, RecordFilter(until=at(1, 12)))] == [0]


def test_local_and_aws_options_do_not_mix(home: Path) -> None:
    result = query(home, "--log-group", "MatterAudit")
    assert result.exit_code == 2 and "error[input.usage]" in result.output
    result = CliRunner().invoke(main, ["audit", "query", "--aws"])
    assert result.exit_code == 2 and "--log-group" in result.output


def test_missing_home(tmp_path: Path) -> None:
    assert query(tmp_path / "missing").exit_code == 2
