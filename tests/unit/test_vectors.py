"""The generated vectors in tests/vectors/attestation: current with the generator, and each judged as recorded.

Every vector is a PAA/PAI/DAC chain with one rule broken (or one boundary touched); ``cases.json``
records the verdict chip gives on Linux (OpenSSL 3) in both check orders, the lint code, and whether a
BoringSSL-based commissioner decides differently. tests/conformance/test_openssl_reference.py checks the
same expectations against the system OpenSSL 3 and the Matter SDK wheel.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from matter_pki.attestation import AttestationResult
from matter_pki.lint import lint
from matter_pki.testing.negative import VECTOR_TIME, generate
from matter_pki.validate import validate_att_cert

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "attestation"
MANIFEST = json.loads((VECTORS / "cases.json").read_text())
AT = datetime.fromisoformat(MANIFEST["validation_time"].replace("Z", "+00:00"))
CASES = MANIFEST["cases"]
ISSUER = {"paa": None, "pai": "paa", "dac": "pai"}


def load_vector(*parts: str) -> bytes:
    """Bytes of one generated vector file."""
    return VECTORS.joinpath(*parts).read_bytes()


def _result(label: str) -> AttestationResult:
    return AttestationResult[label.split(" ")[0]]


def test_files_are_what_the_generator_writes() -> None:
    # GIVEN the generator  WHEN it runs again THEN every file on disk is byte-for-byte its output
    assert AT == VECTOR_TIME
    generated = generate(VECTOR_TIME)
    assert [c.name for c in generated] == [c["name"] for c in CASES]
    for case in generated:
        for role in ("paa", "pai", "dac"):
            assert load_vector(case.name, f"{role}.der") == getattr(case, role), (case.name, role)
    assert sorted(p.name for p in VECTORS.iterdir() if p.is_dir()) == sorted(c["name"] for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_vector(case: dict[str, object]) -> None:
    # GIVEN one vector chain  WHEN validated in both orders and linted
    name = str(case["name"])
    paa, pai, dac = (load_vector(name, f"{r}.der") for r in ("paa", "pai", "dac"))
    chip_cert = validate_att_cert(paa=paa, pai=pai, dac=dac, at=AT, mode="chip-cert")
    commissioner = validate_att_cert(paa=paa, pai=pai, dac=dac, at=AT, mode="commissioner")
    # THEN the verdicts are chip's on OpenSSL 3
    assert chip_cert.result is _result(str(case["chip_cert"])), chip_cert.reason
    assert commissioner.result is _result(str(case["commissioner"])), commissioner.reason
    # AND the named certificate's lint shows the broken rule's code
    if case["lint_code"]:
        role = str(case["role"])
        issuer_role = ISSUER[role]
        issuer = load_vector(name, f"{issuer_role}.der") if issuer_role else None
        codes = {f.code for f in lint(load_vector(name, f"{role}.der"), role, issuer)}
        assert case["lint_code"] in codes, codes
    # AND the result says when a BoringSSL-based commissioner would decide differently
    differs = chip_cert.boringssl_result is not None or commissioner.boringssl_result is not None
    assert differs == case["boringssl_differs"]
    if differs:
        assert chip_cert.divergences and {d.code for d in chip_cert.divergences} <= {f.code for f in chip_cert.findings}
