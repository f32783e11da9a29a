"""AWS Private CA backend: exact IssueCertificate requests (Stubber), our own request checks, error mapping,
chain caching, the bounded wait, intake, the release gate with revocation, and PAI creation.

Certificates come from ``ModelPrivateCa`` / ``matter_pki.testing.pca_model``: a MODEL of the documented
template behaviour, not AWS.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from botocore.stub import ANY, Stubber
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.backends.aws_pca import (
    PrivateCa,
    build_dac_request,
    check_issue_request,
    check_issued_dac,
    check_pca_intake,
    dac_token,
    dac_validity,
    idempotency_token,
    issue_dac_on_pca,
    wrap_aws_error,
)
from matter_pki.csr import load_device_csr
from matter_pki.errors import (
    BackendError,
    ConfigError,
    CsrError,
    IssuanceError,
    OperatorError,
    StorageError,
    TransientError,
)
from matter_pki.gate import ReleaseRefused
from matter_pki.lint import lint
from matter_pki.profiles import (
    NO_EXPIRY,
    PCA_TEMPLATE_DAC,
    PCA_TEMPLATE_PAI,
    DacProfile,
    PaiProfile,
    Validity,
)
from matter_pki.validate import validate_att_cert
from matter_pki.validity import ValidityPolicy
from tests.lambdas.fakes import REGION, ModelPrivateCa, p256_csr

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
TOKEN_PATTERN = re.compile(r"[\u0009\u000A\u000D\u0020-\u00FF]*")


@pytest.fixture
def fake() -> ModelPrivateCa:
    """A MODEL Private CA with PAA FFF1 → PAI FFF1/8000 (product-scoped) and PAI FFF1 (vendor-scoped)."""
    model = ModelPrivateCa(now=lambda: NOW)
    paa = model.add_paa(start=NOW - timedelta(days=365))
    model.pai_8000 = model.add_pai(paa, pid=0x8000, start=NOW - timedelta(days=100))  # type: ignore[attr-defined]
    model.pai_any = model.add_pai(paa, start=NOW - timedelta(days=100))  # type: ignore[attr-defined]
    model.paa = paa  # type: ignore[attr-defined]
    return model


def raw_client() -> Any:
    """A real acm-pca client with no credentials needed (Stubber answers)."""
    return boto3.client("acm-pca", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def ca_response(model: ModelPrivateCa, arn: str) -> dict[str, Any]:
    """GetCertificateAuthorityCertificate answer for one of the model's CAs."""
    ca = model.cas[arn]
    assert ca.cert is not None
    body = {"Certificate": ca.cert.public_bytes(Encoding.PEM).decode()}
    if ca.chain:
        body["CertificateChain"] = "".join(c.public_bytes(Encoding.PEM).decode() for c in ca.chain)
    return body


