"""Custom resource Lambda (inlined as index.py): check a PAA given by ARN, and sign PAIs with it across Regions.

CloudFormation can only issue from a CA in the stack's own Region (AWS::ACMPCA::Certificate has
no Region), so a PAI whose PAA lives elsewhere is signed here, by IssueCertificate in the PAA's
Region. Properties arrive as strings; the IssueCertificate request is a JSON string rendered at
synth time from matter_pki's profile.

Actions:
* ``DescribePaa``: the PAA must be an ACTIVE ROOT CA with the expected key algorithm, tag and
  (if VID-scoped) vendor ID; returns its certificate PEM (the PAIs' chain).
* ``IssueCertificate``: signs a PAI CSR with the PAA, waits for the certificate, returns it.

Delete does nothing: a certificate cannot be deleted, and a CA is retained with its stack.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from typing import Any

import boto3

WAIT = {"Delay": 2, "MaxAttempts": 60}


class CheckFailed(Exception):
    """The PAA is not what the stack expects; the message says why."""


def describe_paa(client: Any, props: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Check the PAA and return (physical id, {Certificate, VendorId})."""
    arn = props["CertificateAuthorityArn"]
    ca = client.describe_certificate_authority(CertificateAuthorityArn=arn)["CertificateAuthority"]
    problems = []
    if ca.get("Type") != "ROOT":
        problems.append(f"type is {ca.get('Type')}, not ROOT")
    if ca.get("Status") != "ACTIVE":
        problems.append(f"status is {ca.get('Status')}, not ACTIVE")
    config = ca.get("CertificateAuthorityConfiguration", {})
    if config.get("KeyAlgorithm") != props["ExpectedKeyAlgorithm"]:
        problems.append(f"key algorithm is {config.get('KeyAlgorithm')}, not {props['ExpectedKeyAlgorithm']}")
    attributes = config.get("Subject", {}).get("CustomAttributes", [])
    vids = [a["Value"] for a in attributes if a.get("ObjectIdentifier") == props["VendorIdOid"]]
    if vids and vids[0] != props["ExpectedVendorId"]:
        problems.append(
            f"its VID is {vids[0]} but the PAIs are rendered for vendorId {props['ExpectedVendorId']}"
        )
    tags = {
        t["Key"]: t.get("Value", "") for t in client.list_tags(CertificateAuthorityArn=arn).get("Tags", [])
    }
    if tags.get(props["TagKey"]) != props["TagValue"]:
        problems.append(
            f"it is not tagged {props['TagKey']}={props['TagValue']} (IAM conditions rely on the tag)"
        )
    if problems:
        raise CheckFailed(f"PAA {arn}: " + "; ".join(problems))
    pem = client.get_certificate_authority_certificate(CertificateAuthorityArn=arn)["Certificate"]
    return arn, {"Certificate": pem, "VendorId": vids[0] if vids else ""}


def issue_token(props: dict[str, str]) -> str:
    """Deterministic IdempotencyToken: CloudFormation retries within Private CA's five-minute window reuse it."""
    text = "\n".join((props["CertificateAuthorityArn"], props["Csr"], props["Request"]))
    return hashlib.sha256(text.encode()).hexdigest()[:36]


def issue_certificate(client: Any, props: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Sign the CSR with the PAA and wait; returns (certificate ARN, {CertificateArn, Certificate, CertificateChain})."""
    arn, csr, request = props["CertificateAuthorityArn"], props["Csr"], json.loads(props["Request"])
    cert_arn = client.issue_certificate(
        CertificateAuthorityArn=arn, Csr=csr.encode(), IdempotencyToken=issue_token(props), **request
    )["CertificateArn"]
    client.get_waiter("certificate_issued").wait(
        CertificateAuthorityArn=arn, CertificateArn=cert_arn, WaiterConfig=WAIT
    )
    issued = client.get_certificate(CertificateAuthorityArn=arn, CertificateArn=cert_arn)
    return cert_arn, {
        "CertificateArn": cert_arn,
        "Certificate": issued["Certificate"],
        "CertificateChain": issued.get("CertificateChain", ""),
    }


ACTIONS = {"DescribePaa": describe_paa, "IssueCertificate": issue_certificate}


def handle(event: dict[str, Any], client_factory: Any = None) -> tuple[str, dict[str, str]]:
    """Run the requested action; Delete is a no-op that keeps the physical id."""
    if event["RequestType"] == "Delete":
        return event["PhysicalResourceId"], {}
    props = event["ResourceProperties"]
    action = ACTIONS.get(props.get("Action", ""))
    if action is None:
        raise CheckFailed(f"unknown Action {props.get('Action')!r}")
    factory = client_factory or (lambda region: boto3.client("acm-pca", region_name=region))
    return action(factory(props["Region"]), props)


def respond(event: dict[str, Any], status: str, physical_id: str, data: dict[str, str], reason: str) -> None:
    """PUT the custom resource result to CloudFormation's pre-signed URL."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:3000],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the URL is CloudFormation's pre-signed S3 URL
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def on_event(event: dict[str, Any], context: Any) -> None:
    """Lambda entry point: always answers CloudFormation, success or failure."""
    fallback_id = str(
        event.get("PhysicalResourceId") or getattr(context, "log_stream_name", None) or "matter-paa-link"
    )
    try:
        physical_id, data = handle(event)
    except Exception as e:  # noqa: BLE001 - every failure must reach CloudFormation, or it waits an hour
        print(f"FAILED {event.get('RequestType')} {event.get('LogicalResourceId')}: {e!r}")
        respond(event, "FAILED", fallback_id, {}, f"{type(e).__name__}: {e}")
        return
    respond(event, "SUCCESS", physical_id, data, "OK")
