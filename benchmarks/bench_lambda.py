"""Benchmark the DAC-signing Lambda: per-CSR handler overhead, GB-seconds per DAC, and cold start.

    python benchmarks/bench_lambda.py [--csrs 500] [--workers 1 4] [--s3 memory|moto] [--imports 5]
                                      [--gbs-csrs 50] [--gbs-latency 1.0]

* GB-seconds per DAC at the default IssueCertificate quota, for the stack's settings (memory, batch
  size, workers, reserved concurrency and waiter delay are read from ``cdk/matter_cdk``): the real
  handler runs batches of ``BATCH_SIZE`` records on ``WORKERS`` threads against the Private CA MODEL,
  each certificate pending for ``--gbs-latency`` seconds of real time (GetCertificate answers
  RequestInProgressException until then). Lambda bills each invocation's duration, rounded up to
  the millisecond, times its memory: GB-s per DAC = memory (GB) × mean billed duration / records per
  invocation. The sustained rate is min(quota, concurrency × records per invocation / duration).

* Per-CSR overhead: the real handler (Powertools batch processing, pipeline, botocore request
  serialisation and validation, CSR intake, chain validation, PEM/JSON writes) on batches of 10 SQS
  records. Private CA is the instant MODEL (``tests/lambdas/fakes.py``); the time spent inside it
  (model signing) is measured and subtracted. S3 is an in-memory store behind a real botocore client
  (``memory``) or moto (``moto``, which adds its own cost per call).
* With ``--pca-latency S`` each certificate is still pending at the first GetCertificate and the
  waiter sleeps S seconds: the records of a batch wait concurrently (``MATTER_WORKERS``).
* Cold start: ``import handler`` in a fresh interpreter (median wall time), the top imports by
  ``python -X importtime``, and building the boto3 clients (done once per container at init).

Not a test: it prints numbers. Each CSR is delivered once; redeliveries cost one ListObjectsV2.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
HANDLER_DIR = ROOT / "lambdas" / "dac_signer"
BUCKET = "matter-csr-inbox"

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # logging cost is measured separately below


class MemoryS3:
    """The S3 calls the pipeline makes (HEAD, ranged GET, conditional PUT), from a dict behind a real botocore client."""

    def __init__(self) -> None:
        import boto3

        self.objects: dict[str, tuple[bytes, dict[str, str], str]] = {}
        self.client = boto3.client("s3", region_name="us-east-1")
        self.client.meta.events.register("before-parameter-build.s3.*", self._remember)
        self.client.meta.events.register("before-call.s3.*", self._answer)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def put(self, key: str, body: bytes) -> str:
        """Store an object as an upload would; returns its ETag (MD5, as S3 gives for a single PUT)."""
        etag = '"' + hashlib.md5(body).hexdigest() + '"'  # noqa: S324 - S3's ETag of a single-part upload
        self.objects[key] = (body, {}, etag)
        return etag

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        from datetime import UTC, datetime

        from botocore.response import StreamingBody

        from tests.lambdas.fakes import response

        p = context["bench_params"]
        name = model.name
        found = self.objects.get(p.get("Key", ""))
        if name == "HeadObject":
            if found is None:
                return response(404, code="404")
            return response(200, {"ETag": found[2], "ContentLength": len(found[0]), "LastModified": datetime.now(UTC)})
        if name == "GetObject":
            if found is None:
                return response(404, code="NoSuchKey")
            body, _meta, etag = found
            part = body[:16385]
            return response(
                200,
                {"Body": StreamingBody(io.BytesIO(part), len(part)), "ContentLength": len(part),
                 "ContentRange": f"bytes 0-{len(part) - 1}/{len(body)}", "ETag": etag, "TagCount": 0},
            )  # fmt: skip
        if name == "PutObject":
            if (p.get("IfNoneMatch") == "*" and found is not None) or (
                p.get("IfMatch") is not None and (found is None or found[2] != p["IfMatch"])
            ):
                return response(412, code="PreconditionFailed")
            body = p["Body"] if isinstance(p["Body"], bytes) else p["Body"].read()
            etag = self.put(p["Key"], body)
            return response(200, {"ETag": etag})
        raise NotImplementedError(name)


def _event(keys: list[str], etags: dict[str, str] | None = None) -> dict[str, Any]:
    from tests.lambdas.fakes import s3_event, sqs_record

    records = []
    for k in keys:
        event = s3_event(BUCKET, k, size=400)
        if etags is not None:  # what S3 sends: the uploaded object's ETag
            event["Records"][0]["s3"]["object"]["eTag"] = etags[k].strip('"')
        records.append(sqs_record(event))
    return {"Records": records}


def bench_overhead(csrs: int, workers: int, s3_kind: str, latency: float = 0.0) -> dict[str, float]:
    """Per-CSR handler time with an instant Private CA, minus the time spent inside the CA model."""
    from matter_pki import pipeline
    from matter_pki.pipeline import PipelineConfig
    from tests.lambdas.conftest import LambdaContext, load_handler
    from tests.lambdas.fakes import ModelPrivateCa, p256_csr

    fake = ModelPrivateCa(rng=random.Random(1), pending_polls=1 if latency else 0)
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    spent = [0.0]
    answer = fake._answer

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return answer(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    fake._answer = timed  # type: ignore[method-assign]
    etags: dict[str, str] = {}
    if s3_kind == "moto":
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)

        def put(k: str, b: bytes) -> None:
            etags[k] = s3.put_object(Bucket=BUCKET, Key=k, Body=b)["ETag"]
    else:
        memory = MemoryS3()
        s3 = memory.client

        def put(k: str, b: bytes) -> None:
            etags[k] = memory.put(k, b)

    handler = load_handler()
    pipeline.configure(
        pca=fake.client(),
        s3=s3,
        config=PipelineConfig(workers=workers, waiter_delay=latency, csr_bucket=BUCKET),
        logger=handler.logger,
    )
    keys = [f"{pai}/8000/bench-{uuid.uuid4().hex[:12]}.csr" for _ in range(csrs)]
    for key in keys:
        put(key, p256_csr())
    # warm-up: chain fetch, imports, first-call caches
    warm = f"{pai}/8000/warm.csr"
    put(warm, p256_csr())
    handler.lambda_handler(_event([warm], etags), LambdaContext())
    spent[0] = 0.0
    start = time.perf_counter()
    for i in range(0, csrs, 10):
        result = handler.lambda_handler(_event(keys[i : i + 10], etags), LambdaContext())
        assert not result["batchItemFailures"], result
    total = time.perf_counter() - start
    # redelivery: the .pem exists, one HeadObject per CSR
    start = time.perf_counter()
    for i in range(0, csrs, 10):
        handler.lambda_handler(_event(keys[i : i + 10], etags), LambdaContext())
    again = time.perf_counter() - start
    pipeline.reset()
    out = {"wall_ms_per_csr": 1000 * total / csrs, "redelivery_ms_per_csr": 1000 * again / csrs}
    if (
        workers == 1 and not latency
    ):  # with threads the model's time overlaps the rest and cannot be subtracted
        out["pca_model_ms_per_csr"] = 1000 * spent[0] / csrs
        out["overhead_ms_per_csr"] = 1000 * (total - spent[0]) / csrs
    return out


def bench_pure(csrs: int) -> dict[str, float]:
    """CPU of the checks alone: CSR intake and the released-DAC validation (PAA → PAI → DAC)."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.backends.aws_pca import PrivateCa, build_dac_request, check_issued_dac, dac_token
    from matter_pki.csr import load_device_csr
    from matter_pki.profiles import DacProfile, Validity
    from tests.lambdas.fakes import ModelPrivateCa, p256_csr

    fake = ModelPrivateCa()
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    pca = PrivateCa(fake.client(), waiter_delay=0)
    chain = pca.ca_chain(pai)
    bodies = [p256_csr() for _ in range(csrs)]
    now = datetime.now(UTC)
    t = time.perf_counter()
    devices = [load_device_csr(b) for b in bodies]
    intake = time.perf_counter() - t
    profile = DacProfile.for_issuer(chain.pai, pid=0x8000, validity=Validity.no_expiry(now))
    ders = []
    for d in devices[:100]:
        request = build_dac_request(
            ca_arn=pai,
            device=d,
            profile=profile,
            token=dac_token(pai_arn=pai, pid=0x8000, key_id=d.key_id),
        )
        ders.append((d, pca.fetch(pai, pca.issue(request))))
    t = time.perf_counter()
    for d, der in ders:
        check_issued_dac(der, device=d, profile=profile, chain=chain, at=now)
    check = time.perf_counter() - t
    assert all(len(der) < 600 for _d, der in ders), [len(der) for _d, der in ders]
    _ = Encoding
    return {"csr_intake_ms": 1000 * intake / csrs, "dac_check_ms": 1000 * check / len(ders)}