# -- the exact request ----------------------------------------------------------------------------
def test_issue_request_is_exactly_the_dac_profile_and_validates_against_the_service_model(
    fake: ModelPrivateCa,
) -> None:
    # GIVEN a product-scoped PAI on Private CA and a device CSR
    arn = fake.pai_8000  # type: ignore[attr-defined]
    client = raw_client()
    pca = PrivateCa(client, waiter_delay=0)
    device = load_device_csr(p256_csr(cn="copied-by-the-aws-sample"))
    token = dac_token(pai_arn=arn, pid=0x8000, key_id=device.key_id)
    with Stubber(client) as stub:
        stub.add_response(
            "get_certificate_authority_certificate", ca_response(fake, arn), {"CertificateAuthorityArn": arn}
        )
        chain = pca.ca_chain(arn)
        profile = DacProfile.for_issuer(
            chain.pai, pid=0x8000, validity=dac_validity(ValidityPolicy.parse("issuer"), start=NOW, pai=chain.pai)
        )
        request = build_dac_request(ca_arn=arn, device=device, profile=profile, token=token)
        # THEN Stubber checks the shape against the acm-pca model and we check every value
        expected = {
            "CertificateAuthorityArn": arn,
            "Csr": ANY,
            "TemplateArn": "arn:aws:acm-pca:::template/BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough/V1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            "ApiPassthrough": {
                "Subject": {
                    "CustomAttributes": [
                        {"ObjectIdentifier": "2.5.4.3", "Value": "Matter DAC"},
                        {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": "FFF1"},
                        {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.2", "Value": "8000"},
                    ]
                },
                "Extensions": {
                    "CustomExtensions": [
                        {"ObjectIdentifier": "2.5.29.15", "Value": "AwIHgA==", "Critical": True}
                    ]
                },
            },
            "Validity": {"Type": "END_DATE", "Value": 99991231235959},
            "ValidityNotBefore": {"Type": "ABSOLUTE", "Value": int(NOW.timestamp())},
            "IdempotencyToken": token,
        }
        stub.add_response("issue_certificate", {"CertificateArn": f"{arn}/certificate/{'a' * 32}"}, expected)
        # WHEN the request is sent
        cert_arn = pca.issue(request)
        stub.assert_no_pending_responses()
    assert cert_arn == f"{arn}/certificate/{'a' * 32}"
    # AND the CSR sent is our re-encoding of the accepted DER (its subject is never used for the DAC)
    assert load_device_csr(request["Csr"]).der == device.der
    assert base64.b64decode("AwIHgA==") == bytes.fromhex("03020780")


def test_idempotency_token_is_one_per_pai_pid_and_device_key_and_never_constant() -> None:
    # GIVEN the same device key id under different PAIs and PIDs, and different keys
    base = {"pai_arn": "arn:a", "pid": 0x8000, "key_id": "00" * 32}
    variants = [base, {**base, "pai_arn": "arn:b"}, {**base, "pid": 0x8001}, {**base, "key_id": "11" * 32}]
    # WHEN tokens are derived
    tokens = [dac_token(**v) for v in variants]  # type: ignore[arg-type]
    # THEN they differ, are stable (every upload, name, version and re-encoding of one key's CSR shares one), fit the API
    # (<= 36 chars, pattern) and are not the sample's "1234"
    assert len(set(tokens)) == len(tokens)
    assert dac_token(**base) == tokens[0]  # type: ignore[arg-type]
    for token in tokens:
        assert len(token) <= 36 and TOKEN_PATTERN.fullmatch(token) and token != "1234"
    assert idempotency_token("a", "b") != idempotency_token("ab")


# -- what Stubber does not check ------------------------------------------------------------------
def _good_request(fake: ModelPrivateCa) -> dict[str, Any]:
    ca = fake.cas[fake.pai_8000]  # type: ignore[attr-defined]
    assert ca.cert is not None
    profile = DacProfile.for_issuer(ca.cert, pid=0x8000, validity=Validity.no_expiry(NOW))
    device = load_device_csr(p256_csr())
    return dict(build_dac_request(ca_arn=ca.arn, device=device, profile=profile, token="mp1-x"))


def _ext(request: dict[str, Any]) -> dict[str, Any]:
    ext: dict[str, Any] = request["ApiPassthrough"]["Extensions"]["CustomExtensions"][0]
    return ext


def _attr(request: dict[str, Any]) -> dict[str, Any]:
    attr: dict[str, Any] = request["ApiPassthrough"]["Subject"]["CustomAttributes"][0]
    return attr


BAD_REQUESTS = {
    "signing algorithm not in enum": lambda r: r.update(SigningAlgorithm="SHA256WITHECDSAX"),
    "RSA signing algorithm": lambda r: r.update(SigningAlgorithm="SHA256WITHRSA"),
    "validity type not in enum": lambda r: r.update(Validity={"Type": "WEEKS", "Value": 3}),
    "validity value zero": lambda r: r.update(Validity={"Type": "DAYS", "Value": 0}),
    "END_DATE of 8 digits": lambda r: r.update(Validity={"Type": "END_DATE", "Value": 20301231}),
    "OID with letters": lambda r: _ext(r).update(ObjectIdentifier="2.5.29.x"),
    "OID first arc 5": lambda r: _ext(r).update(ObjectIdentifier="5.29.15"),
    "attribute OID dotted wrong": lambda r: _attr(r).update(ObjectIdentifier="2..5.4.3"),
    "extension value not base64": lambda r: _ext(r).update(Value="AwIHgA="),
    "extension value with spaces": lambda r: _ext(r).update(Value="AwIH gA=="),
    "attribute value too long": lambda r: _attr(r).update(Value="x" * 257),
    "attribute value empty": lambda r: _attr(r).update(Value=""),
    "template ARN not a template": lambda r: r.update(
        TemplateArn="arn:aws:acm-pca:::certificate-authority/x"
    ),
    "template ARN with region": lambda r: r.update(
        TemplateArn="arn:aws:acm-pca:us-east-1::template/EndEntityCertificate/V1"
    ),
    "CA ARN not a CA": lambda r: r.update(
        CertificateAuthorityArn="arn:aws:acm-pca:us-east-1:123456789012:template/x"
    ),
    "token too long": lambda r: r.update(IdempotencyToken="t" * 37),
    "token outside Latin-1": lambda r: r.update(IdempotencyToken="tok\u0100"),
    "token empty": lambda r: r.update(IdempotencyToken=""),
    "CSR over 32 KiB": lambda r: r.update(Csr=b"x" * 32769),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_request_checks_refuse_what_the_service_model_states_but_botocore_skips(
    fake: ModelPrivateCa, case: str
) -> None:
    # GIVEN a good DAC request broken in one way
    request = _good_request(fake)
    BAD_REQUESTS[case](request)
    # WHEN checked THEN it is refused with backend.request_invalid
    with pytest.raises(BackendError) as err:
        check_issue_request(request)
    assert err.value.code == "backend.request_invalid"


@pytest.mark.parametrize(
    "case",
    [
        "signing algorithm not in enum",
        "OID with letters",
        "extension value not base64",
        "token outside Latin-1",
    ],
)
def test_botocore_stubber_alone_lets_these_through(fake: ModelPrivateCa, case: str) -> None:
    # GIVEN a broken request that the service would refuse
    request = _good_request(fake)
    BAD_REQUESTS[case](request)
    client = raw_client()
    # WHEN it goes straight through a stubbed client
    with Stubber(client) as stub:
        stub.add_response(
            "issue_certificate", {"CertificateArn": request["CertificateAuthorityArn"] + "/certificate/x"}
        )
        client.issue_certificate(**request)
    # THEN nothing complained: which is why check_issue_request exists


def test_stubber_rejects_a_wrong_shape(fake: ModelPrivateCa) -> None:
    # GIVEN a request with "Oid" instead of "ObjectIdentifier" (shape error)
    request = _good_request(fake)
    ext = _ext(request)
    ext["Oid"] = ext.pop("ObjectIdentifier")
    client = raw_client()
    # WHEN sent THEN botocore's model validation refuses it
    with Stubber(client) as stub, pytest.raises(ParamValidationError):
        stub.add_response("issue_certificate", {"CertificateArn": "x"})
        client.issue_certificate(**request)


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("aws_code", "status", "cls", "code"),
    [
        ("ThrottlingException", 400, TransientError, "backend.transient"),
        ("RequestInProgressException", 400, TransientError, "backend.transient"),
        ("InternalFailure", 500, TransientError, "backend.transient"),
        ("ServiceUnavailable", 503, TransientError, "backend.transient"),
        ("SomethingNew", 502, TransientError, "backend.transient"),
        # the request's fault: answered (.err)
        ("MalformedCSRException", 400, BackendError, "backend.malformed_csr"),
        # a quota or the set-up: an operator must act (DLQ, never .err)
        ("LimitExceededException", 400, OperatorError, "backend.quota_exceeded"),
        ("InvalidArgsException", 400, OperatorError, "backend.invalid_args"),
        ("InvalidRequestException", 400, OperatorError, "backend.invalid_request"),
        ("ResourceNotFoundException", 400, OperatorError, "backend.ca_not_found"),
        ("InvalidStateException", 400, OperatorError, "backend.ca_state"),
        ("InvalidArnException", 400, OperatorError, "backend.invalid_arn"),
        ("SomethingNew", 400, OperatorError, "backend.aws_error"),
        ("AccessDeniedException", 400, ConfigError, "config.aws_access_denied"),
        ("ExpiredTokenException", 400, ConfigError, "config.aws_credentials"),
    ],
)
def test_service_errors_are_wrapped_with_stable_codes(
    fake: ModelPrivateCa, aws_code: str, status: int, cls: type[Exception], code: str
) -> None:
    # GIVEN IssueCertificate answering with an AWS error
    request = _good_request(fake)
    client = raw_client()
    with Stubber(client) as stub:
        stub.add_client_error("issue_certificate", aws_code, "boom", http_status_code=status)
        # WHEN issuing THEN the error has our class and code, retryable only when transient
        with pytest.raises(cls) as err:
            PrivateCa(client).issue(request)  # type: ignore[arg-type]
    assert type(err.value) is cls
    assert err.value.code == code  # type: ignore[attr-defined]
    assert err.value.retryable is (cls is TransientError)  # type: ignore[attr-defined]
    assert err.value.context["aws_code"] == aws_code  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "cls", "code"),
    [
        (EndpointConnectionError(endpoint_url="https://acm-pca"), TransientError, "backend.transient"),
        (ReadTimeoutError(endpoint_url="https://acm-pca"), TransientError, "backend.transient"),
        (ConnectTimeoutError(endpoint_url="https://acm-pca"), TransientError, "backend.transient"),
        (NoCredentialsError(), ConfigError, "config.aws_credentials"),
    ],
)
def test_network_and_credential_errors_are_wrapped(error: Exception, cls: type[Exception], code: str) -> None:
    # GIVEN a botocore exception WHEN wrapped THEN class and code are stable
    wrapped = wrap_aws_error(error, operation="issue_certificate")
    assert type(wrapped) is cls and wrapped.code == code


