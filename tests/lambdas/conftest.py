"""End-to-end harness: moto S3 with real event notifications into moto SQS, the Lambda handler, a MODEL Private CA.

The queue is drained the way the Lambda event source mapping does it: up to 10 messages per
invocation, successful records deleted, ``batchItemFailures`` made visible again for redelivery.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from matter_pki import pipeline
from matter_pki.layout import CLAIMS_PREFIX
from matter_pki.pipeline import PipelineConfig
from tests.lambdas.fakes import REGION, TEST_RETRIES, ModelPrivateCa

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
HANDLER_PATH = ROOT / "lambdas" / "dac_signer" / "handler.py"
BUCKET = "matter-csr-inbox"


def load_handler() -> ModuleType:
    """Import ``lambdas/dac_signer/handler.py`` as a module (it is not a package).

    Each import gets its own Powertools service name: a Logger binds ``sys.stdout`` when first created,
    and pytest's output capture swaps ``sys.stdout`` per test.
    """
    spec = importlib.util.spec_from_file_location("dac_signer_handler", HANDLER_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["dac_signer_handler"] = module
    previous = os.environ.get("POWERTOOLS_SERVICE_NAME")
    os.environ["POWERTOOLS_SERVICE_NAME"] = f"dac-signer-test-{uuid.uuid4().hex[:8]}"
    try:
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["POWERTOOLS_SERVICE_NAME"]
        else:
            os.environ["POWERTOOLS_SERVICE_NAME"] = previous
    return module


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handler and Powertools read.

    ``remaining_ms``: a callable giving the time left (default: plenty), e.g. from a fake clock.
    """

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "dac-signer"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:dac-signer"
    log_group_name: str = "/aws/lambda/dac-signer"
    log_stream_name: str = "stream"
    remaining_ms: Any = None

    def get_remaining_time_in_millis(self) -> int:
        """Time left in this invocation."""
        return 300_000 if self.remaining_ms is None else int(self.remaining_ms())


#: The stack's redrive policy: a message that failed this many receives moves to the DLQ.
MAX_RECEIVE_COUNT = 5


@dataclass
class Harness:
    """One bucket notifying one queue (with its DLQ redrive policy), the handler, and the fake Private CA."""

    s3: Any
    sqs: Any
    queue_url: str
    pca: ModelPrivateCa
    handler: ModuleType
    invocations: list[dict[str, Any]] = field(default_factory=list)
    receives: Counter[str] = field(default_factory=Counter)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def upload(self, key: str, body: bytes) -> None:
        """Put an object (S3 then notifies SQS)."""
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def keys(self) -> set[str]:
        """Every key in the bucket except the signer's claims (``claims()``)."""
        return {k for k in self.all_keys() if not k.startswith(CLAIMS_PREFIX)}

    def all_keys(self) -> set[str]:
        """Every key in the bucket."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return {o["Key"] for page in pages for o in page.get("Contents", [])}

    def claims(self) -> dict[str, dict[str, Any]]:
        """The signer's claims, parsed, by key."""
        bindings = f"{CLAIMS_PREFIX}keys/"
        return {k: json.loads(self.read(k)) for k in self.all_keys() if k.startswith(CLAIMS_PREFIX) and not k.startswith(bindings)}

    def key_bindings(self) -> dict[str, dict[str, Any]]:
        """The signer's device-key bindings (first PAI and PID of each key), parsed, by key."""
        return {k: json.loads(self.read(k)) for k in self.all_keys() if k.startswith(f"{CLAIMS_PREFIX}keys/")}

    def read(self, key: str) -> bytes:
        """An object's bytes."""
        body: bytes = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        return body

    def err(self, key: str) -> dict[str, Any]:
        """A parsed ``.err`` object."""
        data: dict[str, Any] = json.loads(self.read(key))
        return data

    def receive(self) -> list[dict[str, Any]]:
        """Every message in the queue now, taken off it (a failed one is sent again by ``deliver_once``).

        moto rescans in-flight messages on every ReceiveMessage (quadratic in the queue length), so the
        harness deletes at once instead of leaving messages in flight until their batch finishes.
        """
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not got:
                return out
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
            )
            out.extend(got)

    def invoke(self, messages: list[dict[str, Any]], context: LambdaContext | None = None) -> dict[str, Any]:
        """Run the handler on SQS messages as the event source mapping would; returns its response."""
        event = {"Records": [_record(m) for m in messages]}
        try:
            result: dict[str, Any] = self.handler.lambda_handler(event, context or LambdaContext())
        except Exception as e:  # Powertools raises BatchProcessingError when every record failed
            result = {
                "batchItemFailures": [{"itemIdentifier": m["MessageId"]} for m in messages],
                "error": repr(e),
            }
        self.invocations.append(result)
        return result

    def deliver_once(self, *, duplicate: bool = False, shuffle: random.Random | None = None) -> int:
        """One round: take every visible message, invoke in batches of 10, put failed records back on the queue."""
        messages = self.receive()
        deliveries = messages + messages if duplicate else list(messages)
        if shuffle is not None:
            shuffle.shuffle(deliveries)
        failed: set[str] = set()
        for i in range(0, len(deliveries), 10):
            result = self.invoke(deliveries[i : i + 10])
            failed |= {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for m in messages:
            self.receives[m["Body"]] += 1
            if m["MessageId"] not in failed:
                continue
            if self.receives[m["Body"]] >= MAX_RECEIVE_COUNT:  # the redrive policy moves it to the DLQ
                self.dead_letters.append(m)
            else:  # SQS makes it visible again after the visibility timeout
                self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=m["Body"])
        return len(messages)

    def drain(
        self, *, duplicate: bool = False, rounds: int = 20, shuffle: random.Random | None = None
    ) -> int:
        """Deliver until the queue is empty; ``duplicate`` delivers every message twice. Returns rounds used."""
        for used in range(rounds):
            if not self.deliver_once(duplicate=duplicate, shuffle=shuffle):
                return used
        raise AssertionError(f"queue not drained after {rounds} rounds")


