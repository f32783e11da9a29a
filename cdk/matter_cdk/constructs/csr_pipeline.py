"""The CSR pipeline's parts: inbox bucket, signing queue, DAC signer function, alarms, auditor access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy
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
from constructs import Construct

from matter_cdk import CA_TYPE_PAI, METRIC_NAMESPACE, ROLE_PATH
from matter_cdk.constructs.crl_bucket import CRL_PREFIX
from matter_cdk.constructs.lambda_asset import HANDLER, dac_signer_code
from matter_cdk.constructs.nag import acknowledge
from matter_cdk.constructs.roles import AUDITOR_ROLE, CA_TAG_CONDITION_KEY, TEMPLATE_CONDITION_KEY, role_arn
from matter_pki.layout import CLAIMS_PREFIX, CSR_SUFFIX, ERR_SUFFIX, PEM_SUFFIX
from matter_pki.profiles import PCA_TEMPLATE_DAC

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: What only the signer may write: the answers manufacturers download, and its claims.
SIGNER_OUTPUTS = (f"*{PEM_SUFFIX}", f"*{ERR_SUFFIX}", f"{CLAIMS_PREFIX}*")


class CsrInbox(Construct):
    """The CSR bucket (versioned, private, access-logged) and its access-log bucket."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
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
            # Versioning: an event names the version it is about, so a stale event is recognised.
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,  # CSRs and DACs are public-key material
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="csr-bucket/",
            removal_policy=RemovalPolicy.RETAIN,
        )

    def notify(self, queue: sqs.IQueue) -> None:
        """Created ``.csr`` objects → ``queue`` (the signer's own writes never notify)."""
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.SqsDestination(queue), s3.NotificationKeyFilter(suffix=CSR_SUFFIX)
        )

    def reserve_outputs_for(self, signer: iam.IRole) -> None:
        """Nobody but ``signer`` writes or deletes answers and claims (an uploader could forge a DAC answer)."""
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheSignerWritesAnswersAndClaims",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
                resources=[self.bucket.arn_for_objects(p) for p in SIGNER_OUTPUTS],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": signer.role_arn}},
            )
        )


