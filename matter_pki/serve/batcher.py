"""Group concurrent requests into batches for one signing thread (group commit), with durable quotas.

Requests wait in a queue; the dispatcher takes everything waiting (up to ``max_batch`` CSRs, after
waiting at most ``batch_wait`` for requests arriving together) and hands it to the signing thread as
one *cycle*, while new requests queue up for the next one. A cycle:

1. reserves quota for every request in one registry transaction (a request that does not fit is
   refused with ``serve.quota_exceeded``; CSRs the ledger already certified cost nothing);
2. issues each (PAI, PID) group through ``IssuingEngine`` (one ledger transaction, one audit append);
3. refunds the quota of CSRs that did not become new DACs;
4. records request-level refusals (``serve.refused``) in one audit append, aggregated per station,
   code, PAI and PID with a ``count``;

and only then are the waiting requests answered: nothing is acknowledged before it is durable.
Cycles with refusals only run at most once per ``refusal_flush`` seconds, so a flood of refused
requests costs one audit record per second and key, and its senders wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from matter_pki.errors import MatterPkiError, ServiceError
from matter_pki.serve.engine import CsrOutcome, CsrRequest
from matter_pki.serve.logs import LOGGER
from matter_pki.serve.stations import Station, StationRegistry, utc_day

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from matter_pki.audit import AuditLog
    from matter_pki.serve.engine import IssuingEngine
    from matter_pki.serve.metrics import Metrics

T = TypeVar("T")
log = logging.getLogger(LOGGER)


@dataclass(frozen=True, slots=True)
class JobResult:
    """One outcome per CSR, or an error for the whole request (quota, ledger, audit)."""

    outcomes: list[CsrOutcome] | None = None
    error: MatterPkiError | None = None


@dataclass(eq=False)
class Job:
    """One request's CSRs for one (PAI, PID)."""

    station: Station
    pai_id: str
    pid: int
    csrs: list[bytes]
    request_id: str
    future: asyncio.Future[JobResult] = field(repr=False)
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class Refusal:
    """A request refused before issuance, to be audited before it is answered."""

    station: str
    code: str
    message: str
    request_id: str
    pai: str | None
    pid: int | None
    future: asyncio.Future[None] = field(repr=False)


