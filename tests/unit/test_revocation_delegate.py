"""The commissioner's revocation check (TestDACRevocationDelegateImpl.cpp): 0/202/302/208 and its corner cases."""

from __future__ import annotations

import json

import pytest

from matter_pki.errors import InputError
from matter_pki.revocation.delegate import (
    check_revocation,
    is_certificate_revoked,
    lint_revocation_set,
    load_revocation_set,
)
from tests.unit.revocation_fixtures import GUIDE_CODES, provider_vector, sdk_revocation_set_path
from tests.unit.revocation_scenarios import scenarios


@pytest.mark.parametrize("vector", sorted(GUIDE_CODES))
def test_sdk_vectors_with_the_committed_set_give_the_guide_codes(vector: str) -> None:
    # GIVEN the SDK's committed revocation set and a DAC-provider vector
    rset = load_revocation_set(sdk_revocation_set_path().read_bytes())
    dac, pai = provider_vector(vector)
    # WHEN the project's revocation check runs
    verdict = check_revocation(dac=dac, pai=pai, revocation_set=rset)
    # THEN it gives the guide / TC-DA-1.9 code
    assert verdict.code == GUIDE_CODES[vector]
    assert verdict.dac.revoked is (verdict.code in (302, 208)) and verdict.pai.revoked is (verdict.code in (202, 208))


@pytest.mark.parametrize("index", range(len(scenarios())), ids=[s[0] for s in scenarios()])
def test_scenarios(index: int) -> None:
    # GIVEN a revocation set and a certificate (see revocation_scenarios.py for what each breaks)
    _name, rset, cert, expected = scenarios()[index]
    # WHEN the project's delegate looks it up
    # THEN it answers as the SDK's delegate does
    assert is_certificate_revoked(cert, rset).revoked is expected


def test_null_delegator_and_shadowed_entries_are_warned_about() -> None:
    name, rset, _cert, _ = next(s for s in scenarios() if "null" in s[0])
    assert [f.code for f in lint_revocation_set(rset)] == ["revset.delegator_null"]
    _n, shadow, _c, _e = next(s for s in scenarios() if s[0].startswith("first matching entry"))
    assert [f.code for f in lint_revocation_set(shadow)] == ["revset.entry_shadowed"]


@pytest.mark.parametrize(
    "text",
    [b"", b"{", b'{"a": 1}', b"[1, 2]", b'[{"revoked_serial_numbers": "AB"}]', b'[{"issuer_name": ["x"]}]'],
)
def test_malformed_sets_are_refused_with_a_code(text: bytes) -> None:
    with pytest.raises(InputError) as e:
        load_revocation_set(text)
    assert e.value.code == "input.revocation_set"


def test_garbage_certificate_is_not_revoked_and_says_why() -> None:
    rset = json.loads(sdk_revocation_set_path().read_text())
    lookup = is_certificate_revoked(b"\x30\x03\x02\x01\x01", rset)
    assert not lookup.revoked and "cannot be read" in lookup.notes[0]
