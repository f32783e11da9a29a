"""Batch DAC issuance: a stream of CSRs in, a stream of results out, across ``jobs`` processes.

API used by ``matter-pki dac issue`` (folders) and ``matter-pki inbox run``::

    ctx = BatchContext(paa_der=..., pai_der=..., signer_factory=..., pid=0x8000, validity=..., common_name=...)
    for result in issue_batch(items, ctx, jobs=2):
        ...  # result.name, result.dac_der or result.error (code, message); written by the caller

Results come back in input order. Memory is bounded: at most a few chunks are in flight.
``signer_factory`` must be picklable (a top-level callable object) because each worker process
opens its own key (file key decrypted once per worker, or its own PKCS#11 session).

Reference implementation: one certificate at a time through ``issuance.issue_dac``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from cryptography import x509

from matter_pki.errors import MatterPkiError
from matter_pki.issuance import issue_dac
from matter_pki.profiles import Validity, default_serial

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from cryptography.hazmat.primitives.asymmetric import ec


class SignerFactory(Protocol):
    """Picklable callable returning the PAI's private key (file key or PKCS#11 adapter)."""

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """Open the key."""
        ...


@dataclass(frozen=True, slots=True)
class BatchContext:
    """Everything fixed for one batch: chain, key, PID, validity, CN."""

    paa_der: bytes
    pai_der: bytes
    signer_factory: SignerFactory
    pid: int
    validity: Validity
    common_name: str | None = "Matter DAC"


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

    @property
    def ok(self) -> bool:
        """True when a DAC was issued."""
        return self.dac_der is not None


def issue_batch(
    items: Iterable[BatchItem],
    ctx: BatchContext,
    *,
    jobs: int = 1,
    serials: Callable[[], int] = default_serial,
    now: datetime | None = None,
) -> Iterator[BatchResult]:
    """Issue a DAC per item (reference: sequential; ``jobs`` reserved for the parallel engine)."""
    paa = x509.load_der_x509_certificate(ctx.paa_der)
    pai = x509.load_der_x509_certificate(ctx.pai_der)
    key = ctx.signer_factory()
    for item in items:
        try:
            issued = issue_dac(
                item.csr,
                pai=pai,
                paa=paa,
                signer=key,
                pid=ctx.pid,
                validity=ctx.validity,
                common_name=ctx.common_name,
                serials=serials,
            )
        except MatterPkiError as e:
            yield BatchResult(item.name, error_code=e.code, error_message=e.message)
            continue
        yield BatchResult(item.name, dac_der=issued.der, serial=issued.serial, csr_sha256=issued.csr_sha256)
