"""CsrPipelineStack: CSR bucket → SQS (+DLQ) → DAC signer Lambda → DAC (.pem) or refusal (.err) in the bucket."""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

from aws_cdk import CfnElement, CfnOutput, Duration, Stack

from matter_cdk.constructs.csr_pipeline import (
    AuditorAccess,
    CsrInbox,
    DacSigner,
    SignerAlarms,
    SigningQueue,
    signer_environment,
)
from matter_cdk.constructs.nag import acknowledge_path
from matter_pki.pipeline.config import CLAIM_MARGIN_SECONDS, TOKEN_WINDOW_SECONDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import aws_acmpca as acmpca
    from aws_cdk import aws_s3 as s3
    from constructs import Construct

    from matter_cdk.config import PipelineSettings

LAMBDA_TIMEOUT = Duration.seconds(30)
LAMBDA_MEMORY_MB = 512
BATCH_SIZE = 5
#: MATTER_WORKERS: the signer (matter_pki.pipeline) handles a batch's records in parallel threads.
WORKERS = BATCH_SIZE
#: AWS Lambda developer guide: an SQS source's visibility timeout should be six times the function timeout.
VISIBILITY_TIMEOUT = Duration.seconds(6 * LAMBDA_TIMEOUT.to_seconds())
#: Receives before a message goes to the DLQ.
MAX_RECEIVE_COUNT = 5
#: How long an IssueCertificate of unknown outcome may be repeated with the same token (claims).
CLAIM_WINDOW_SECONDS = TOKEN_WINDOW_SECONDS - CLAIM_MARGIN_SECONDS
#: Each record is given back this long before the timeout (a batch-item failure, not a killed invocation).
DEADLINE_MARGIN_MS = 8000
#: botocore attempts per AWS call (adaptive retry mode).
MAX_ATTEMPTS = 3
#: Lower bound of one record's wall time: Private CA issues asynchronously, so after
#: IssueCertificate the signer polls GetCertificate (MATTER_WAITER_DELAY 0.5 s) and also
#: reads the CSR, writes its claim and the DAC; about a second or more per DAC.
MIN_SECONDS_PER_DAC = 1.0
#: Lambda's SQS event source refuses a maximum concurrency under 2.
MIN_ESM_CONCURRENCY = 2


def check_timing(
    visibility_seconds: float = VISIBILITY_TIMEOUT.to_seconds(), claim_window_seconds: float = CLAIM_WINDOW_SECONDS
) -> None:
    """A message redelivered after a crash must come back while Private CA still deduplicates its token."""
    if visibility_seconds >= claim_window_seconds:
        raise ValueError(
            f"the queue's visibility timeout ({visibility_seconds:.0f} s) must be below the claim window "
            f"({claim_window_seconds:.0f} s = {TOKEN_WINDOW_SECONDS} s token window - {CLAIM_MARGIN_SECONDS} s margin)"
        )


def legacy_logical_id(path: str) -> str:
    """The logical ID CDK gave a resource at ``path`` (relative to the stack): its human part and a path hash."""
    parts = path.split("/")
    human = "".join(p for p in parts if p not in ("Resource", "Default"))
    return human + hashlib.md5("/".join(parts).encode()).hexdigest()[:8].upper()  # noqa: S324 - CDK's own scheme


#: Stateful resources keep the logical IDs they had before the stack was split into constructs, so an
#: update moves nothing (a new ID would create a new retained bucket, and a replaced bucket policy
#: or notification would be deleted after its successor was written).
LEGACY_PATHS = {
    "CsrInbox/CsrBucket/Resource": "CsrBucket/Resource",
    "CsrInbox/CsrBucket/Policy/Resource": "CsrBucket/Policy/Resource",
    "CsrInbox/CsrBucket/Notifications/Resource": "CsrBucket/Notifications/Resource",
    "CsrInbox/AccessLogs/Resource": "AccessLogs/Resource",
    "CsrInbox/AccessLogs/Policy/Resource": "AccessLogs/Policy/Resource",
    "SigningQueue/CsrQueue/Resource": "CsrQueue/Resource",
    "SigningQueue/CsrQueue/Policy/Resource": "CsrQueue/Policy/Resource",
    "SigningQueue/CsrDeadLetterQueue/Resource": "CsrDeadLetterQueue/Resource",
    "SigningQueue/CsrDeadLetterQueue/Policy/Resource": "CsrDeadLetterQueue/Policy/Resource",
    "DacSigner/SignerLogs/Resource": "SignerLogs/Resource",
}