def stack_settings() -> dict[str, Any]:
    """The CSR pipeline stack's Lambda settings and its concurrency at the default IssueCertificate quota."""
    sys.path.insert(0, str(ROOT / "cdk"))
    from matter_cdk.config import DEFAULT_PCA_ISSUE_RATE_LIMIT
    from matter_cdk.stacks import csr_pipeline_stack as stack

    return {
        "memory_mb": stack.LAMBDA_MEMORY_MB,
        "timeout_s": stack.LAMBDA_TIMEOUT.to_seconds(),
        "batch_size": stack.BATCH_SIZE,
        "workers": stack.WORKERS,
        "issue_quota_per_s": DEFAULT_PCA_ISSUE_RATE_LIMIT,
        "reserved_concurrency": stack.reserved_concurrency(DEFAULT_PCA_ISSUE_RATE_LIMIT),
        "waiter_delay_s": 0.5,  # PipelineConfig's default (the stack does not override it)
    }


def bench_gb_seconds(csrs: int, latency: float) -> dict[str, Any]:
    """Billed GB-seconds per DAC for the stack's settings, each certificate pending ``latency`` s (real time)."""
    from datetime import timedelta

    from matter_pki import pipeline
    from matter_pki.pipeline import PipelineConfig
    from tests.lambdas.conftest import LambdaContext, load_handler
    from tests.lambdas.fakes import ModelPrivateCa, p256_csr

    settings = stack_settings()
    batch = settings["batch_size"]
    fake = ModelPrivateCa(
        rng=random.Random(2), pending_for=timedelta(seconds=latency), issue_quota_per_second=settings["issue_quota_per_s"]
    )
    pai = fake.add_pai(fake.add_paa(), pid=0x8000)
    memory = MemoryS3()
    etags: dict[str, str] = {}
    handler = load_handler()
    pipeline.configure(
        pca=fake.client(),
        s3=memory.client,
        config=PipelineConfig(workers=settings["workers"], waiter_delay=settings["waiter_delay_s"], csr_bucket=BUCKET),
        logger=handler.logger,
    )
    keys = [f"{pai}/8000/gbs-{uuid.uuid4().hex[:12]}.csr" for _ in range(csrs + batch)]
    for key in keys:
        etags[key] = memory.put(key, p256_csr())
    handler.lambda_handler(_event(keys[:batch], etags), LambdaContext())  # warm container
    billed: list[int] = []
    for i in range(batch, len(keys), batch):
        start = time.perf_counter()
        result = handler.lambda_handler(_event(keys[i : i + batch], etags), LambdaContext())
        billed.append(math.ceil((time.perf_counter() - start) * 1000))
        assert not result["batchItemFailures"], result
    pipeline.reset()
    duration_s = statistics.mean(billed) / 1000
    gb = settings["memory_mb"] / 1024
    in_flight = settings["reserved_concurrency"] * batch
    return {
        "stack": settings,
        "pca_latency_s": latency,
        "invocations": len(billed),
        "billed_ms_per_invocation": {"mean": statistics.mean(billed), "max": max(billed)},
        "gb_seconds_per_dac": gb * duration_s / batch,
        "get_certificate_calls_per_dac": fake.calls["GetCertificate"] / (len(keys)),
        "sustained_dacs_per_s": min(settings["issue_quota_per_s"], in_flight / duration_s),
    }


