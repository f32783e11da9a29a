"""The container's pipeline: built once from the environment (or injected by tests), reset by tests."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from matter_pki.backends.aws_pca import PrivateCa
from matter_pki.pipeline.batch import Runner
from matter_pki.pipeline.config import PipelineConfig
from matter_pki.pipeline.core import Pipeline, PipelineLogger
from matter_pki.storage.s3 import S3Store

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from botocore.client import BaseClient

_RUNTIME: Runner | None = None
_RUNTIME_LOCK = threading.Lock()


def aws_clients(config: PipelineConfig) -> tuple[BaseClient, BaseClient]:
    """boto3 ``acm-pca`` and ``s3`` clients for Lambda: adaptive retries, short timeouts, a pool per worker.

    botocore's adaptive mode retries throttling and 5xx (``max_attempts`` in all) and slows the
    client down when the service throttles; the pipeline retries nothing on top of it. Each call is
    bounded by its timeouts (2 s to connect, 5 s to read) times ``max_attempts``.
    """
    import boto3
    from botocore.config import Config

    botocore_config = Config(
        retries={"mode": "adaptive", "total_max_attempts": config.max_attempts},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=max(10, 2 * config.workers),
    )
    return boto3.client("acm-pca", config=botocore_config), boto3.client("s3", config=botocore_config)


def configure(
    *,
    pca: BaseClient | PrivateCa | None = None,
    s3: BaseClient | S3Store | None = None,
    config: PipelineConfig | None = None,
    logger: PipelineLogger | None = None,
    now: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Runner:
    """Set the container's pipeline; clients default to boto3 built from the environment (tests inject).

    ``now``, ``sleep`` and ``monotonic`` are the clocks (tests give fake ones).
    """
    global _RUNTIME
    cfg = config or PipelineConfig.from_env()
    if pca is None or s3 is None:
        default_pca, default_s3 = aws_clients(cfg)
        pca = pca or default_pca
        s3 = s3 or default_s3
    backend = (
        pca
        if isinstance(pca, PrivateCa)
        else PrivateCa(
            pca,
            waiter_delay=cfg.waiter_delay,
            waiter_max_attempts=cfg.waiter_max_attempts,
            cache_seconds=cfg.cache_seconds,
            trusted_paa_sha256=cfg.trusted_paa_sha256,
            monotonic=monotonic,
            sleep=sleep,
        )
    )
    store = s3 if isinstance(s3, S3Store) else S3Store(s3)
    clocks = {} if now is None else {"now": now}
    runner = Runner(Pipeline(pca=backend, store=store, config=cfg, logger=logger, **clocks), monotonic=monotonic)
    with _RUNTIME_LOCK:
        _RUNTIME = runner
    return runner


def runtime(*, logger: PipelineLogger | None = None) -> Runner:
    """The container's pipeline, built from the environment on first use."""
    with _RUNTIME_LOCK:
        current = _RUNTIME
    return current if current is not None else configure(logger=logger)


def reset() -> None:
    """Forget the container's pipeline (tests)."""
    global _RUNTIME
    with _RUNTIME_LOCK:
        _RUNTIME = None
