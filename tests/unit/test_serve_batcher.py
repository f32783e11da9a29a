"""Grouping concurrent requests into signing cycles, with quotas reserved before and refunded after."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from matter_pki.errors import MatterPkiError, StorageError
from matter_pki.local.state import open_audit
from matter_pki.serve.batcher import Batcher, JobResult
from matter_pki.serve.engine import IssuingEngine
from matter_pki.serve.metrics import Metrics
from matter_pki.serve.stations import Station, StationRegistry, utc_day
from tests.unit.test_local_fixtures import good_csr, make_pki

if TYPE_CHECKING:
    from pathlib import Path

    from matter_pki.audit import AuditLog
    from tests.unit.test_local_fixtures import Pki


def _station(name: str, quota: int | None = None) -> Station:
    return Station(
        name=name, pai="pai-1", pids=(0x8000,), quota_per_day=quota, cert_sha256=name, serial="01",
        not_after="2027-01-01T00:00:00Z", status="active", created_at="2026-01-01T00:00:00Z",
    )


def _batcher(pki: Pki, tmp_path: Path, **kwargs: object) -> tuple[Batcher, Metrics, AuditLog]:
    audit = open_audit(pki.home, pki.secrets)
    metrics = Metrics()
    engine = IssuingEngine(pki.home, pki.secrets, audit)
    return Batcher(engine, audit, tmp_path / "stations.sqlite", metrics, refusal_flush=0.0, **kwargs), metrics, audit  # type: ignore[arg-type]


def _samples(metrics: Metrics, name: str) -> float:
    return sum(s.value for f in metrics.registry.collect() for s in f.samples if s.name == name)


async def _run(batcher: Batcher, work: list[tuple[Station, list[bytes]]]) -> list[JobResult]:
    batcher.start()
    try:
        return list(
            await asyncio.gather(*(batcher.submit(st, "pai-1", 0x8000, csrs, f"req-{i}") for i, (st, csrs) in enumerate(work)))
        )
    finally:
        await batcher.drain()
        await batcher.close()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A home with pai-1 (PID 8000)."""
    return make_pki(tmp_path / "home")


def test_concurrent_requests_share_signing_cycles(pki: Pki, tmp_path: Path) -> None:
    # GIVEN twenty requests arriving together
    batcher, metrics, audit = _batcher(pki, tmp_path)
    work = [(_station("a"), [good_csr()]) for _ in range(20)]
    # WHEN they are submitted concurrently
    results = asyncio.run(_run(batcher, work))
    # THEN every one gets its DAC, in far fewer cycles (ledger transactions, audit appends) than requests
    assert all(r.outcomes and r.outcomes[0].status == "issued" for r in results)
    cycles = _samples(metrics, "matter_pki_serve_batch_csrs_count")
    assert 1 <= cycles <= 3
    assert _samples(metrics, "matter_pki_serve_dacs_issued_total") == 20
    assert sum(1 for r in audit.records() if r.event == "dac.issued") == 20


def test_quota_is_reserved_before_and_refunded_for_csrs_without_a_new_dac(pki: Pki, tmp_path: Path) -> None:
    # GIVEN a station allowed 3 a day, and one CSR certified earlier
    batcher, _metrics, audit = _batcher(pki, tmp_path)
    station = _station("q", quota=3)
    known = good_csr()
    asyncio.run(_run(batcher, [(station, [known])]))
    # WHEN it asks for [known, new, new] (2 new: fits) and then for 2 more new ones (does not fit)
    batcher2, _m, _a = _batcher(pki, tmp_path)
    first, second = asyncio.run(_run(batcher2, [(station, [known, good_csr(), good_csr()]), (station, [good_csr(), good_csr()])]))
    # THEN the retry is free, the over-quota request is refused whole and audited, the counter is exact
    assert first.outcomes is not None and [o.status for o in first.outcomes] == ["reused", "issued", "issued"]
    assert second.error is not None and second.error.code == "serve.quota_exceeded"
    with StationRegistry(tmp_path / "stations.sqlite") as registry:
        assert registry.used("q", utc_day(datetime.now(UTC))) == 3
    refused = [r.fields for r in audit.records() if r.event == "serve.refused"]
    assert refused and refused[-1]["code"] == "serve.quota_exceeded" and refused[-1]["station"] == "q"


def test_a_failing_batch_answers_every_request_with_the_error_and_keeps_the_quota(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a ledger that fails on write
    batcher, _metrics, _audit = _batcher(pki, tmp_path)

    def broken(*_a: object, **_k: object) -> list[object]:
        raise StorageError("storage.ledger", "disk on fire")

    monkeypatch.setattr(batcher.engine, "issue", broken)
    station = _station("q", quota=5)
    # WHEN two requests are issued
    results = asyncio.run(_run(batcher, [(station, [good_csr()]), (station, [good_csr()])]))
    # THEN both get the coded error (nothing acknowledged), and their quota stays spent (never over-issued)
    assert [r.error.code if r.error else None for r in results] == ["storage.ledger"] * 2
    with StationRegistry(tmp_path / "stations.sqlite") as registry:
        assert registry.used("q", utc_day(datetime.now(UTC))) == 2


def test_a_full_queue_and_a_draining_service_refuse_with_codes(pki: Pki, tmp_path: Path) -> None:
    # GIVEN a batcher accepting 2 waiting CSRs at most
    batcher, _metrics, _audit = _batcher(pki, tmp_path, max_queue=2)

    async def scenario() -> tuple[str, str]:
        # WHEN 3 CSRs are queued at once (the dispatcher is not running yet), then after draining
        with pytest.raises(MatterPkiError) as busy:
            await batcher.submit(_station("a"), "pai-1", 0x8000, [good_csr()] * 3, "r1")
        batcher.start()
        await batcher.drain()
        with pytest.raises(MatterPkiError) as closing:
            await batcher.submit(_station("a"), "pai-1", 0x8000, [good_csr()], "r2")
        await batcher.close()
        return busy.value.code, closing.value.code

    # THEN serve.busy, then serve.shutting_down
    assert asyncio.run(scenario()) == ("serve.busy", "serve.shutting_down")