def bench_cold_start(runs: int) -> dict[str, Any]:
    """Fresh-interpreter import of the handler module, its heaviest imports, and boto3 client creation."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HANDLER_DIR), str(ROOT)])}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    code = "import time; t = time.perf_counter(); import handler; print(time.perf_counter() - t)"
    walls = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    clients = (
        "import time; from matter_pki import pipeline; t = time.perf_counter(); "
        "pipeline.aws_clients(pipeline.PipelineConfig(workers=8)); print(time.perf_counter() - t)"
    )
    client_walls = [
        float(
            subprocess.run(
                [sys.executable, "-c", clients], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import handler"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    rows = []
    for line in trace.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit() and not parts[2].startswith(" "):
            rows.append((int(parts[1]), parts[2]))
    top = [(name, us / 1000) for us, name in sorted(rows, reverse=True) if not name.startswith(" ")][:8]
    return {
        "import_handler_ms": 1000 * statistics.median(walls),
        "build_clients_ms": 1000 * statistics.median(client_walls),
        "top_imports_ms": top,
    }


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csrs", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--s3", choices=["memory", "moto"], default="memory")
    parser.add_argument("--imports", type=int, default=5, help="fresh interpreters for the cold-start median")
    parser.add_argument("--gbs-csrs", type=int, default=50, help="CSRs for the GB-seconds run (0 to skip)")
    parser.add_argument("--gbs-latency", type=float, default=1.0, help="seconds each certificate stays pending there")
    parser.add_argument(
        "--pca-latency", type=float, default=0.2,
        help="also run with each certificate pending for this many seconds (first poll in progress), 0 to skip",
    )  # fmt: skip
    args = parser.parse_args()

    ctx = None
    if args.s3 == "moto":
        from moto import mock_aws

        ctx = mock_aws()
        ctx.start()
    results: dict[str, Any] = {"python": sys.version.split()[0], "csrs": args.csrs, "s3": args.s3}
    for workers in args.workers:
        results[f"handler_workers_{workers}"] = bench_overhead(args.csrs, workers, args.s3)
    if args.pca_latency:
        for workers in args.workers:
            results[f"with_pca_latency_{args.pca_latency}s_workers_{workers}"] = bench_overhead(
                min(args.csrs, 50), workers, args.s3, latency=args.pca_latency
            )
    results["pure_checks"] = bench_pure(min(args.csrs, 500))
    if args.gbs_csrs:
        results["gb_seconds_at_default_quota"] = bench_gb_seconds(args.gbs_csrs, args.gbs_latency)
    if ctx is not None:
        ctx.stop()
    results["cold_start"] = bench_cold_start(args.imports)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
