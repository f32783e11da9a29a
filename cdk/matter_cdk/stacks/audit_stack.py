"""AuditStack: CloudTrail → WORM audit bucket + MatterAudit log group with Matter metric filters, and backups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from matter_cdk import METRIC_NAMESPACE, ROLE_PATH
from matter_cdk.constructs.audit_bucket import AuditBucket
from matter_cdk.constructs.nag import acknowledge
from matter_cdk.constructs.roles import AUDIT_LOG_GROUP, AUDITOR_ROLE, role_arn

if TYPE_CHECKING:
    from constructs import Construct

_PCA = '($.eventSource = "acm-pca.amazonaws.com")'


def _any_event(*names: str) -> str:
    return "(" + " || ".join(f'($.eventName = "{n}")' for n in names) + ")"


#: Metric name → CloudWatch Logs filter pattern over CloudTrail records (JSON).
MATTER_METRIC_FILTERS: dict[str, str] = {
    "MatterPcaEvents": f"{{ {_PCA} }}",
    "MatterCaCreated": f"{{ {_PCA} && {_any_event('CreateCertificateAuthority')} }}",
    "MatterCaDeleted": f"{{ {_PCA} && {_any_event('DeleteCertificateAuthority')} }}",
    "MatterCaUpdated": f"{{ {_PCA} && "
    + _any_event(
        "UpdateCertificateAuthority",
        "ImportCertificateAuthorityCertificate",
        "RestoreCertificateAuthority",
        "TagCertificateAuthority",
        "UntagCertificateAuthority",
        "PutPolicy",
        "DeletePolicy",
    )
    + " }",
    "MatterCertificateIssued": f"{{ {_PCA} && {_any_event('IssueCertificate')} }}",
    "MatterCertificateRevoked": f"{{ {_PCA} && {_any_event('RevokeCertificate')} }}",
    "MatterPcaCallFailed": f'{{ {_PCA} && ($.errorCode = "*") }}',
    "MatterAccessDenied": '{ ($.errorCode = "AccessDenied*") || ($.errorCode = "*UnauthorizedOperation") }',
    "MatterRoleAssumed": '{ ($.eventName = "AssumeRole") && ($.requestParameters.roleArn = "*:role/MatterPKI/*") }',
}

#: Monthly backups kept 32 days, so at least one recovery point always exists (as in the sample).
BACKUP_DELETE_AFTER_DAYS = 32
BACKUP_MIN_RETENTION_DAYS = 30


class AuditStack(Stack):
    """Regional audit resources; the PAA Region's trail is multi-Region and records global (IAM) events."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        auditor_role: iam.IRole | None = None,
        lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE",
        multi_region_trail: bool = True,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.auditor_role = auditor_role or iam.Role.from_role_arn(
            self, "AuditorRole", role_arn(self, prefix, AUDITOR_ROLE), mutable=False
        )
        log_group_name = f"{prefix}{AUDIT_LOG_GROUP}"

        self.key = kms.Key(
            self,
            "AuditKey",
            description="Matter PKI audit: CloudTrail files, audit bucket, MatterAudit log group",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_cloudtrail_and_logs(log_group_name)

        self.backup_role = iam.Role(
            self,
            "BackupRole",
            path=ROLE_PATH,
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup of the Matter PKI audit bucket",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForBackup"
                ),
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSBackupServiceRolePolicyForRestores"
                ),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSBackupServiceRolePolicyForS3Backup"),
                iam.ManagedPolicy.from_aws_managed_policy_name("AWSBackupServiceRolePolicyForS3Restore"),
            ],
        )
        acknowledge(
            self.backup_role,
            "AwsSolutions-IAM4",
            "AWS Backup documents these AWS managed policies as the required permissions of a backup role for S3.",
        )

        self.audit_bucket = AuditBucket(
            self,
            "AuditBucket",
            key=self.key,
            readers=[self.auditor_role.role_arn, self.backup_role.role_arn],
            lock_mode=lock_mode,
        ).bucket

        self.log_group = logs.LogGroup(
            self,
            "MatterAudit",
            log_group_name=log_group_name,
            retention=logs.RetentionDays.TWO_MONTHS,
            encryption_key=self.key,
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.trail = cloudtrail.Trail(
            self,
            "MatterAuditTrail",
            bucket=self.audit_bucket,
            encryption_key=self.key,
            enable_file_validation=True,
            send_to_cloud_watch_logs=True,
            cloud_watch_log_group=self.log_group,
            is_multi_region_trail=multi_region_trail,
            include_global_service_events=multi_region_trail,
        )
        # Object-level reads and writes of the audit bucket. CloudTrail's own deliveries show up as
        # PutObject data events too: one per delivered file, bounded, not a runaway loop.
        self.trail.add_s3_event_selector(
            [cloudtrail.S3EventSelector(bucket=self.audit_bucket)],
            read_write_type=cloudtrail.ReadWriteType.ALL,
            include_management_events=True,
        )

        for metric_name, pattern in {
            **MATTER_METRIC_FILTERS,
            "MatterAuditBucketAccess": '{ ($.eventSource = "s3.amazonaws.com") && ($.requestParameters.bucketName = "'
            + self.audit_bucket.bucket_name
            + '") }',
        }.items():
            logs.MetricFilter(
                self,
                metric_name,
                log_group=self.log_group,
                metric_namespace=METRIC_NAMESPACE,
                metric_name=metric_name,
                filter_pattern=logs.FilterPattern.literal(pattern),
                metric_value="1",
            )

        vault = backup.BackupVault(
            self,
            "BackupVault",
            removal_policy=RemovalPolicy.RETAIN,
            lock_configuration=backup.LockConfiguration(
                min_retention=Duration.days(BACKUP_MIN_RETENTION_DAYS)
            ),
        )
        plan = backup.BackupPlan(self, "BackupPlan", backup_vault=vault)
        plan.add_rule(
            backup.BackupPlanRule(
                rule_name="MonthlyAuditBucketBackup",
                schedule_expression=events.Schedule.cron(minute="0", hour="3", day="1", month="*", year="*"),
                delete_after=Duration.days(BACKUP_DELETE_AFTER_DAYS),
            )
        )
        plan.add_selection(
            "AuditBucket",
            resources=[backup.BackupResource.from_arn(self.audit_bucket.bucket_arn)],
            role=self.backup_role,
        )

        CfnOutput(
            self,
            "LogGroupName",
            value=self.log_group.log_group_name,
            description="The name of the CloudWatch LogGroup",
        )
        CfnOutput(self, "CloudTrailArn", value=self.trail.trail_arn, description="The ARN of the CloudTrail")
        CfnOutput(
            self,
            "AuditBucketName",
            value=self.audit_bucket.bucket_name,
            description="The Object Lock audit bucket",
        )

    def _allow_cloudtrail_and_logs(self, log_group_name: str) -> None:
        """Key policy for CloudTrail (file encryption) and CloudWatch Logs (the MatterAudit group)."""
        trail_arns = self.format_arn(service="cloudtrail", region="*", resource="trail", resource_name="*")
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncryptsLogFiles",
                principals=[cloudtrail_principal],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": self.account},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_arns},
                },
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribesKey",
                principals=[cloudtrail_principal],
                actions=["kms:DescribeKey"],
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LogsEncryptsMatterAudit",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*",
                ],
                resources=["*"],
                conditions={
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=log_group_name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
