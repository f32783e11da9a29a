"""The PaaLink custom resource handler, against botocore Stubber (no network)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from matter_cdk.constructs import paa_link_handler as handler

PAA = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
CERT = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555/certificate/abc"
PROPS = {
    "Action": "DescribePaa",
    "Region": "eu-west-1",
    "CertificateAuthorityArn": PAA,
    "ExpectedVendorId": "FFF2",
    "VendorIdOid": "1.3.6.1.4.1.37244.2.1",
    "ExpectedKeyAlgorithm": "EC_prime256v1",
    "TagKey": "matterCAType",
    "TagValue": "paa",
}


def _client() -> Any:
    return boto3.client("acm-pca", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")


def _ca(vid: str = "FFF2", status: str = "ACTIVE", kind: str = "ROOT") -> dict[str, Any]:
    return {
        "CertificateAuthority": {
            "Arn": PAA,
            "Type": kind,
            "Status": status,
            "CertificateAuthorityConfiguration": {
                "KeyAlgorithm": "EC_prime256v1",
                "SigningAlgorithm": "SHA256WITHECDSA",
                "Subject": {
                    "CustomAttributes": [{"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": vid}]
                },
            },
        }
    }


def _event(props: dict[str, str], request_type: str = "Create") -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": props, "StackId": "s", "RequestId": "r",
            "LogicalResourceId": "PaaCheck", "ResponseURL": "https://example.invalid/"}  # fmt: skip


def test_describe_paa_returns_the_certificate_of_a_matching_paa() -> None:
    # GIVEN an active ROOT P-256 PAA with VID FFF2 and the paa tag
    client = _client()
    with Stubber(client) as stub:
        stub.add_response("describe_certificate_authority", _ca(), {"CertificateAuthorityArn": PAA})
        stub.add_response(
            "list_tags", {"Tags": [{"Key": "matterCAType", "Value": "paa"}]}, {"CertificateAuthorityArn": PAA}
        )
        stub.add_response(
            "get_certificate_authority_certificate", {"Certificate": "PEM"}, {"CertificateAuthorityArn": PAA}
        )
        # WHEN the check runs THEN it returns the PAA PEM for the PAI chains
        assert handler.handle(_event(PROPS), lambda region: client) == (
            PAA,
            {"Certificate": "PEM", "VendorId": "FFF2"},
        )


def test_describe_paa_refuses_a_wrong_vid_untagged_pending_subordinate() -> None:
    # GIVEN a PAA that is wrong in four ways WHEN the check runs THEN one error lists every problem
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "describe_certificate_authority",
            _ca("FFF1", "PENDING_CERTIFICATE", "SUBORDINATE"),
            {"CertificateAuthorityArn": PAA},
        )
        stub.add_response(
            "list_tags", {"Tags": [{"Key": "team", "Value": "pki"}]}, {"CertificateAuthorityArn": PAA}
        )
        with pytest.raises(handler.CheckFailed) as info:
            handler.handle(_event(PROPS), lambda region: client)
    message = str(info.value)
    for part in (
        "not ROOT",
        "not ACTIVE",
        "VID is FFF1 but the PAIs are rendered for vendorId FFF2",
        "matterCAType=paa",
    ):
        assert part in message


def test_issue_certificate_signs_waits_and_returns_pem(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a PAI CSR and the request rendered from the profile
    monkeypatch.setattr(handler, "WAIT", {"Delay": 0, "MaxAttempts": 3})
    request = {"TemplateArn": "arn:aws:acm-pca:::template/BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1",
               "SigningAlgorithm": "SHA256WITHECDSA", "Validity": {"Type": "DAYS", "Value": 3600},
               "ApiPassthrough": {"Extensions": {"CustomExtensions": [{"ObjectIdentifier": "2.5.29.15", "Value": "AwIBBg==", "Critical": True}]}}}  # fmt: skip
    props = {"Action": "IssueCertificate", "Region": "eu-west-1", "CertificateAuthorityArn": PAA, "Csr": "CSR",
             "Request": json.dumps(request)}  # fmt: skip
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "issue_certificate",
            {"CertificateArn": CERT},
            {
                "CertificateAuthorityArn": PAA,
                "Csr": b"CSR",
                "IdempotencyToken": handler.issue_token(props),
                **request,
            },
        )
        stub.add_client_error("get_certificate", "RequestInProgressException")
        stub.add_response("get_certificate", {"Certificate": "PAI", "CertificateChain": "PAA"})
        stub.add_response("get_certificate", {"Certificate": "PAI", "CertificateChain": "PAA"})
        # WHEN the custom resource runs THEN the request is passed as rendered and the PEM returned after the wait
        physical_id, data = handler.handle(_event(props), lambda region: client)
    assert physical_id == CERT
    assert data == {"CertificateArn": CERT, "Certificate": "PAI", "CertificateChain": "PAA"}
    assert len(handler.issue_token(props)) == 36 and handler.issue_token(props) == handler.issue_token(
        dict(props)
    )


def test_delete_touches_nothing() -> None:
    # GIVEN a Delete WHEN handled THEN no client is created and the physical id is kept
    event = {**_event(PROPS, "Delete"), "PhysicalResourceId": PAA}
    assert handler.handle(event, lambda region: pytest.fail("no AWS call on Delete")) == (PAA, {})


def test_on_event_reports_failures_to_cloudformation(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN an unknown action WHEN the Lambda runs THEN CloudFormation gets FAILED with the reason
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        handler, "respond", lambda event, status, pid, data, reason: sent.append((status, reason))
    )
    handler.on_event(_event({**PROPS, "Action": "Nope"}), None)
    assert sent == [("FAILED", "CheckFailed: unknown Action 'Nope'")]
