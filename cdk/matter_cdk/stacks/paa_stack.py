"""PaaStack: the PAA side, i.e. CRL bucket, optional new PAA, and the four Matter PKI roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Stack

from matter_cdk.constructs.certificate_authority import MatterCertificateAuthority
from matter_cdk.constructs.crl_bucket import MatterCrlBucket
from matter_cdk.constructs.crl_distribution import publish_crls
from matter_cdk.constructs.roles import MatterPkiRoles
from matter_pki.vidpid import format_hex16

if TYPE_CHECKING:
    from constructs import Construct

    from matter_cdk.config import MatterConfig


def console_link(region: str, ca_arn: str) -> str:
    """The CA's certificate tab in the Private CA console."""
    return (
        f"https://console.aws.amazon.com/acm-pca/home?region={region}#/details?arn={ca_arn}&tab=certificate"
    )


class PaaStack(Stack):
    """``generatePaa=1``: a new self-signed PAA; otherwise roles around the PAA given by ``paaArn``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: MatterConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.crl_bucket = MatterCrlBucket(self, "CrlBucket", bucket_name=config.crl_bucket_name).bucket
        self.paa: MatterCertificateAuthority | None = None
        if config.paa is not None:
            self.paa = MatterCertificateAuthority(
                self,
                "PaaCa",
                profile=config.paa.profile(),
                crl_bucket=self.crl_bucket,
                validity=config.paa.validity,
            )
            self.paa.activate(self.paa.issue_with_cloudformation(self.paa.arn))
            paa_arn = self.paa.arn
            assert self.paa.certificate is not None
            CfnOutput(
                self,
                "PAACertArn",
                value=self.paa.certificate.attr_arn,
                description="The ARN of the PAA certificate",
            )
            CfnOutput(
                self,
                "PAACertLink",
                value=console_link(self.region, paa_arn),
                description="The link to the PAA certificate in the AWS Private CA console",
            )
            CfnOutput(
                self,
                "PAA",
                value=f"VID={format_hex16(config.paa.vid)} CN={config.paa.common_name} {paa_arn}",
                description="The ARN of the PAA",
            )
        else:
            assert config.paa_arn is not None
            paa_arn = config.paa_arn
        self.paa_arn = paa_arn
        self.roles = MatterPkiRoles(self, "Roles", prefix=config.prefix, paa_arn=paa_arn)
        CfnOutput(
            self,
            "CrlBucketName",
            value=self.crl_bucket.bucket_name,
            description="The S3 bucket the CRLs go to",
        )
        publish_crls(self, config, self.crl_bucket)
        for name, role in (
            ("ManagePAARoleArn", self.roles.manage_paa),
            ("IssuePAIRoleArn", self.roles.issue_pai),
            ("IssueDACRoleArn", self.roles.issue_dac),
            ("AuditorRoleArn", self.roles.auditor),
        ):
            CfnOutput(self, name, value=role.role_arn)
