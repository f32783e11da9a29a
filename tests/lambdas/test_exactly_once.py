"""Exactly one released DAC per (PAI, PID, CSR) under Private CA's documented behaviour.

moto S3 (versioned, real event notifications) and SQS (with the stack's redrive policy), the real
handler, and the Private CA MODEL (``matter_pki.testing.pca_model``) with a fake clock where time
matters (the five-minute token window, pending certificates, the Lambda deadline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki.pipeline import PipelineConfig
from tests.lambdas.conftest import BUCKET, MAX_RECEIVE_COUNT, LambdaContext, make_harness
from tests.lambdas.fakes import ModelPrivateCa, p256_csr

if TYPE_CHECKING:
    from tests.lambdas.conftest import Harness


@dataclass
class Clock:
    """One fake time for the signer (wall and monotonic), its sleeps, and the Private CA model."""

    wall: datetime = field(default_factory=lambda: datetime.now(UTC))
    mono: float = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def _point(csr: bytes) -> bytes:
    return x509.load_pem_x509_csr(csr).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _dac_point(h: Harness, key: str) -> bytes:
    dac = x509.load_pem_x509_certificate(h.read(key))
    return dac.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _logs(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _timed_harness(clock: Clock, **kwargs: Any) -> Harness:
    fake = kwargs.pop("pca", None) or ModelPrivateCa(now=clock.now)
    return make_harness(pca=fake, now=clock.now, sleep=clock.sleep, monotonic=clock.monotonic, **kwargs)


def test_the_same_csr_uploaded_twice_gives_one_certificate(aws_env: None) -> None:
    # GIVEN one CSR uploaded twice under one name (two versions, one content) and once under a second name
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    csr = p256_csr()
    h.upload(f"{pai}/8000/twice.csr", csr)
    h.upload(f"{pai}/8000/twice.csr", csr)
    h.upload(f"{pai}/8000/other-name.csr", csr)
    # WHEN every message is delivered twice
    h.drain(duplicate=True)
    # THEN Private CA issued one certificate, and both names carry it
    assert len(h.pca.certificates) == 1
    assert h.read(f"{pai}/8000/twice.pem") == h.read(f"{pai}/8000/other-name.pem")
    assert len(h.claims()) == 1
    # AND uploading it again later changes nothing
    h.upload(f"{pai}/8000/twice.csr", csr)
    h.drain()
    assert len(h.pca.certificates) == 1


def test_one_device_key_under_a_second_pid_or_pai_is_refused_key_reused(aws_env: None) -> None:
    # GIVEN a device key certified under PAI 1 / PID 8000 (the local CA's rule: one key, one PAI and PID)
    h = make_harness()
    paa = h.pca.add_paa()
    pai = h.pca.add_pai(paa)
    other_pai = h.pca.add_pai(paa)
    h.drain()
    key = ec.generate_private_key(ec.SECP256R1())
    h.upload(f"{pai}/8000/first.csr", p256_csr(key))
    h.drain()
    assert len(h.pca.certificates) == 1
    # WHEN new CSRs of the same key arrive for another PID and under another PAI, each delivered twice
    h.upload(f"{pai}/8001/second-pid.csr", p256_csr(key, cn="again"))
    h.upload(f"{other_pai}/8000/second-pai.csr", p256_csr(key, der=True))
    h.drain(duplicate=True)
    # THEN each is answered .err issue.key_reused, Private CA issued nothing more, one binding names the first
    for name in (f"{pai}/8001/second-pid", f"{other_pai}/8000/second-pai"):
        assert h.err(f"{name}.err")["code"] == "issue.key_reused"
        assert f"{name}.pem" not in h.keys()
    assert len(h.pca.certificates) == 1
    assert [(b["pai_arn"], b["pid"]) for b in h.key_bindings().values()] == [(pai, 0x8000)]
    # AND a new CSR of the key under its own PAI and PID gets the same certificate again
    h.upload(f"{pai}/8000/again.csr", p256_csr(key, cn="third"))
    h.drain()
    assert h.read(f"{pai}/8000/again.pem") == h.read(f"{pai}/8000/first.pem") and len(h.pca.certificates) == 1


def test_an_overwritten_csr_gives_one_dac_for_the_current_object(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a CSR overwritten by another before either event is processed
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    first, second = p256_csr(), p256_csr()
    key = f"{pai}/8000/device.csr"
    h.upload(key, first)
    h.upload(key, second)
    # WHEN the two events are delivered, in either order and twice
    h.drain(duplicate=True)
    # THEN one certificate, for the current object's key, is published; the stale event was skipped
    assert len(h.pca.certificates) == 1
    assert _dac_point(h, key[:-4] + ".pem") == _point(second)
    assert any(r["message"].startswith("skipped: the CSR was overwritten") for r in _logs(capsys.readouterr().out))


@pytest.mark.parametrize(("redelivered_after", "published"), [(timedelta(minutes=3), True), (timedelta(minutes=6), False)])
def test_a_crash_after_issue_certificate_never_gives_a_second_certificate(
    aws_env: None, redelivered_after: timedelta, published: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a Lambda killed right after Private CA issued the certificate (before anything was recorded)
    clock = Clock()
    h = _timed_harness(clock)
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    key = f"{pai}/8000/crash.csr"
    h.upload(key, p256_csr())

    class Killed(BaseException):
        """The Lambda runtime killing the invocation (nothing catches it)."""

    def kill_once(operation: str, _params: dict[str, Any]) -> None:
        if operation == "IssueCertificate":
            h.pca.on_answer = None
            raise Killed

    h.pca.on_answer = kill_once
    messages = h.receive()
    with pytest.raises(Killed):
        h.invoke(messages)
    assert len(h.pca.certificates) == 1
    # WHEN SQS redelivers the message (after its visibility timeout, or much later)
    clock.advance(redelivered_after.total_seconds())
    for m in messages:
        h.sqs.send_message(QueueUrl=h.queue_url, MessageBody=m["Body"])
    h.drain()
    # THEN Private CA never issued a second certificate
    assert len(h.pca.certificates) == 1
    if published:  # inside the token window: the same token returned the same certificate
        assert h.pca.calls["IssueCertificate"] == 2
        assert x509.load_pem_x509_certificate(h.read(key[:-4] + ".pem")).serial_number == h.pca.issued_serials()[0]
    else:  # past it: nobody can know without an operator; the record went to the DLQ, no .err
        assert h.pca.calls["IssueCertificate"] == 1
        assert h.keys() == {key} and len(h.dead_letters) == 1
        codes = {r.get("code") for r in _logs(capsys.readouterr().out) if r["message"].startswith("failed;")}
        assert codes == {"pipeline.reconcile"}


def test_a_certificate_pending_past_the_timeout_fails_the_record_before_the_deadline(aws_env: None) -> None:
    # GIVEN a certificate Private CA keeps pending for 130 s, and a 30 s Lambda (margin 8 s)
    clock = Clock()
    fake = ModelPrivateCa(now=clock.now, pending_for=timedelta(seconds=130))
    cfg = PipelineConfig(workers=2, waiter_delay=0.5, waiter_max_attempts=1000, csr_bucket=BUCKET, deadline_margin_ms=8000)
    h = _timed_harness(clock, pca=fake, config=cfg)
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    h.drain()
    key = f"{pai}/8000/slow.csr"
    h.upload(key, p256_csr())
    start = clock.mono
    context = LambdaContext(remaining_ms=lambda: int((start + 30 - clock.mono) * 1000))
    # WHEN the invocation runs
    result = h.invoke(h.receive(), context)
    # THEN the record is a batch-item failure, returned before the 30 s timeout (inside the margin)
    assert len(result["batchItemFailures"]) == 1
    assert 30 - 8 - 1 <= clock.mono - start < 30 - 8 + 0.5
    # AND the redelivery, once the certificate is issued, publishes it without a second IssueCertificate
    clock.advance(130)
    h.sqs.send_message(QueueUrl=h.queue_url, MessageBody=json.dumps(_event_for(h, key)))
    h.drain()
    assert key[:-4] + ".pem" in h.keys() and fake.calls["IssueCertificate"] == 1 and len(fake.certificates) == 1


def _event_for(h: Harness, key: str) -> dict[str, Any]:
    head = h.s3.head_object(Bucket=BUCKET, Key=key)
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key), "versionId": head["VersionId"], "size": 400}},
            }
        ]
    }


def test_a_validity_policy_that_outlives_the_pai_sends_records_to_the_dlq(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN "no-expiry" DACs configured under a PAI that expires in two years (Private CA refuses them)
    now = datetime.now(UTC)
    h = make_harness(config=PipelineConfig(workers=2, waiter_delay=0, csr_bucket=BUCKET, validity="no-expiry"))
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000, not_after=now + timedelta(days=730))
    h.drain()
    key = f"{pai}/8000/device.csr"
    h.upload(key, p256_csr())
    # WHEN drained
    h.drain()
    # THEN nothing was issued and no .err blames the CSR; the record is in the DLQ
    assert h.keys() == {key} and len(h.pca.certificates) == 0 and h.pca.calls["IssueCertificate"] == 0
    assert len(h.dead_letters) == 1
    failures = [r for r in _logs(capsys.readouterr().out) if r["message"].startswith("failed;")]
    assert {r["code"] for r in failures} == {"config.dac_validity_beyond_pai"} and all(r["operator_action"] for r in failures)
    # AND once the policy is fixed, re-driving the DLQ issues the DAC
    from matter_pki import pipeline

    pipeline.runtime().pipeline.config = PipelineConfig(workers=2, waiter_delay=0, csr_bucket=BUCKET, validity="issuer")
    for m in h.dead_letters:
        h.sqs.send_message(QueueUrl=h.queue_url, MessageBody=m["Body"])
    h.dead_letters.clear()
    h.receives.clear()
    h.drain()
    assert key[:-4] + ".pem" in h.keys()


@pytest.mark.parametrize(("pending_polls", "per_dac"), [(0, 1), (2, 3)])
def test_get_certificate_is_called_once_per_dac_once_issued(aws_env: None, pending_polls: int, per_dac: int) -> None:
    # GIVEN certificates ready at the first poll (or after two "in progress" answers)
    h = make_harness(pca=ModelPrivateCa(pending_polls=pending_polls))
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    for i in range(8):
        h.upload(f"{pai}/8000/d{i}.csr", p256_csr())
    # WHEN drained
    h.drain()
    # THEN one IssueCertificate per DAC, and GetCertificate only until the first success
    assert h.pca.calls["IssueCertificate"] == 8
    assert h.pca.calls["GetCertificate"] == 8 * per_dac


def test_a_quota_error_goes_to_the_dlq_and_is_not_retried_as_throttling(aws_env: None) -> None:
    # GIVEN a PAI at its certificates-per-CA quota (LimitExceededException, which botocore would retry)
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.pca.cas[pai].issued = h.pca.certificates_per_ca
    h.drain()
    key = f"{pai}/8000/device.csr"
    h.upload(key, p256_csr())
    # WHEN drained
    h.drain()
    # THEN one IssueCertificate per receive (no retries inside the call), no .err, the record in the DLQ
    assert h.pca.calls["IssueCertificate"] == MAX_RECEIVE_COUNT
    assert h.keys() == {key} and len(h.dead_letters) == 1
    # AND the claim is free again (every attempt was refused): after the quota is raised, a redrive issues
    assert [c["state"] for c in h.claims().values()] == ["free"]
    h.pca.cas[pai].issued = 0
    for m in h.dead_letters:
        h.sqs.send_message(QueueUrl=h.queue_url, MessageBody=m["Body"])
    h.dead_letters.clear()
    h.receives.clear()
    h.drain()
    assert key[:-4] + ".pem" in h.keys() and len(h.pca.certificates) == 1


def test_events_for_another_bucket_are_a_configuration_error(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a signer serving another bucket than the one notifying it (MATTER_CSR_BUCKET)
    h = make_harness(config=PipelineConfig(workers=1, waiter_delay=0, csr_bucket="some-other-bucket"))
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    h.upload(f"{pai}/8000/device.csr", p256_csr())
    # WHEN drained THEN nothing is read, issued or written; the record goes to the DLQ
    h.drain()
    assert len(h.pca.certificates) == 0 and len(h.dead_letters) == 1
    assert {r["code"] for r in _logs(capsys.readouterr().out) if r["message"].startswith("failed;")} == {"config.csr_bucket"}
