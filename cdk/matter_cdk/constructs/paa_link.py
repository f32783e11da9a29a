"""PaaLink: an existing PAA (by ARN, any Region) checked at deploy time, and a signer for PAIs in other Regions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from matter_cdk import CA_TYPE_PAA, CA_TYPE_TAG, ROLE_PATH
from matter_cdk.constructs.nag import acknowledge
from matter_cdk.constructs.roles import issue_with_template
from matter_pki.oid import MatterOID
from matter_pki.profiles import PCA_KEY_ALGORITHM, PCA_TEMPLATE_PAI
from matter_pki.vidpid import format_hex16

if TYPE_CHECKING:
    from matter_cdk.constructs.certificate_authority import CertificateRequest

HANDLER_SOURCE = Path(__file__).with_name("paa_link_handler.py")


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """Tokens of a certificate signed by the custom resource."""

    arn: str
    certificate: str


class PaaLink(Construct):
    """A Python 3.12 custom resource in the PAI stack's Region that talks to the PAA's Region.

    ``certificate_pem`` is the PAA certificate (the PAIs' chain). The check runs before any PAI
    is created: a wrong ARN, VID, key algorithm, status or missing ``matterCAType=paa`` tag fails
    the deployment while nothing has been created yet.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        paa_arn: str,
        paa_region: str,
        vid: int,
        allow_issue: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.paa_arn, self.paa_region = paa_arn, paa_region
        statements = [
            iam.PolicyStatement(
                sid="ReadPaa",
                actions=[
                    "acm-pca:DescribeCertificateAuthority",
                    "acm-pca:GetCertificateAuthorityCertificate",
                    "acm-pca:ListTags",
                ],
                resources=[paa_arn],
            )
        ]
        if allow_issue:
            statements += [
                *issue_with_template([paa_arn], PCA_TEMPLATE_PAI, CA_TYPE_PAA),
                iam.PolicyStatement(
                    sid="GetIssuedPai", actions=["acm-pca:GetCertificate"], resources=[paa_arn]
                ),
            ]
        log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.TWO_MONTHS, removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "Role",
            path=ROLE_PATH,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Matter PKI: check the PAA and sign PAIs with it from another Region",
            inline_policies={"PaaLink": iam.PolicyDocument(statements=statements)},
        )
        log_group.grant_write(role)
        self.function = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.on_event",
            code=lambda_.Code.from_inline(HANDLER_SOURCE.read_text(encoding="utf-8")),
            timeout=Duration.minutes(5),
            memory_size=256,
            role=role,
            log_group=log_group,
            description="Matter PKI: PAA check and cross-Region PAI signing (CloudFormation custom resource)",
        )
        self.check = CustomResource(
            self,
            "Check",
            service_token=self.function.function_arn,
            resource_type="Custom::MatterPaa",
            properties={
                "Action": "DescribePaa",
                "Region": paa_region,
                "CertificateAuthorityArn": paa_arn,
                "ExpectedVendorId": format_hex16(vid),
                "VendorIdOid": MatterOID.VENDOR_ID.dotted_string,
                "ExpectedKeyAlgorithm": PCA_KEY_ALGORITHM,
                "TagKey": CA_TYPE_TAG,
                "TagValue": CA_TYPE_PAA,
            },
        )
        self.certificate_pem = self.check.get_att_string("Certificate")
        acknowledge(
            self,
            "AwsSolutions-L1",
            "Python 3.12 is the runtime this project targets and tests (the DAC signer's wheels are built for 3.12).",
        )

    def issue(self, construct_id: str, *, csr: str, request: CertificateRequest) -> IssuedCertificate:
        """Sign ``csr`` with the PAA in its own Region; the request (template, passthrough, validity) comes from a profile."""
        resource = CustomResource(
            self,
            construct_id,
            service_token=self.function.function_arn,
            resource_type="Custom::MatterPaiCertificate",
            properties={
                "Action": "IssueCertificate",
                "Region": self.paa_region,
                "CertificateAuthorityArn": self.paa_arn,
                "Csr": csr,
                "Request": json.dumps(request, sort_keys=True),
            },
        )
        resource.node.add_dependency(self.check)
        return IssuedCertificate(
            arn=resource.get_att_string("CertificateArn"), certificate=resource.get_att_string("Certificate")
        )
