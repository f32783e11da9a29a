"""Revocation on AWS: the KMS signer adapter (moto, Stubber), its certificate from a Private CA PAI (a MODEL of the
documented templates, tests/lambdas/fakes.py), KMS-signed CRLs in S3 (moto) checked with openssl and the SDK's rules,
and the DCL point of a Private CA PAI from the CDK outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from moto import mock_aws

from matter_pki.backends import aws_crl
from matter_pki.backends.aws_pca import PrivateCa
from matter_pki.backends.kms import KmsEcPrivateKey
from matter_pki.errors import CertificateError, ConfigError, InputError, KeyStoreError
from matter_pki.profiles import PCA_TEMPLATE_DAC, DacProfile, Validity, sign
from matter_pki.revocation import dcl, setgen
from matter_pki.revocation.delegate import check_revocation
from tests.lambdas.fakes import REGION, ModelPrivateCa
from tests.unit.test_local_fixtures import cli_env, run_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BUCKET = "matter-crl-bucket"
URL = "https://d111111abcdef8.cloudfront.net/delegated-crl/pai.crl"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto KMS (an ECC_NIST_P256 signing key) and S3 (the CRL bucket), plus a MODEL Private CA PAA → PAI."""
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        fake = ModelPrivateCa()
        paa_arn = fake.add_paa()
        pai_arn = fake.add_pai(paa_arn)
        yield {"kms": kms, "key_id": key_id, "s3": s3, "fake": fake, "pai_arn": pai_arn, "pca": PrivateCa(fake.client(), waiter_delay=0)}


def _signer(aws: dict[str, Any]) -> tuple[KmsEcPrivateKey, aws_crl.KmsSigner]:
    key = KmsEcPrivateKey(aws["kms"], aws["key_id"])
    signer = aws_crl.issue_kms_crl_signer(
        aws["pca"], key, pai_arn=aws["pai_arn"], validity=Validity.for_days(NOW - timedelta(days=1), 365), token="mp1-crl-signer-test"
    )
    return key, signer


def _report(serials: list[tuple[int, str | None]]) -> bytes:
    rows = []
    for serial, revoked_at in serials:
        row: dict[str, Any] = {"awsAccountId": "123456789012", "serial": ":".join(f"{serial:040x}"[i : i + 2] for i in range(0, 40, 2))}
        if revoked_at:
            row.update(revokedAt=revoked_at, revocationReason="KEY_COMPROMISE")
        rows.append(row)
    return json.dumps(rows).encode()


def test_kms_signer_certificate_comes_from_the_private_ca_pai(aws: dict[str, Any]) -> None:
    # GIVEN a KMS key and a Private CA PAI
    key, signer = _signer(aws)
    # THEN the request used the blank end-entity template with keyUsage cRLSign passed through, critical
    [request] = aws["fake"].requests
    assert request["TemplateArn"] == PCA_TEMPLATE_DAC
    assert request["ApiPassthrough"]["Extensions"]["CustomExtensions"] == [{"ObjectIdentifier": "2.5.29.15", "Value": "AwIBAg==", "Critical": True}]
    # AND the certificate certifies the KMS key, is issued by the PAI, and has the delegate profile
    assert signer.certificate.public_key() == key.public_key()
    assert signer.certificate.issuer == signer.pai.subject
    assert signer.certificate.extensions.get_extension_for_class(x509.KeyUsage).value.crl_sign


def test_a_template_that_drops_the_key_usage_is_refused(aws: dict[str, Any]) -> None:
    # GIVEN a Private CA that ignored the passthrough keyUsage (what an account must verify: see docs/revocation.md)
    def drop_ku(request: dict[str, Any]) -> dict[str, Any]:
        return {**request, "ApiPassthrough": {**request["ApiPassthrough"], "Extensions": {"CustomExtensions": []}}}

    aws["fake"].cas[aws["pai_arn"]].mutate = drop_ku
    # WHEN the signer is issued THEN the result is refused with a code
    with pytest.raises(CertificateError) as e:
        _signer(aws)
    assert e.value.code == "cert.not_matter_compliant" and "ext.key_usage_missing" in e.value.message


