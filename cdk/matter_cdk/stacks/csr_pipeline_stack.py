"""CsrPipelineStack: CSR bucket → SQS (+DLQ) → DAC signer Lambda → DAC (.pem) or refusal (.err) in the bucket."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import RegexAppliesTo

from matter_cdk import CA_TYPE_PAI, ROLE_PATH
from matter_cdk.constructs.lambda_asset import HANDLER, dac_signer_code
from matter_cdk.constructs.nag import acknowledge, acknowledge_path
from matter_cdk.constructs.roles import CA_TAG_CONDITION_KEY, TEMPLATE_CONDITION_KEY
from matter_pki.profiles import PCA_TEMPLATE_DAC

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_acmpca as acmpca
    from constructs import Construct

    from matter_cdk.config import PipelineSettings

LAMBDA_TIMEOUT = Duration.minutes(1)
BATCH_SIZE = 5
#: MATTER_WORKERS: the signer (matter_pki.pipeline) handles a batch's records in parallel threads.
WORKERS = BATCH_SIZE
#: Receives before a message goes to the DLQ (the signer already retries transient errors itself).
MAX_RECEIVE_COUNT = 5
#: Lower bound of one record's wall time: Private CA issues asynchronously, so after
#: IssueCertificate the signer polls GetCertificate (waiter, MATTER_WAITER_DELAY 0.5 s) and also
#: reads the CSR, tags it and writes the DAC; about a second or more per DAC.
MIN_SECONDS_PER_DAC = 1.0
#: Lambda's SQS event source refuses a maximum concurrency under 2.
MIN_ESM_CONCURRENCY = 2


def reserved_concurrency(
    issue_rate_limit: int, *, workers: int = WORKERS, min_seconds_per_dac: float = MIN_SECONDS_PER_DAC
) -> int:
    """Concurrent executions that keep IssueCertificate at or under the Private CA quota.

    One execution has at most ``workers`` records in flight, each issuing at most one DAC per
    ``min_seconds_per_dac``: N executions call IssueCertificate at most N × workers /
    min_seconds_per_dac times a second. N = floor(quota × min_seconds_per_dac / workers) keeps
    that within the quota (default 25 TPS, 5 workers → 5 executions, 25 DACs in flight).
    Throttling that still happens (other issuers share the account quota) is a transient error
    the signer retries with backoff, then SQS redelivers.
    """
    return max(MIN_ESM_CONCURRENCY, math.floor(issue_rate_limit * min_seconds_per_dac / workers))


class CsrPipelineStack(Stack):
    """Upload ``<PAI ARN>/<PID>/<name>.csr``; the Lambda writes ``<name>.pem`` or ``<name>.err`` next to it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pais: Sequence[acmpca.ICertificateAuthority],
        settings: PipelineSettings,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        pai_arns = [pai.certificate_authority_arn for pai in pais]

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # server access log delivery needs SSE-S3
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(1827))],
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.bucket = s3.Bucket(
            self,
            "CsrBucket",
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,  # CSRs and DACs are public-key material
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="csr-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "CsrDeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "CsrQueue",
            # S3 cannot publish to a queue encrypted with the AWS managed SQS key; SSE-SQS works.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS Lambda: at least six times the function timeout for an SQS event source.
            visibility_timeout=Duration.seconds(6 * LAMBDA_TIMEOUT.to_seconds()),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue
            ),
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(suffix=".csr"),
        )

        log_group = logs.LogGroup(
            self, "SignerLogs", retention=logs.RetentionDays.TWO_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        role = iam.Role(
            self,
            "SignerRole",
            path=ROLE_PATH,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Matter PKI DAC signer: read CSRs, write DACs/refusals, issue DACs from the PAIs only",
        )
        log_group.grant_write(role)
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCsrsAndResults",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # The signer tags each CSR with its certificate ARN (idempotency beyond Private CA's 5 minutes).
                sid="TagCsrs",
                actions=[
                    "s3:GetObjectTagging",
                    "s3:GetObjectVersionTagging",
                    "s3:PutObjectTagging",
                    "s3:PutObjectVersionTagging",
                ],
                resources=[self.bucket.arn_for_objects("*.csr")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                # ListObjectsV2 under the CSR's prefix: does <name>.pem or <name>.err exist already?
                sid="ListForExistenceChecks",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDacsAndRefusals",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*.pem"), self.bucket.arn_for_objects("*.err")],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="IssueDacsFromPais",
                actions=["acm-pca:IssueCertificate"],
                resources=pai_arns,
                conditions={
                    "StringEquals": {
                        TEMPLATE_CONDITION_KEY: PCA_TEMPLATE_DAC,
                        CA_TAG_CONDITION_KEY: CA_TYPE_PAI,
                    }
                },
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadIssuedDacsAndPais",
                actions=["acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate"],
                resources=pai_arns,
            )
        )

        concurrency = reserved_concurrency(settings.issue_rate_limit)
        self.function = lambda_.Function(
            self,
            "DacSigner",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,  # matches the manylinux x86_64 wheels
            handler=HANDLER,
            code=dac_signer_code(),
            timeout=LAMBDA_TIMEOUT,
            memory_size=512,
            role=role,
            log_group=log_group,
            reserved_concurrent_executions=concurrency,
            description="Matter PKI: issue DACs from CSRs uploaded to the CSR bucket",
            # Read by matter_pki.pipeline.PipelineConfig.from_env (the bucket comes with each event).
            environment={
                "MATTER_CSR_BUCKET": self.bucket.bucket_name,
                "MATTER_PAI_ARNS": ",".join(pai_arns),
                "MATTER_DAC_VALIDITY": settings.dac_validity,
                "MATTER_WORKERS": str(WORKERS),
                "POWERTOOLS_SERVICE_NAME": "matter-dac-signer",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                # Never more pollers than executions: throttled invocations would burn receives.
                max_concurrency=concurrency,
            )
        )

        self.alarms = [
            cloudwatch.Alarm(
                self,
                "DeadLetterQueueNotEmpty",
                metric=self.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="CSRs failed repeatedly (transient errors exhausted their retries): inspect the DLQ",
            ),
            cloudwatch.Alarm(
                self,
                "SignerErrors",
                metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="The DAC signer Lambda failed (whole batches, not single refused CSRs)",
            ),
            cloudwatch.Alarm(
                self,
                "SignerThrottles",
                metric=self.function.metric_throttles(period=Duration.minutes(5), statistic="Sum"),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description="The DAC signer hit its reserved concurrency",
            ),
        ]
        if settings.alarm_topic_arn is not None:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", settings.alarm_topic_arn)
            for alarm in self.alarms:
                alarm.add_alarm_action(cw_actions.SnsAction(topic))

        acknowledge(
            role,
            "AwsSolutions-IAM5",
            "Object keys are <PAI ARN>/<PID>/<name>.csr, so reads cover the bucket's objects, tagging is limited "
            "to .csr objects and writes to the .pem and .err suffixes the signer produces.",
            applies_to=[
                RegexAppliesTo(regex=r"/^Resource::<CsrBucket[0-9A-F]{8}\.Arn>\/\*(\.pem|\.err|\.csr)?$/g")
            ],
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is pinned: the asset's wheels are built for CPython 3.12 (pip --python-version 3.12).",
        )
        acknowledge_path(
            self,
            f"{self.node.path}/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
            "AwsSolutions-IAM4",
            "CDK's singleton handler that writes the S3 → SQS notification uses AWSLambdaBasicExecutionRole.",
            applies_to=[
                "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            ],
        )

        CfnOutput(
            self,
            "CsrBucketName",
            value=self.bucket.bucket_name,
            description="Upload <PAI ARN>/<PID>/<name>.csr here",
        )
        CfnOutput(
            self,
            "DACIssuingLambdaFunctionName",
            value=self.function.function_name,
            description="The DAC signer",
        )
        CfnOutput(self, "CsrQueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        CfnOutput(
            self, "ReservedConcurrency", value=str(concurrency), description="Derived from pcaIssueRateLimit"
        )
