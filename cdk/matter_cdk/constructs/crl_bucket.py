"""MatterCrlBucket: where Private CA writes the PAA/PAI CRLs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from matter_cdk.constructs.nag import acknowledge

#: Private CA writes ``crl/<CA id>.crl`` unless a CustomPath is configured.
CRL_PREFIX = "crl/"


class MatterCrlBucket(Construct):
    """Versioned, TLS-only bucket with Block Public Access; only Private CA of this account may write CRLs.

    CRLs are public data (the DCL and commissioners fetch them), but the bucket stays private:
    publish them through CloudFront with origin access control, or lift Block Public Access on
    this bucket alone (README, "Publishing CRLs").
    """

    def __init__(self, scope: Construct, construct_id: str, *, bucket_name: str | None = None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Confused-deputy guard: only CAs of this account and Region (Private CA user guide, CRL policies).
        source = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="acm-pca", resource="certificate-authority", resource_name="*"
                )
            },
        }
        principal = iam.ServicePrincipal("acm-pca.amazonaws.com")
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PrivateCaReadsBucket",
                principals=[principal],
                actions=["s3:GetBucketAcl", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn],
                conditions=source,
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PrivateCaWritesCrls",
                principals=[principal],
                actions=["s3:PutObject", "s3:PutObjectAcl"],
                resources=[self.bucket.arn_for_objects(f"{CRL_PREFIX}*")],
                conditions=source,
            )
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Only Private CA writes here (CRL generation is recorded by CloudTrail as acm-pca activity); "
            "the objects are public CRLs, so server access logs would add cost without audit value.",
        )
