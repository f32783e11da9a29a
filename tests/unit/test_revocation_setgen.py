"""The revocation-set dry run (generate_revocation_set.py's algorithm) on the SDK's vectors and on own chains."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography import x509

from matter_pki.revocation import dcl, setgen
from matter_pki.revocation.crl import CrlParams, CrlScope, Revocation, build_direct_crl, build_indirect_crl
from matter_pki.revocation.delegate import check_revocation
from tests.unit.revocation_fixtures import (
    GUIDE_CODES,
    NOW,
    VECTOR_POINTS,
    der,
    make_chain,
    provider_vector,
    sdk_revocation_set_path,
    vector_cert,
    vector_crl,
)


def _vector_points() -> list[tuple[dcl.RevocationPoint, bytes]]:
    paa = vector_cert("Chip-Test-PAA-FFF1-Cert.pem")
    out = []
    for signer, delegator, crl, url, is_paa in VECTOR_POINTS:
        point = dcl.build_revocation_point(
            signer=vector_cert(signer), delegator=vector_cert(delegator) if delegator else None, paa=paa,
            is_paa=is_paa, data_url=url,
        )  # fmt: skip
        out.append((point, vector_crl(crl)))
    return out


def _run(points: list[tuple[dcl.RevocationPoint, bytes]], **kwargs: object) -> list[setgen.PointReport]:
    by_point = {id(p): c for p, c in points}
    return setgen.generate_revocation_set(
        [p for p, _ in points], fetch_crl=lambda p: by_point[id(p)],
        trusted_paas=[vector_cert("Chip-Test-PAA-FFF1-Cert.pem")], **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_each_vector_point_alone_gives_the_sdks_committed_revocation_set() -> None:
    # GIVEN the DCL points that publish the SDK's vector CRLs, each run as its own DCL (as the SDK's own tests do)
    points = _vector_points()
    committed = json.loads(sdk_revocation_set_path().read_text())
    # WHEN the project's dry run processes each point
    entries = [setgen.revocation_set(_run([p]))[0] for p in points]
    # THEN every entry is exactly an entry of credentials/test/.../revocation-set.json (delegator key only when delegated)
    for entry in entries:
        assert entry in committed
    assert {e["issuer_subject_key_id"] for e in entries} | {"F97059A4F532B98B3B808592CD943A91004ACD6D"} == {
        e["issuer_subject_key_id"] for e in committed
    }


@pytest.mark.parametrize("vector", sorted(GUIDE_CODES))
def test_project_generated_set_answers_the_guide_codes(vector: str, tmp_path: object) -> None:
    # GIVEN the set the project generates from the vector CRLs, plus the PAI 03 entry whose CRL is not among the vectors
    committed = json.loads(sdk_revocation_set_path().read_text())
    generated = [setgen.revocation_set(_run([p]))[0] for p in _vector_points()]
    generated += [e for e in committed if e["issuer_subject_key_id"] == "F97059A4F532B98B3B808592CD943A91004ACD6D"]
    # WHEN the revocation check runs on the vector's DAC and PAI
    dac, pai = provider_vector(vector)
    verdict = check_revocation(dac=dac, pai=pai, revocation_set=generated)
    # THEN it answers what the revocation guide and TC-DA-1.9 expect
    assert verdict.code == GUIDE_CODES[vector]


def test_both_paa_points_in_one_dcl_drop_the_direct_paa_crl_at_step_7b() -> None:
    # GIVEN every vector point in one DCL: the PAA's direct and delegated points share VID FFF1 and issuer SKID
    reports = _run(_vector_points())
    # WHEN the algorithm runs over all of them
    by_label = [(r.point["dataURL"], r) for r in reports]
    direct = next(r for url, r in by_label if url.endswith("/paa.crl"))
    # THEN the direct PAA CRL (no IDP) is dropped at step 7b, the others are kept
    assert not direct.accepted
    assert [(s.step, s.findings[0].code) for s in direct.failed] == [("7b", "revset.idp_mismatch")]
    assert all(r.accepted for url, r in by_label if not url.endswith("/paa.crl"))
    # AND the revoked PAI is then no longer found revoked (202 becomes 0)
    dac, pai = provider_vector("revoked-pai.json")
    assert check_revocation(dac=dac, pai=pai, revocation_set=setgen.revocation_set(reports)).code == 0


def test_vector_paa_delegated_crl_entry_without_certificate_issuer_is_reported_extra() -> None:
    # GIVEN the SDK's PAA-delegated CRL, whose entry carries no certificateIssuer although the CRL is indirect
    point = next(p for p in _vector_points() if p[0]["dataURL"].endswith("paa-delegated-crl.der"))
    # WHEN it is dry-run
    [report] = _run([point])
    # THEN the SDK keeps it, and the extra step 8 reports the entry (the SDK credits it to every CA point)
    assert report.accepted
    step8 = next(s for s in report.steps if s.step == "8")
    assert step8.origin == "extra" and not step8.ok
    assert [f.code for f in step8.findings] == ["crl.entry_issuer_missing"]


# -- own chains ---------------------------------------------------------------------------------
def _params(url: str | None = None, number: int = 1) -> CrlParams:
    return CrlParams(this_update=NOW - timedelta(minutes=5), next_update=NOW + timedelta(days=30), crl_number=number, idp_url=url)


def test_own_direct_and_delegated_chains_pass_every_step_and_give_302_for_exactly_the_revoked() -> None:
    # GIVEN five DACs under one PAI, two revoked on a direct CRL and (separately) on a delegated, indirect CRL
    chain = make_chain(dacs=5)
    revoked = [Revocation(d.serial_number, NOW - timedelta(minutes=10), x509.ReasonFlags.key_compromise) for d in chain.dacs[:2]]
    signer, signer_key = chain.signer()
    direct_url, indirect_url = "https://crl.example.com/pai.crl", "https://crl.example.com/pai-delegated.crl"
    variants = {
        "direct": (build_direct_crl(chain.pai, chain.pai_key, revoked, _params()), chain.pai, None, direct_url),
        "delegated": (
            build_indirect_crl(signer, signer_key, [CrlScope(chain.pai, revoked)], _params(indirect_url)),
            signer, chain.pai, indirect_url,
        ),
    }  # fmt: skip
    for name, (crl_der, crl_signer, delegator, url) in variants.items():
        point = dcl.build_revocation_point(signer=crl_signer, delegator=delegator, paa=chain.paa, is_paa=False, data_url=url)
        # WHEN the dry run processes the point
        [report] = setgen.generate_revocation_set([point], fetch_crl=lambda _p, c=crl_der: c, trusted_paas=[chain.paa], at=NOW)
        # THEN every step passes (SDK, extra and DCL) and the revocation check gives 302 for exactly the revoked DACs
        assert report.accepted and not report.failed, (name, [(s.step, s.detail) for s in report.failed])
        rset = setgen.revocation_set([report])
        assert ("crl_signer_delegator" in rset[0]) is (delegator is not None)
        codes = [check_revocation(dac=der(d), pai=der(chain.pai), revocation_set=rset).code for d in chain.dacs]
        assert codes == [302, 302, 0, 0, 0], name


def test_revoked_pai_on_paa_crl_gives_202_and_208() -> None:
    # GIVEN a PAA CRL revoking the PAI, and a PAI CRL revoking the first DAC
    chain = make_chain(dacs=2)
    paa_crl = build_direct_crl(chain.paa, chain.paa_key, [Revocation(chain.pai.serial_number, NOW)], _params())
    pai_crl = build_direct_crl(chain.pai, chain.pai_key, [Revocation(chain.dacs[0].serial_number, NOW)], _params())
    points = [
        (dcl.build_revocation_point(signer=chain.paa, delegator=None, paa=chain.paa, is_paa=True, data_url="https://x.example/paa.crl"), paa_crl),
        (dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/pai.crl"), pai_crl),
    ]
    crls = {p["dataURL"]: c for p, c in points}
    reports = setgen.generate_revocation_set([p for p, _ in points], fetch_crl=lambda p: crls[p["dataURL"]], trusted_paas=[chain.paa], at=NOW)
    rset = setgen.revocation_set(reports)
    # THEN the revoked DAC with the revoked PAI is 208, the other DAC 202
    assert [r.accepted for r in reports] == [True, True]
    assert check_revocation(dac=der(chain.dacs[0]), pai=der(chain.pai), revocation_set=rset).code == 208
    assert check_revocation(dac=der(chain.dacs[1]), pai=der(chain.pai), revocation_set=rset).code == 202


def test_each_failing_sdk_step_is_reported_with_its_number() -> None:
    chain = make_chain(dacs=1)
    other = make_chain(dacs=0)
    good_crl = build_direct_crl(chain.pai, chain.pai_key, [Revocation(chain.dacs[0].serial_number, NOW)], _params())
    base = dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/a.crl")
    foreign_crl = build_direct_crl(other.pai, other.pai_key, [], _params())
    cases: list[tuple[dict[str, object], bytes | None, str, str]] = [
        ({"revocationType": 2}, good_crl, "1", "revset.revocation_type"),
        ({"crlSignerCertificate": "not a pem"}, good_crl, "2", "revset.signer_unreadable"),
        ({"vid": 0xFFF2}, good_crl, "3-4", "revset.vid_pid"),
        ({"crlSignerCertificate": dcl.pem(other.pai)}, good_crl, "5", "revset.paa_not_found"),
        ({}, None, "6", "revset.crl_unavailable"),
        ({}, good_crl.replace(b"\x30", b"\x31", 1), "6", "revset.crl_unavailable"),
        ({}, foreign_crl, "7a", "revset.crl_akid"),
        ({"issuerSubjectKeyID": "00" * 20}, good_crl, "9", "revset.issuer_skid"),
    ]
    for change, crl_der, step, code in cases:
        # GIVEN a point (or CRL) broken for exactly one step
        point = {**base, **change}
        # WHEN it is dry-run
        [report] = setgen.generate_revocation_set([point], fetch_crl=lambda _p, c=crl_der: c, trusted_paas=[chain.paa], check_dcl=False)  # type: ignore[list-item]
        # THEN the point is dropped at that step, with that code
        assert not report.accepted
        assert [(s.step, s.findings[0].code) for s in report.failed if s.origin == "sdk"] == [(step, code)], change


def test_pem_at_the_data_url_fails_step_6_with_a_hint() -> None:
    chain = make_chain(dacs=0)
    crl = x509.load_der_x509_crl(build_direct_crl(chain.pai, chain.pai_key, [], _params()))
    from cryptography.hazmat.primitives.serialization import Encoding

    point = dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/a.crl")
    [report] = setgen.generate_revocation_set([point], fetch_crl=lambda _p: crl.public_bytes(Encoding.PEM), trusted_paas=[chain.paa])
    assert "must serve DER" in report.failed[0].detail


def test_extra_checks_catch_what_the_sdk_script_does_not() -> None:
    # GIVEN a CRL whose signature is broken and which expired: the SDK script checks neither
    chain = make_chain(dacs=1)
    expired = CrlParams(this_update=NOW - timedelta(days=40), next_update=NOW - timedelta(days=10), crl_number=1)
    crl_der = bytearray(build_direct_crl(chain.pai, chain.pai_key, [Revocation(chain.dacs[0].serial_number, NOW - timedelta(days=41))], expired))
    crl_der[-3] ^= 0x01  # inside the signature's s value
    point = dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url="https://x.example/a.crl")
    [report] = setgen.generate_revocation_set([point], fetch_crl=lambda _p: bytes(crl_der), trusted_paas=[chain.paa], at=NOW)
    # THEN the SDK's steps pass (the point is kept) and the extra step 8 reports both
    assert report.accepted
    step8 = next(s for s in report.steps if s.step == "8")
    assert {f.code for f in step8.findings} >= {"crl.signer_signature_invalid", "crl.expired"} and not step8.ok


def test_delegated_paa_point_without_delegator_fails_the_commissioner_cross_check() -> None:
    # GIVEN a PAA-delegated signer announced without crlSignerDelegator (the script accepts it)
    chain = make_chain(dacs=0)
    signer, key = chain.signer(of="paa")
    url = "https://x.example/paa-delegated.crl"
    crl_der = build_indirect_crl(signer, key, [CrlScope(chain.paa, [Revocation(chain.pai.serial_number, NOW)])], _params(url))
    point = dcl.build_revocation_point(signer=signer, delegator=None, paa=chain.paa, is_paa=True, data_url=url)
    [report] = setgen.generate_revocation_set([point], fetch_crl=lambda _p: crl_der, trusted_paas=[chain.paa])
    # THEN the SDK keeps the point but its entry never matches: the extra cross-check and the DCL step say so
    assert report.accepted
    failed = {s.step: [f.code for f in s.findings] for s in report.failed}
    assert failed["x"] == ["revset.cross_check"]
    assert "dcl.delegator_missing" in failed["dcl"]
    assert check_revocation(dac=der(chain.pai), pai=der(chain.pai), revocation_set=setgen.revocation_set([report])).code == 0
