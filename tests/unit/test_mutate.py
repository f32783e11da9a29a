"""The structure-aware mutator: every mutation builds, and each certificate stays signed by its issuer."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.certparse import parse_certificate
from matter_pki.der import DerError
from matter_pki.testing import mutate as m
from matter_pki.validate import validate_att_cert

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
# Mutations that change who signs (or what the signature is) on purpose.
SIGNATURE_LABELS = ("signature:", "relation:paa-other-signer", "relation:pai-signed-by-other", "relation:swap-pai-dac-keys", "sigalg:")


def _signed_by(der: bytes, key: ec.EllipticCurvePrivateKey) -> bool | None:
    """True/False for a readable certificate; None when OpenSSL would not read it."""
    try:
        raw = parse_certificate(der)
    except (DerError, IndexError):
        return None
    try:
        key.public_key().verify(raw.signature, raw.tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def test_base_chains_are_valid() -> None:
    rng = random.Random(7)
    for _ in range(20):
        paa, pai, dac = m.base_chain(rng, NOW).build()
        for mode in ("chip-cert", "commissioner"):
            result = validate_att_cert(paa=paa, pai=pai, dac=dac, at=NOW, mode=mode)  # type: ignore[arg-type]
            assert result.ok, result.reason


@pytest.mark.parametrize(("label", "roles", "weight", "mutation"), m.MUTATIONS, ids=[x[0] for x in m.MUTATIONS])
def test_every_mutation_builds_and_keeps_the_right_signer(label: str, roles: tuple[str, ...], weight: float, mutation: m.Mutation) -> None:
    # GIVEN each mutation on each role it applies to, over several draws
    rng = random.Random(label)
    for role in roles:
        for _ in range(8):
            chain = m.base_chain(rng, NOW)
            applied = mutation(chain, role, rng, NOW)
            paa, pai, dac = chain.build()
            if any(s in applied for s in SIGNATURE_LABELS):
                continue
            # THEN each certificate OpenSSL can read verifies with its issuer's key as mutated
            for data, issuer in ((paa, chain.paa), (pai, chain.paa), (dac, chain.pai)):
                assert _signed_by(data, issuer.key) in (True, None), (role, applied)


def test_a_changed_issuer_key_re_signs_the_child() -> None:
    rng = random.Random(3)
    chain = m.base_chain(rng, NOW)
    chain.pai.key = m.key_from(rng, ec.SECP256K1())
    paa, pai, dac = chain.build()
    assert _signed_by(dac, chain.pai.key) and _signed_by(pai, chain.paa.key)


def test_random_chains_are_reproducible_from_a_seed() -> None:
    first = [m.random_chain(random.Random(11), NOW)[1] for _ in range(3)]
    assert first[0] == first[1] == first[2]
    a, _ = m.random_chain(random.Random(11), NOW)
    b, _ = m.random_chain(random.Random(11), NOW)
    assert a.build(deterministic=True) == b.build(deterministic=True)
