"""The DAC signer end to end: moto S3 → real event notification → moto SQS → handler → MODEL Private CA → S3.

The Private CA is ``ModelPrivateCa``: a real botocore client whose answers come from
``matter_pki.testing.pca_model`` (a MODEL of the documented templates, not AWS).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import pipeline
from matter_pki.pipeline import PipelineConfig
from matter_pki.validate import validate_att_cert
from tests.lambdas.conftest import BUCKET, LambdaContext, load_handler, make_harness
from tests.lambdas.fakes import REGION, TEST_RETRIES, ModelPrivateCa, p256_csr, response, xml_error

if TYPE_CHECKING:
    import pytest

    from tests.lambdas.conftest import Harness

EVENTS = Path(__file__).resolve().parents[1] / "events"
FIXED_PAI = (
    "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
)


def _chain(h: Harness, pai: str) -> tuple[bytes, bytes]:
    ca = h.pca.cas[pai]
    assert ca.cert is not None
    return ca.chain[-1].public_bytes(Encoding.DER), ca.cert.public_bytes(Encoding.DER)


def _point(csr_pem: bytes) -> bytes:
    return (
        x509.load_pem_x509_csr(csr_pem)
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )


def _json_logs(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_good_csrs_become_dacs_that_validate(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a product-scoped PAI and a vendor-scoped PAI, and six CSRs (one with a URL-unsafe but valid name)
    h = make_harness()
    paa = h.pca.add_paa()
    pai_8000, pai_any = h.pca.add_pai(paa, pid=0x8000), h.pca.add_pai(paa)
    uploads = {}
    for i in range(3):
        uploads[f"{pai_8000}/8000/dev_{i}.v1-a.csr"] = p256_csr(cn=f"Mvid:FFF2 {i}")
        uploads[f"{pai_any}/8{i}0A/dev-{i}.csr"] = p256_csr(der=True)
    for key, body in uploads.items():
        h.upload(key, body)
    # WHEN the queue is drained through the handler
    h.drain()
    # THEN each CSR has a .pem next to it and nothing else appeared
    assert h.keys() == set(uploads) | {k[:-4] + ".pem" for k in uploads}
    assert all(not inv["batchItemFailures"] for inv in h.invocations)
    for key, body in uploads.items():
        pai = key.rsplit("/", 2)[0]
        paa_der, pai_der = _chain(h, pai)
        pem = h.read(key[:-4] + ".pem")
        dac = x509.load_pem_x509_certificate(pem)
        der = dac.public_bytes(Encoding.DER)
        # AND the DAC validates PAA → PAI → DAC in both check orders
        for mode in ("chip-cert", "commissioner"):
            assert validate_att_cert(
                paa=paa_der, pai=pai_der, dac=der, at=datetime.now(UTC) + timedelta(seconds=2), mode=mode
            ).ok  # type: ignore[arg-type]
        # AND it certifies the CSR's key, with a subject built from the PAI VID and the key's PID only
        csr_pem = (
            body if body.startswith(b"-----") else x509.load_der_x509_csr(body).public_bytes(Encoding.PEM)
        )
        assert dac.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == _point(csr_pem)
        assert [a.value for a in dac.subject] == ["Matter DAC", "FFF1", key.rsplit("/", 2)[1]]
        head = h.s3.head_object(Bucket=BUCKET, Key=key[:-4] + ".pem")
        assert head["ContentType"] == "application/x-pem-file"
        assert int(head["Metadata"]["serial"], 16) == dac.serial_number
    # AND the PAI chain was fetched once per PAI, not per CSR; one IssueCertificate per CSR
    assert pipeline.runtime().pca.chain_fetches == 2
    assert h.pca.calls["IssueCertificate"] == 6
    assert h.pca.calls["GetCertificateAuthorityCertificate"] == 2
    # AND the log lines are structured JSON with PAI ARN, key, serial and request id
    issued = [r for r in _json_logs(capsys.readouterr().out) if r["message"] == "DAC issued"]
    assert len(issued) == 6
    for line in issued:
        assert line["pai_arn"] in (pai_8000, pai_any)
        assert line["key"] in uploads and line["serial"] and line["request_id"] == line["function_request_id"]
        assert line["certificate_arn"].startswith(line["pai_arn"] + "/certificate/")


def test_redelivery_never_issues_a_second_dac(aws_env: None) -> None:
    # GIVEN 20 CSRs whose SQS messages are each delivered twice, shuffled across batches
    h = make_harness(workers=4)
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    keys = [f"{pai}/8000/d{i:02}.csr" for i in range(20)]
    for key in keys:
        h.upload(key, p256_csr())
    # WHEN drained
    h.drain(duplicate=True, shuffle=random.Random(5))
    # THEN 20 DACs, 20 certificates on the CA, one version of each .pem
    assert {k for k in h.keys() if k.endswith(".pem")} == {k[:-4] + ".pem" for k in keys}
    assert len(h.pca.certificates) == 20
    versions = h.s3.list_object_versions(Bucket=BUCKET)["Versions"]
    assert sorted(v["Key"] for v in versions if v["Key"].endswith(".pem")) == sorted(
        k[:-4] + ".pem" for k in keys
    )
    # AND uploading a signed CSR again gives no new DAC (the .pem exists)
    first = h.read(keys[0][:-4] + ".pem")
    h.upload(keys[0], p256_csr())
    h.drain()
    assert h.read(keys[0][:-4] + ".pem") == first
    assert len(h.pca.certificates) == 20


def test_the_same_message_twice_in_one_batch_publishes_one_dac(aws_env: None) -> None:
    # GIVEN one CSR whose message arrives twice in the same batch, processed concurrently
    h = make_harness(workers=4)
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()  # the s3:TestEvent
    h.upload(f"{pai}/8000/twin.csr", p256_csr())
    messages = h.receive()
    # WHEN the batch holds it twice
    result = h.invoke(messages + messages)
    # THEN both records succeed, one certificate exists and one .pem was written
    assert result["batchItemFailures"] == []
    assert len(h.pca.certificates) == 1
    assert len(h.s3.list_object_versions(Bucket=BUCKET, Prefix=f"{pai}/8000/twin.pem")["Versions"]) == 1


def _fail_puts_of(client: Any, suffix: str, state: dict[str, Any]) -> None:
    def handler(params: dict[str, Any], model: Any, **_: Any) -> Any:
        if model.name == "PutObject" and state["fail"] and params["url_path"].endswith(suffix):
            return response(503, code="SlowDown")
        if model.name == "PutObjectTagging" and state.get("no_tags"):
            return response(503, code="SlowDown")
        return None

    client.meta.events.register("before-call.s3.*", handler)


def test_redelivery_after_the_token_window_publishes_the_claimed_certificate(aws_env: None) -> None:
    # GIVEN a delivery that issued a certificate (recorded in its claim) but could not publish it
    clock = [datetime.now(UTC)]
    fake = ModelPrivateCa(now=lambda: clock[0])
    s3 = boto3.client("s3", region_name=REGION, config=TEST_RETRIES)
    state = {"fail": True}
    _fail_puts_of(s3, ".pem", state)
    h = make_harness(pca=fake, s3_client=s3, now=lambda: clock[0])
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    h.drain()
    key = f"{pai}/8000/late.csr"
    h.upload(key, p256_csr())
    assert h.deliver_once() == 1 and h.invocations[-1]["batchItemFailures"]
    assert len(fake.certificates) == 1 and key[:-4] + ".pem" not in h.keys()
    # WHEN SQS delivers it again after Private CA's five-minute token window
    state["fail"] = False
    clock[0] += timedelta(minutes=10)
    h.drain()
    # THEN the claim's certificate is published and no second one is issued
    dac = x509.load_pem_x509_certificate(h.read(key[:-4] + ".pem"))
    assert len(fake.certificates) == 1 and fake.calls["IssueCertificate"] == 1
    assert dac.serial_number in fake.issued_serials()
    assert [c["state"] for c in h.claims().values()] == ["issued"]


def test_transient_failures_go_back_to_sqs_and_succeed_later(aws_env: None) -> None:
    # GIVEN a CA that throttles every call for a while
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    key = f"{pai}/8000/slow.csr"
    h.upload(key, p256_csr())
    h.pca.cas[pai].refuse_with = "ThrottlingException"
    # WHEN delivered THEN the record is a batch item failure, and no .err is written
    h.deliver_once()
    assert [f["itemIdentifier"] for f in h.invocations[-1]["batchItemFailures"]]
    assert h.keys() == {key}
    # AND once the throttling stops, the redelivery issues the DAC
    h.pca.cas[pai].refuse_with = None
    h.drain()
    assert h.keys() == {key, key[:-4] + ".pem"}


def test_configuration_errors_fail_the_message_without_an_err(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a signer whose role may not use the CA (AccessDenied)
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    h.pca.cas[pai].refuse_with = "AccessDeniedException"
    key = f"{pai}/8000/denied.csr"
    h.upload(key, p256_csr())
    # WHEN delivered
    h.deliver_once()
    # THEN the record fails (it will reach the DLQ and can be re-driven after the fix), no .err blames the CSR
    assert h.invocations[-1]["batchItemFailures"]
    assert h.keys() == {key}
    logs = _json_logs(capsys.readouterr().out)
    assert any(r["message"].startswith("failed;") and r["code"] == "config.aws_access_denied" for r in logs)


def test_transient_s3_errors_are_retried_inside_the_call_by_botocore(aws_env: None) -> None:
    # GIVEN S3 answering the first three HTTP attempts of HeadObject with 500 (botocore sees them)
    s3 = boto3.client("s3", region_name=REGION, config=TEST_RETRIES)
    failures = {"left": 3}

    def flaky(request: Any, **_: Any) -> Any:
        if request.method == "HEAD" and failures["left"]:
            failures["left"] -= 1
            return xml_error(500, "InternalError")
        return None

    s3.meta.events.register_first("before-send.s3", flaky)
    h = make_harness(s3_client=s3, workers=1)
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.upload(f"{pai}/8000/a.csr", p256_csr())
    # WHEN drained
    h.drain()
    # THEN the DAC exists after one delivery: botocore's retries absorbed the errors, nothing went back to SQS
    assert f"{pai}/8000/a.pem" in h.keys() and failures["left"] == 0
    assert all(not inv["batchItemFailures"] for inv in h.invocations)


def test_a_misconfigured_filter_makes_our_own_writes_harmless(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a bucket notifying every created object (no .csr suffix filter)
    h = make_harness(suffix_filter=False)
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.upload(f"{pai}/8000/a.csr", p256_csr())
    h.upload(f"{pai}/8000/b.csr", b"junk")
    h.upload(f"{pai}/8000/readme.txt", b"hello")
    # WHEN drained (the .pem/.err writes come back as events)
    rounds = h.drain()
    # THEN they are ignored with a log line; nothing loops, nothing fails, nothing extra is written
    assert rounds >= 2
    assert h.keys() == {f"{pai}/8000/{n}" for n in ("a.csr", "a.pem", "b.csr", "b.err", "readme.txt")}
    assert all(not inv["batchItemFailures"] for inv in h.invocations)
    ignored = [
        r["key"]
        for r in _json_logs(capsys.readouterr().out)
        if r["message"].startswith("ignored: not a .csr")
    ]
    # (the signer's own claim writes notify too, and are ignored the same way)
    assert sorted(k for k in ignored if not k.startswith("claims/")) == sorted(
        f"{pai}/8000/{n}" for n in ("a.pem", "b.err", "readme.txt")
    )
    assert {k for k in ignored if k.startswith("claims/")} == set(h.claims()) | set(h.key_bindings())


def test_the_s3_test_event_is_skipped(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a fresh notification configuration (S3 sends s3:TestEvent first)
    h = make_harness()
    # WHEN drained THEN it is skipped with a log line and nothing is written
    h.drain()
    assert h.keys() == set()
    assert len(h.invocations) == 1 and h.invocations[0]["batchItemFailures"] == []
    assert any(r["message"] == "skipped: s3:TestEvent" for r in _json_logs(capsys.readouterr().out))


def test_a_csr_deleted_before_signing_is_skipped_with_a_log_line(
    aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a CSR version deleted before its message is processed
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    key = f"{pai}/8000/gone.csr"
    version = h.s3.put_object(Bucket=BUCKET, Key=key, Body=p256_csr())["VersionId"]
    h.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    # WHEN drained THEN no result, no failure, a warning naming the key
    h.drain()
    assert h.keys() == set() and len(h.pca.certificates) == 0
    assert any(
        r["message"].startswith("skipped: the CSR object") and r["key"] == key
        for r in _json_logs(capsys.readouterr().out)
    )


# -- JSON events from files ------------------------------------------------------------------------
def _file_harness() -> tuple[Any, ModelPrivateCa, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="matter-csr-inbox")
    fake = ModelPrivateCa()
    fake.add_pai(fake.add_paa(), pid=0x8000, arn=FIXED_PAI)
    handler = load_handler()
    cfg = PipelineConfig(workers=2, waiter_delay=0, csr_bucket="matter-csr-inbox")
    pipeline.configure(pca=fake.client(), s3=s3, config=cfg, logger=handler.logger, sleep=lambda _s: None)
    return s3, fake, handler


def _event(name: str, s3: Any = None) -> dict[str, Any]:
    """An SQS event from tests/events; with ``s3``, each object's eTag is the uploaded object's (as S3 sends it)."""
    from urllib.parse import unquote_plus

    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if s3 is None:
        return event
    for record in event["Records"]:
        try:
            body = json.loads(record["body"])
        except ValueError:
            continue
        for item in body.get("Records", []):
            obj = item["s3"]["object"]
            obj["eTag"] = s3.head_object(Bucket=item["s3"]["bucket"]["name"], Key=unquote_plus(obj["key"]))["ETag"].strip('"')
        record["body"] = json.dumps(body)
    return event


def test_event_file_with_encoded_keys_issues_dacs(aws_env: None) -> None:
    # GIVEN two CSRs and an SQS event whose S3 keys are URL-encoded two ways (%2F and raw /)
    s3, fake, handler = _file_harness()
    for n in (1, 2):
        s3.put_object(Bucket="matter-csr-inbox", Key=f"{FIXED_PAI}/8000/device-000{n}.csr", Body=p256_csr())
    # WHEN the handler runs on tests/events/s3SqsEvent.json
    result = handler.lambda_handler(_event("s3SqsEvent.json", s3), LambdaContext())
    # THEN both DACs exist at the decoded keys
    assert result == {"batchItemFailures": []}
    for n in (1, 2):
        s3.head_object(Bucket="matter-csr-inbox", Key=f"{FIXED_PAI}/8000/device-000{n}.pem")
    assert len(fake.certificates) == 2


def test_event_file_test_event_and_own_outputs_are_skipped(aws_env: None) -> None:
    # GIVEN the s3:TestEvent and events for our own .pem/.err writes and a deletion
    s3, fake, handler = _file_harness()
    # WHEN the handler runs on them THEN every record succeeds and nothing is written or issued
    for name in ("s3SqsTestEvent.json", "s3SqsEventOwnOutputs.json"):
        assert handler.lambda_handler(_event(name), LambdaContext()) == {"batchItemFailures": []}
    assert s3.list_objects_v2(Bucket="matter-csr-inbox").get("KeyCount") == 0
    assert fake.calls["IssueCertificate"] == 0


def test_event_file_with_an_unreadable_body_fails_only_that_record(aws_env: None) -> None:
    # GIVEN a batch with an unreadable message and a good CSR event
    s3, _fake, handler = _file_harness()
    s3.put_object(Bucket="matter-csr-inbox", Key=f"{FIXED_PAI}/8000/device-0003.csr", Body=p256_csr())
    # WHEN handled THEN only the unreadable record goes back (to reach the DLQ), the CSR is signed
    result = handler.lambda_handler(_event("s3SqsEventUnreadableBody.json", s3), LambdaContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "a3b2c1d0-0000-4000-8000-000000000005"}]}
    s3.head_object(Bucket="matter-csr-inbox", Key=f"{FIXED_PAI}/8000/device-0003.pem")


# -- the container ----------------------------------------------------------------------------------
def test_in_lambda_the_clients_are_built_once_at_import_from_the_environment(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the Lambda environment
    pipeline.reset()
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "dac-signer")
    monkeypatch.setenv("MATTER_WORKERS", "3")
    monkeypatch.setenv("MATTER_DAC_VALIDITY", "no-expiry")
    monkeypatch.setenv("MATTER_PAI_ARNS", FIXED_PAI)
    # WHEN the handler module is imported (cold start)
    load_handler()
    built = pipeline.runtime()
    # THEN the pipeline exists already, configured from the environment, and is reused afterwards
    assert built.config.workers == 3 and built.config.validity == "no-expiry"
    assert built.config.allowed_pai_arns == frozenset({FIXED_PAI})
    assert built.pca.region == REGION
    assert pipeline.runtime() is built