def _record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:csr-queue",
        "awsRegion": REGION,
    }


_PUT_LOCK = threading.Lock()


def _atomic_conditional_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 decides a conditional PutObject (If-None-Match / If-Match) atomically; moto checks, then writes.

    Without this, two handler threads publishing one ``.pem`` can both pass moto's If-None-Match check
    (a race of the fake, not of S3): one lock around moto's PutObject gives it S3's atomicity.
    """
    from moto.s3.responses import S3Response

    real = S3Response.put_object

    def put_object(self: S3Response) -> Any:
        with _PUT_LOCK:
            return real(self)

    monkeypatch.setattr(S3Response, "put_object", put_object)


@contextlib.contextmanager
def mocked_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region; moto intercepts every call; the container's pipeline is reset after."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # botocore's retry backoff sleeps for real; the tests keep its decisions and skip the sleeps.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda _self, _ctx: 0)
    _atomic_conditional_puts(monkeypatch)
    try:
        with mock_aws():
            yield
    finally:
        pipeline.reset()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto for the test (see ``mocked_aws``)."""
    with mocked_aws(monkeypatch):
        yield


def make_harness(
    *,
    pca: ModelPrivateCa | None = None,
    suffix_filter: bool = True,
    workers: int = 4,
    config: PipelineConfig | None = None,
    s3_client: Any = None,
    versioned: bool = True,
    sleep: Any = None,
    now: Any = None,
    monotonic: Any = None,
) -> Harness:
    """Bucket (versioned) → SQS notification (suffix ``.csr`` unless told otherwise) → handler."""
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    queue_url = sqs.create_queue(QueueName="csr-queue")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    notification: dict[str, Any] = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    if suffix_filter:
        notification["Filter"] = {"Key": {"FilterRules": [{"Name": "suffix", "Value": ".csr"}]}}
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [notification]}
    )
    fake = pca or ModelPrivateCa()
    handler = load_handler()
    cfg = config or PipelineConfig(workers=workers, waiter_delay=0, csr_bucket=BUCKET)
    clocks: dict[str, Any] = {"sleep": sleep or (lambda _s: None)}
    if now is not None:
        clocks["now"] = now
    if monotonic is not None:
        clocks["monotonic"] = monotonic
    pipeline.configure(
        pca=fake.client(),
        s3=s3_client or boto3.client("s3", region_name=REGION, config=TEST_RETRIES),
        config=cfg,
        logger=handler.logger,
        **clocks,
    )
    return Harness(s3, sqs, queue_url, fake, handler)
