"""Batch DAC issuance: a stream of CSRs in, a stream of results out, across ``jobs`` processes.

API used by ``matter-pki dac issue`` (folders) and ``matter-pki inbox run``::

    ctx = BatchContext(paa_der=..., pai_der=..., signer_factory=..., pid=0x8000, validity=..., common_name=...)
    for result in issue_batch(items, ctx, jobs=2):
        ...  # result.name, result.dac_der or result.error (code, message); written by the caller

Each process (the caller's for ``jobs=1`` or a batch of at most one chunk; otherwise every worker)
builds one ``fastpath.FastDacIssuer``: it opens the key once with ``signer_factory`` (which must be
picklable: a top-level callable object), renders and fully validates the DAC template once, then
issues each DAC from the template, falling back to ``issuance.issue_dac`` for anything unusual.
The results are those of ``issue_dac`` for every item: same DER fields, same error codes. Every DAC
returned passed the release gate (``matter_pki.gate``); a certificate the gate withheld is reported
in ``BatchResult.withheld`` for the caller's ledger and audit log.

Streaming: items are read lazily in chunks of ``chunk_size``; at most ``window`` chunks (by default
``2 * jobs``) are in flight, so memory does not grow with the batch. Results come back in input order, one per item.

Serial numbers: by default ``fastpath.random_dac_serial`` (20 octets, 159 random bits from
``os.urandom``) drawn in the worker that signs, which is safe after fork; two equal serials among
10^12 DACs have probability below 10^-24. The caller's ledger still enforces uniqueness (UNIQUE
constraint, with a retry on collision). Any other ``serials`` callable is called in this process
only (so a counter is never copied into workers); with ``jobs > 1`` it is then called once per item,
refused CSRs included, which leaves gaps.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, Protocol

from cryptography import x509

from matter_pki.errors import IssuanceError, MatterPkiError
from matter_pki.fastpath import FastDacIssuer, VerifyPolicy, random_dac_serial
from matter_pki.gate import ReleaseRefused
from matter_pki.profiles import Validity, default_serial

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from concurrent.futures import Future
    from datetime import datetime

    from cryptography.hazmat.primitives.asymmetric import ec

DEFAULT_CHUNK = 256
# Generators that only read os.urandom: each worker may call its own copy.
_WORKER_SAFE_SERIALS: tuple[Callable[[], int], ...] = (random_dac_serial, default_serial)

# A BatchResult without its name: (der, serial, csr_sha256, error code, error message, withheld serials,
# the serial a release-gate refusal withheld).
_Answer = tuple[bytes | None, int | None, str | None, str | None, str | None, tuple[int, ...], int | None]


class SignerFactory(Protocol):
    """Picklable callable returning the PAI's private key (file key or PKCS#11 adapter)."""

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """Open the key."""
        ...


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Everything fixed for one batch: chain, key, PID, validity, CN, own-signature checks."""

    paa_der: bytes
    pai_der: bytes
    signer_factory: SignerFactory
    pid: int
    validity: Validity
    common_name: str | None = "Matter DAC"
    verify_signatures: VerifyPolicy = "auto"


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One CSR to answer."""

    name: str
    csr: bytes


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer for one CSR: a DAC or a coded refusal."""

    name: str
    dac_der: bytes | None = None
    serial: int | None = None
    csr_sha256: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    #: Serials of certificates signed while answering this CSR and withheld by the release gate
    #: (never released; the caller records and audits them). Empty in the normal case.
    withheld: tuple[int, ...] = ()
    #: For a refusal by the release gate: the serial of the certificate it withheld (also in ``withheld``).
    refused_serial: int | None = None

    @property
    def ok(self) -> bool:
        """True when a DAC was issued."""
        return self.dac_der is not None


def issue_batch(
    items: Iterable[BatchItem],
    ctx: BatchContext,
    *,
    jobs: int = 1,
    serials: Callable[[], int] = random_dac_serial,
    now: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    start_method: str | None = None,
    window: int = 0,
) -> Iterator[BatchResult]:
    """Issue a DAC per item, in input order; ``now`` is the instant each DAC must be valid at.

    ``jobs``: worker processes (0: one per available core). ``start_method``: ``fork`` or
    ``spawn``; by default ``fork`` when this process runs a single thread, else ``spawn``.
    ``window``: chunks in flight (0: ``2 * jobs``); a caller that stops consuming for a while (a
    group commit) gives a larger one, so that the workers keep signing meanwhile.
    Errors opening the key (``signer_factory``) are raised; every other refusal is a result.
    """
    if jobs < 0 or chunk_size < 1 or window < 0:
        raise ValueError("jobs and window must be >= 0 and chunk_size >= 1")
    jobs = jobs or len(os.sched_getaffinity(0))
    return _stream(iter(items), ctx, jobs, serials, now, chunk_size, start_method, max(window or 2 * jobs, jobs))


def _stream(
    items: Iterator[BatchItem],
    ctx: BatchContext,
    jobs: int,
    serials: Callable[[], int],
    now: datetime | None,
    chunk_size: int,
    start_method: str | None,
    window: int,
) -> Iterator[BatchResult]:
    first = list(islice(items, chunk_size))
    if jobs == 1 or len(first) < chunk_size:
        issuer = _issuer(ctx, serials, now)
        for item in chain(first, items):
            yield BatchResult(item.name, *_answer(issuer, item.csr, None))
        return
    local_serials = serials in _WORKER_SAFE_SERIALS
    method = start_method or ("fork" if threading.active_count() == 1 else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_worker_init,
        initargs=(ctx, serials if local_serials else None, now),
    )
    pending: deque[tuple[Future[list[_Answer] | _Raised], list[str]]] = deque()
    try:
        chunk = first
        while chunk:
            # Names stay here; workers get the CSRs (and serials drawn here, if any).
            drawn = None if local_serials else [serials() for _ in chunk]
            pending.append((pool.submit(_worker_run, [i.csr for i in chunk], drawn), [i.name for i in chunk]))
            if len(pending) >= window:
                yield from _collect(*pending.popleft())
            chunk = list(islice(items, chunk_size))
        while pending:
            yield from _collect(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(future: Future[list[_Answer] | _Raised], names: list[str]) -> Iterator[BatchResult]:
    try:
        outcome = future.result()
    except BrokenProcessPool as e:
        # The caller's ledger and outputs stay consistent: items not yet yielded are simply unanswered.
        raise IssuanceError("issue.worker_died", f"a signing worker process died: {e}") from e
    if isinstance(outcome, _Raised):
        raise outcome.rebuild()
    for name, answer in zip(names, outcome, strict=True):
        yield BatchResult(name, *answer)


def _issuer(ctx: BatchContext, serials: Callable[[], int], now: datetime | None) -> FastDacIssuer:
    return FastDacIssuer(
        paa=x509.load_der_x509_certificate(ctx.paa_der),
        pai=x509.load_der_x509_certificate(ctx.pai_der),
        signer=ctx.signer_factory(),
        pid=ctx.pid,
        validity=ctx.validity,
        common_name=ctx.common_name,
        serials=serials,
        check_at=now,
        verify_signatures=ctx.verify_signatures,
    )


def _answer(issuer: FastDacIssuer, csr: bytes, serial: int | None) -> _Answer:
    try:
        dac, number, sha = issuer.issue_parts(csr, serial)
    except ReleaseRefused as e:
        return (None, None, None, e.code, e.message, issuer.take_withheld(), e.serial)
    except MatterPkiError as e:
        return (None, None, None, e.code, e.message, issuer.take_withheld(), None)
    return (dac, number, sha, None, None, issuer.take_withheld(), None)


# -- worker processes --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Raised:
    """A MatterPkiError raised in a worker (its constructor does not round-trip through pickle)."""

    cls: type[MatterPkiError]
    code: str
    message: str
    context: dict[str, Any]

    def rebuild(self) -> MatterPkiError:
        return self.cls(self.code, self.message, **self.context)


_setup: tuple[BatchContext, Callable[[], int] | None, datetime | None] | None = None
_worker: FastDacIssuer | _Raised | None = None


def _worker_init(ctx: BatchContext, serials: Callable[[], int] | None, now: datetime | None) -> None:
    global _setup, _worker
    _setup, _worker = (ctx, serials, now), None
    # Ctrl-C reaches the whole process group: the parent stops the run and reports it in one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker blocked on its task queue would outlive a killed parent (holding the key or an
    # HSM session); it leaves when it is re-parented.
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _worker_run(csrs: list[bytes], drawn: list[int] | None) -> list[_Answer] | _Raised:
    global _worker
    if _worker is None:
        assert _setup is not None
        ctx, serials, now = _setup
        try:
            _worker = _issuer(ctx, serials or _no_serials, now)
        except MatterPkiError as e:
            _worker = _Raised(type(e), e.code, e.message, {k: str(v) for k, v in e.context.items()})
    if isinstance(_worker, _Raised):
        return _worker
    issuer = _worker
    if drawn is None:
        return [_answer(issuer, csr, None) for csr in csrs]
    return [_answer(issuer, csr, serial) for csr, serial in zip(csrs, drawn, strict=True)]


def _no_serials() -> int:
    raise AssertionError("serials are drawn by the parent process")
