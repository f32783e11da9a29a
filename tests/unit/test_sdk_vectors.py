"""The validator against the Matter SDK's commissioner_dut vectors (chain-only and success cases)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matter_pki.attestation import AttestationResult
from matter_pki.validate import validate_att_cert
from tests.conftest import SKIP_NO_VECTORS, sdk_cases

CASES = sdk_cases()
# cases.tsv's code column was computed by emulating chip at the current time, so validate "now".
NOW = datetime.now(UTC).replace(microsecond=0)

pytestmark = SKIP_NO_VECTORS


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verdict_matches_sdk(case) -> None:
    # GIVEN a vector chain  WHEN validated like chip-cert validate-att-cert
    result = validate_att_cert(paa=case.paa, pai=case.pai, dac=case.dac, at=NOW)
    # THEN it is valid exactly for the SDK's success cases
    assert result.ok == case.success, result.reason


def test_codes_match_sdk_on_at_least_95_percent() -> None:
    invalid = [c for c in CASES if not c.success]
    assert len(invalid) >= 25
    matched = [c for c in invalid if int(validate_att_cert(paa=c.paa, pai=c.pai, dac=c.dac, at=NOW).result) == c.expected_code]
    assert len(matched) / len(invalid) >= 0.95, sorted({c.name for c in invalid} - {c.name for c in matched})


@pytest.mark.parametrize(
    ("case_name", "at", "expected"),
    [
        # Pinned times make the validity cases independent of today; in 2032 the DAC is current but
        # was issued after its PAI expired (2024), so the chain check fails.
        ("struct_dac_valid_in_future", datetime(2026, 1, 1, tzinfo=UTC), AttestationResult.kDacExpired),
        ("struct_dac_valid_in_future", datetime(2032, 1, 1, tzinfo=UTC), AttestationResult.kDacSignatureInvalid),
        ("struct_pai_valid_in_future", datetime(2023, 1, 1, tzinfo=UTC), AttestationResult.kDacSignatureInvalid),
        ("invalid_paa", datetime(2022, 1, 1, tzinfo=UTC), AttestationResult.kSuccess),
    ],
)
def test_pinned_validation_time(case_name: str, at: datetime, expected: AttestationResult) -> None:
    case = next(c for c in CASES if c.name == case_name)
    assert validate_att_cert(paa=case.paa, pai=case.pai, dac=case.dac, at=at).result is expected


def test_commissioner_mode_reports_untrusted_paa() -> None:
    case = next(c for c in CASES if c.name == "invalid_paa")
    fff1 = next(c for c in CASES if c.name == "struct_dac_cert_version_v3").paa
    result = validate_att_cert(paa=fff1, pai=case.pai, dac=case.dac, at=datetime(2022, 1, 1, tzinfo=UTC), mode="commissioner")
    assert result.result is AttestationResult.kPaaNotFound


def test_every_row_including_non_certificate_failures_gets_the_emulated_code() -> None:
    # GIVEN all 100 cases.tsv rows (the 40 "no" rows fail later, on the CD or the attestation signature)
    import csv

    from tests.conftest import PAA_FFF1, PAA_NOVID, VECTORS, load_vector

    wrong = {}
    with (VECTORS / "cases.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            folder = VECTORS / "commissioner_dut" / row["case"]
            if (folder / "paa-Cert.pem").exists():
                paa = load_vector("commissioner_dut", row["case"], "paa-Cert.pem")
            else:
                paa = load_vector("paa-root-certs", PAA_NOVID if "NoVID" in row["paa"] else PAA_FFF1)
            pai = load_vector("commissioner_dut", row["case"], "pai-Cert.pem")
            dac = load_vector("commissioner_dut", row["case"], "dac-Cert.pem")
            result = validate_att_cert(paa=paa, pai=pai, dac=dac, at=NOW)
            # THEN the certificate verdict is the emulated chip-cert code of the row
            if int(result.result) != int(row["emulated_chip_cert_code"]):
                wrong[row["case"]] = (row["emulated_chip_cert_code"], result.result.label, result.code)
    assert not wrong