def test_storage_errors_use_storage_codes() -> None:
    # GIVEN S3 errors WHEN wrapped with the storage prefix THEN transient vs permanent storage codes
    from botocore.exceptions import ClientError

    slow = ClientError(
        {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "PutObject"
    )
    odd = ClientError(
        {"Error": {"Code": "InvalidObjectState"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetObject"
    )
    assert wrap_aws_error(slow, operation="put_object", prefix="storage").code == "storage.transient"
    permanent = wrap_aws_error(odd, operation="get_object", prefix="storage")
    assert isinstance(permanent, StorageError) and permanent.code == "storage.aws_error"


# -- chain fetch and cache --------------------------------------------------------------------------
def test_pai_chain_is_fetched_once_per_cache_period_and_the_paa_is_the_last_certificate(
    fake: ModelPrivateCa,
) -> None:
    # GIVEN a stubbed client that answers GetCertificateAuthorityCertificate exactly twice
    arn = fake.pai_8000  # type: ignore[attr-defined]
    client = raw_client()
    clock = [0.0]
    pca = PrivateCa(client, cache_seconds=900, monotonic=lambda: clock[0])
    with Stubber(client) as stub:
        stub.add_response(
            "get_certificate_authority_certificate", ca_response(fake, arn), {"CertificateAuthorityArn": arn}
        )
        # WHEN 100 CSRs need the chain within the cache period (a second fetch would find no stubbed answer)
        chains = [pca.ca_chain(arn) for _ in range(100)]
        stub.assert_no_pending_responses()
        # AND one more after the period
        clock[0] = 901.0
        stub.add_response(
            "get_certificate_authority_certificate", ca_response(fake, arn), {"CertificateAuthorityArn": arn}
        )
        pca.ca_chain(arn)
        stub.assert_no_pending_responses()
    # THEN one fetch served them all, and the PAA is the chain's last (root) certificate
    assert all(c is chains[0] for c in chains)
    assert chains[0].paa.subject == chains[0].paa.issuer
    assert chains[0].pai.issuer == chains[0].paa.subject


def test_a_root_ca_is_not_a_pai(fake: ModelPrivateCa) -> None:
    # GIVEN the PAA's own ARN used as if it were a PAI
    pca = PrivateCa(fake.client())
    # WHEN its chain is fetched THEN it is refused before anything is issued
    with pytest.raises(BackendError) as err:
        pca.ca_chain(fake.paa)  # type: ignore[attr-defined]
    assert err.value.code == "backend.ca_not_pai"


def test_a_pinned_paa_list_refuses_other_roots(fake: ModelPrivateCa) -> None:
    # GIVEN a trusted-PAA list that does not hold this PAA WHEN fetching THEN backend.paa_not_trusted
    pca = PrivateCa(fake.client(), trusted_paa_sha256=frozenset({"00" * 32}))
    with pytest.raises(BackendError) as err:
        pca.ca_chain(fake.pai_8000)  # type: ignore[attr-defined]
    assert err.value.code == "backend.paa_not_trusted"


def test_a_subordinate_that_is_not_a_matter_pai_is_refused(fake: ModelPrivateCa) -> None:
    # GIVEN a subordinate CA whose certificate has no VendorID (not a Matter PAI)
    ca = fake.cas[fake.pai_any]  # type: ignore[attr-defined]
    paa = fake.cas[fake.paa]  # type: ignore[attr-defined]
    assert paa.cert is not None
    from matter_pki.testing.pca_model import issue_certificate

    request = {**PaiProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW - timedelta(days=50))).pca_issue_parts(),
               "Csr": fake._csr(ca.key)}  # fmt: skip
    request["ApiPassthrough"]["Subject"]["CustomAttributes"] = [
        {"ObjectIdentifier": "2.5.4.3", "Value": "no vid"}
    ]
    ca.cert = issue_certificate(request, ca_key=paa.key, ca_certificate=paa.cert, serial=5, now=NOW)
    # WHEN its chain is fetched THEN it is refused
    with pytest.raises(BackendError) as err:
        PrivateCa(fake.client()).ca_chain(ca.arn)
    assert err.value.code == "backend.ca_not_pai"


# -- waiting --------------------------------------------------------------------------------------
def test_fetch_waits_through_request_in_progress(fake: ModelPrivateCa) -> None:
    # GIVEN a certificate that takes three polls to be issued
    fake.pending_polls = 3
    pca = PrivateCa(fake.client(), waiter_delay=0)
    # WHEN a DAC is issued through the waiter
    issued = issue_dac_on_pca(pca, p256_csr(), ca_arn=fake.pai_8000, pid=0x8000, now=NOW)  # type: ignore[attr-defined]
    # THEN it arrives after the polls
    assert fake.calls["GetCertificate"] == 3 + 1  # three in progress, then the answer (not fetched again)
    assert x509.load_der_x509_certificate(issued.der).serial_number == issued.serial


def test_fetch_gives_up_transiently_when_still_pending(fake: ModelPrivateCa) -> None:
    # GIVEN a certificate never ready within the waiter's attempts
    fake.pending_polls = 100
    pca = PrivateCa(fake.client(), waiter_delay=0, waiter_max_attempts=3)
    # WHEN waiting THEN a retryable error (the SQS message comes back later)
    with pytest.raises(TransientError):
        issue_dac_on_pca(pca, p256_csr(), ca_arn=fake.pai_8000, pid=0x8000, now=NOW)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("aws_code", "cls", "code"),
    [
        ("RequestFailedException", OperatorError, "backend.request_failed"),
        ("ThrottlingException", TransientError, "backend.transient"),
        ("AccessDeniedException", ConfigError, "config.aws_access_denied"),
    ],
)
def test_waiter_errors_are_wrapped(aws_code: str, cls: type[Exception], code: str) -> None:
    # GIVEN GetCertificate failing inside the waiter
    client = raw_client()
    ca = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
    with Stubber(client) as stub:
        stub.add_client_error("get_certificate", aws_code, "boom", http_status_code=400)
        # WHEN waiting THEN the failure is classified like any other call
        with pytest.raises(cls) as err:
            PrivateCa(client, waiter_delay=0).fetch(ca, ca + "/certificate/x")
    assert err.value.code == code  # type: ignore[attr-defined]


