"""Profiles: the DER they produce, their rules, and the two renderings describing one certificate."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import ProfileError
from matter_pki.profiles import (
    NO_EXPIRY,
    PCA_TEMPLATE_DAC,
    PCA_TEMPLATE_PAA,
    PCA_TEMPLATE_PAI,
    DacProfile,
    PaaProfile,
    PaiProfile,
    Validity,
    sign,
)
from matter_pki.testing.pca_model import issue_certificate
from matter_pki.validate import validate_att_cert

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def csr_for(k: ec.EllipticCurvePrivateKey) -> bytes:
    return x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(k, hashes.SHA256()).public_bytes(Encoding.DER)


def ext_value(cert: x509.Certificate, oid: str) -> tuple[bool, bytes]:
    (ext,) = [e for e in parse_certificate(cert.public_bytes(Encoding.DER)).extensions if e.oid == oid]
    return ext.critical, ext.value


@pytest.fixture(scope="module")
def chain():
    k_paa, k_pai, k_dac = key(), key(), key()
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).builder(k_paa.public_key(), serial=1), k_paa)
    pai = sign(PaiProfile(vid=0xFFF1, pid=0x8000, validity=Validity.no_expiry(NOW)).builder(k_pai.public_key(), serial=2, issuer=paa), k_paa)
    dac_profile = DacProfile.for_issuer(pai, pid=0x8000, validity=Validity.for_days(NOW + timedelta(hours=1), 365))
    dac = sign(dac_profile.builder(k_dac.public_key(), serial=3, issuer=pai), k_pai)
    return {"paa": paa, "pai": pai, "dac": dac, "keys": (k_paa, k_pai, k_dac), "dac_profile": dac_profile}


def test_dac_extensions_are_exact_der(chain) -> None:
    dac = chain["dac"]
    assert ext_value(dac, "2.5.29.19") == (True, bytes.fromhex("3000"))
    assert ext_value(dac, "2.5.29.15") == (True, bytes.fromhex("03020780"))
    assert [e.oid for e in parse_certificate(dac.public_bytes(Encoding.DER)).extensions] == ["2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35"]


def test_ca_key_usage_and_path_length(chain) -> None:
    assert ext_value(chain["pai"], "2.5.29.15") == (True, bytes.fromhex("03020106"))
    assert ext_value(chain["pai"], "2.5.29.19") == (True, bytes.fromhex("30060101ff020100"))
    assert ext_value(chain["paa"], "2.5.29.19") == (True, bytes.fromhex("30060101ff020101"))


def test_issuer_is_byte_for_byte_the_issuer_subject(chain) -> None:
    dac = parse_certificate(chain["dac"].public_bytes(Encoding.DER))
    pai = parse_certificate(chain["pai"].public_bytes(Encoding.DER))
    assert dac.issuer.der == pai.subject.der


def test_akid_links_to_issuer_skid(chain) -> None:
    pai_skid = chain["pai"].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    akid = chain["dac"].extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert akid.key_identifier == pai_skid and akid.authority_cert_issuer is None


def test_subject_is_vid_pid_utf8(chain) -> None:
    raw = parse_certificate(chain["dac"].public_bytes(Encoding.DER)).subject
    assert raw.attributes == (("2.5.4.3", 0x0C, b"Matter DAC"), ("1.3.6.1.4.1.37244.2.1", 0x0C, b"FFF1"), ("1.3.6.1.4.1.37244.2.2", 0x0C, b"8000"))


def test_no_expiry_is_generalized_99991231235959(chain) -> None:
    raw = parse_certificate(chain["pai"].public_bytes(Encoding.DER))
    assert (raw.not_after.tag, raw.not_after.text) == (0x18, "99991231235959Z")
    assert chain["pai"].not_valid_after_utc == NO_EXPIRY


def test_days_validity_ends_one_second_early() -> None:
    v = Validity.for_days(NOW, 10)
    assert v.not_after == NOW + timedelta(days=10) - timedelta(seconds=1)


def test_generated_chain_is_valid(chain) -> None:
    der = {k: chain[k].public_bytes(Encoding.DER) for k in ("paa", "pai", "dac")}
    result = validate_att_cert(paa=der["paa"], pai=der["pai"], dac=der["dac"], at=NOW + timedelta(days=2), mode="commissioner")
    assert result.ok, result.reason


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (lambda: PaaProfile(pid=0x8000, validity=Validity.no_expiry(NOW)), "profile.paa_pid"),
        (lambda: PaiProfile(vid=None, validity=Validity.no_expiry(NOW)), "profile.vid_required"),
        (lambda: DacProfile(vid=0xFFF1, pid=None, validity=Validity.no_expiry(NOW)), "profile.pid_required"),
        (lambda: DacProfile(vid=0x10000, pid=1, validity=Validity.no_expiry(NOW)), "profile.vid_range"),
        (lambda: DacProfile(vid=1, pid=1, common_name="x" * 65, validity=Validity.no_expiry(NOW)), "profile.subject_text"),
        (lambda: DacProfile(vid=1, pid=1, common_name="a\nb", validity=Validity.no_expiry(NOW)), "profile.subject_text"),
        (lambda: Validity(not_before=NOW, not_after=NOW), "profile.validity_inverted"),
        (lambda: Validity(not_before=datetime(2026, 1, 1), not_after=NO_EXPIRY), "profile.naive_time"),
        (lambda: Validity.for_days(NOW, 0), "profile.validity_days"),
    ],
)
def test_profile_rules_are_enforced(factory, code: str) -> None:
    with pytest.raises(ProfileError) as err:
        factory()
    assert err.value.code == code


def test_dac_pid_must_match_product_scoped_pai(chain) -> None:
    with pytest.raises(ProfileError) as err:
        DacProfile.for_issuer(chain["pai"], pid=0x8001, validity=Validity.no_expiry(NOW))
    assert err.value.code == "profile.pid_not_allowed"


def test_dac_before_pai_not_before_is_refused(chain) -> None:
    profile = DacProfile.for_issuer(chain["pai"], pid=0x8000, validity=Validity.no_expiry(NOW - timedelta(seconds=1)))
    with pytest.raises(ProfileError) as err:
        profile.builder(key().public_key(), serial=5, issuer=chain["pai"])
    assert err.value.code == "profile.validity_outside_issuer"


def test_dac_starting_when_the_pai_expires_is_refused() -> None:
    # chip checks the chain at the DAC notBefore with OpenSSL, where a notAfter equal to that instant is
    # expired (x509_vfy.c X509_cmp_time): the profile must refuse what chip would refuse.
    k_paa, k_pai = key(), key()
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).builder(k_paa.public_key(), serial=1), k_paa)
    end = NOW + timedelta(days=10)
    pai_validity = Validity(not_before=NOW, not_after=end)
    pai = sign(PaiProfile(vid=0xFFF1, pid=None, validity=pai_validity).builder(k_pai.public_key(), serial=2, issuer=paa), k_paa)
    at_end = DacProfile.for_issuer(pai, pid=0x8000, validity=Validity(not_before=end, not_after=end + timedelta(days=1)))
    with pytest.raises(ProfileError) as err:
        at_end.builder(key().public_key(), serial=5, issuer=pai)
    assert err.value.code == "profile.validity_outside_issuer"
    just_before = Validity(not_before=end - timedelta(seconds=1), not_after=end + timedelta(days=1))
    DacProfile.for_issuer(pai, pid=0x8000, validity=just_before).builder(key().public_key(), serial=6, issuer=pai)


def test_dac_profile_vid_other_than_pai_vid_is_refused(chain) -> None:
    profile = DacProfile(vid=0xFFF2, pid=0x8000, validity=Validity.no_expiry(NOW + timedelta(hours=1)))
    with pytest.raises(ProfileError) as err:
        profile.check_issuer(chain["pai"])
    assert err.value.code == "profile.vid_mismatch"


@pytest.mark.parametrize("serial", [0, -1, 1 << 160])
def test_serial_rules(chain, serial: int) -> None:
    with pytest.raises(ProfileError):
        chain["dac_profile"].builder(key().public_key(), serial=serial, issuer=chain["pai"])


def test_non_p256_key_is_refused(chain) -> None:
    with pytest.raises(ProfileError) as err:
        chain["dac_profile"].builder(ec.generate_private_key(ec.SECP384R1()).public_key(), serial=5, issuer=chain["pai"])
    assert err.value.code == "profile.key_not_p256"


def test_pca_parts_for_dac(chain) -> None:
    parts = chain["dac_profile"].pca_issue_parts()
    assert parts["TemplateArn"] == PCA_TEMPLATE_DAC
    assert parts["SigningAlgorithm"] == "SHA256WITHECDSA"
    assert parts["ApiPassthrough"]["Extensions"]["CustomExtensions"] == [
        {"ObjectIdentifier": "2.5.29.15", "Value": base64.b64encode(bytes.fromhex("03020780")).decode(), "Critical": True}
    ]
    assert parts["ApiPassthrough"]["Subject"]["CustomAttributes"] == [
        {"ObjectIdentifier": "2.5.4.3", "Value": "Matter DAC"},
        {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": "FFF1"},
        {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.2", "Value": "8000"},
    ]


@pytest.mark.parametrize("expiry", ["days", "none"])
def test_pca_request_describes_the_same_dac(chain, expiry: str) -> None:
    # GIVEN one DAC profile  WHEN rendered as a builder and as a Private CA request (run through the model)
    k_paa, k_pai, k_dac = chain["keys"]
    validity = Validity.for_days(NOW + timedelta(hours=2), 30) if expiry == "days" else Validity.no_expiry(NOW + timedelta(hours=2))
    profile = DacProfile.for_issuer(chain["pai"], pid=0x8000, validity=validity)
    local = sign(profile.builder(k_dac.public_key(), serial=77, issuer=chain["pai"]), k_pai)
    request = {**profile.pca_issue_parts(), "Csr": csr_for(k_dac), "CertificateAuthorityArn": "arn", "IdempotencyToken": "t"}
    modelled = issue_certificate(request, ca_key=k_pai, ca_certificate=chain["pai"], serial=77, now=NOW)
    # THEN the to-be-signed bytes are identical
    assert modelled.tbs_certificate_bytes == local.tbs_certificate_bytes


def test_pca_request_describes_the_same_pai_and_paa(chain) -> None:
    k_paa, k_pai, _ = chain["keys"]
    pai_profile = PaiProfile(vid=0xFFF1, pid=0x8000, validity=Validity.no_expiry(NOW))
    assert pai_profile.pca_issue_parts()["TemplateArn"] == PCA_TEMPLATE_PAI
    local = sign(pai_profile.builder(k_pai.public_key(), serial=9, issuer=chain["paa"]), k_paa)
    modelled = issue_certificate({**pai_profile.pca_issue_parts(), "Csr": csr_for(k_pai)}, ca_key=k_paa, ca_certificate=chain["paa"], serial=9, now=NOW)
    assert modelled.tbs_certificate_bytes == local.tbs_certificate_bytes
    paa_profile = PaaProfile.for_private_ca(vid=0xFFF1, validity=Validity.no_expiry(NOW))
    assert paa_profile.pca_issue_parts()["TemplateArn"] == PCA_TEMPLATE_PAA
    local_paa = sign(paa_profile.builder(k_paa.public_key(), serial=8), k_paa)
    modelled_paa = issue_certificate({**paa_profile.pca_issue_parts(), "Csr": csr_for(k_paa)}, ca_key=k_paa, ca_certificate=None, serial=8, now=NOW)
    # The root template's own keyUsage wins over passthrough and Private CA writes it in the nine-bit
    # form (TroubleshootPcaMatter): the only difference from the profile, and chip accepts it (§12).
    from matter_pki.certparse import parse_certificate

    ours, aws = parse_certificate(local_paa.public_bytes(Encoding.DER)), parse_certificate(modelled_paa.public_bytes(Encoding.DER))
    assert [(e.oid, e.critical) for e in aws.extensions] == [(e.oid, e.critical) for e in ours.extensions]
    for mine, theirs in zip(ours.extensions, aws.extensions, strict=True):
        if mine.oid == "2.5.29.15":
            assert (mine.value, theirs.value) == (bytes.fromhex("03020186"), bytes.fromhex("0303078600"))
        else:
            assert mine.value == theirs.value
    assert (aws.subject, aws.issuer, aws.spki, aws.not_before, aws.not_after) == (ours.subject, ours.issuer, ours.spki, ours.not_before, ours.not_after)


def test_default_paa_cannot_be_rendered_for_private_ca() -> None:
    with pytest.raises(ProfileError) as err:
        PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).pca_issue_parts()
    assert err.value.code == "profile.pca_paa_shape"


def test_ca_configuration() -> None:
    conf = PaiProfile(vid=0xFFF1, pid=0x8000, organization="ACME", validity=Validity.no_expiry(NOW)).pca_ca_configuration()
    assert conf["KeyAlgorithm"] == "EC_prime256v1" and conf["SigningAlgorithm"] == "SHA256WITHECDSA"
    assert [a["ObjectIdentifier"] for a in conf["Subject"]["CustomAttributes"]] == ["2.5.4.3", "2.5.4.10", "1.3.6.1.4.1.37244.2.1", "1.3.6.1.4.1.37244.2.2"]
