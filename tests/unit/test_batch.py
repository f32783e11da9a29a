"""Batch issuance: one answer per CSR, in input order, equal to issue_dac's, in 1 or N processes."""

from __future__ import annotations

import itertools
import multiprocessing
import tracemalloc
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from matter_pki.batch import BatchContext, BatchItem, BatchResult, issue_batch
from matter_pki.errors import KeyStoreError, MatterPkiError
from matter_pki.issuance import issue_dac
from matter_pki.validate import validate_att_cert
from tests.unit.test_fastpath import NOW, VARIANTS, DeterministicKey, csr_for, make_chain, validity_of

if TYPE_CHECKING:
    from collections.abc import Iterator

VALIDITY = validity_of("days")
POOLS = [pytest.param(2, "fork", id="2-fork"), pytest.param(2, "spawn", id="2-spawn")]


class PemKeyFactory:
    """Picklable signer factory: the PAI key as PEM, opened as an RFC 6979 signer in each process."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        key = load_pem_private_key(self.pem, None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return DeterministicKey(key)


class LockedKeyFactory:
    """A key that cannot be opened."""

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        raise KeyStoreError("key.passphrase_wrong", "cannot decrypt pai.key: wrong passphrase or corrupted key", path="pai.key")


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    return make_chain(0x8000)


def context(chain: dict[str, Any], *, pid: int = 0x8000, factory: Any = None) -> BatchContext:
    pem = chain["key"].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return BatchContext(
        paa_der=chain["paa"].public_bytes(Encoding.DER),
        pai_der=chain["pai"].public_bytes(Encoding.DER),
        signer_factory=factory or PemKeyFactory(pem),
        pid=pid,
        validity=VALIDITY,
    )


def mixed_items(count: int) -> list[BatchItem]:
    """Good CSRs (PEM and DER) with every fifth one refused for a different reason."""
    bad = [VARIANTS[n] for n in ("garbage", "P-384", "signature by another key", "compressed point", "two PEM blocks")]
    items = []
    for i in range(count):
        csr = bad[(i // 5) % len(bad)] if i % 5 == 4 else csr_for(encoding=Encoding.DER if i % 2 else Encoding.PEM)
        items.append(BatchItem(f"dev-{i:03d}", csr))
    return items


def reference_answer(chain: dict[str, Any], item: BatchItem, serial: int, pid: int = 0x8000) -> tuple[bytes | None, str | None]:
    try:
        issued = issue_dac(item.csr, pai=chain["pai"], paa=chain["paa"], signer=chain["det"], pid=pid, validity=VALIDITY, serial=serial)
    except MatterPkiError as e:
        return None, e.code
    return issued.der, None


def assert_reference_answers(chain: dict[str, Any], items: list[BatchItem], results: list[BatchResult]) -> None:
    assert [r.name for r in results] == [i.name for i in items]
    for item, result in zip(items, results, strict=True):
        dac, code = reference_answer(chain, item, result.serial or 1)
        assert (result.dac_der, result.error_code) == (dac, code), item.name
        if result.ok:
            assert result.csr_sha256 and result.error_message is None
        else:
            assert result.error_message and result.serial is None and result.csr_sha256 is None


# -- answers and order ------------------------------------------------------------------------------
@pytest.mark.parametrize(("jobs", "start_method"), [pytest.param(1, None, id="1"), *POOLS])
def test_every_csr_gets_issue_dacs_answer_in_input_order(chain: dict[str, Any], jobs: int, start_method: str | None) -> None:
    # GIVEN good and bad CSRs, in chunks small enough to use every worker
    items = mixed_items(40)
    # WHEN they are issued
    results = list(issue_batch(iter(items), context(chain), jobs=jobs, chunk_size=4, start_method=start_method))
    # THEN each gets, in input order, exactly what issue_dac gives for that serial: the same DAC bytes
    # (deterministic signer) or the same error code
    assert_reference_answers(chain, items, results)
    assert sum(r.ok for r in results) == 32
    assert {r.error_code for r in results if not r.ok} == {"csr.malformed", "csr.key_curve", "csr.signature_invalid", "csr.key_point", "csr.multiple"}


def test_dacs_pass_the_chip_parity_validator_and_carry_the_csr_key(chain: dict[str, Any]) -> None:
    # GIVEN a batch spread over two workers
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(12)]
    items = [BatchItem(f"d{i}", csr_for(k)) for i, k in enumerate(keys)]
    # WHEN it is issued
    results = list(issue_batch(items, context(chain), jobs=2, chunk_size=3, start_method="fork"))
    # THEN every DAC is valid for the commissioner and certifies its CSR's key
    for key, result in zip(keys, results, strict=True):
        assert result.dac_der is not None
        verdict = validate_att_cert(
            paa=chain["paa"].public_bytes(Encoding.DER), pai=chain["pai"].public_bytes(Encoding.DER), dac=result.dac_der,
            at=NOW + timedelta(days=1), mode="commissioner",
        )
        assert verdict.ok, verdict.reason
        public = x509.load_der_x509_certificate(result.dac_der).public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
    assert len({r.serial for r in results}) == len(results)


def test_empty_batch_gives_no_results(chain: dict[str, Any]) -> None:
    assert list(issue_batch([], context(chain), jobs=2)) == []


def test_profile_refusal_is_a_result_per_csr(chain: dict[str, Any]) -> None:
    # GIVEN a PID the product-scoped PAI does not allow
    items = mixed_items(10)
    # WHEN the batch runs in workers
    results = list(issue_batch(items, context(chain, pid=0x8001), jobs=2, chunk_size=2, start_method="fork"))
    # THEN good CSRs get profile.pid_not_allowed and bad ones their csr.* code, as with issue_dac
    assert [r.error_code for r in results] == [reference_answer(chain, i, 1, pid=0x8001)[1] for i in items]
    assert results[0].error_code == "profile.pid_not_allowed"


def test_now_is_the_instant_each_dac_must_be_valid_at(chain: dict[str, Any]) -> None:
    # GIVEN a validation instant before the DACs' notBefore
    items = mixed_items(5)
    early = VALIDITY.not_before - timedelta(days=1)
    # WHEN the batch runs
    results = list(issue_batch(items, context(chain), now=early))
    # THEN no DAC is released: issue_dac refuses them the same way
    assert {r.error_code for r in results[:4]} == {"issue.validation_failed"}
    inside = list(issue_batch(items, context(chain), now=VALIDITY.not_before + timedelta(days=3)))
    assert [r.ok for r in inside] == [True] * 4 + [False]


# -- serial numbers ---------------------------------------------------------------------------------
def test_custom_serials_are_drawn_in_the_calling_process_in_input_order(chain: dict[str, Any]) -> None:
    # GIVEN a counter (state that must not be copied into workers)
    items = mixed_items(20)
    counter = itertools.count(1000)
    # WHEN two workers issue
    results = list(issue_batch(items, context(chain), jobs=2, chunk_size=3, serials=counter.__next__, start_method="fork"))
    # THEN serials follow input order; refused CSRs leave gaps
    assert [r.serial for r in results] == [1000 + i if i % 5 != 4 else None for i in range(20)]


def test_custom_serials_in_one_process_are_used_by_accepted_csrs_only(chain: dict[str, Any]) -> None:
    counter = itertools.count(1)
    results = list(issue_batch(mixed_items(10), context(chain), serials=counter.__next__))
    assert [r.serial for r in results] == [1, 2, 3, 4, None, 5, 6, 7, 8, None]


def test_default_serials_are_20_octets(chain: dict[str, Any]) -> None:
    results = list(issue_batch(mixed_items(10), context(chain), jobs=2, chunk_size=2, start_method="fork"))
    assert all(r.serial is None or r.serial.bit_length() > 152 for r in results)


# -- errors opening the key -------------------------------------------------------------------------
@pytest.mark.parametrize(("jobs", "start_method"), [pytest.param(1, None, id="1"), *POOLS])
def test_a_key_that_cannot_be_opened_is_raised(chain: dict[str, Any], jobs: int, start_method: str | None) -> None:
    # GIVEN a signer factory failing with a coded error
    ctx = context(chain, factory=LockedKeyFactory())
    # WHEN the batch starts
    # THEN the caller gets that error, with its code and context, from this process
    with pytest.raises(KeyStoreError) as err:
        list(issue_batch(mixed_items(12), ctx, jobs=jobs, chunk_size=4, start_method=start_method))
    assert err.value.code == "key.passphrase_wrong"
    assert err.value.context == {"path": "pai.key"}


def test_invalid_arguments_are_refused(chain: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        issue_batch([], context(chain), jobs=-1)
    with pytest.raises(ValueError):
        issue_batch([], context(chain), chunk_size=0)


# -- streaming --------------------------------------------------------------------------------------
class Source:
    """Items generated on demand, counting how many were taken."""

    def __init__(self, count: int, csr: bytes) -> None:
        self.count, self.csr, self.taken = count, csr, 0

    def __iter__(self) -> Iterator[BatchItem]:
        for i in range(self.count):
            self.taken += 1
            yield BatchItem(str(i), self.csr)


@pytest.mark.parametrize(("jobs", "chunk"), [(1, 4), (2, 4)])
def test_items_are_read_a_few_chunks_ahead_only(chain: dict[str, Any], jobs: int, chunk: int) -> None:
    # GIVEN a large lazy source
    source = Source(10_000, csr_for())
    # WHEN the first result arrives and the caller stops
    stream = issue_batch(source, context(chain), jobs=jobs, chunk_size=chunk, start_method="fork")
    first = next(stream)
    stream.close()  # type: ignore[attr-defined]
    # THEN at most 2 * jobs chunks (plus the one being read) were taken, and no worker is left
    assert first.ok and first.name == "0"
    assert source.taken <= chunk * (2 * jobs + 1)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_memory_does_not_grow_with_the_batch(chain: dict[str, Any], jobs: int) -> None:
    # GIVEN tiny work items (refused at once), 2,000 and then 20,000 of them
    def peak(count: int) -> int:
        source = Source(count, b"not a csr")
        tracemalloc.start()
        try:
            refused = sum(1 for r in issue_batch(source, context(chain), jobs=jobs, chunk_size=64, start_method="fork") if not r.ok)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            assert refused == count

    # WHEN both run
    small, large = peak(2_000), peak(20_000)
    # THEN the peak of traced memory in this process is about the same (bounded by the chunks in flight)
    assert large < small * 1.5 + 256 * 1024, (small, large)