# -- released-DAC checks ----------------------------------------------------------------------------
def test_a_dac_from_the_model_validates_and_the_request_has_no_csr_subject(fake: ModelPrivateCa) -> None:
    # GIVEN a CSR whose subject carries junk the AWS sample would copy
    pca = PrivateCa(fake.client(), waiter_delay=0)
    # WHEN issued
    issued = issue_dac_on_pca(pca, p256_csr(cn="Mvid:FFF2 junk"), ca_arn=fake.pai_8000, pid=0x8000, now=NOW)  # type: ignore[attr-defined]
    chain = pca.ca_chain(fake.pai_8000)  # type: ignore[attr-defined]
    # THEN the chain validates in both orders, and the DAC subject is exactly the profile's
    for mode in ("chip-cert", "commissioner"):
        assert validate_att_cert(
            paa=chain.paa_der, pai=chain.pai_der, dac=issued.der, at=NOW + timedelta(seconds=5), mode=mode
        ).ok  # type: ignore[arg-type]
    dac = x509.load_der_x509_certificate(issued.der)
    assert [a.value for a in dac.subject] == ["Matter DAC", "FFF1", "8000"]
    assert not [f for f in lint(issued.der, "dac", issuer=chain.pai_der) if f.severity >= 30]


def _issue_with(fake: ModelPrivateCa, arn: str, pid: int) -> tuple[bytes, Any]:
    pca = PrivateCa(fake.client(), waiter_delay=0)
    chain = pca.ca_chain(arn)
    device = load_device_csr(p256_csr())
    profile = DacProfile.for_issuer(chain.pai, pid=pid, validity=Validity.no_expiry(NOW))
    request = build_dac_request(
        ca_arn=arn, device=device, profile=profile, token=idempotency_token("t", str(pid))
    )
    der = pca.fetch(arn, pca.issue(request))
    return der, (device, profile, chain)