def test_kms_signed_crl_verifies_with_openssl_and_passes_the_sdk_check(aws: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN the signer, three DACs of the PAI, and its revocation records (a Private CA audit report: two DACs
    # revoked, one not, and the signer itself revoked earlier)
    key, signer = _signer(aws)
    pai_key = aws["fake"].cas[aws["pai_arn"]].key
    dacs = [sign(DacProfile.for_issuer(signer.pai, pid=0x8001, validity=Validity.no_expiry(NOW - timedelta(days=1)))
                 .builder(ec.generate_private_key(ec.SECP256R1()).public_key(), serial=s, issuer=signer.pai), pai_key)
            for s in (0x1111, 0x2222, 0x3333)]  # fmt: skip
    report = _report([(0x1111, "2026-01-02T03:04:05+0000"), (0x2222, "2026-01-03T03:04:05+0000"), (0x3333, None),
                      (signer.certificate.serial_number, "2026-01-04T00:00:00+0000")])  # fmt: skip
    records = aws_crl.revocations_from_audit_report(report)
    # WHEN the CRL is built, signed in KMS, checked and written to the bucket
    published = aws_crl.publish_kms_crl(
        s3=aws["s3"], key=key, signer=signer.certificate, pai=signer.pai, paa=signer.paa, revocations=records,
        bucket=BUCKET, object_key="delegated-crl/pai.crl", url=URL, now=NOW,
    )  # fmt: skip
    # THEN the object in S3 is the DER CRL, openssl verifies it with the signer certificate
    body = aws["s3"].get_object(Bucket=BUCKET, Key="delegated-crl/pai.crl")["Body"].read()
    assert body == published.der
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    (tmp_path / "c.crl").write_bytes(body)
    (tmp_path / "s.pem").write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))
    proc = subprocess.run([openssl, "crl", "-inform", "DER", "-in", str(tmp_path / "c.crl"), "-CAfile", str(tmp_path / "s.pem"), "-noout", "-text"],
                          capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert proc.returncode == 0 and "verify OK" in proc.stderr and "Indirect CRL" in proc.stdout
    # AND it passed the SDK's algorithm: the set lists exactly the revoked DACs (not the signer), under the PAI as delegator
    assert published.report.accepted and not published.report.failed
    [entry] = setgen.revocation_set([published.report])
    assert entry["revoked_serial_numbers"] == ["1111", "2222"] and "crl_signer_delegator" in entry
    pai_der = signer.pai.public_bytes(serialization.Encoding.DER)
    codes = [check_revocation(dac=d.public_bytes(serialization.Encoding.DER), pai=pai_der, revocation_set=[entry]).code for d in dacs]
    assert codes == [302, 302, 0]
    # AND the same check from the DCL point's side
    point = dcl.build_revocation_point(signer=signer.certificate, delegator=signer.pai, paa=signer.paa, is_paa=False, data_url=URL)
    [again] = setgen.generate_revocation_set([point], fetch_crl=lambda _p: body, trusted_paas=[signer.paa], at=NOW)
    assert again.accepted and not again.failed


def test_crl_numbers_never_go_back_even_when_the_clock_does(aws: dict[str, Any]) -> None:
    key, signer = _signer(aws)
    args = {"s3": aws["s3"], "key": key, "signer": signer.certificate, "pai": signer.pai, "paa": signer.paa, "revocations": [],
            "bucket": BUCKET, "object_key": "delegated-crl/pai.crl", "url": URL}  # fmt: skip
    first = aws_crl.publish_kms_crl(now=NOW, **args)
    earlier = aws_crl.publish_kms_crl(now=NOW - timedelta(hours=2), **args)
    same = aws_crl.publish_kms_crl(now=NOW, **args)
    assert first.crl_number == int(NOW.timestamp()) and earlier.crl_number == first.crl_number + 1 and same.crl_number == earlier.crl_number + 1
    with pytest.raises(InputError):
        aws_crl.publish_kms_crl(now=NOW, **{**args, "object_key": "crl/not-ours.crl"})


def test_kms_adapter_refuses_keys_that_are_not_p256_signing_keys(aws: dict[str, Any]) -> None:
    for spec, usage in (("ECC_NIST_P384", "SIGN_VERIFY"), ("RSA_2048", "SIGN_VERIFY"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")):
        key_id = aws["kms"].create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        with pytest.raises(KeyStoreError) as e:
            KmsEcPrivateKey(aws["kms"], key_id)
        assert e.value.code == "key.kms_key_spec", spec


def test_over_4096_bytes_the_digest_is_sent_and_the_answer_checked() -> None:
    # GIVEN a KMS client answering GetPublicKey and Sign (Stubber: the request is checked against the KMS model)
    local = ec.generate_private_key(ec.SECP256R1())
    client = boto3.client("kms", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    message = b"m" * 5000
    digest = hashlib.sha256(message).digest()
    der_public = local.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with Stubber(client) as stub:
        stub.add_response("get_public_key", {"KeyId": "k", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
                                             "SigningAlgorithms": ["ECDSA_SHA_256"], "PublicKey": der_public})  # fmt: skip
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        signature = local.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        stub.add_response("sign", {"KeyId": "k", "Signature": signature, "SigningAlgorithm": "ECDSA_SHA_256"},
                          {"KeyId": "k", "Message": digest, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"})  # fmt: skip
        stub.add_response("sign", {"KeyId": "k", "Signature": signature, "SigningAlgorithm": "ECDSA_SHA_256"},
                          {"KeyId": "k", "Message": b"short", "MessageType": "RAW", "SigningAlgorithm": "ECDSA_SHA_256"})  # fmt: skip
        key = KmsEcPrivateKey(client, "k")
        # WHEN a long message is signed THEN the digest goes to KMS and the signature verifies
        assert key.sign(message, ec.ECDSA(hashes.SHA256())) == signature
        # AND a signature that does not match the message is refused (here: the long message's, for b"short")
        with pytest.raises(KeyStoreError) as e:
            key.sign(b"short", ec.ECDSA(hashes.SHA256()))
        assert e.value.code == "key.kms_signature_invalid"
    with pytest.raises(KeyStoreError):
        key.sign(b"x", ec.ECDSA(hashes.SHA384()))
    with pytest.raises(KeyStoreError):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def test_kms_access_denied_is_a_coded_configuration_error() -> None:
    client = boto3.client("kms", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("get_public_key", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(ConfigError) as e:
            KmsEcPrivateKey(client, "k")
    assert e.value.code == "config.aws_access_denied"


def test_audit_report_records() -> None:
    records = aws_crl.revocations_from_audit_report(_report([(0xAB, "2026-02-26T20:00:36+0000"), (0xCD, None)]), exclude=[0xEF])
    assert [(r.serial, r.reason) for r in records] == [(0xAB, x509.ReasonFlags.key_compromise)]
    for bad in (b"{", b"{}", json.dumps([{"serial": "zz", "revokedAt": "2026-01-01T00:00:00+0000"}]).encode(),
                json.dumps([{"serial": "01", "revokedAt": "2026-01-01T00:00:00+0000", "revocationReason": "LOST"}]).encode()):  # fmt: skip
        with pytest.raises(InputError) as e:
            aws_crl.revocations_from_audit_report(bad)
        assert e.value.code == "input.audit_report"


def test_private_ca_crl_url_and_cdk_outputs() -> None:
    arn = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
    outputs = aws_crl.load_cdk_outputs(json.dumps({
        "AcmeMatterStackPAI": {"PAI1": f"FFF1/8000 Acme PAI {arn}", "CrlBucketName": "b"},
        "AcmeMatterCrl": {"CrlBaseUrl": "https://d1.cloudfront.net/"},
    }).encode())  # fmt: skip
    assert aws_crl.pai_arn_from_outputs(outputs, 1) == arn
    assert aws_crl.private_ca_crl_url(aws_crl.output(outputs, "CrlBaseUrl"), arn) == (
        "https://d1.cloudfront.net/crl/11111111-2222-3333-4444-555555555555.crl"
    )
    for call in (lambda: aws_crl.pai_arn_from_outputs(outputs, 2), lambda: aws_crl.ca_id("arn:aws:s3:::x"),
                 lambda: aws_crl.load_cdk_outputs(b"[]"), lambda: aws_crl.private_ca_crl_url("ftp://x", arn)):  # fmt: skip
        with pytest.raises(InputError):
            call()


def test_aws_revocation_point_cli_from_cdk_outputs(aws: dict[str, Any], tmp_path: Path) -> None:
    # GIVEN the CDK outputs of a PAI stack and the CRL distribution, and the PAI/PAA certificates
    chain = aws["pca"].ca_chain(aws["pai_arn"])
    (tmp_path / "pai.pem").write_bytes(chain.pai.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "paa.pem").write_bytes(chain.paa.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "outputs.json").write_text(json.dumps({
        "MatterStackPAI": {"PAI1": f"FFF1 Fake PAI {aws['pai_arn']}"}, "MatterCrl": {"CrlBaseUrl": "https://d1.cloudfront.net"},
    }))  # fmt: skip
    # WHEN the point is asked for
    result = run_cli(["aws", "revocation-point", "--outputs", str(tmp_path / "outputs.json"), "--pai", "1", "--pai-cert", str(tmp_path / "pai.pem"),
                      "--paa-cert", str(tmp_path / "paa.pem"), "--format", "json"], cli_env(tmp_path / "home"))  # fmt: skip
    # THEN it is the PAI's direct point at <CrlBaseUrl>/crl/<CA id>.crl, passing every rule
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] and data["point"]["dataURL"] == f"https://d1.cloudfront.net/crl/{aws_crl.ca_id(aws['pai_arn'])}.crl"
    assert data["point"]["issuerSubjectKeyID"] == dcl.skid_hex(chain.pai) and "--is-paa=false" in data["dcld"]
    # AND with the KMS signer's certificate, the delegated point at .../delegated-crl/<CA id>.crl
    _key, signer = _signer(aws)
    (tmp_path / "signer.pem").write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))
    result = run_cli(["aws", "revocation-point", "--outputs", str(tmp_path / "outputs.json"), "--pai", "1", "--pai-cert", str(tmp_path / "pai.pem"),
                      "--paa-cert", str(tmp_path / "paa.pem"), "--signer-cert", str(tmp_path / "signer.pem"), "--format", "json"],
                     cli_env(tmp_path / "home"))  # fmt: skip
    assert result.exit_code == 0, result.output
    point = json.loads(result.stdout)["point"]
    assert point["dataURL"].endswith(f"/delegated-crl/{aws_crl.ca_id(aws['pai_arn'])}.crl") and "crlSignerDelegator" in point
