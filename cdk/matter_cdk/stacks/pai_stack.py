"""PaiStack: N PAIs under the PAA given by ``paaArn``, in the PAA's Region or another one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_acmpca as acmpca
from aws_cdk import aws_s3 as s3

from matter_cdk.constructs.certificate_authority import MatterCertificateAuthority
from matter_cdk.constructs.crl_bucket import MatterCrlBucket
from matter_cdk.constructs.crl_distribution import publish_crls
from matter_cdk.constructs.paa_link import PaaLink
from matter_cdk.stacks.paa_stack import console_link

if TYPE_CHECKING:
    from constructs import Construct

    from matter_cdk.config import MatterConfig


class PaiStack(Stack):
    """PAIs signed by the PAA: by AWS::ACMPCA::Certificate in the same Region, by a custom resource across Regions.

    Every PAI is activated with the PAA certificate as its chain. The PAA is checked first
    (PaaLink): no CA is created if the ARN, VID or tag is wrong.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: MatterConfig, **kwargs: object
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        assert (
            config.paa_arn is not None and config.paa_region is not None and config.pai_validity is not None
        )
        if config.crl_bucket_name is not None:
            # An existing CRL bucket (e.g. the PAA stack's one, same Region) whose policy admits Private CA.
            self.crl_bucket: s3.IBucket = s3.Bucket.from_bucket_name(
                self, "CrlBucket", config.crl_bucket_name
            )
        else:
            self.crl_bucket = MatterCrlBucket(self, "CrlBucket").bucket
        self.paa = PaaLink(
            self,
            "Paa",
            paa_arn=config.paa_arn,
            paa_region=config.paa_region,
            vid=config.pais[0].vid,
            allow_issue=config.cross_region,
        )
        self.authorities: list[MatterCertificateAuthority] = []
        #: The PAIs as typed references, for the CSR pipeline stack.
        self.pai_refs: list[acmpca.ICertificateAuthority] = []
        for pai in config.pais:
            ca = MatterCertificateAuthority(
                self,
                f"PaiCa{pai.index}",
                profile=pai.profile(),
                crl_bucket=self.crl_bucket,
                validity=config.pai_validity,
            )
            ca.authority.node.add_dependency(self.paa.check)
            if config.cross_region:
                issued = self.paa.issue(
                    f"PaiCa{pai.index}Certificate", csr=ca.csr, request=ca.certificate_request()
                )
                certificate, certificate_arn = issued.certificate, issued.arn
            else:
                certificate = ca.issue_with_cloudformation(config.paa_arn)
                assert ca.certificate is not None
                certificate_arn = ca.certificate.attr_arn
            ca.activate(certificate, chain=self.paa.certificate_pem)
            self.authorities.append(ca)
            self.pai_refs.append(
                acmpca.CertificateAuthority.from_certificate_authority_arn(
                    self, f"PaiCa{pai.index}Ref", ca.arn
                )
            )
            CfnOutput(
                self,
                f"PAI{pai.index}",
                value=f"{pai.describe()} {ca.arn}",
                description=f"The ARN of PAI{pai.index}",
            )
            CfnOutput(
                self,
                f"CertArnPAI{pai.index}",
                value=certificate_arn,
                description=f"The certificate ARN of PAI{pai.index}",
            )
            CfnOutput(
                self,
                f"CertLinkPAI{pai.index}",
                value=console_link(self.region, ca.arn),
                description="The link to the PAI certificate in the AWS Private CA console",
            )
        if config.delegated_crl_signer:  # revocation: KMS-backed delegated CRL signer (docs/revocation.md)
            from matter_cdk.constructs.kms_crl_signer import KmsCrlSigner

            KmsCrlSigner(self, "DelegatedCrlSigner", pai_arns=[ca.arn for ca in self.authorities], crl_bucket=self.crl_bucket, prefix=config.prefix)
        CfnOutput(
            self,
            "CrlBucketName",
            value=self.crl_bucket.bucket_name,
            description="The S3 bucket the PAI CRLs go to",
        )
        publish_crls(self, config, self.crl_bucket)