def test_a_dac_without_the_passthrough_keyusage_is_not_released(fake: ModelPrivateCa) -> None:
    # GIVEN a CA that drops our keyUsage passthrough (what a wrong template would do)
    arn = fake.pai_8000  # type: ignore[attr-defined]

    def drop_ku(request: dict[str, Any]) -> dict[str, Any]:
        request = {
            **request,
            "ApiPassthrough": {**request["ApiPassthrough"], "Extensions": {"CustomExtensions": []}},
        }
        return request

    fake.fake_ca(arn).mutate = drop_ku
    der, (device, profile, chain) = _issue_with(fake, arn, 0x8000)
    # WHEN checked THEN refused: the profile's keyUsage is missing
    with pytest.raises(IssuanceError) as err:
        check_issued_dac(der, device=device, profile=profile, chain=chain, at=NOW)
    assert err.value.code == "issue.extension_mismatch"


def test_a_dac_for_another_key_or_pid_is_not_released(fake: ModelPrivateCa) -> None:
    # GIVEN a vendor-scoped PAI (any PID validates) returning a DAC for another PID, then for another key
    arn = fake.pai_any  # type: ignore[attr-defined]
    fake.fake_ca(arn).mutate = lambda r: {
        **r,
        "ApiPassthrough": {**r["ApiPassthrough"], "Subject": {"CustomAttributes": [
            {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": "FFF1"},
            {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.2", "Value": "1234"},
        ]}},
    }  # fmt: skip
    der, (device, profile, chain) = _issue_with(fake, arn, 0x8000)
    assert validate_att_cert(
        paa=chain.paa_der, pai=chain.pai_der, dac=der, at=NOW + timedelta(seconds=5), mode="commissioner"
    ).ok
    with pytest.raises(IssuanceError) as err:
        check_issued_dac(der, device=device, profile=profile, chain=chain, at=NOW)
    assert err.value.code == "issue.not_as_requested"
    fake.fake_ca(arn).mutate = None
    fake.fake_ca(arn).swap_key = True
    der, (device, profile, chain) = _issue_with(fake, arn, 0x8001)
    with pytest.raises(IssuanceError) as err:
        check_issued_dac(der, device=device, profile=profile, chain=chain, at=NOW)
    assert err.value.code == "issue.not_as_requested"


# -- validity -------------------------------------------------------------------------------------
def test_dac_validity_under_a_private_ca_pai(fake: ModelPrivateCa) -> None:
    # GIVEN a no-expiry PAI and a PAI ending in 2030
    paa = fake.paa  # type: ignore[attr-defined]
    finite = fake.add_pai(
        paa, pid=0x8001, not_after=datetime(2030, 1, 1, tzinfo=UTC), start=NOW - timedelta(days=1)
    )
    forever = fake.cas[fake.pai_8000].cert  # type: ignore[attr-defined]
    ending = fake.cas[finite].cert
    assert forever is not None and ending is not None
    policy = ValidityPolicy.parse
    # WHEN/THEN "issuer" follows the PAI, "no-expiry" is 9999, days and no-expiry must end with the PAI
    assert dac_validity(policy("issuer"), start=NOW, pai=forever).not_after == NO_EXPIRY
    assert dac_validity(policy("issuer"), start=NOW, pai=ending).pca_validity() == {
        "Type": "ABSOLUTE",
        "Value": int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()),
    }
    assert dac_validity(policy("no-expiry"), start=NOW, pai=forever).pca_validity() == {
        "Type": "END_DATE",
        "Value": 99991231235959,
    }
    assert dac_validity(policy("365"), start=NOW, pai=ending).not_after == NOW + timedelta(days=365) - timedelta(
        seconds=1
    )
    for too_long in ("3650", "no-expiry"):
        with pytest.raises(ConfigError) as err:
            dac_validity(policy(too_long), start=NOW, pai=ending)
        assert err.value.code == "config.dac_validity_beyond_pai"
    # AND a start before the PAI's notBefore is moved to it (chip: 301 otherwise)
    early = dac_validity(policy("issuer"), start=NOW - timedelta(days=30), pai=ending)
    assert early.not_before == ending.not_valid_before_utc


# -- PAI on Private CA ----------------------------------------------------------------------------
def test_create_pai_signs_with_the_pathlen0_template_and_imports(fake: ModelPrivateCa) -> None:
    # GIVEN a PAA on (model) Private CA
    pca = PrivateCa(fake.client(), waiter_delay=0)
    profile = PaiProfile(
        vid=0xFFF1, pid=0x8002, common_name="Matter PAI 8002", validity=Validity.no_expiry(NOW)
    )
    # WHEN a PAI is created
    arn, der = pca.create_pai(paa_arn=fake.paa, profile=profile)  # type: ignore[attr-defined]
    # THEN the PAA was asked with the PathLen0 template and keyCertSign+cRLSign, and the CA is active
    request = fake.requests[-1]
    assert request["TemplateArn"] == PCA_TEMPLATE_PAI
    assert request["ApiPassthrough"]["Extensions"]["CustomExtensions"] == [
        {"ObjectIdentifier": "2.5.29.15", "Value": "AwIBBg==", "Critical": True}
    ]
    assert fake.cas[arn].state == "ACTIVE"
    chain = pca.ca_chain(arn)
    assert chain.pai_der == der
    # AND it issues DACs that validate
    issued = issue_dac_on_pca(pca, p256_csr(), ca_arn=arn, pid=0x8002, now=NOW)
    assert validate_att_cert(
        paa=chain.paa_der, pai=der, dac=issued.der, at=NOW + timedelta(seconds=2), mode="commissioner"
    ).ok
    assert fake.requests[-1]["TemplateArn"] == PCA_TEMPLATE_DAC


# -- intake and the gate on Private CA ----------------------------------------------------------------
def _san_csr() -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("device.example")]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def test_a_csr_requesting_a_san_is_refused_before_anything_is_issued(fake: ModelPrivateCa) -> None:
    # GIVEN a CSR with an extensionRequest holding a subjectAltName
    pca = PrivateCa(fake.client(), waiter_delay=0)
    # WHEN issued on Private CA THEN refused at intake, and the CA was never asked
    with pytest.raises(CsrError) as err:
        issue_dac_on_pca(pca, _san_csr(), ca_arn=fake.pai_8000, pid=0x8000, now=NOW)  # type: ignore[attr-defined]
    assert err.value.code == "csr.subject_alt_name" and fake.calls["IssueCertificate"] == 0
    # AND other requested extensions are ignored (an APIPassthrough template does not copy them)
    from tests.unit.test_fastpath import csr_for

    check_pca_intake(load_device_csr(csr_for(extensions=True)))


