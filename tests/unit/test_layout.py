"""``layout.CsrKey`` is the one source of ``.csr``/``.pem``/``.err`` names; claims have their own prefix."""

from __future__ import annotations

import pytest

from matter_pki.errors import InputError
from matter_pki.layout import CLAIMS_PREFIX, CsrKey, claim_key, is_answer, parse_csr_key

ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def test_answers_sit_next_to_the_csr() -> None:
    key = parse_csr_key(f"{ARN}/8000/dev-1.csr", cloud=True)
    assert (key.csr, key.pem, key.err) == (f"{ARN}/8000/dev-1.csr", f"{ARN}/8000/dev-1.pem", f"{ARN}/8000/dev-1.err")
    assert key.answers == (key.pem, key.err)
    assert CsrKey.named("dev-1").answers == ("dev-1.pem", "dev-1.err")


def test_an_unparseable_key_is_still_answered_next_to_itself() -> None:
    assert CsrKey.unchecked(f"{ARN}/80G0/x.csr").err == f"{ARN}/80G0/x.err"
    assert CsrKey.unchecked("x.csr").err == "x.err"


def test_claims_are_never_csr_keys_and_never_answers() -> None:
    name = claim_key(ARN, 0x8000, "ab" * 32)
    assert name == f"{CLAIMS_PREFIX}{ARN}/8000/{'ab' * 32}.json"
    assert not is_answer(name) and not name.endswith(".csr")
    with pytest.raises(InputError):
        parse_csr_key(name, cloud=True)
    with pytest.raises(InputError):
        claim_key(ARN, 0x8000, "AB" * 32)
