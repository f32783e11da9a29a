"""One table of AWS error kinds for every caller; quotas are never retried as throttling."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from matter_pki.aws_errors import classify_aws_error, is_retryable, stop_retrying_quota_errors, wrap_aws_error
from matter_pki.errors import ConfigError, OperatorError, StorageError, TransientError


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(
    ("code", "status", "service", "kind"),
    [
        ("ThrottlingException", 400, "acm-pca", "transient"),
        ("SlowDown", 503, "s3", "transient"),
        ("Whatever", 500, None, "transient"),
        ("TooManyRequests", 429, None, "transient"),
        ("LimitExceededException", 400, "acm-pca", "quota"),
        ("LimitExceededException", 400, "logs", "transient"),
        ("AccessDeniedException", 400, "acm-pca", "config"),
        ("InvalidStateException", 400, "acm-pca", "config"),
        ("Whatever", 403, None, "config"),
        ("MalformedCSRException", 400, "acm-pca", "permanent"),
    ],
)
def test_one_table_classifies_every_service(code: str, status: int, service: str | None, kind: str) -> None:
    assert classify_aws_error(client_error(code, status), service=service)[0] == kind
    assert is_retryable(client_error(code, status), service=service) is (kind == "transient")


def test_network_and_credential_errors() -> None:
    assert classify_aws_error(EndpointConnectionError(endpoint_url="https://x"))[0] == "transient"
    assert isinstance(wrap_aws_error(NoCredentialsError(), operation="op"), ConfigError)


def test_storage_and_backend_wrapping() -> None:
    assert isinstance(wrap_aws_error(client_error("SlowDown", 503), operation="put", prefix="storage"), TransientError)
    assert isinstance(wrap_aws_error(client_error("InvalidObjectState"), operation="get", prefix="storage"), StorageError)
    quota = wrap_aws_error(client_error("LimitExceededException"), operation="issue_certificate", service="acm-pca")
    assert isinstance(quota, OperatorError) and quota.code == "backend.quota_exceeded" and not quota.retryable


def _answering(codes: list[str]) -> tuple[Any, list[str]]:
    """An acm-pca client whose HTTP attempts get ``codes`` in turn (JSON errors, as the service sends)."""
    client = boto3.client(
        "acm-pca", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        config=Config(retries={"mode": "standard", "total_max_attempts": 5}),
    )  # fmt: skip
    sent: list[str] = []

    class Raw:
        def __init__(self, body: bytes) -> None:
            self.body = body

        def stream(self, **_: Any) -> Any:
            yield self.body

    def answer(**_: Any) -> AWSResponse:
        code = codes[min(len(sent), len(codes) - 1)]
        sent.append(code)
        body = json.dumps({"__type": code, "message": code}).encode()
        return AWSResponse("https://x", 400, {"x-amzn-requestid": uuid.uuid4().hex}, Raw(body))

    client.meta.events.register_first("before-send.acm-pca", answer)
    return client, sent


def test_botocore_would_retry_a_quota_as_throttling_and_the_veto_stops_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda _self, _ctx: 0)
    arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
    # GIVEN a client answering LimitExceededException: botocore's standard mode retries it
    plain, sent = _answering(["LimitExceededException"])
    with pytest.raises(ClientError):
        plain.get_certificate(CertificateAuthorityArn=arn, CertificateArn=arn + "/certificate/x")
    assert len(sent) == 5
    # WHEN the veto is installed THEN one attempt only; throttling is still retried
    vetoed, sent = _answering(["LimitExceededException"])
    stop_retrying_quota_errors(vetoed)
    with pytest.raises(ClientError):
        vetoed.get_certificate(CertificateAuthorityArn=arn, CertificateArn=arn + "/certificate/x")
    assert sent == ["LimitExceededException"]
    throttled, sent = _answering(["ThrottlingException", "ThrottlingException", "LimitExceededException"])
    stop_retrying_quota_errors(throttled)
    with pytest.raises(ClientError):
        throttled.get_certificate(CertificateAuthorityArn=arn, CertificateArn=arn + "/certificate/x")
    assert sent == ["ThrottlingException", "ThrottlingException", "LimitExceededException"]
