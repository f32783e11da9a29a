"""The service's bridge to the local CA's issuing path: in-memory CSRs in, outcomes out, same ledger and audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.audit import AuditLog
from matter_pki.local.home import PAA_ID
from matter_pki.local.ledger import Ledger
from matter_pki.local.state import open_audit
from matter_pki.serve.engine import CsrRequest, IssuingEngine, LedgerReader
from matter_pki.validate import validate_att_cert
from tests.unit.test_local_fixtures import good_csr, make_pki, p384_csr, truncated_csr

if TYPE_CHECKING:
    from pathlib import Path

    from tests.unit.test_local_fixtures import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """A home with pai-1 (PID 8000)."""
    return make_pki(tmp_path / "home")


def _engine(pki: Pki) -> IssuingEngine:
    return IssuingEngine(pki.home, pki.secrets, open_audit(pki.home, pki.secrets))


def _events(pki: Pki, event: str) -> list[dict[str, object]]:
    return [r.fields for r in AuditLog(pki.home.path).records() if r.event == event]


def test_a_group_of_csrs_gets_valid_dacs_recorded_and_announced(pki: Pki) -> None:
    # GIVEN an engine with its keys open
    engine = _engine(pki)
    assert engine.open_keys() == ["pai-1"]
    csrs = [good_csr() for _ in range(3)]
    # WHEN a group of three CSRs is issued
    outcomes = engine.issue("pai-1", 0x8000, [CsrRequest(f"station:a/r#{i}", c) for i, c in enumerate(csrs)], batch_id="b1")
    engine.close()
    # THEN three DACs for the three keys, valid, in the ledger, each announced once with the requester
    assert [o.status for o in outcomes] == ["issued"] * 3
    paa = pki.home.load_cert(PAA_ID).public_bytes(Encoding.DER)
    pai = pki.home.load_cert("pai-1").public_bytes(Encoding.DER)
    for o, csr in zip(outcomes, csrs, strict=True):
        assert o.dac_der is not None
        dac = x509.load_der_x509_certificate(o.dac_der)
        assert dac.public_key() == x509.load_pem_x509_csr(csr).public_key()
        assert validate_att_cert(paa=paa, pai=pai, dac=o.dac_der, at=datetime.now(UTC), mode="commissioner").ok
    with Ledger(pki.home.ledger_path) as ledger:
        assert {e.serial for e in ledger.entries(kind="dac")} == {o.serial for o in outcomes}
    issued = _events(pki, "dac.issued")
    assert [e["csr"] for e in issued] == ["station:a/r#0", "station:a/r#1", "station:a/r#2"]
    assert {e["request_id"] for e in issued} == {"b1"}


def test_the_key_is_opened_once_for_all_batches(pki: Pki) -> None:
    # GIVEN an engine that opened its keys
    engine = _engine(pki)
    engine.open_keys()
    # WHEN several batches are issued
    for _ in range(3):
        engine.issue("pai-1", 0x8000, [CsrRequest("r", good_csr())])
    engine.close()
    # THEN one key.accessed record (purpose serve), none per batch
    accessed = _events(pki, "key.accessed")
    assert [a["purpose"] for a in accessed if a["ca"] == "pai-1"] == ["serve"]


def test_a_retry_gets_the_same_dac_and_refusals_are_coded_and_audited(pki: Pki) -> None:
    # GIVEN a DAC already issued for a CSR
    engine = _engine(pki)
    csr = good_csr()
    [first] = engine.issue("pai-1", 0x8000, [CsrRequest("a", csr)])
    # WHEN the same CSR comes again among bad ones, and twice in one group
    outcomes = engine.issue(
        "pai-1", 0x8000, [CsrRequest("b", p384_csr()), CsrRequest("c", csr), CsrRequest("d", truncated_csr()), CsrRequest("e", csr)]
    )
    engine.close()
    # THEN re-delivered unchanged (twice), and each bad CSR refused with its code, audited by the CA
    assert [o.status for o in outcomes] == ["refused", "reused", "refused", "reused"]
    assert outcomes[1].dac_der == outcomes[3].dac_der == first.dac_der
    assert (outcomes[0].code, outcomes[2].code) == ("csr.key_curve", "csr.malformed")
    assert all(o.audited for o in outcomes)
    assert {e["code"] for e in _events(pki, "dac.refused")} == {"csr.key_curve", "csr.malformed"}


def test_a_batch_that_cannot_start_refuses_every_csr_with_the_reason(pki: Pki) -> None:
    # GIVEN a PAI scoped to PID 8000
    engine = _engine(pki)
    # WHEN a group for PID 8001, and one for an unknown PAI, are issued
    wrong_pid = engine.issue("pai-1", 0x8001, [CsrRequest("a", good_csr()), CsrRequest("b", good_csr())])
    unknown = engine.issue("pai-7", 0x8000, [CsrRequest("c", good_csr())])
    engine.close()
    # THEN every CSR is refused with the CA's code, flagged for the caller to audit; nothing is issued
    assert [(o.status, o.code, o.audited) for o in wrong_pid] == [("refused", "profile.pid_not_allowed", False)] * 2
    assert [(o.status, o.code) for o in unknown] == [("refused", "config.unknown_ca")]
    with Ledger(pki.home.ledger_path) as ledger:
        assert ledger.entries(kind="dac") == []


def test_each_batch_is_dated_when_it_is_signed(pki: Pki) -> None:
    # GIVEN one engine used over time
    engine = _engine(pki)
    now = datetime.now(UTC).replace(microsecond=0)
    # WHEN two batches are signed two hours apart
    [early] = engine.issue("pai-1", 0x8000, [CsrRequest("a", good_csr())], now=now)
    [late] = engine.issue("pai-1", 0x8000, [CsrRequest("b", good_csr())], now=now + timedelta(hours=2))
    engine.close()
    # THEN each DAC's notBefore follows its own batch time (not the time the service started)
    assert early.dac_der is not None and late.dac_der is not None
    nb_early = x509.load_der_x509_certificate(early.dac_der).not_valid_before_utc
    nb_late = x509.load_der_x509_certificate(late.dac_der).not_valid_before_utc
    assert nb_late - nb_early == timedelta(hours=2)


def test_already_certified_and_ledger_reads(pki: Pki) -> None:
    # GIVEN one CSR with a DAC and one without
    engine = _engine(pki)
    done, fresh = good_csr(), good_csr()
    [o] = engine.issue("pai-1", 0x8000, [CsrRequest("a", done)])
    # WHEN asked THEN only the certified one (for its own PID) is free of quota
    assert engine.already_certified("pai-1", 0x8000, done)
    assert not engine.already_certified("pai-1", 0x8001, done)
    assert not engine.already_certified("pai-1", 0x8000, fresh)
    assert not engine.already_certified("pai-1", 0x8000, b"garbage")
    engine.close()
    # AND the reader finds the DAC by serial for its PAI only
    reader = LedgerReader(pki.home)
    assert o.serial is not None
    entry = reader.dac(int(o.serial, 16), "pai-1")
    assert entry is not None and entry.der == o.dac_der
    assert reader.dac(int(o.serial, 16), "pai-2") is None
    assert reader.describe_pai("pai-1")["pid"] == "8000"
    reader.close()


def test_the_service_inherits_device_key_identity_and_the_issuing_cas_status(pki: Pki) -> None:
    # GIVEN a device key certified by pai-1 through the service, and a second PAI for the same PID
    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.local import ca as ca_ops
    from matter_pki.local import crl as crl_ops
    from matter_pki.serve.problems import status_of
    from tests.unit.test_local_fixtures import csr_for

    now = datetime.now(UTC).replace(microsecond=0)
    ca_ops.create_pai(pki.home, pid=0x8000, secrets=pki.secrets, now=now)
    engine = _engine(pki)
    engine.open_keys()
    key = ec.generate_private_key(ec.SECP256R1())
    [first] = engine.issue("pai-1", 0x8000, [CsrRequest("a", csr_for(key, "one"))])
    # WHEN the same key comes in a newly signed CSR, to pai-1 and to pai-2
    [again] = engine.issue("pai-1", 0x8000, [CsrRequest("b", csr_for(key, "two"))])
    [elsewhere] = engine.issue("pai-2", 0x8000, [CsrRequest("c", csr_for(key, "three"))])
    # THEN pai-1 re-delivers its DAC; pai-2 refuses the key (409), and the CA audited the refusal
    assert (again.status, again.dac_der) == ("reused", first.dac_der)
    assert (elsewhere.status, elsewhere.code, elsewhere.audited) == ("refused", "issue.key_reused", True)
    assert status_of("issue.key_reused")[0] == 409
    # WHEN, while the service runs, the DAC is revoked and pai-2 is revoked by the PAA
    assert first.serial is not None
    crl_ops.revoke(pki.home, serial=first.serial, reason="keyCompromise", ca="pai-1", now=now, secrets=pki.secrets)
    pai2 = pki.home.load_cert("pai-2")
    crl_ops.revoke(pki.home, serial=f"{pai2.serial_number:X}", reason="cACompromise", ca=PAA_ID, now=now,
                   secrets=pki.secrets)  # fmt: skip
    # THEN the next batches see it: the key is never certified again, pai-2 issues nothing
    [revoked_key] = engine.issue("pai-1", 0x8000, [CsrRequest("d", csr_for(key, "four"))])
    assert (revoked_key.status, revoked_key.code) == ("refused", "issue.key_revoked")
    assert not engine.already_certified("pai-1", 0x8000, csr_for(key, "five"))
    stopped = engine.issue("pai-2", 0x8000, [CsrRequest("e", good_csr()), CsrRequest("f", good_csr())])
    assert [(o.status, o.code, o.audited) for o in stopped] == [("refused", "issue.ca_revoked", False)] * 2
    assert status_of("issue.ca_revoked")[0] == 409
    engine.close()
    with Ledger(pki.home.ledger_path) as ledger:
        assert [e.ca for e in ledger.entries(kind="dac")] == ["pai-1"]
