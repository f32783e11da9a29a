"""AuditBucket: write-once storage for the Matter PKI audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from matter_cdk.constructs.nag import acknowledge

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_kms as kms

#: Five years (CDK's RetentionDays.FIVE_YEARS): Object Lock retention and expiry of audit records.
AUDIT_RETENTION_DAYS = 1827
#: Two months online, then Glacier (as in the sample's hard-coded values).
GLACIER_AFTER_DAYS = 60
#: Older versions (only created by overwrites, which Object Lock keeps) go after this.
NONCURRENT_EXPIRY_DAYS = 30

READ_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion"]


class AuditBucket(Construct):
    """Versioned, KMS-encrypted, TLS-only, public access blocked, Object Lock with 5-year default retention.

    Lifecycle: Glacier after 60 days, expiry after 5 years. Only ``readers`` (the auditor role and
    the backup role) may read objects: an explicit Deny covers every other principal, including
    administrators, who would have to change the bucket policy first (a CloudTrail-recorded event).
    In GOVERNANCE mode the policy also denies ``s3:BypassGovernanceRetention`` to everybody, so
    shortening a retention needs the same recorded policy change.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        key: kms.IKey,
        readers: Sequence[str],
        lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE",
    ) -> None:
        super().__init__(scope, construct_id)
        retention = Duration.days(AUDIT_RETENTION_DAYS)
        lock = (
            s3.ObjectLockRetention.compliance(retention)
            if lock_mode == "COMPLIANCE"
            else s3.ObjectLockRetention.governance(retention)
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            object_lock_enabled=True,
            object_lock_default_retention=lock,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="MatterAuditLogsArchive",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.GLACIER,
                            transition_after=Duration.days(GLACIER_AFTER_DAYS),
                        )
                    ],
                    expiration=retention,
                    noncurrent_version_expiration=Duration.days(NONCURRENT_EXPIRY_DAYS),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AuditReaders",
                principals=[iam.ArnPrincipal(arn) for arn in readers],
                actions=[*READ_ACTIONS, "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyAuditReadersRead",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=READ_ACTIONS,
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": list(readers)}},
            )
        )
        if lock_mode == "GOVERNANCE":
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="NoGovernanceBypass",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:BypassGovernanceRetention"],
                    resources=[self.bucket.arn_for_objects("*")],
                )
            )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AuditReadersDecryptThroughS3",
                principals=[iam.ArnPrincipal(arn) for arn in readers],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "Every object-level access to this bucket is recorded by the audit trail's S3 data events, "
            "which stream to the MatterAudit log group; server access logs would duplicate them into another bucket.",
        )
