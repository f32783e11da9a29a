"""The named-case generator: deterministic, and every chip format rule broken for every role."""

from __future__ import annotations

from matter_pki.findings import catalogue
from matter_pki.testing.negative import VECTOR_TIME, derived_key, generate

CASES = generate(VECTOR_TIME)
# Format codes that only one role can show.
ROLE_ONLY = {"paa": {"ext.akid_missing", "cert.time_outside_chip_range"}, "pai": {"cert.time_outside_chip_range"}, "dac": set()}


def test_generation_is_deterministic() -> None:
    # GIVEN two runs of the generator THEN the bytes are identical (derived keys, RFC 6979 signatures)
    again = generate(VECTOR_TIME)
    assert [(c.name, c.paa, c.pai, c.dac) for c in again] == [(c.name, c.paa, c.pai, c.dac) for c in CASES]
    assert derived_key("x").private_numbers() == derived_key("x").private_numbers()


def test_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


def test_every_role_breaks_every_format_rule() -> None:
    format_codes = {c for c, info in catalogue().items() if info.chip == "format" and c not in ("cert.der_malformed", "ext.malformed")}
    for role in ("paa", "pai", "dac"):
        covered = {c.finding for c in CASES if c.role == role and c.finding}
        missing = format_codes - covered - ROLE_ONLY[role]
        assert not missing, (role, sorted(missing))


def test_every_case_names_its_source() -> None:
    assert all(c.source for c in CASES if c.role != "-")
