"""Benchmark the DAC-signing Lambda: per-CSR handler overhead (Private CA latency excluded) and cold start.

    python benchmarks/bench_lambda.py [--csrs 500] [--workers 1 4] [--s3 memory|moto] [--imports 5]

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
import io
import json
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
    """The S3 calls the pipeline makes, answered from a dict behind a real botocore client."""

    def __init__(self) -> None:
        import boto3

        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self.client = boto3.client("s3", region_name="us-east-1")
        self.client.meta.events.register("before-parameter-build.s3.*", self._remember)
        self.client.meta.events.register("before-call.s3.*", self._answer)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        from botocore.response import StreamingBody

        from tests.lambdas.fakes import response

        p = context["bench_params"]
        name = model.name
        if name == "ListObjectsV2":
            keys = sorted(k for k in self.objects if k.startswith(p["Prefix"]))
            return response(
                200, {"Contents": [{"Key": k} for k in keys], "IsTruncated": False, "KeyCount": len(keys)}
            )
        if name == "GetObject":
            if p["Key"] not in self.objects:
                return response(404, code="NoSuchKey")
            body, _meta = self.objects[p["Key"]]
            part = body[:4097]
            return response(
                200,
                {"Body": StreamingBody(io.BytesIO(part), len(part)), "ContentLength": len(part),
                 "ContentRange": f"bytes 0-{len(part) - 1}/{len(body)}", "ETag": '"e"', "TagCount": len(self.tags.get(p["Key"], []))},
            )  # fmt: skip
        if name == "PutObject":
            if p.get("IfNoneMatch") == "*" and p["Key"] in self.objects:
                return response(412, code="PreconditionFailed")
            body = p["Body"] if isinstance(p["Body"], bytes) else p["Body"].read()
            self.objects[p["Key"]] = (body, p.get("Metadata", {}))
            return response(200, {"ETag": '"e"'})
        if name == "PutObjectTagging":
            self.tags[p["Key"]] = p["Tagging"]["TagSet"]
            return response(200, {})
        if name == "GetObjectTagging":
            return response(200, {"TagSet": self.tags.get(p["Key"], [])})
        raise NotImplementedError(name)


def _event(keys: list[str]) -> dict[str, Any]:
    from tests.lambdas.fakes import s3_event, sqs_record

    return {"Records": [sqs_record(s3_event(BUCKET, k, size=400)) for k in keys]}


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
    if s3_kind == "moto":
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        put = lambda k, b: s3.put_object(Bucket=BUCKET, Key=k, Body=b)  # noqa: E731
    else:
        memory = MemoryS3()
        s3 = memory.client
        put = lambda k, b: memory.objects.__setitem__(k, (b, {}))  # noqa: E731
    handler = load_handler()
    pipeline.configure(
        pca=fake.client(),
        s3=s3,
        config=PipelineConfig(workers=workers, waiter_delay=latency),
        logger=handler.logger,
    )
    keys = [f"{pai}/8000/bench-{uuid.uuid4().hex[:12]}.csr" for _ in range(csrs)]
    for key in keys:
        put(key, p256_csr())
    # warm-up: chain fetch, imports, first-call caches
    warm = f"{pai}/8000/warm.csr"
    put(warm, p256_csr())
    handler.lambda_handler(_event([warm]), LambdaContext())
    spent[0] = 0.0
    start = time.perf_counter()
    for i in range(0, csrs, 10):
        result = handler.lambda_handler(_event(keys[i : i + 10]), LambdaContext())
        assert not result["batchItemFailures"], result
    total = time.perf_counter() - start
    # redelivery: the .pem exists, one listing per CSR
    start = time.perf_counter()
    for i in range(0, csrs, 10):
        handler.lambda_handler(_event(keys[i : i + 10]), LambdaContext())
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
            token=dac_token(bucket="b", key="k", version=None, csr_sha256=d.sha256),
        )
        ders.append((d, pca.fetch(pai, pca.issue(request))))
    t = time.perf_counter()
    for d, der in ders:
        check_issued_dac(der, device=d, profile=profile, chain=chain, at=now)
    check = time.perf_counter() - t
    assert all(len(der) < 600 for _d, der in ders), [len(der) for _d, der in ders]
    _ = Encoding
    return {"csr_intake_ms": 1000 * intake / csrs, "dac_check_ms": 1000 * check / len(ders)}


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
        "import time; from matter_pki import pipeline; t = time.perf_counter(); pipeline.aws_clients(8); "
        "print(time.perf_counter() - t)"
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
    if ctx is not None:
        ctx.stop()
    results["cold_start"] = bench_cold_start(args.imports)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
