"""Tests of the Matter SDK ctypes harness against the SDK's own commissioner_dut vectors."""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import chip_sdk
from .chip_sdk import (
    SdkVerdict,
    pem_to_der,
    sdk_akid,
    sdk_available,
    sdk_format_check,
    sdk_format_check_many,
    sdk_skid,
    sdk_valid_at_issuance,
    sdk_valid_now,
    sdk_validate_att_cert,
    sdk_validate_many,
    sdk_vidpid,
    sdk_vidpid_many,
)

pytestmark = pytest.mark.conformance

_OK, _REASON = sdk_available()
if not _OK:
    pytest.skip(f"Matter SDK not usable: {_REASON}", allow_module_level=True)

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("MATTER_PKI_VECTORS", REPO_ROOT.parent / "shared" / "vectors"))
CASES_TSV = VECTORS / "cases.tsv"

# Rows where the SDK wheel's verdict differs from the emulated `chip-cert validate-att-cert` column.
KNOWN_DISAGREEMENTS: dict[str, str] = {
    "struct_dac_fuzzed_skid_malformed": "wheel (BoringSSL build) segfaults in VerifyAttestationCertificateFormat(DAC); OpenSSL chip-cert gives 303",
    "struct_pai_fuzzed_skid_malformed": "wheel (BoringSSL build) segfaults in VerifyAttestationCertificateFormat(PAI); OpenSSL chip-cert gives 203",
}


@dataclass(frozen=True)
class Case:
    """One cases.tsv row with its DER chain."""

    name: str
    chain_only_failure: str
    expected: int
    paa: bytes
    pai: bytes
    dac: bytes


def _paa_path(case: str) -> Path:
    if case == "invalid_paa":
        return VECTORS / "commissioner_dut" / case / "paa-Cert.pem"
    if case == "struct_cd_origin_pid_vid_correct":
        return VECTORS / "paa-root-certs" / "Chip-Test-PAA-NoVID-Cert.pem"
    return VECTORS / "paa-root-certs" / "Chip-Test-PAA-FFF1-Cert.pem"


def _der(path: Path) -> bytes:
    # PEM, not the JSON hex: the fuzzed vectors' hex carries a trailing 00 byte.
    return pem_to_der(path.read_bytes())


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    """All cases.tsv rows, or skip when the shared vectors are absent."""
    if not CASES_TSV.is_file():
        pytest.skip(f"SDK test vectors not found at {VECTORS} (set MATTER_PKI_VECTORS)")
    out = []
    with CASES_TSV.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            d = VECTORS / "commissioner_dut" / row["case"]
            out.append(
                Case(
                    row["case"],
                    row["chain_only_failure"],
                    int(row["emulated_chip_cert_code"]),
                    _der(_paa_path(row["case"])),
                    _der(d / "pai-Cert.pem"),
                    _der(d / "dac-Cert.pem"),
                )
            )
    return out


@pytest.fixture(scope="module")
def verdicts(cases: list[Case]) -> dict[str, SdkVerdict]:
    """SDK verdicts for every case, computed in one batch."""
    start = time.perf_counter()
    got = sdk_validate_many([(c.paa, c.pai, c.dac) for c in cases])
    elapsed = time.perf_counter() - start
    print(f"\nSDK: {len(cases)} chains in {elapsed:.2f} s ({1000 * elapsed / len(cases):.1f} ms/chain)")
    return {c.name: v for c, v in zip(cases, got, strict=True)}


def _by_kind(cases: list[Case], kind: str) -> list[Case]:
    return [c for c in cases if c.chain_only_failure == kind]


def test_vector_set_shape(cases: list[Case]) -> None:
    """The vector set has the three kinds of rows and the disagreement list names real cases."""
    names = {c.name for c in cases}
    assert _by_kind(cases, "n/a") and _by_kind(cases, "yes") and _by_kind(cases, "no")
    assert set(KNOWN_DISAGREEMENTS) <= names


def test_success_cases_accepted(cases: list[Case], verdicts: dict[str, SdkVerdict]) -> None:
    """Every success case (chain_only_failure n/a) gets 0."""
    bad = {c.name: verdicts[c.name] for c in _by_kind(cases, "n/a") if verdicts[c.name].code != 0}
    assert not bad


def test_chain_failures_rejected(cases: list[Case], verdicts: dict[str, SdkVerdict]) -> None:
    """Every chain-only failure gets a non-zero code (a crash counts only for listed cases)."""
    bad = {}
    for c in _by_kind(cases, "yes"):
        v = verdicts[c.name]
        if v.code == 0 or (v.crashed and c.name not in KNOWN_DISAGREEMENTS):
            bad[c.name] = v
    assert not bad


def test_codes_match_emulated_chip_cert(cases: list[Case], verdicts: dict[str, SdkVerdict]) -> None:
    """Codes equal the emulated chip-cert column exactly, except the listed disagreements."""
    yes = _by_kind(cases, "yes")
    agree_yes = sum(verdicts[c.name].code == c.expected for c in yes)
    print(f"\nSDK vs emulated chip-cert: {agree_yes}/{len(yes)} chain-only failures agree")
    mismatches = {
        c.name: (c.expected, verdicts[c.name])
        for c in cases
        if c.name not in KNOWN_DISAGREEMENTS and verdicts[c.name].code != c.expected
    }
    assert not mismatches
    stale = [
        n for n in KNOWN_DISAGREEMENTS if verdicts[n].code == next(c.expected for c in cases if c.name == n)
    ]
    assert not stale, f"listed as disagreeing but now agree: {stale}"


