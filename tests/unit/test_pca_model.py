"""The Private CA MODEL follows the documentation it cites (matter_pki/testing/pca_model.py, sources [T] [O] [M] [I] [G] [R] [Q])."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.profiles import DacProfile, PaaProfile, PaiProfile, Validity
from matter_pki.testing.pca_model import (
    NINE_BIT_CA_KEY_USAGE,
    PCA_TEMPLATE_SUBORDINATE_PATHLEN0,
    ModelCa,
    PcaError,
    PrivateCaModel,
    issue_certificate,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def csr(key: ec.EllipticCurvePrivateKey | None = None, *, san: bool = False, cn: str | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("device.example")]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def root() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    profile = PaaProfile.for_private_ca(vid=0xFFF1, validity=Validity.no_expiry(NOW - timedelta(days=10)))
    cert = issue_certificate({**profile.pca_issue_parts(), "Csr": csr(key)}, ca_key=key, ca_certificate=None, serial=1, now=NOW)
    return key, cert


def pai(not_after: datetime | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    paa_key, paa = root()
    key = ec.generate_private_key(ec.SECP256R1())
    end = not_after or datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    profile = PaiProfile(vid=0xFFF1, pid=0x8000, validity=Validity(not_before=NOW - timedelta(days=5), not_after=end))
    cert = issue_certificate({**profile.pca_issue_parts(), "Csr": csr(key)}, ca_key=paa_key, ca_certificate=paa, serial=2, now=NOW)
    return key, cert


def dac_request(pai_cert: x509.Certificate, **overrides: Any) -> dict[str, Any]:
    profile = DacProfile.for_issuer(pai_cert, pid=0x8000, validity=Validity.no_expiry(NOW))
    return {**profile.pca_issue_parts(), "Csr": csr(), **overrides}


def test_a_csr_san_is_copied_when_the_api_gives_none() -> None:
    # [T] BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough: SAN "[Passthrough from API or CSR]"
    key, cert = pai()
    dac = issue_certificate(dac_request(cert, Csr=csr(san=True)), ca_key=key, ca_certificate=cert, serial=5, now=NOW)
    assert dac.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [
        "device.example"
    ]


def test_the_subject_comes_from_the_api_else_from_the_csr() -> None:
    # [T] Subject "[Passthrough from API or CSR]", [O] API before CSR
    key, cert = pai()
    from_api = issue_certificate(dac_request(cert, Csr=csr(cn="from csr")), ca_key=key, ca_certificate=cert, serial=5, now=NOW)
    assert [a.value for a in from_api.subject] == ["Matter DAC", "FFF1", "8000"]
    request = dac_request(cert, Csr=csr(cn="from csr"))
    request["ApiPassthrough"] = {"Extensions": request["ApiPassthrough"]["Extensions"]}
    from_csr = issue_certificate(request, ca_key=key, ca_certificate=cert, serial=6, now=NOW)
    assert [a.value for a in from_csr.subject] == ["from csr"]


def test_the_root_template_writes_a_nine_bit_key_usage_and_no_akid() -> None:
    # [T] RootCACertificate_APIPassthrough: KU defined by the template, AKI "[Passthrough from API]";
    # [M] nine-bit KeyUsage by default, no AKI on roots
    _key, cert = root()
    raw = parse_certificate(cert.public_bytes(Encoding.DER))
    ku = raw.extensions_for("2.5.29.15")
    assert [(e.critical, e.value) for e in ku] == [(True, NINE_BIT_CA_KEY_USAGE)]
    assert raw.extensions_for("2.5.29.35") == []
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length is None


def test_a_template_key_usage_wins_over_the_passthrough_one() -> None:
    # [O] the template definition has the highest priority; [T] the non-blank PathLen0 template defines KU
    paa_key, paa = root()
    profile = PaiProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW - timedelta(days=1)))
    request = {**profile.pca_issue_parts(), "Csr": csr(), "TemplateArn": PCA_TEMPLATE_SUBORDINATE_PATHLEN0}
    cert = issue_certificate(request, ca_key=paa_key, ca_certificate=paa, serial=3, now=NOW)
    ku = parse_certificate(cert.public_bytes(Encoding.DER)).extensions_for("2.5.29.15")
    assert [e.value for e in ku] == [NINE_BIT_CA_KEY_USAGE]
    # while a blank template keeps the passed-through bytes exactly
    dac = issue_certificate(dac_request(paa, TemplateArn=profile.pca_template_arn), ca_key=paa_key, ca_certificate=paa, serial=4, now=NOW)
    assert [e.value for e in parse_certificate(dac.public_bytes(Encoding.DER)).extensions_for("2.5.29.15")] == [
        base64.b64decode("AwIHgA==")
    ]


def test_a_certificate_may_not_outlive_its_ca() -> None:
    # [I] "The end of the validity period ... must not exceed the limit set on its parents"
    key, cert = pai(not_after=NOW + timedelta(days=730))
    with pytest.raises(PcaError) as err:
        issue_certificate(dac_request(cert), ca_key=key, ca_certificate=cert, serial=5, now=NOW)
    assert err.value.code == "ValidationException"
    ends = dac_request(cert, Validity={"Type": "DAYS", "Value": 365})
    assert issue_certificate(ends, ca_key=key, ca_certificate=cert, serial=6, now=NOW).not_valid_after_utc == NOW + timedelta(days=365)


def test_not_before_defaults_to_an_hour_before_issuance() -> None:
    # [I] ValidityNotBefore: "issuance time minus 60 minutes" by default
    key, cert = pai()
    request = dac_request(cert)
    del request["ValidityNotBefore"]
    assert issue_certificate(request, ca_key=key, ca_certificate=cert, serial=5, now=NOW).not_valid_before_utc == NOW - timedelta(hours=1)


def service(clock: list[datetime], **kwargs: Any) -> tuple[PrivateCaModel, x509.Certificate]:
    model = PrivateCaModel(now=lambda: clock[0], **kwargs)
    key, cert = pai()
    model.cas[ARN] = ModelCa(ARN, key, cert, [])
    return model, cert


def test_the_idempotency_token_lasts_five_minutes() -> None:
    # [I] "Idempotency tokens for IssueCertificate time out after five minutes"
    clock = [NOW]
    model, cert = service(clock)
    params = {**dac_request(cert), "CertificateAuthorityArn": ARN, "IdempotencyToken": "t"}
    first = model.issue(params, serial=10)
    clock[0] += timedelta(minutes=4, seconds=59)
    assert model.issue(params, serial=11) == first
    clock[0] += timedelta(seconds=2)
    assert model.issue(params, serial=12) != first and len(model.certificates) == 2


def test_get_certificate_answers_in_progress_until_issued() -> None:
    # [G] RequestInProgressException while the certificate is being issued
    clock = [NOW]
    model, cert = service(clock, pending_for=timedelta(seconds=3))
    arn = model.issue({**dac_request(cert), "CertificateAuthorityArn": ARN}, serial=10)
    with pytest.raises(PcaError) as err:
        model.get(ARN, arn)
    assert err.value.code == "RequestInProgressException"
    clock[0] += timedelta(seconds=3)
    assert x509.load_der_x509_certificate(model.get(ARN, arn)[0]).serial_number == 10


def test_revocation_by_hex_serial_once() -> None:
    # [R] hexadecimal serial; RequestAlreadyProcessedException when done already
    clock = [NOW]
    model, cert = service(clock)
    model.issue({**dac_request(cert), "CertificateAuthorityArn": ARN}, serial=0xABCDEF)
    model.revoke(ARN, "ab:cd:ef", "UNSPECIFIED")
    assert model.revoked_serials() == [0xABCDEF]
    for serial, code in (("ab:cd:ef", "RequestAlreadyProcessedException"), ("01", "ResourceNotFoundException")):
        with pytest.raises(PcaError) as err:
            model.revoke(ARN, serial, "UNSPECIFIED")
        assert err.value.code == code


def test_quotas_throttle_per_second_and_cap_certificates_per_ca() -> None:
    # [Q] IssueCertificate 25/s (ThrottlingException past it); certificates per CA (LimitExceededException)
    clock = [NOW]
    model, cert = service(clock, issue_quota_per_second=25, certificates_per_ca=30)
    params = {**dac_request(cert), "CertificateAuthorityArn": ARN}
    for n in range(25):
        model.issue(params, serial=100 + n)
    with pytest.raises(PcaError) as err:
        model.issue(params, serial=200)
    assert err.value.code == "ThrottlingException"
    clock[0] += timedelta(seconds=1)
    for n in range(5):
        model.issue(params, serial=300 + n)
    with pytest.raises(PcaError) as err:
        model.issue(params, serial=400)
    assert err.value.code == "LimitExceededException"


def test_a_ca_that_is_not_active_does_not_issue() -> None:
    # [I] InvalidStateException
    clock = [NOW]
    model, cert = service(clock)
    model.cas[ARN].state = "DISABLED"
    with pytest.raises(PcaError) as err:
        model.issue({**dac_request(cert), "CertificateAuthorityArn": ARN}, serial=1)
    assert err.value.code == "InvalidStateException"