class Batcher:
    """The queue, the dispatcher and the signing thread (the only thread that issues or writes the audit log)."""

    def __init__(
        self,
        engine: IssuingEngine,
        audit: AuditLog,
        stations_db: Path,
        metrics: Metrics,
        *,
        max_batch: int = 256,
        max_queue: int = 4096,
        refusal_flush: float = 1.0,
        batch_wait: float = 0.005,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.engine, self.audit, self.stations_db, self.metrics = engine, audit, stations_db, metrics
        self.max_batch, self.max_queue, self.refusal_flush = max_batch, max_queue, refusal_flush
        self.batch_wait = batch_wait
        self.clock = clock or (lambda: datetime.now(UTC).replace(microsecond=0))
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="matter-pki-signer")
        self._jobs: deque[Job] = deque()
        self._refusals: list[Refusal] = []
        self._queued = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._registry: StationRegistry | None = None
        self.last_cycle = time.monotonic()
        self._last_refusal_cycle = 0.0

    # -- event-loop side ---------------------------------------------------------------------
    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the signing thread (start-up and shutdown work that touches keys or the audit log)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def start(self) -> None:
        """Start the dispatcher."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def queued(self) -> int:
        """CSRs waiting for the signing thread."""
        return self._queued

    async def submit(self, station: Station, pai_id: str, pid: int, csrs: list[bytes], request_id: str) -> JobResult:
        """Queue a request's CSRs and wait until they are answered durably."""
        if self._closing:
            raise ServiceError("serve.shutting_down", "the service is shutting down; retry on another instance or later")
        if self._queued + len(csrs) > self.max_queue:
            raise ServiceError("serve.busy", f"{self._queued} CSRs are waiting; retry shortly")
        job = Job(station, pai_id, pid, csrs, request_id, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._queued += len(csrs)
        self.metrics.queue_depth.set(self._queued)
        self._wake.set()
        return await job.future

    async def refuse(
        self, station: str, code: str, message: str, request_id: str, *, pai: str | None = None, pid: int | None = None
    ) -> None:
        """Audit a request-level refusal, then return (at most ``refusal_flush`` seconds later)."""
        refusal = Refusal(station, code, message, request_id, pai, pid, asyncio.get_running_loop().create_future())
        self._refusals.append(refusal)
        self._wake.set()
        await refusal.future

    async def drain(self) -> None:
        """Refuse new requests, answer everything queued, stop the dispatcher."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def close(self) -> None:
        """Close the signing thread's connections and the thread (after ``drain``)."""
        await self.call(self._close)
        self.executor.shutdown(wait=True)

    async def _run(self) -> None:
        while True:
            if not self._jobs and not self._refusals:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._jobs and not self._closing:
                # Refusals only: at most one such cycle per ``refusal_flush`` seconds (a flood gathers
                # into one audit record per key, and its senders wait).
                wait = self._last_refusal_cycle + self.refusal_flush - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            if self._jobs and not self._closing and self._queued < self.max_batch:
                # Let requests arriving together share one batch (one ledger transaction, one audit
                # append): wait at most ``batch_wait`` after the oldest one queued.
                wait = self._jobs[0].queued_at + self.batch_wait - time.monotonic()
                if wait > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
                    continue
            jobs = self._take()
            refusals, self._refusals = self._refusals, []
            if not jobs:
                self._last_refusal_cycle = time.monotonic()
            try:
                results = await self.call(self._cycle, jobs, refusals)
            except Exception as e:  # noqa: BLE001 - every waiting request must get an answer
                log.exception("signing cycle failed", extra={"jobs": len(jobs)})
                error = e if isinstance(e, MatterPkiError) else ServiceError("serve.internal", "the signing cycle failed")
                results = [JobResult(error=error) for _ in jobs]
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)
            for refusal in refusals:
                if not refusal.future.done():
                    refusal.future.set_result(None)

    def _take(self) -> list[Job]:
        jobs: list[Job] = []
        count = 0
        while self._jobs and (not jobs or count + len(self._jobs[0].csrs) <= self.max_batch):
            job = self._jobs.popleft()
            jobs.append(job)
            count += len(job.csrs)
        self._queued -= count
        self.metrics.queue_depth.set(self._queued)
        return jobs

    # -- signing-thread side -----------------------------------------------------------------
    def _stations(self) -> StationRegistry:
        if self._registry is None:
            self._registry = StationRegistry(self.stations_db)
        return self._registry

    def _close(self) -> None:
        if self._registry is not None:
            self._registry.close()
            self._registry = None
        self.engine.close()

    def _cycle(self, jobs: list[Job], refusals: list[Refusal]) -> list[JobResult]:
        started = time.perf_counter()
        now = self.clock()
        day = utc_day(now)
        results: dict[int, JobResult] = {}
        audit_refusals: list[tuple[Station | str, str, str, str, str | None, int | None]] = [
            (r.station, r.code, r.message, r.request_id, r.pai, r.pid) for r in refusals
        ]
        granted = self._reserve(jobs, day) if jobs else []
        accepted: list[tuple[int, Job, int]] = []
        for i, (job, grant) in enumerate(zip(jobs, granted, strict=True)):
            if grant is None:
                used = self._stations().used(job.station.name, day)
                error = ServiceError(
                    "serve.quota_exceeded",
                    f"station {job.station.name!r} has used {used} of its {job.station.quota_per_day} DACs for {day} "
                    f"(UTC); this request needs {len(job.csrs)}",
                )
                results[i] = JobResult(error=error)
                audit_refusals.append((job.station, error.code, error.message, job.request_id, job.pai_id, job.pid))
            else:
                accepted.append((i, job, grant))
        batch_id = str(uuid.uuid4())
        groups: dict[tuple[str, int], list[tuple[int, Job]]] = {}
        for i, job, _grant in accepted:
            groups.setdefault((job.pai_id, job.pid), []).append((i, job))
        for (pai_id, pid), members in groups.items():
            items = [
                CsrRequest(f"station:{job.station.name}/{job.request_id}#{n}", csr)
                for _i, job in members
                for n, csr in enumerate(job.csrs)
            ]
            try:
                outcomes = self.engine.issue(pai_id, pid, items, batch_id=batch_id, now=now)
            except MatterPkiError as e:
                # Ledger or audit failure: nothing of this group is acknowledged; its quota stays spent.
                log.error("batch failed", extra={"code": e.code, "detail": e.message, "pai": pai_id, "csrs": len(items)})
                for i, _job in members:
                    results[i] = JobResult(error=e)
                continue
            self._count(pai_id, pid, outcomes)
            pos = 0
            for i, job in members:
                mine = outcomes[pos : pos + len(job.csrs)]
                pos += len(job.csrs)
                results[i] = JobResult(outcomes=mine)
                for o in mine:
                    if not o.audited:
                        audit_refusals.append((job.station, o.code or "serve.internal", o.message or "", job.request_id, pai_id, pid))
        self._refund(accepted, results, day)
        self._audit_refusals(audit_refusals)
        self.metrics.batch_size.observe(sum(len(j.csrs) for j in jobs))
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.last_cycle = time.monotonic()
        return [results[i] for i in range(len(jobs))]

    def _reserve(self, jobs: list[Job], day: str) -> list[int | None]:
        if all(job.station.quota_per_day is None for job in jobs):
            return [len(job.csrs) for job in jobs]
        wanted = []
        for job in jobs:
            count = len(job.csrs)
            minimum = count
            if job.station.quota_per_day is not None:
                minimum = sum(1 for csr in job.csrs if not self.engine.already_certified(job.pai_id, job.pid, csr))
            wanted.append((job.station, count, minimum))
        return self._stations().reserve(wanted, day)

    def _refund(self, accepted: list[tuple[int, Job, int]], results: dict[int, JobResult], day: str) -> None:
        refunds = []
        for i, job, grant in accepted:
            outcomes = results[i].outcomes
            if job.station.quota_per_day is None or outcomes is None:
                continue
            issued = sum(1 for o in outcomes if o.status == "issued")
            refunds.append((job.station.name, day, grant - issued))
        self._stations().refund(refunds)

    def _count(self, pai_id: str, pid: int, outcomes: list[CsrOutcome]) -> None:
        label = f"{pid:04X}"
        for o in outcomes:
            if o.status == "issued":
                self.metrics.issued.labels(pai_id, label).inc()
            elif o.status == "reused":
                self.metrics.redelivered.labels(pai_id, label).inc()
            else:
                self.metrics.refused.labels(o.code or "serve.internal").inc()

    def _audit_refusals(self, refusals: list[tuple[Station | str, str, str, str, str | None, int | None]]) -> None:
        merged: dict[tuple[str, str, str | None, int | None], dict[str, Any]] = {}
        for station, code, message, request_id, pai, pid in refusals:
            name = station.name if isinstance(station, Station) else station
            key = (name, code, pai, pid)
            if key in merged:
                merged[key]["count"] += 1
                continue
            merged[key] = {
                "station": name, "code": code, "message": message, "request_id": request_id, "pai": pai,
                "pid": f"{pid:04X}" if pid is not None else None, "count": 1,
            }
        if not merged:
            return
        try:
            self.audit.record_many([("serve.refused", fields) for fields in merged.values()])
        except MatterPkiError as e:
            log.error("cannot audit refusals", extra={"code": e.code, "detail": e.message, "records": len(merged)})
