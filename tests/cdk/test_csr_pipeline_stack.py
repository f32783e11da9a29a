"""CsrPipelineStack template: CSR bucket, S3 → SQS (+DLQ), DAC signer Lambda, least-privilege role, alarms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match  # noqa: E402
from matter_cdk.stacks.csr_pipeline_stack import check_timing, reserved_concurrency  # noqa: E402

from matter_pki.profiles import PCA_TEMPLATE_DAC  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

STACK = "MatterCsrPipeline"


@pytest.mark.parametrize(("rate", "expected"), [(25, 5), (50, 10), (100, 20), (12, 2), (1, 2)])
def test_reserved_concurrency_follows_the_issue_quota(rate: int, expected: int) -> None:
    # GIVEN an IssueCertificate quota WHEN deriving concurrency THEN executions × 5 workers ≤ quota (SQS minimum 2)
    assert reserved_concurrency(rate) == expected
    assert reserved_concurrency(25, workers=1) == 25
    assert reserved_concurrency(25, workers=1, min_seconds_per_dac=2.0) == 50


def test_csr_bucket_is_versioned_tls_only_and_logged(pai_app: Synth) -> None:
    # GIVEN the CSR bucket WHEN synthesized THEN it is versioned, encrypted, private and access-logged
    template = pai_app.template(STACK)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicPolicy": True}),
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": Match.string_like_regexp("AccessLogs")},
                "LogFilePrefix": "csr-bucket/",
            },
        },
    )
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies.values():
        assert {"Bool": {"aws:SecureTransport": "false"}} in [
            s.get("Condition") for s in policy["Properties"]["PolicyDocument"]["Statement"]
        ]


def test_only_csr_uploads_reach_the_queue(pai_app: Synth) -> None:
    # GIVEN the bucket notification WHEN synthesized THEN ObjectCreated of *.csr goes to the queue
    pai_app.template(STACK).has_resource_properties(
        "Custom::S3BucketNotifications",
        {
            "NotificationConfiguration": {
                "QueueConfigurations": [
                    {
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".csr"}]}},
                        "QueueArn": {"Fn::GetAtt": [Match.string_like_regexp("CsrQueue"), "Arn"]},
                    }
                ]
            }
        },
    )


def test_queue_has_dlq_redrive_and_six_times_the_lambda_timeout(pai_app: Synth) -> None:
    # GIVEN the CSR queue WHEN synthesized THEN visibility is 6 × 30 s and 5 receives lead to the DLQ
    template = pai_app.template(STACK)
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": 180,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {
                    "Fn::GetAtt": [Match.string_like_regexp("CsrDeadLetterQueue"), "Arn"]
                },
                "maxReceiveCount": 5,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True}
    )
    template.has_resource_properties(
        "AWS::Lambda::Function", {"Timeout": 30, "Handler": "handler.lambda_handler"}
    )


def test_a_crashed_record_comes_back_inside_private_cas_token_window() -> None:
    # GIVEN the stack's timing WHEN checked THEN the visibility timeout (180 s) is below the claim window
    # (300 s token window - 60 s margin); a longer one is refused at synth
    check_timing()
    with pytest.raises(ValueError, match="below the claim window"):
        check_timing(visibility_seconds=360)


def test_event_source_reports_batch_item_failures(pai_app: Synth) -> None:
    # GIVEN the SQS event source WHEN synthesized THEN partial batch failures and max concurrency are set
    pai_app.template(STACK).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 5,
            "ScalingConfig": {"MaximumConcurrency": 5},
            "EventSourceArn": {"Fn::GetAtt": [Match.string_like_regexp("CsrQueue"), "Arn"]},
        },
    )


def test_signer_is_python_312_with_reserved_concurrency_and_environment(pai_app: Synth) -> None:
    # GIVEN the DAC signer WHEN synthesized THEN runtime, concurrency and environment are set
    pai_app.template(STACK).has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Runtime": "python3.12",
            "Handler": "handler.lambda_handler",
            "Architectures": ["x86_64"],
            "ReservedConcurrentExecutions": 5,
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MATTER_CSR_BUCKET": {"Ref": Match.string_like_regexp("CsrBucket")},
                        "MATTER_PAI_ARNS": Match.object_like({"Fn::Join": Match.any_value()}),
                        "MATTER_DAC_VALIDITY": "1000",
                        "MATTER_WORKERS": "5",
                        "MATTER_MAX_ATTEMPTS": "3",
                        "MATTER_DEADLINE_MARGIN_MS": "8000",
                        "MATTER_CLAIM_WINDOW_SECONDS": "240",
                    }
                )
            },
        },
    )


def test_signer_role_is_least_privilege(pai_app: Synth) -> None:
    # GIVEN the signer role WHEN synthesized THEN it lives under /MatterPKI/ and its grants are narrow
    template = pai_app.template(STACK)
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "Path": "/MatterPKI/",
            "AssumeRolePolicyDocument": Match.object_like(
                {"Statement": [Match.object_like({"Principal": {"Service": "lambda.amazonaws.com"}})]}
            ),
        },
    )
    statements = {
        s.get("Sid"): s
        for p in template.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    }
    issue = statements["IssueDacsFromPais"]
    assert issue["Action"] == "acm-pca:IssueCertificate"
    assert issue["Condition"] == {
        "StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_DAC, "aws:ResourceTag/matterCAType": "pai"}
    }
    assert len(issue["Resource"]) == 2 and all("PaiCa" in str(r) for r in issue["Resource"])
    assert statements["ReadIssuedDacsAndPais"]["Action"] == [
        "acm-pca:GetCertificate",
        "acm-pca:GetCertificateAuthorityCertificate",
    ]
    revoke = statements["RevokeRefusedDacs"]
    assert revoke["Action"] == "acm-pca:RevokeCertificate" and len(revoke["Resource"]) == 2
    write = statements["WriteDacsRefusalsAndClaims"]
    assert write["Action"] == "s3:PutObject"
    assert sorted(r["Fn::Join"][1][1] for r in write["Resource"]) == ["/*.err", "/*.pem", "/claims/*"]
    assert statements["ReadCsrsResultsAndClaims"]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
    assert "TagCsrs" not in statements  # claims replaced the certificate-ARN tag


def test_only_the_signer_writes_answers_and_claims(pai_app: Synth) -> None:
    # GIVEN the CSR bucket's policy WHEN synthesized THEN everyone but the signer role is denied writing
    # .pem, .err and claims/ (an uploader could otherwise publish a forged DAC or claim)
    policies = pai_app.template(STACK).find_resources("AWS::S3::BucketPolicy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyTheSignerWritesAnswersAndClaims"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert set(deny["Action"]) == {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert sorted(r["Fn::Join"][1][1] for r in deny["Resource"]) == ["/*.err", "/*.pem", "/claims/*"]
    assert deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][0].startswith("DacSignerSignerRole")


def test_the_auditor_reads_the_signer_logs_and_the_access_logs(pai_app: Synth) -> None:
    # GIVEN the pipeline WHEN synthesized THEN MatterAuditorRole gets read access to both
    policies = pai_app.template(STACK).find_resources("AWS::IAM::Policy")
    (auditor,) = [p for k, p in policies.items() if k.startswith("AuditorAccess")]
    assert "MatterAuditorRole" in str(auditor["Properties"]["Roles"])
    sids = {s["Sid"]: s for s in auditor["Properties"]["PolicyDocument"]["Statement"]}
    assert "logs:FilterLogEvents" in sids["ReadSignerLogs"]["Action"]
    assert "SignerLogs" in str(sids["ReadSignerLogs"]["Resource"])
    assert "s3:GetObject" in sids["ReadCsrBucketAccessLogs"]["Action"]
    assert "AccessLogs" in str(sids["ReadCsrBucketAccessLogs"]["Resource"])


def test_alarms_watch_the_dlq_and_lambda_errors(pai_app: Synth) -> None:
    # GIVEN the pipeline WHEN synthesized THEN DLQ depth and Lambda errors raise alarms
    template = pai_app.template(STACK)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"MetricName": "Errors", "Namespace": "AWS/Lambda", "Threshold": 1}
    )
    # AND log lines asking for an operator (quota, set-up, reconciliation) raise one before the DLQ fills
    template.has_resource_properties(
        "AWS::Logs::MetricFilter",
        {"FilterPattern": "{ $.operator_action IS TRUE }", "MetricTransformations": [Match.object_like({"MetricName": "DacSignerOperatorAction"})]},
    )
    template.has_resource_properties("AWS::CloudWatch::Alarm", {"MetricName": "DacSignerOperatorAction", "Threshold": 1})


def test_pipeline_outputs(pai_app: Synth) -> None:
    # GIVEN the pipeline WHEN synthesized THEN the bucket and Lambda names are output
    template = pai_app.template(STACK)
    template.has_output("CsrBucketName", {})
    template.has_output("DACIssuingLambdaFunctionName", {})


def test_stateful_resources_keep_their_logical_ids(pai_app: Synth) -> None:
    # GIVEN the stack split into constructs WHEN synthesized THEN buckets, policies, notification,
    # queues and log group keep the IDs of the single-constructor stack (an update replaces none of them)
    resources = pai_app.template(STACK).to_json()["Resources"]
    for legacy in ("CsrBucket4E404C5F", "AccessLogs8B620ECA", "CsrQueueD3AFBD8B", "CsrDeadLetterQueueCAD405E5", "SignerLogsA711E84E"):
        assert legacy in resources, legacy
    for prefix in ("CsrBucketPolicy", "CsrBucketNotifications", "AccessLogsPolicy", "CsrQueuePolicy"):
        assert any(k.startswith(prefix) and not k.startswith("CsrInbox") for k in resources), prefix