def test_the_model_copies_a_csr_san_and_the_gate_refuses_and_revokes_it(fake: ModelPrivateCa) -> None:
    # GIVEN intake bypassed: a SAN CSR sent to the (model) Private CA, which copies the SAN
    from matter_pki.backends.aws_pca import release_or_revoke

    arn = fake.pai_8000  # type: ignore[attr-defined]
    pca = PrivateCa(fake.client(), waiter_delay=0)
    chain = pca.ca_chain(arn)
    device = load_device_csr(_san_csr())
    profile = DacProfile.for_issuer(chain.pai, pid=0x8000, validity=Validity.no_expiry(NOW))
    cert_arn = pca.issue(build_dac_request(ca_arn=arn, device=device, profile=profile, token="mp1-san"))
    der = pca.fetch(arn, cert_arn)
    assert x509.load_der_x509_certificate(der).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    # WHEN the release gate judges it THEN refused, and the certificate is revoked on the CA
    with pytest.raises(ReleaseRefused) as err:
        release_or_revoke(pca, der, certificate_arn=cert_arn, device=device, profile=profile, chain=chain, at=NOW)
    assert err.value.code == "issue.unexpected_extension" and err.value.context["revoked"] is True
    assert fake.revoked_serials() == [err.value.serial]


def test_revoking_twice_is_done_once(fake: ModelPrivateCa) -> None:
    # GIVEN a certificate revoked once (a retried refusal revokes again)
    arn = fake.pai_8000  # type: ignore[attr-defined]
    pca = PrivateCa(fake.client(), waiter_delay=0)
    issued = issue_dac_on_pca(pca, p256_csr(), ca_arn=arn, pid=0x8000, now=NOW)
    pca.revoke(arn, issued.serial)
    # WHEN revoked again THEN Private CA's RequestAlreadyProcessedException counts as done
    pca.revoke(arn, issued.serial)
    assert fake.revoked_serials() == [issued.serial]
