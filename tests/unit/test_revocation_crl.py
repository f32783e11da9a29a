"""Direct and indirect CRL builders and the delegated CRL signer profile: bytes, openssl verification, refusals."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import IssuanceError, ProfileError
from matter_pki.profiles import Validity, sign
from matter_pki.revocation import crl as crl_mod
from matter_pki.revocation.crl import CrlParams, CrlScope, Revocation, build_direct_crl, build_indirect_crl
from matter_pki.revocation.lint import lint_crl, lint_crl_signer
from matter_pki.revocation.rawcrl import parse_crl
from matter_pki.revocation.signer import CrlSignerProfile
from matter_pki.testing.pca_model import issue_certificate
from tests.unit.revocation_fixtures import NOW, START, der, make_chain, new_key

if TYPE_CHECKING:
    from pathlib import Path

OPENSSL = shutil.which("openssl")


def _params(url: str | None = None, number: int = 7) -> CrlParams:
    return CrlParams(this_update=NOW, next_update=NOW + timedelta(days=30), crl_number=number, idp_url=url)


def openssl_verify(crl_der: bytes, signer: x509.Certificate, tmp_path: Path) -> str:
    """``openssl crl -verify`` against the signer: returns openssl's text output (raises when it does not verify)."""
    if OPENSSL is None:
        pytest.skip("openssl not installed")
    (tmp_path / "c.crl").write_bytes(crl_der)
    (tmp_path / "signer.pem").write_bytes(signer.public_bytes(Encoding.PEM))
    proc = subprocess.run(
        [OPENSSL, "crl", "-inform", "DER", "-in", str(tmp_path / "c.crl"), "-CAfile", str(tmp_path / "signer.pem"), "-noout", "-text"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "verify OK" in proc.stderr, proc.stderr
    return proc.stdout


def test_direct_crl_bytes_and_openssl(tmp_path: Path) -> None:
    # GIVEN a PAI with two DACs revoked
    chain = make_chain(dacs=2)
    revoked = [Revocation(d.serial_number, NOW - timedelta(hours=1), x509.ReasonFlags.key_compromise) for d in chain.dacs]
    # WHEN its direct CRL is built
    crl_der = build_direct_crl(chain.pai, chain.pai_key, revoked, _params())
    # THEN openssl verifies it with the PAI, and it is v2 with AKID = PAI SKID, CRL Number 7, both serials, no IDP
    text = openssl_verify(crl_der, chain.pai, tmp_path)
    assert "Version 2" in text and "CRL Number: \n                7" in text.replace("\r", "")
    raw = parse_crl(crl_der)
    assert raw.issuer == parse_certificate(der(chain.pai)).subject.der
    assert raw.akid() == chain.pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert [int.from_bytes(e.serial, "big") for e in raw.entries] == [d.serial_number for d in chain.dacs]
    assert not raw.extensions_for("2.5.29.28") and lint_crl(crl_der, signer=chain.pai, at=NOW) == []


def test_direct_crl_with_idp_for_several_points(tmp_path: Path) -> None:
    chain = make_chain(dacs=1)
    crl_der = build_direct_crl(chain.pai, chain.pai_key, [], _params("https://crl.example.com/pai-1.crl"))
    idp = x509.load_der_x509_crl(crl_der).extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical and not idp.value.indirect_crl
    assert [n.value for n in idp.value.full_name or []] == ["https://crl.example.com/pai-1.crl"]
    openssl_verify(crl_der, chain.pai, tmp_path)


def test_indirect_crl_names_the_ca_on_every_entry(tmp_path: Path) -> None:
    # GIVEN a delegated signer of the PAI and three revoked DACs
    chain = make_chain(dacs=3)
    signer, key = chain.signer()
    revoked = [Revocation(d.serial_number, NOW) for d in chain.dacs]
    # WHEN the indirect CRL is built
    crl_der = build_indirect_crl(signer, key, [CrlScope(chain.pai, revoked)], _params("https://crl.example.com/d.crl"))
    # THEN openssl verifies it with the signer; the IDP is critical, one URI, indirectCRL; every entry names the PAI
    text = openssl_verify(crl_der, signer, tmp_path)
    assert "Indirect CRL" in text
    raw = parse_crl(crl_der)
    pai_subject = parse_certificate(der(chain.pai)).subject.der
    assert [e.certificate_issuer_names() for e in raw.entries] == [[pai_subject]] * 3
    assert all(e.extensions_for("2.5.29.29")[0].critical for e in raw.entries)
    assert raw.extensions_for("2.5.29.28")[0].critical
    assert lint_crl(crl_der, signer=signer, at=NOW) == []


def test_indirect_crl_needs_an_idp_url() -> None:
    chain = make_chain(dacs=0)
    signer, key = chain.signer()
    with pytest.raises(ProfileError) as e:
        build_indirect_crl(signer, key, [CrlScope(chain.pai, [])], _params())
    assert e.value.code == "profile.crl_idp_url"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: Revocation(0, NOW), "profile.serial_not_positive"),
        (lambda: Revocation(1 << 160, NOW), "profile.serial_too_long"),
        (lambda: Revocation(5, NOW.replace(tzinfo=None)), "profile.naive_time"),
        (lambda: Revocation(5, NOW, x509.ReasonFlags.certificate_hold), "profile.revocation_reason"),
        (lambda: CrlParams(this_update=NOW, next_update=NOW, crl_number=1), "profile.crl_next_update"),
        (lambda: CrlParams(this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=-1), "profile.crl_number"),
        (lambda: CrlParams(this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=1 << 160), "profile.crl_number"),
        (lambda: CrlParams(this_update=NOW, next_update=NOW + timedelta(days=1), crl_number=1, idp_url="file:///x"), "profile.crl_idp_url"),
    ],
)
def test_bad_inputs_are_refused_with_a_code(make: object, code: str) -> None:
    with pytest.raises(ProfileError) as e:
        make()  # type: ignore[operator]
    assert e.value.code == code


