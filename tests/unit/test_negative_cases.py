"""Every Matter MUST rule broken once per role (generated), judged by the validator and lint."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matter_pki.findings import catalogue
from matter_pki.lint import lint
from matter_pki.testing.negative import generate
from matter_pki.validate import validate_att_cert

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
CASES = generate(NOW)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_chip_cert_verdict(case) -> None:
    result = validate_att_cert(paa=case.paa, pai=case.pai, dac=case.dac, at=NOW)
    assert result.result is case.chip_cert, result.reason


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_commissioner_verdict(case) -> None:
    result = validate_att_cert(paa=case.paa, pai=case.pai, dac=case.dac, at=NOW, mode="commissioner")
    assert result.result is case.commissioner, result.reason


@pytest.mark.parametrize("case", [c for c in CASES if c.finding], ids=[c.name for c in CASES if c.finding])
def test_lint_names_the_broken_rule(case) -> None:
    der = {"paa": case.paa, "pai": case.pai, "dac": case.dac}[case.role]
    assert case.finding in [f.code for f in lint(der, case.role)]


def test_every_role_breaks_every_format_rule() -> None:
    format_codes = {c for c, info in catalogue().items() if info.chip == "format" and c not in ("cert.der_malformed", "ext.malformed")}
    for role in ("paa", "pai", "dac"):
        covered = {c.finding for c in CASES if c.role == role and c.finding}
        missing = format_codes - covered - ({"ext.akid_missing"} if role == "paa" else set())
        assert not missing, (role, sorted(missing))


def test_baseline_chains_have_no_error_findings() -> None:
    base = next(c for c in CASES if c.name == "baseline")
    for role, der in (("paa", base.paa), ("pai", base.pai), ("dac", base.dac)):
        assert [f for f in lint(der, role) if f.severity >= 40] == []