def keep_legacy_ids(stack: Stack) -> None:
    """Give the stateful resources of ``LEGACY_PATHS`` their former logical IDs."""
    for path, legacy in LEGACY_PATHS.items():
        node = stack.node.try_find_child(path.split("/")[0])
        for part in path.split("/")[1:]:
            node = None if node is None else node.node.try_find_child(part)
        if isinstance(node, CfnElement):
            node.override_logical_id(legacy_logical_id(legacy))


def reserved_concurrency(
    issue_rate_limit: int, *, workers: int = WORKERS, min_seconds_per_dac: float = MIN_SECONDS_PER_DAC
) -> int:
    """Concurrent executions that keep IssueCertificate at or under the Private CA quota.

    One execution has at most ``workers`` records in flight, each issuing at most one DAC per
    ``min_seconds_per_dac``: N executions call IssueCertificate at most N × workers /
    min_seconds_per_dac times a second. N = floor(quota × min_seconds_per_dac / workers) keeps
    that within the quota (default 25 TPS, 5 workers → 5 executions, 25 DACs in flight).
    Throttling that still happens (other issuers share the account quota) is retried by
    botocore's adaptive mode, then SQS redelivers.
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
        prefix: str = "",
        crl_bucket: s3.IBucket | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        check_timing()
        pai_arns = [pai.certificate_authority_arn for pai in pais]
        inbox = CsrInbox(self, "CsrInbox")
        self.bucket, self.access_logs = inbox.bucket, inbox.access_logs
        queues = SigningQueue(
            self, "SigningQueue", visibility_timeout=VISIBILITY_TIMEOUT, max_receive_count=MAX_RECEIVE_COUNT
        )
        self.queue, self.dead_letter_queue = queues.queue, queues.dead_letter_queue
        inbox.notify(self.queue)
        concurrency = reserved_concurrency(settings.issue_rate_limit)
        signer = DacSigner(
            self,
            "DacSigner",
            bucket=self.bucket,
            queue=self.queue,
            pai_arns=pai_arns,
            crl_bucket=crl_bucket,
            timeout=LAMBDA_TIMEOUT,
            memory_mb=LAMBDA_MEMORY_MB,
            batch_size=BATCH_SIZE,
            concurrency=concurrency,
            environment=signer_environment(
                bucket=self.bucket,
                pai_arns=pai_arns,
                dac_validity=settings.dac_validity,
                workers=WORKERS,
                extra={
                    "MATTER_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
                    "MATTER_DEADLINE_MARGIN_MS": str(DEADLINE_MARGIN_MS),
                    "MATTER_CLAIM_WINDOW_SECONDS": str(CLAIM_WINDOW_SECONDS),
                },
            ),
        )
        self.function, self.role = signer.function, signer.role
        inbox.reserve_outputs_for(signer.role)
        self.alarms = SignerAlarms(
            self,
            "Alarms",
            function=signer.function,
            log_group=signer.log_group,
            dead_letter_queue=self.dead_letter_queue,
            alarm_topic_arn=settings.alarm_topic_arn,
        ).alarms
        AuditorAccess(self, "AuditorAccess", prefix=prefix, log_group=signer.log_group, access_logs=self.access_logs)
        keep_legacy_ids(self)
        acknowledge_path(
            self,
            f"{self.node.path}/BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
            "AwsSolutions-IAM4",
            "CDK's singleton handler that writes the S3 → SQS notification uses AWSLambdaBasicExecutionRole.",
            applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
        )
        CfnOutput(self, "CsrBucketName", value=self.bucket.bucket_name, description="Upload <PAI ARN>/<PID>/<name>.csr here")
        CfnOutput(self, "DACIssuingLambdaFunctionName", value=self.function.function_name, description="The DAC signer")
        CfnOutput(self, "CsrQueueUrl", value=self.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.dead_letter_queue.queue_url)
        CfnOutput(self, "ReservedConcurrency", value=str(concurrency), description="Derived from pcaIssueRateLimit")