def test_known_crashes_reported_as_crash(verdicts: dict[str, SdkVerdict]) -> None:
    """The fuzzed vectors that kill the native code come back as a distinct crash verdict."""
    for name in KNOWN_DISAGREEMENTS:
        v = verdicts[name]
        assert v.code is None and v.detail.startswith("sdk crashed"), (name, v)


def test_check_order_details(verdicts: dict[str, SdkVerdict]) -> None:
    """The detail names the SDK function, ChipError code and source location."""
    v = verdicts["struct_dac_ext_basic_ca_wrong"]
    assert v.code == 303 and v.detail.startswith(
        "VerifyAttestationCertificateFormat(DAC): CHIP_ERROR 0xac at "
    )
    assert ".cpp:" in v.detail
    v = verdicts["struct_dac_valid_in_future"]
    assert v.code == 300 and "IsCertificateValidAtCurrentTime(DAC): CHIP_ERROR 0x4e" in v.detail
    v = verdicts["struct_dac_vidpid_fallback_encoding_07"]
    assert v.code == 303 and "ExtractVIDPIDFromX509Cert(DAC): CHIP_ERROR 0x59" in v.detail


def _akid_without_keyid(dac: bytes) -> bytes:
    """Turn the DAC's AKID keyIdentifier [0] into authorityCertSerialNumber [2] (same length)."""
    i = dac.index(bytes.fromhex("0603551d23"))  # id-ce-authorityKeyIdentifier
    # OID, OCTET STRING header (2), SEQUENCE header (2), then the [0] tag.
    tag = i + 5 + 4
    assert dac[tag] == 0x80
    return dac[:tag] + b"\x82" + dac[tag + 1 :]


def test_crash_only_loses_its_own_verdict(cases: list[Case]) -> None:
    """A crashing chain in the middle of a batch leaves its neighbours' verdicts intact."""
    good = next(
        c for c in cases if c.chain_only_failure == "n/a" and c.name != "struct_cd_origin_pid_vid_correct"
    )
    crashing = (good.paa, good.pai, _akid_without_keyid(good.dac))
    got = sdk_validate_many([(good.paa, good.pai, good.dac), crashing, (good.paa, good.pai, good.dac)])
    assert got[0].code == 0 and got[2].code == 0
    assert got[1].code != 0
    assert got[1].crashed, got[1]  # observed with the pinned wheel: SIGSEGV in the format check


def test_worker_abort_is_isolated() -> None:
    """A native abort in the worker is reported per request and the rest of the batch still runs."""
    answers = chip_sdk._run_requests([{"op": "ping"}, {"op": "_abort"}, {"op": "ping"}, {"op": "_abort"}])
    assert answers[0] == {"ok": True} and answers[2] == {"ok": True}
    assert answers[1]["crashed"].startswith("sdk crashed") and answers[3]["crashed"].startswith("sdk crashed")


def test_single_chain_and_garbage_input(cases: list[Case]) -> None:
    """The single-chain call works and garbage input is a format failure, not a harness error."""
    good = next(c for c in cases if c.name == "struct_cd_origin_pid_vid_correct")
    assert sdk_validate_att_cert(good.paa, good.pai, good.dac).code == 0
    assert sdk_validate_att_cert(b"", good.pai, good.dac).code == 105
    assert sdk_validate_att_cert(good.paa, b"\x30\x00", good.dac).code == 203


def test_helpers(cases: list[Case]) -> None:
    """The per-certificate helpers return what the vectors encode."""
    good = next(c for c in cases if c.name == "struct_cd_authorized_paa_list_count0")
    assert sdk_format_check(good.paa, "paa") == 0
    assert sdk_format_check(good.pai, "PAI") == 0
    assert sdk_format_check(good.dac, "dac") == 0
    assert sdk_format_check(good.dac, "pai") == 0xAC  # a DAC is not a CA
    assert sdk_format_check_many([(good.paa, "paa"), (b"", "dac")]) == [0, 0x2F]
    assert sdk_vidpid(good.paa) == (0xFFF1, None)
    assert sdk_vidpid(good.dac) == (0xFFF1, 0x8000)
    bad_dn = next(c for c in cases if c.name == "struct_dac_vidpid_fallback_encoding_07")
    vp = sdk_vidpid_many([bad_dn.dac, good.pai])
    assert isinstance(vp[0], str) and vp[0].startswith("0x59 at ")
    assert isinstance(vp[1], tuple) and vp[1][0] == 0xFFF1
    skid = sdk_skid(good.paa)
    assert isinstance(skid, bytes) and len(skid) == 20
    assert sdk_akid(good.pai) == skid
    assert isinstance(sdk_akid(good.paa), bytes)
    assert sdk_valid_now(good.dac) == 0
    assert sdk_valid_at_issuance(good.dac, good.pai) == 0
    assert sdk_valid_at_issuance(good.pai, good.paa) == 0