def test_a_key_that_is_not_the_signers_is_caught_before_publishing() -> None:
    # GIVEN a signing key that does not belong to the CA certificate (a misconfigured HSM slot, say)
    chain = make_chain(dacs=0)
    # WHEN a CRL is built with it THEN the self-check refuses it
    with pytest.raises(IssuanceError) as e:
        build_direct_crl(chain.pai, new_key(), [], _params())
    assert e.value.code == "crl.signature_invalid"


def test_a_re_encoded_issuer_name_is_caught_before_publishing(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = make_chain(dacs=0)
    monkeypatch.setattr(crl_mod, "_subject_der", lambda _cert: b"\x30\x00")
    with pytest.raises(IssuanceError) as e:
        build_direct_crl(chain.pai, chain.pai_key, [], _params())
    assert e.value.code == "crl.issuer_mismatch"


# -- the delegated CRL signer profile ----------------------------------------------------------
def test_signer_profile_matches_the_sdk_delegate_vectors() -> None:
    # GIVEN a signer the PAI delegates to
    chain = make_chain(dacs=0)
    signer, _key = chain.signer()
    # THEN: v3, CA:FALSE critical, KU cRLSign only (03 02 01 02) critical, SKID, AKID = PAI SKID, CN only
    assert signer.version is x509.Version.v3
    bc = signer.extensions.get_extension_for_class(x509.BasicConstraints)
    ku = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert bc.critical and not bc.value.ca and ku.critical and ku.value.public_bytes() == bytes.fromhex("03020102")
    assert signer.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == (
        chain.pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    assert signer.subject.rfc4514_string() == "CN=Matter CRL Signer"
    assert lint_crl_signer(der(signer), der(chain.pai)) == []


def test_signer_profile_refuses_bad_issuers_and_values() -> None:
    chain = make_chain(dacs=1)
    validity = Validity.for_days(START, 30)
    with pytest.raises(ProfileError) as e:
        CrlSignerProfile(validity=validity).builder(new_key().public_key(), serial=1, issuer=chain.dacs[0])
    assert e.value.code == "profile.issuer_not_ca"
    with pytest.raises(ProfileError):
        CrlSignerProfile(validity=validity, pid=0x8000)
    with pytest.raises(ProfileError):
        CrlSignerProfile(validity=Validity.for_days(START - timedelta(days=2), 30)).builder(
            new_key().public_key(), serial=1, issuer=chain.pai
        )
    with pytest.raises(ProfileError):
        CrlSignerProfile(validity=validity, vid=0xFFF2).builder(new_key().public_key(), serial=1, issuer=chain.pai)


def test_private_ca_rendering_gives_the_same_certificate_profile() -> None:
    # GIVEN the signer profile rendered for Private CA (blank end-entity template + passthrough)
    chain = make_chain(dacs=0)
    profile = CrlSignerProfile(validity=Validity.for_days(START, 30), digital_signature=True)
    parts = profile.pca_issue_parts()
    assert parts["ApiPassthrough"]["Extensions"]["CustomExtensions"] == [
        {"ObjectIdentifier": "2.5.29.15", "Value": "AwIBgg==", "Critical": True}
    ]
    # WHEN the documented template behaviour (matter_pki.testing.pca_model, a MODEL of Private CA) issues it
    key = new_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(profile.subject()).sign(key, hashes.SHA256())
    request = {**parts, "Csr": csr.public_bytes(Encoding.PEM)}
    modelled = issue_certificate(request, ca_key=chain.pai_key, ca_certificate=chain.pai, serial=77, now=NOW)  # type: ignore[arg-type]
    local = sign(profile.builder(key.public_key(), serial=77, issuer=chain.pai), chain.pai_key)
    # THEN subject and every extension are byte-identical to the local rendering, and it lints clean
    assert modelled.subject.public_bytes() == local.subject.public_bytes()
    assert [(e.oid, e.critical, e.value.public_bytes()) for e in modelled.extensions] == [
        (e.oid, e.critical, e.value.public_bytes()) for e in local.extensions
    ]
    assert lint_crl_signer(der(modelled), der(chain.pai)) == []
