"""KmsCrlSigner: a delegated CRL signer whose key lives in AWS KMS, and the one role allowed to use it.

For issuers who need an IssuingDistributionPoint or a delegated signer on AWS (Private CA's own CRLs
carry neither). The key is asymmetric, ECC_NIST_P256 / SIGN_VERIFY (Matter keys are P-256 only);
its certificate is issued by the Private CA PAIs through ApiPassthrough with the blank end-entity
template (``matter-pki aws crl-signer``), and CRLs built from the revocation records are signed
through KMS and written under ``delegated-crl/`` of the CRL bucket (``matter-pki aws publish-crl``).

Least privilege: the publisher role may sign with this key only (ECDSA_SHA_256), issue only with
the blank end-entity template on these PAIs, read their certificates, and write/read only
``delegated-crl/*``. The key policy admits the account (so IAM decides) and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from cdk_nag import RegexAppliesTo
from constructs import Construct

from matter_cdk import ROLE_PATH
from matter_cdk.constructs.nag import acknowledge
from matter_pki.backends.aws_crl import DELEGATED_CRL_PREFIX
from matter_pki.revocation.signer import PCA_TEMPLATE_CRL_SIGNER

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_s3 as s3

CRL_PUBLISHER_ROLE = "MatterCrlPublisherRole"


class KmsCrlSigner(Construct):
    """The KMS key of the delegated CRL signer and the role that issues its certificate and publishes CRLs."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pai_arns: Sequence[str],
        crl_bucket: s3.IBucket,
        prefix: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="Matter delegated CRL signer (ECDSA P-256); signs indirect CRLs of the PAIs",
            key_spec=kms.KeySpec.ECC_NIST_P256,
            key_usage=kms.KeyUsage.SIGN_VERIFY,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "PublisherRole",
            role_name=f"{prefix}{CRL_PUBLISHER_ROLE}",
            path=ROLE_PATH,
            assumed_by=iam.AccountPrincipal(stack.account),
            description="Issues the delegated CRL signer certificate and publishes its CRLs (matter-pki aws)",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="SignWithTheCrlSignerKey",
                actions=["kms:Sign"],
                resources=[self.key.key_arn],
                conditions={"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="ReadTheCrlSignerPublicKey", actions=["kms:GetPublicKey", "kms:DescribeKey"], resources=[self.key.key_arn])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="IssueTheSignerWithTheBlankEndEntityTemplate",
                actions=["acm-pca:IssueCertificate"],
                resources=list(pai_arns),
                conditions={"StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_CRL_SIGNER}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadPaiCertificates",
                actions=["acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate"],
                resources=list(pai_arns),
            )
        )
        objects = crl_bucket.arn_for_objects(f"{DELEGATED_CRL_PREFIX}*")
        self.role.add_to_policy(
            iam.PolicyStatement(sid="PublishDelegatedCrls", actions=["s3:PutObject", "s3:GetObject"], resources=[objects])
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "The publisher writes one CRL object per PAI under the delegated-crl/ prefix of the CRL bucket and reads the "
            "previous one (its CRL Number must grow); issued certificates have unpredictable ARNs below each PAI.",
            applies_to=[RegexAppliesTo(regex=r"/^Resource::.*\/delegated-crl\/\*$/g")],
        )
        CfnOutput(self, "CrlSignerKeyArn", value=self.key.key_arn, description="KMS key of the delegated CRL signer")
        CfnOutput(self, "CrlPublisherRoleArn", value=self.role.role_arn, description="Role for matter-pki aws crl-signer / publish-crl")
