"""DCL revocation points: the payload the project builds passes every rule; each rule has a negative test."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509

from matter_pki.errors import InputError
from matter_pki.profiles import PaaProfile, PaiProfile, Validity, sign
from matter_pki.revocation import dcl
from matter_pki.revocation.signer import CrlSignerProfile
from tests.unit.revocation_fixtures import START, Chain, make_chain, new_key

if TYPE_CHECKING:
    from collections.abc import Callable


@dataclass
class World:
    """Own chains and the four kinds of points."""

    chain: Chain
    scoped: Chain
    novid: Chain
    signer: x509.Certificate
    paa_signer: x509.Certificate

    def point(self, kind: str, **change: Any) -> dcl.RevocationPoint:
        c = self.chain
        base = {
            "paa": dcl.build_revocation_point(signer=c.paa, delegator=None, paa=c.paa, is_paa=True, data_url="https://crl.example.com/paa.crl"),
            "pai": dcl.build_revocation_point(signer=c.pai, delegator=None, paa=c.paa, is_paa=False, data_url="https://crl.example.com/pai.crl"),
            "pai-delegated": dcl.build_revocation_point(
                signer=self.signer, delegator=c.pai, paa=c.paa, is_paa=False, data_url="https://crl.example.com/pai-d.crl"
            ),
            "paa-delegated": dcl.build_revocation_point(
                signer=self.paa_signer, delegator=c.paa, paa=c.paa, is_paa=True, data_url="https://crl.example.com/paa-d.crl"
            ),
        }[kind]
        point: dict[str, Any] = {**base, **change}
        return {k: v for k, v in point.items() if v is not None}  # type: ignore[return-value]


@pytest.fixture(scope="module")
def world() -> World:
    chain = make_chain(dacs=0)
    return World(chain, make_chain(dacs=0, pid=0x8000), make_chain(dacs=0, vid=None), chain.signer()[0], chain.signer(of="paa")[0])


def _codes(point: dcl.RevocationPoint, paa: x509.Certificate, **kwargs: Any) -> list[str]:
    return [f.code for f in dcl.check_revocation_point(point, paa=paa, **kwargs)]


@pytest.mark.parametrize("kind", ["paa", "pai", "pai-delegated", "paa-delegated"])
def test_built_points_pass_every_rule(world: World, kind: str) -> None:
    # GIVEN the point the project derives for each kind of CRL signer
    point = world.point(kind)
    # THEN it breaks no DCL or SDK rule, and has the derived fields
    assert _codes(point, world.chain.paa) == []
    assert point["vid"] == 0xFFF1 and point["revocationType"] == 1 and point["schemaVersion"] == 0
    assert "pid" not in point and ("crlSignerDelegator" in point) is kind.endswith("delegated")
    skid_of = {"paa": world.chain.paa, "paa-delegated": world.chain.paa, "pai": world.chain.pai, "pai-delegated": world.chain.pai}
    assert point["issuerSubjectKeyID"] == dcl.skid_hex(skid_of[kind])


def test_non_vid_paa_needs_the_registered_vid(world: World) -> None:
    novid = world.novid
    with pytest.raises(InputError) as e:
        dcl.build_revocation_point(signer=novid.paa, delegator=None, paa=novid.paa, is_paa=True, data_url="https://x.example/a")
    assert e.value.code == "input.vid_required"
    point = dcl.build_revocation_point(signer=novid.paa, delegator=None, paa=novid.paa, is_paa=True, data_url="https://x.example/a", vid=0xFFF3)
    assert _codes(point, novid.paa) == ["dcl.vid_unverified"]
    assert _codes(point, novid.paa, registered_vid=0xFFF3) == []
    assert _codes(point, novid.paa, registered_vid=0xFFF4) == ["dcl.vid_mismatch"]


def test_product_scoped_pai_delegate_carries_vid_and_pid(world: World) -> None:
    # GIVEN a PID-scoped PAI: the DCL wants pid = the signer's PID, the SDK wants pid = the delegator's PID
    scoped = world.scoped
    signer, _key = scoped.signer()
    # WHEN the project makes its delegate and point
    point = dcl.build_revocation_point(signer=signer, delegator=scoped.pai, paa=scoped.paa, is_paa=False, data_url="https://x.example/s")
    # THEN the delegate carries VID and PID, the point pid 8000, and both rule sets pass
    assert point["pid"] == 0x8000 and "1.3.6.1.4.1.37244.2.2=8000" in signer.subject.rfc4514_string()
    assert _codes(point, scoped.paa) == []


def _ku_signer(chain: Chain, ku: x509.KeyUsage) -> x509.Certificate:
    key = new_key()
    builder = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "bad signer")]))
        .issuer_name(chain.pai.subject).public_key(key.public_key()).serial_number(7)
        .not_valid_before(START).not_valid_after(START.replace(year=START.year + 1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(chain.pai_key.public_key()), critical=False)
    )  # fmt: skip
    return sign(builder, chain.pai_key)


def _big_pai(chain: Chain) -> x509.Certificate:
    profile = PaiProfile(vid=0xFFF1, common_name="C" * 64, organization="O" * 64, validity=Validity.no_expiry(START))
    builder = profile.builder(chain.pai_key.public_key(), serial=99, issuer=chain.paa).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("d" * 60 + f"{i}.example") for i in range(5)]), critical=False
    )
    return sign(builder, chain.paa_key)


# (name, builds (point, paa, kwargs) from the world, expected code)
NEGATIVE: list[tuple[str, Callable[[World], tuple[dcl.RevocationPoint, x509.Certificate, dict[str, Any]]], str]] = [
    ("vid 0", lambda w: (w.point("pai", vid=0), w.chain.paa, {}), "dcl.vid_range"),
    ("vid 65536", lambda w: (w.point("pai", vid=65536), w.chain.paa, {}), "dcl.vid_range"),
    ("vid text", lambda w: (w.point("pai", vid="FFF1"), w.chain.paa, {}), "dcl.vid_range"),
    ("pid -1", lambda w: (w.point("pai", pid=-1), w.chain.paa, {}), "dcl.pid_range"),
    ("pid 65536", lambda w: (w.point("pai", pid=65536), w.chain.paa, {}), "dcl.pid_range"),
    ("label empty", lambda w: (w.point("pai", label=""), w.chain.paa, {}), "dcl.label_length"),
    ("label 65", lambda w: (w.point("pai", label="L" * 65), w.chain.paa, {}), "dcl.label_length"),
    ("label taken", lambda w: (w.point("pai"), w.chain.paa, {"existing": [w.point("pai", dataURL="https://other.example/x")]}), "dcl.label_taken"),
    ("update of unknown point", lambda w: (w.point("pai"), w.chain.paa, {"update": True}), "dcl.point_unknown"),
    ("signer unreadable", lambda w: (w.point("pai", crlSignerCertificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), w.chain.paa, {}), "dcl.certificate_unreadable"),
    ("signer missing", lambda w: (w.point("pai", crlSignerCertificate=""), w.chain.paa, {}), "dcl.certificate_unreadable"),
    ("delegator unreadable", lambda w: (w.point("pai-delegated", crlSignerDelegator="junk"), w.chain.paa, {}), "dcl.certificate_unreadable"),
    ("signer over 2048 characters", lambda w: (w.point("pai", crlSignerCertificate=dcl.pem(w.chain.pai) + "\n" * 1500), w.chain.paa, {}), "dcl.certificate_too_large"),
    ("issuer SKID lower case", lambda w: (w.point("pai", issuerSubjectKeyID=dcl.skid_hex(w.chain.pai).lower()), w.chain.paa, {}), "dcl.issuer_skid_format"),
    ("issuer SKID odd length", lambda w: (w.point("pai", issuerSubjectKeyID="ABC"), w.chain.paa, {}), "dcl.issuer_skid_format"),
    ("issuer SKID with colons", lambda w: (w.point("pai", issuerSubjectKeyID="AB:CD"), w.chain.paa, {}), "dcl.issuer_skid_format"),
    ("issuer SKID over 64", lambda w: (w.point("pai", issuerSubjectKeyID="AB" * 33), w.chain.paa, {}), "dcl.issuer_skid_format"),
    ("issuer SKID of the PAA on a PAI point", lambda w: (w.point("pai", issuerSubjectKeyID=dcl.skid_hex(w.chain.paa)), w.chain.paa, {}), "dcl.issuer_skid_mismatch"),
    ("issuer SKID of the delegate", lambda w: (w.point("pai-delegated", issuerSubjectKeyID=dcl.skid_hex(w.signer)), w.chain.paa, {}), "dcl.issuer_skid_mismatch"),
    ("issuer SKID of the PAA delegate", lambda w: (w.point("paa-delegated", issuerSubjectKeyID=dcl.skid_hex(w.paa_signer)), w.chain.paa, {}), "dcl.issuer_skid_mismatch"),
    ("dataURL ftp", lambda w: (w.point("pai", dataURL="ftp://crl.example.com/a.crl"), w.chain.paa, {}), "dcl.data_url"),
    ("dataURL without host", lambda w: (w.point("pai", dataURL="https:///a.crl"), w.chain.paa, {}), "dcl.data_url"),
    ("dataURL 257", lambda w: (w.point("pai", dataURL="https://x.example/" + "a" * 239), w.chain.paa, {}), "dcl.data_url"),
    ("dataURL with a space", lambda w: (w.point("pai", dataURL="https://x.example/a b.crl"), w.chain.paa, {}), "dcl.data_url"),
    ("dataURL missing", lambda w: (w.point("pai", dataURL=""), w.chain.paa, {}), "dcl.data_url"),
    ("dataURL taken", lambda w: (w.point("pai"), w.chain.paa, {"existing": [w.point("pai", label="other")]}), "dcl.data_url_taken"),
    ("dataFileSize on a CRL", lambda w: (w.point("pai", dataFileSize=100, dataDigest="AB", dataDigestType=1), w.chain.paa, {}), "dcl.data_fields_present"),
    ("revocationType 2", lambda w: (w.point("pai", revocationType=2), w.chain.paa, {}), "dcl.revocation_type"),
    ("schemaVersion 1", lambda w: (w.point("pai", schemaVersion=1), w.chain.paa, {}), "dcl.schema_version"),
    ("unknown field", lambda w: (w.point("pai", owner="me"), w.chain.paa, {}), "dcl.unknown_field"),
    ("isPAA not boolean", lambda w: (w.point("pai", isPAA="false"), w.chain.paa, {}), "dcl.unknown_field"),
    ("vid not the PAI's", lambda w: (w.point("pai", vid=0xFFF2), w.chain.paa, {}), "dcl.vid_mismatch"),
    ("vid not the VID-scoped PAA's", lambda w: (w.point("paa", vid=0xFFF2), w.chain.paa, {}), "dcl.vid_mismatch"),
    ("vid not the delegator's", lambda w: (w.point("pai-delegated", vid=0xFFF2), w.chain.paa, {}), "dcl.vid_mismatch"),
    ("pid on a PAA point", lambda w: (w.point("paa", pid=0x8000), w.chain.paa, {}), "dcl.pid_on_paa_point"),
    ("pid on an unscoped PAI point", lambda w: (w.point("pai", pid=0x8000), w.chain.paa, {}), "dcl.pid_mismatch"),
    ("pid missing for a scoped PAI", lambda w: (
        {**dcl.build_revocation_point(signer=w.scoped.pai, delegator=None, paa=w.scoped.paa, is_paa=False, data_url="https://x.example/a"), "pid": 0},
        w.scoped.paa, {}), "dcl.pid_mismatch"),
    ("unscoped delegate of a scoped PAI", lambda w: (
        dcl.build_revocation_point(
            signer=sign(CrlSignerProfile(validity=Validity.for_days(START, 30)).builder(new_key().public_key(), serial=5, issuer=w.scoped.pai), w.scoped.pai_key),
            delegator=w.scoped.pai, paa=w.scoped.paa, is_paa=False, data_url="https://x.example/a"),
        w.scoped.paa, {}), "dcl.pid_sdk_conflict"),
    ("self-signed signer on a PAI point", lambda w: (w.point("paa", isPAA=False), w.chain.paa, {}), "dcl.pai_point_self_signed"),
    ("another PAA on a PAA point", lambda w: (w.point("paa", crlSignerCertificate=dcl.pem(w.scoped.paa)), w.chain.paa, {}), "dcl.paa_point_not_paa"),
    ("PAA without AKID signs its own CRL", lambda w: _paa_without_akid(), "dcl.paa_without_akid"),
    ("delegate with keyEncipherment", lambda w: (
        w.point("pai-delegated", crlSignerCertificate=dcl.pem(_ku_signer(w.chain, x509.KeyUsage(False, False, True, False, False, False, True, False, False))),
                issuerSubjectKeyID=dcl.skid_hex(w.chain.pai)), w.chain.paa, {}), "dcl.signer_format"),
    ("delegate without cRLSign", lambda w: (
        w.point("pai-delegated", crlSignerCertificate=dcl.pem(_ku_signer(w.chain, x509.KeyUsage(True, False, False, False, False, False, False, False, False)))),
        w.chain.paa, {}), "dcl.signer_format"),
    ("delegate of another PAI", lambda w: (w.point("pai-delegated", crlSignerCertificate=dcl.pem(w.scoped.signer()[0])), w.chain.paa, {}), "dcl.not_chained"),
    ("PAI of another PAA", lambda w: (w.point("pai", crlSignerCertificate=dcl.pem(w.scoped.pai)), w.chain.paa, {}), "dcl.not_chained"),
    ("PAI delegate without delegator", lambda w: (w.point("pai-delegated", crlSignerDelegator=None), w.chain.paa, {}), "dcl.delegator_missing"),
    ("PAA delegate without delegator", lambda w: (w.point("paa-delegated", crlSignerDelegator=None), w.chain.paa, {}), "dcl.delegator_missing"),
    ("delegator on a direct PAI point", lambda w: (w.point("pai", crlSignerDelegator=dcl.pem(w.chain.paa)), w.chain.paa, {}), "dcl.delegator_unexpected"),
    ("PAA delegate with the PAI as delegator", lambda w: (w.point("paa-delegated", crlSignerDelegator=dcl.pem(w.chain.pai)), w.chain.paa, {}), "dcl.delegator_not_paa"),
    ("signer over 600 bytes DER", lambda w: (
        w.point("pai", crlSignerCertificate=dcl.pem(_big_pai(w.chain))), w.chain.paa, {}), "dcl.cross_check_size"),
]


def _paa_without_akid() -> tuple[dcl.RevocationPoint, x509.Certificate, dict[str, Any]]:
    key = new_key()
    paa = sign(PaaProfile(vid=0xFFF1, authority_key_id=False, validity=Validity.no_expiry(START)).builder(key.public_key(), serial=3), key)
    return dcl.build_revocation_point(signer=paa, delegator=None, paa=paa, is_paa=True, data_url="https://x.example/a"), paa, {}


@pytest.mark.parametrize("name", [n for n, _b, _c in NEGATIVE])
def test_each_rule_has_a_negative(world: World, name: str) -> None:
    # GIVEN a point broken in one way
    build, code = next((b, c) for n, b, c in NEGATIVE if n == name)
    point, paa, kwargs = build(world)
    # WHEN it is checked
    codes = _codes(point, paa, **kwargs)
    # THEN the rule's code is reported
    assert code in codes, codes


def test_every_dcl_code_has_a_negative_test() -> None:
    from matter_pki.findings import catalogue

    dcl_codes = {c for c in catalogue() if c.startswith("dcl.")}
    assert dcl_codes == {c for *_x, c in NEGATIVE} | {"dcl.vid_unverified"}


def test_dcld_command_line_is_explicit_and_shell_safe(world: World, tmp_path: Any) -> None:
    # GIVEN a delegated PAI point
    point = world.point("pai-delegated", label="Acme PAI 1 'main' CRL")
    # WHEN rendered as a dcld command with certificate files
    line = dcl.dcld_command(point, certificate="signer.pem", delegator="pai.pem")
    words = shlex.split(line.replace('"$DCL_ACCOUNT"', "acct"))
    # THEN it is add-revocation-point with every field, --is-paa explicit (dcld defaults it to true)
    assert words[:4] == ["dcld", "tx", "pki", "add-revocation-point"]
    assert "--is-paa=false" in words and "--label=Acme PAI 1 'main' CRL" in words
    assert "--certificate=signer.pem" in words and "--certificate-delegator=pai.pem" in words
    assert f"--issuer-subject-key-id={point['issuerSubjectKeyID']}" in words and "--revocation-type=1" in words
    assert not any(w.startswith("--pid") for w in words) and words[-1] == "--from=acct"
    update = shlex.split(dcl.dcld_command(point, update=True, certificate="s.pem", delegator="d.pem").replace('"$DCL_ACCOUNT"', "a"))
    assert update[3] == "update-revocation-point" and not any(w.startswith(("--is-paa", "--revocation-type")) for w in update)


def test_load_points_reads_dcld_query_shapes(world: World) -> None:
    import json

    point = world.point("pai")
    shapes = [
        {"PkiRevocationDistributionPoint": [point]},
        {"pkiRevocationDistributionPointsByIssuerSubjectKeyID": {"issuerSubjectKeyID": "X", "points": [{**point, "vid": str(point["vid"])}]}},
        [point],
        point,
    ]
    for shape in shapes:
        [loaded] = dcl.load_points(json.dumps(shape).encode())
        assert loaded["vid"] == point["vid"] and loaded["label"] == point["label"]
    with pytest.raises(InputError):
        dcl.load_points(b"[1]")
