"""AuditStack template: WORM audit bucket, CloudTrail, MatterAudit log group and metric filters, backups."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match  # noqa: E402
from matter_cdk.stacks.audit_stack import MATTER_METRIC_FILTERS  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

STACK = "MatterAudit"


def test_audit_bucket_is_object_locked_for_five_years(paa_app: Synth) -> None:
    # GIVEN the audit bucket WHEN synthesized THEN Object Lock GOVERNANCE retains objects 1827 days (5 years)
    paa_app.template(STACK).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1827}},
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )


def test_audit_bucket_moves_to_glacier_after_60_days_and_expires_after_5_years(paa_app: Synth) -> None:
    # GIVEN the audit bucket WHEN synthesized THEN its lifecycle archives and expires as the sample documents
    paa_app.template(STACK).has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": [
                    Match.object_like(
                        {
                            "Status": "Enabled",
                            "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": 60}],
                            "ExpirationInDays": 1827,
                        }
                    )
                ]
            }
        },
    )


def test_audit_bucket_is_kms_encrypted_and_private(paa_app: Synth) -> None:
    # GIVEN the audit bucket WHEN synthesized THEN it uses the rotating audit key and blocks public access
    template = paa_app.template(STACK)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": {
                                    "Fn::GetAtt": [Match.string_like_regexp("AuditKey"), "Arn"]
                                },
                            }
                        }
                    )
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_audit_bucket_policy_is_tls_only_and_auditor_only(paa_app: Synth) -> None:
    # GIVEN the audit bucket policy WHEN synthesized THEN non-TLS requests, non-auditor reads and bypass are denied
    statements = next(iter(paa_app.template(STACK).find_resources("AWS::S3::BucketPolicy").values()))[
        "Properties"
    ]["PolicyDocument"]["Statement"]
    tls = next(s for s in statements if s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}})
    assert tls["Effect"] == "Deny" and tls["Action"] == "s3:*"
    readers = next(s for s in statements if s.get("Sid") == "AuditReaders")
    only = next(s for s in statements if s.get("Sid") == "OnlyAuditReadersRead")
    assert only["Effect"] == "Deny" and only["Principal"] == {"AWS": "*"}
    assert only["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    allowed = only["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert len(allowed) == 2  # the auditor role (a reference to the PAA stack's role) and the backup role
    assert "RolesAuditor" in str(allowed[0]) and "RolesAuditor" in str(readers["Principal"])
    bypass = next(s for s in statements if s.get("Sid") == "NoGovernanceBypass")
    assert bypass["Effect"] == "Deny" and bypass["Action"] == "s3:BypassGovernanceRetention"


def test_trail_validates_files_encrypts_and_records_audit_bucket_data_events(paa_app: Synth) -> None:
    # GIVEN the trail WHEN synthesized THEN file validation, KMS, CloudWatch Logs and S3 data events are on
    paa_app.template(STACK).has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "EnableLogFileValidation": True,
            "IsMultiRegionTrail": True,
            "IncludeGlobalServiceEvents": True,
            "KMSKeyId": {"Fn::GetAtt": [Match.string_like_regexp("AuditKey"), "Arn"]},
            "CloudWatchLogsLogGroupArn": {"Fn::GetAtt": [Match.string_like_regexp("MatterAudit"), "Arn"]},
            "EventSelectors": [
                {
                    "DataResources": [
                        {
                            "Type": "AWS::S3::Object",
                            "Values": [
                                {
                                    "Fn::Join": [
                                        "",
                                        [
                                            {"Fn::GetAtt": [Match.string_like_regexp("AuditBucket"), "Arn"]},
                                            "/",
                                        ],
                                    ]
                                }
                            ],
                        }
                    ],
                    "IncludeManagementEvents": True,
                    "ReadWriteType": "All",
                }
            ],
        },
    )


def test_key_policy_lets_cloudtrail_and_logs_use_the_key(paa_app: Synth) -> None:
    # GIVEN the audit key WHEN synthesized THEN CloudTrail and CloudWatch Logs are allowed with context conditions
    key = next(iter(paa_app.template(STACK).find_resources("AWS::KMS::Key").values()))
    sids = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert sids["CloudTrailEncryptsLogFiles"]["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert (
        "kms:EncryptionContext:aws:cloudtrail:arn"
        in sids["CloudTrailEncryptsLogFiles"]["Condition"]["StringLike"]
    )
    assert "kms:EncryptionContext:aws:logs:arn" in sids["LogsEncryptsMatterAudit"]["Condition"]["ArnEquals"]
    assert sids["AuditReadersDecryptThroughS3"]["Action"] == "kms:Decrypt"


def test_matter_audit_log_group_keeps_two_months(paa_app: Synth) -> None:
    # GIVEN the log group WHEN synthesized THEN it is named MatterAudit, retains 60 days and is KMS-encrypted
    paa_app.template(STACK).has_resource_properties(
        "AWS::Logs::LogGroup",
        {
            "LogGroupName": "MatterAudit",
            "RetentionInDays": 60,
            "KmsKeyId": {"Fn::GetAtt": [Match.any_value(), "Arn"]},
        },
    )


@pytest.mark.parametrize("metric", sorted(MATTER_METRIC_FILTERS))
def test_matter_metric_filters(paa_app: Synth, metric: str) -> None:
    # GIVEN a Matter-relevant event class WHEN synthesized THEN a metric filter counts it in MatterPKI
    paa_app.template(STACK).has_resource_properties(
        "AWS::Logs::MetricFilter",
        {
            "FilterPattern": MATTER_METRIC_FILTERS[metric],
            "MetricTransformations": [
                {"MetricName": metric, "MetricNamespace": "MatterPKI", "MetricValue": "1"}
            ],
        },
    )


def test_metric_filter_patterns_name_the_events() -> None:
    # GIVEN the filter table THEN each CA lifecycle filter names its CloudTrail event
    assert '"CreateCertificateAuthority"' in MATTER_METRIC_FILTERS["MatterCaCreated"]
    assert '"DeleteCertificateAuthority"' in MATTER_METRIC_FILTERS["MatterCaDeleted"]
    assert '"UpdateCertificateAuthority"' in MATTER_METRIC_FILTERS["MatterCaUpdated"]
    assert '"IssueCertificate"' in MATTER_METRIC_FILTERS["MatterCertificateIssued"]
    assert '"RevokeCertificate"' in MATTER_METRIC_FILTERS["MatterCertificateRevoked"]
    assert '$.errorCode = "AccessDenied*"' in MATTER_METRIC_FILTERS["MatterAccessDenied"]
    assert '$.errorCode = "*"' in MATTER_METRIC_FILTERS["MatterPcaCallFailed"]


def test_audit_bucket_is_backed_up_monthly_to_a_locked_vault(paa_app: Synth) -> None:
    # GIVEN AWS Backup WHEN synthesized THEN a locked vault, a monthly rule and a selection of the bucket exist
    template = paa_app.template(STACK)
    template.has_resource_properties(
        "AWS::Backup::BackupVault", {"LockConfiguration": {"MinRetentionDays": 30}}
    )
    template.has_resource_properties(
        "AWS::Backup::BackupPlan",
        {
            "BackupPlan": {
                "BackupPlanRule": [
                    Match.object_like(
                        {"ScheduleExpression": "cron(0 3 1 * ? *)", "Lifecycle": {"DeleteAfterDays": 32}}
                    )
                ]
            }
        },
    )
    template.has_resource_properties(
        "AWS::Backup::BackupSelection",
        {
            "BackupSelection": Match.object_like(
                {"Resources": [{"Fn::GetAtt": [Match.string_like_regexp("AuditBucket"), "Arn"]}]}
            )
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Path": "/MatterPKI/",
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "backup.amazonaws.com"}})]}
            ),
        },
    )


def test_audit_outputs(paa_app: Synth) -> None:
    # GIVEN the audit stack WHEN synthesized THEN the sample's outputs exist
    template = paa_app.template(STACK)
    template.has_output("LogGroupName", {})
    template.has_output("CloudTrailArn", {})


def test_compliance_mode_drops_the_governance_bypass_deny() -> None:
    # GIVEN auditLockMode=COMPLIANCE WHEN an audit stack is synthesized on its own
    import aws_cdk as cdk
    from aws_cdk.assertions import Template
    from matter_cdk.stacks.audit_stack import AuditStack

    stack = AuditStack(cdk.App(), "Audit", prefix="", lock_mode="COMPLIANCE")
    template = Template.from_stack(stack)
    # THEN the lock mode is COMPLIANCE and the auditor role is referenced by its well-known ARN
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1827}},
            }
        },
    )
    policy = str(template.find_resources("AWS::S3::BucketPolicy"))
    assert "BypassGovernanceRetention" not in policy
    assert ":role/MatterPKI/MatterAuditorRole" in policy
