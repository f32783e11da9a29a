"""Shared fixtures: Matter SDK vectors (read from ../shared/vectors), generated chains, a fixed clock."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from matter_pki.backends import keyfile
from matter_pki.certparse import certificate_der_from_bytes
from tests.kdf_shim.sitecustomize import TEST_KDF_ITERATIONS

ROOT = Path(__file__).resolve().parent.parent
# A cheap key-file KDF for the suite, in this process and in every Python process it starts (see
# tests/kdf_shim/sitecustomize.py; tests/unit/test_local_keyfile.py checks the real one without it).
KDF_SHIM = ROOT / "tests" / "kdf_shim"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(KDF_SHIM), os.environ.get("PYTHONPATH", "")) if p)
keyfile.PBKDF2_ITERATIONS = keyfile.PBKDF2_MIN_ITERATIONS = TEST_KDF_ITERATIONS
VECTORS = Path(os.environ.get("MATTER_PKI_VECTORS", ROOT.parent / "shared" / "vectors"))
PAA_FFF1 = "Chip-Test-PAA-FFF1-Cert.pem"
PAA_NOVID = "Chip-Test-PAA-NoVID-Cert.pem"


def vectors_present() -> bool:
    """True when the Matter SDK vectors are readable."""
    return (VECTORS / "cases.tsv").is_file()


SKIP_NO_VECTORS = pytest.mark.skipif(
    not vectors_present(), reason=f"Matter SDK vectors not found at {VECTORS} (set MATTER_PKI_VECTORS)"
)


def load_vector(*parts: str) -> bytes:
    """DER bytes of a vector file (PEM, DER or hex)."""
    return certificate_der_from_bytes((VECTORS.joinpath(*parts)).read_bytes())


@dataclass(frozen=True)
class SdkCase:
    """One row of cases.tsv with its three certificates."""

    name: str
    success: bool
    chain_only_failure: str
    expected_code: int
    paa: bytes
    pai: bytes
    dac: bytes


def sdk_cases() -> list[SdkCase]:
    """Rows with chain_only_failure yes or n/a (the certificate-only cases)."""
    if not vectors_present():
        return []
    out = []
    with (VECTORS / "cases.tsv").open() as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["chain_only_failure"] == "no":
                continue
            folder = VECTORS / "commissioner_dut" / row["case"]
            if (folder / "paa-Cert.pem").exists():
                paa = load_vector("commissioner_dut", row["case"], "paa-Cert.pem")
            else:
                name = PAA_NOVID if "NoVID" in row["paa"] else PAA_FFF1
                paa = load_vector("paa-root-certs", name)
            out.append(
                SdkCase(
                    row["case"],
                    row["is_success_case"] == "true",
                    row["chain_only_failure"],
                    int(row["emulated_chip_cert_code"]),
                    paa,
                    load_vector("commissioner_dut", row["case"], "pai-Cert.pem"),
                    load_vector("commissioner_dut", row["case"], "dac-Cert.pem"),
                )
            )
    return out


@pytest.fixture
def now() -> datetime:
    """A fixed, tz-aware validation time."""
    return datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


# One SoftHSM token per test session: SoftHSM reads SOFTHSM2_CONF once per process, so the fixture
# must be defined once, here, not imported into several modules (each import is a new fixture).
from tests.unit.test_local_fixtures import softhsm_token  # noqa: E402, F401
