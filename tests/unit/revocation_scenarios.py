"""Revocation sets a commissioner may meet, with the answer the SDK's revocation delegate gives for each.

Each scenario: (name, revocation set, certificate DER, revoked?). The unit tests check the
project's delegate against the expected answer; the conformance tests check the SDK's compiled
TestDACRevocationDelegateImpl against the same answer.
"""

from __future__ import annotations

import base64
import copy
import json
from datetime import timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.x509.name import _ASN1Type

from matter_pki.profiles import DacProfile, PaiProfile, Validity, sign
from matter_pki.revocation import dcl, setgen
from matter_pki.revocation.crl import CrlParams, CrlScope, Revocation, build_direct_crl, build_indirect_crl
from tests.unit.revocation_fixtures import NOW, START, Chain, der, make_chain, new_key

Scenario = tuple[str, list[dict[str, Any]], bytes, bool]


def _set_for(chain: Chain, revoked: list[x509.Certificate], *, delegated: bool) -> list[dict[str, Any]]:
    params = CrlParams(this_update=NOW - timedelta(minutes=5), next_update=NOW + timedelta(days=30), crl_number=1,
                       idp_url="https://x.example/pai.crl" if delegated else None)  # fmt: skip
    revocations = [Revocation(c.serial_number, NOW - timedelta(minutes=5)) for c in revoked]
    if delegated:
        signer, key = chain.signer()
        crl = build_indirect_crl(signer, key, [CrlScope(chain.pai, revocations)], params)
        point = dcl.build_revocation_point(signer=signer, delegator=chain.pai, paa=chain.paa, is_paa=False, data_url="https://x.example/pai.crl")
    else:
        crl = build_direct_crl(chain.pai, chain.pai_key, revocations, params)
        point = dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/pai.crl")
    reports = setgen.generate_revocation_set([point], fetch_crl=lambda _p: crl, trusted_paas=[chain.paa])
    return [dict(e) for e in setgen.revocation_set(reports)]


def _odd_pai(chain: Chain, *, long_name: bool, big: bool) -> tuple[x509.Certificate, x509.Certificate, list[dict[str, Any]]]:
    """A PAI with a long subject (over 200 bytes) or a large DER (over 600 bytes), one DAC, and a set revoking it."""
    names = {"common_name": "C" * 64, "organization": "O" * 64}
    if long_name:
        names["organizational_unit"] = "U" * 64
    profile = PaiProfile(vid=0xFFF1, validity=Validity.no_expiry(START), **names)
    key = new_key()
    builder = profile.builder(key.public_key(), serial=x509.random_serial_number(), issuer=chain.paa)
    if big:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("d" * 60 + f"{i}.example") for i in range(5)]), critical=False)
    pai = sign(builder, chain.paa_key)
    dac = sign(DacProfile.for_issuer(pai, pid=0x8001, validity=Validity.no_expiry(START)).builder(new_key().public_key(), serial=x509.random_serial_number(), issuer=pai), key)
    crl = build_direct_crl(pai, key, [Revocation(dac.serial_number, NOW)], CrlParams(this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=1))
    point = dcl.build_revocation_point(signer=pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/odd.crl")
    entries = setgen.revocation_set(setgen.generate_revocation_set([point], fetch_crl=lambda _p: crl, trusted_paas=[chain.paa], check_dcl=False))
    return pai, dac, [dict(e) for e in entries]


@cache
def scenarios() -> list[Scenario]:
    """The scenario list (built once per process)."""
    chain = make_chain(dacs=3)
    revoked, kept = chain.dacs[0], chain.dacs[2]
    out: list[Scenario] = []
    direct = _set_for(chain, chain.dacs[:2], delegated=False)
    delegated = _set_for(chain, chain.dacs[:2], delegated=True)
    out += [
        ("direct: revoked DAC", direct, der(revoked), True),
        ("direct: other DAC", direct, der(kept), False),
        ("delegated: revoked DAC", delegated, der(revoked), True),
        ("delegated: other DAC", delegated, der(kept), False),
        ("direct: the PAI itself is not listed", direct, der(chain.pai), False),
    ]
    null_delegator = copy.deepcopy(direct)
    null_delegator[0]["crl_signer_delegator"] = None
    out.append(("direct entry with crl_signer_delegator null", null_delegator, der(revoked), False))
    empty_delegator = copy.deepcopy(direct)
    empty_delegator[0]["crl_signer_delegator"] = ""
    out.append(("direct entry with crl_signer_delegator empty", empty_delegator, der(revoked), False))
    broken_first = copy.deepcopy(direct)
    broken_first[0]["revoked_serial_numbers"] = []
    broken_first[0]["crl_signer_cert"] = base64.b64encode(der(make_chain(dacs=0).pai)).decode()
    second = copy.deepcopy(direct[0])
    out.append(("first matching entry fails the cross-check, second lists the serial", [broken_first[0], second], der(revoked), False))
    out.append(("cross-checked entry first, then the failing one", [second, broken_first[0]], der(revoked), True))
    lower = copy.deepcopy(direct)
    lower[0]["revoked_serial_numbers"] = [s.lower() for s in lower[0]["revoked_serial_numbers"]]
    out.append(("serials in lower case", lower, der(revoked), False))
    padded = copy.deepcopy(direct)
    padded[0]["revoked_serial_numbers"] = ["00" + s for s in padded[0]["revoked_serial_numbers"]]
    out.append(("serials with a leading 00", padded, der(revoked), False))
    skid_lower = copy.deepcopy(direct)
    skid_lower[0]["issuer_subject_key_id"] = skid_lower[0]["issuer_subject_key_id"].lower()
    out.append(("issuer SKID in lower case", skid_lower, der(revoked), False))
    reencoded = copy.deepcopy(direct)
    reencoded[0]["issuer_name"] = base64.b64encode(
        x509.Name([x509.NameAttribute(a.oid, str(a.value), _ASN1Type.PrintableString) for a in chain.pai.subject]).public_bytes()
    ).decode()
    out.append(("issuer name re-encoded (PrintableString)", reencoded, der(revoked), False))
    big_pai, big_dac, big_set = _odd_pai(chain, long_name=False, big=True)
    assert len(der(big_pai)) > 600
    out.append(("crl_signer_cert over 600 bytes", big_set, der(big_dac), False))
    long_pai, long_dac, long_set = _odd_pai(chain, long_name=True, big=False)
    assert len(long_pai.subject.public_bytes()) > 200
    out.append(("issuer name over 200 bytes", long_set, der(long_dac), False))
    _small_pai, small_dac, small_set = _odd_pai(chain, long_name=False, big=False)
    out.append(("control: the same construction with small names", small_set, der(small_dac), True))
    delegator_as_signer = copy.deepcopy(delegated)
    del delegator_as_signer[0]["crl_signer_delegator"]
    out.append(("delegated entry without its delegator", delegator_as_signer, der(revoked), False))
    unrelated = _set_for(make_chain(dacs=0), [], delegated=False)
    out.append(("set of another PAI only", unrelated, der(revoked), False))
    out.append(("empty set", [], der(revoked), False))
    return out


def write_set(entries: list[dict[str, Any]], path: Any) -> Any:
    """Write a set as JSON (the file the SDK's delegate reads)."""
    path.write_text(json.dumps(entries))
    return path
