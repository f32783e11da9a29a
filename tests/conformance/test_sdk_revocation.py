"""The project's revocation check and the Matter SDK's compiled revocation delegate must agree.

Compared on the SDK's own DAC-provider vectors with its committed revocation set, on sets the
project generates (direct and delegated CRLs) and on hostile sets (null delegator, shadowed
entries, re-encoded names, oversized certificates, wrong case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from matter_pki.revocation.delegate import check_revocation, is_certificate_revoked, load_revocation_set
from tests.unit.revocation_fixtures import GUIDE_CODES, provider_vector, sdk_revocation_set_path
from tests.unit.revocation_scenarios import scenarios, write_set

from .chip_revocation import available, sdk_chain_code, sdk_is_revoked_many

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.conformance
_OK, _REASON = available()
if not _OK:
    pytest.skip(f"Matter SDK revocation delegate not usable: {_REASON}", allow_module_level=True)


@pytest.mark.parametrize("vector", sorted(GUIDE_CODES))
def test_sdk_delegate_and_project_agree_on_the_guide_vectors(vector: str) -> None:
    # GIVEN a DAC-provider vector and the committed revocation set
    dac, pai = provider_vector(vector)
    path = sdk_revocation_set_path()
    # WHEN both delegates answer
    sdk_code = sdk_chain_code(path, dac=dac, pai=pai)
    ours = check_revocation(dac=dac, pai=pai, revocation_set=load_revocation_set(path.read_bytes())).code
    # THEN both give the guide's code
    assert sdk_code == ours == GUIDE_CODES[vector]


def test_sdk_delegate_and_project_agree_on_every_scenario(tmp_path: Path) -> None:
    # GIVEN every scenario (own direct/delegated sets and hostile variants), each set in its own file
    cases = scenarios()
    requests = [(write_set(rset, tmp_path / f"set-{i}.json"), [cert]) for i, (_n, rset, cert, _e) in enumerate(cases)]
    # WHEN the SDK's compiled delegate and the project's answer each
    sdk_answers = [a[0] for a in sdk_is_revoked_many(requests)]
    ours = [is_certificate_revoked(cert, rset).revoked for _n, rset, cert, _e in cases]
    expected = [e for *_x, e in cases]
    # THEN all three lists are equal, scenario by scenario
    table = [(n, s, o, e) for (n, *_r), s, o, e in zip(cases, sdk_answers, ours, expected, strict=True) if not s == o == e]
    assert not table, table