class SigningQueue(Construct):
    """The CSR queue and its dead-letter queue (redrive after ``max_receive_count`` receives)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, visibility_timeout: Duration, max_receive_count: int
    ) -> None:
        super().__init__(scope, construct_id)
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
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=self.dead_letter_queue),
        )


class DacSigner(Construct):
    """The signer function, its role (least privilege) and log group, fed by the CSR queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        queue: sqs.IQueue,
        pai_arns: Sequence[str],
        crl_bucket: s3.IBucket | None,
        timeout: Duration,
        memory_mb: int,
        batch_size: int,
        concurrency: int,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self, "SignerLogs", retention=logs.RetentionDays.TWO_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        self.role = iam.Role(
            self,
            "SignerRole",
            path=ROLE_PATH,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Matter PKI DAC signer: read CSRs, write DACs/refusals/claims, issue and revoke DACs on the PAIs only",
        )
        self.log_group.grant_write(self.role)
        for statement in _signer_statements(bucket, list(pai_arns), crl_bucket):
            self.role.add_to_policy(statement)
        self.function = lambda_.Function(
            self,
            "DacSigner",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,  # matches the manylinux x86_64 wheels
            handler=HANDLER,
            code=dac_signer_code(),
            timeout=timeout,
            memory_size=memory_mb,
            role=self.role,
            log_group=self.log_group,
            reserved_concurrent_executions=concurrency,
            description="Matter PKI: issue DACs from CSRs uploaded to the CSR bucket",
            environment=dict(environment),  # read by matter_pki.pipeline.PipelineConfig.from_env
        )
        self.function.add_event_source(
            event_sources.SqsEventSource(
                queue,
                batch_size=batch_size,
                report_batch_item_failures=True,
                # Never more pollers than executions: throttled invocations would burn receives.
                max_concurrency=concurrency,
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Object keys are <PAI ARN>/<PID>/<name>.csr, so reads cover the bucket's objects, and writes are limited "
            "to the .pem and .err suffixes and the claims/ prefix the signer produces (a bucket policy reserves "
            "them to the signer); RevokeCertificate needs write access to the CRL objects Private CA writes.",
            applies_to=[
                RegexAppliesTo(regex=r"/^Resource::<CsrBucket[0-9A-F]{8}\.Arn>\/(\*|\*\.pem|\*\.err|claims\/\*)$/g"),
                RegexAppliesTo(regex=r"/^Resource::.*crl\/\*.*$/g"),
            ],
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Python 3.12 is pinned: the asset's wheels are built for CPython 3.12 (pip --python-version 3.12).",
        )


def _signer_statements(bucket: s3.IBucket, pai_arns: list[str], crl_bucket: s3.IBucket | None) -> list[iam.PolicyStatement]:
    statements = [
        iam.PolicyStatement(
            sid="ReadCsrsResultsAndClaims",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            # HeadObject of a missing .pem/.err answers 404 only with ListBucket (403 otherwise).
            sid="ListForExistenceChecks",
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="WriteDacsRefusalsAndClaims",
            actions=["s3:PutObject"],
            resources=[bucket.arn_for_objects(p) for p in SIGNER_OUTPUTS],
        ),
        iam.PolicyStatement(
            sid="IssueDacsFromPais",
            actions=["acm-pca:IssueCertificate"],
            resources=pai_arns,
            conditions={"StringEquals": {TEMPLATE_CONDITION_KEY: PCA_TEMPLATE_DAC, CA_TAG_CONDITION_KEY: CA_TYPE_PAI}},
        ),
        iam.PolicyStatement(
            sid="ReadIssuedDacsAndPais",
            actions=["acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate"],
            resources=pai_arns,
        ),
        iam.PolicyStatement(
            # A DAC the release gate refuses is revoked.
            sid="RevokeRefusedDacs",
            actions=["acm-pca:RevokeCertificate"],
            resources=pai_arns,
            conditions={"StringEquals": {CA_TAG_CONDITION_KEY: CA_TYPE_PAI}},
        ),
    ]
    if crl_bucket is not None:
        # API reference, RevokeCertificate: "Both AWS Private CA and the IAM principal must have
        # permission to write to the S3 bucket that you specify."
        statements.append(
            iam.PolicyStatement(
                sid="RevokeWritesCrlObjects",
                actions=["s3:PutObject"],
                resources=[crl_bucket.arn_for_objects(f"{CRL_PREFIX}*")],
            )
        )
    return statements


class SignerAlarms(Construct):
    """DLQ depth, Lambda errors and throttles, and log lines asking for an operator."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        log_group: logs.ILogGroup,
        dead_letter_queue: sqs.IQueue,
        alarm_topic_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        operator_filter = logs.MetricFilter(
            self,
            "OperatorActionFilter",
            log_group=log_group,
            metric_namespace=METRIC_NAMESPACE,
            metric_name="DacSignerOperatorAction",
            # matter_pki.pipeline logs operator_action: true for quota, set-up and reconciliation failures.
            filter_pattern=logs.FilterPattern.boolean_value("$.operator_action", True),
            metric_value="1",
        )

        def alarm(name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
            return cloudwatch.Alarm(
                self,
                name,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )

        self.alarms = [
            alarm(
                "DeadLetterQueueNotEmpty",
                dead_letter_queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
                "CSRs an operator must look at (quota, set-up, reconciliation, or transient errors that outlasted "
                "their receives): inspect the DLQ, fix, then re-drive it",
            ),
            alarm(
                "SignerNeedsOperator",
                operator_filter.metric(period=Duration.minutes(5), statistic="Sum"),
                "The DAC signer hit a quota, a set-up error or a claim to reconcile (log field operator_action); "
                "the records will reach the DLQ",
            ),
            alarm(
                "SignerErrors",
                function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
                "The DAC signer Lambda failed (whole batches, not single refused CSRs)",
            ),
            alarm(
                "SignerThrottles",
                function.metric_throttles(period=Duration.minutes(5), statistic="Sum"),
                "The DAC signer hit its reserved concurrency",
            ),
        ]
        if alarm_topic_arn is not None:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", alarm_topic_arn)
            for each in self.alarms:
                each.add_alarm_action(cw_actions.SnsAction(topic))


class AuditorAccess(Construct):
    """MatterAuditorRole (made by the PAA stack) may read the signer's logs and the CSR bucket's access logs."""

    def __init__(
        self, scope: Construct, construct_id: str, *, prefix: str, log_group: logs.ILogGroup, access_logs: s3.IBucket
    ) -> None:
        super().__init__(scope, construct_id)
        auditor = iam.Role.from_role_arn(self, "AuditorRole", role_arn(self, prefix, AUDITOR_ROLE), mutable=True)
        self.policy = iam.Policy(
            self,
            "AuditorReadsSigner",
            roles=[auditor],
            statements=[
                iam.PolicyStatement(
                    sid="ReadSignerLogs",
                    actions=["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents", "logs:StartQuery"],
                    resources=[log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="ReadCsrBucketAccessLogs",
                    actions=["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"],
                    resources=[access_logs.bucket_arn, access_logs.arn_for_objects("*")],
                ),
            ],
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5",
            "The auditor reads every access-log object of the CSR bucket's log bucket and every stream of the signer's "
            "log group (IAM addresses streams as ':*'); both are named exactly.",
            applies_to=[
                RegexAppliesTo(regex=r"/^Resource::<AccessLogs[0-9A-F]{8}\.Arn>\/\*$/g"),
                RegexAppliesTo(regex=r"/^Resource::<SignerLogs[0-9A-F]{8}\.Arn>(:\*)?$/g"),
            ],
        )


def signer_environment(
    *,
    bucket: s3.IBucket,
    pai_arns: Sequence[str],
    dac_validity: str,
    workers: int,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """``MATTER_*`` variables for ``PipelineConfig.from_env``."""
    return {
        "MATTER_CSR_BUCKET": bucket.bucket_name,
        "MATTER_PAI_ARNS": ",".join(pai_arns),
        "MATTER_DAC_VALIDITY": dac_validity,
        "MATTER_WORKERS": str(workers),
        "POWERTOOLS_SERVICE_NAME": "matter-dac-signer",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        **extra,
    }
