"""Prometheus metrics of the service (``GET /metrics``), in a registry of its own.

Label values are bounded: PAI ids and PIDs of the home, error codes of the code table, the
endpoint names below (never a raw path or a station-supplied value).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters, gauges and histograms of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.issued = Counter("matter_pki_serve_dacs_issued", "New DACs issued", ["pai", "pid"], registry=r)
        self.redelivered = Counter(
            "matter_pki_serve_dacs_redelivered", "DACs delivered again from the ledger (station retries)", ["pai", "pid"], registry=r
        )
        self.refused = Counter("matter_pki_serve_refused", "Refused CSRs and requests, by error code", ["code"], registry=r)
        self.requests = Counter("matter_pki_serve_requests", "HTTP requests answered", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "matter_pki_serve_request_seconds", "Time from request start to response, by endpoint", ["endpoint"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge("matter_pki_serve_queue_depth", "CSRs waiting for the signing thread", registry=r)
        self.batch_size = Histogram(
            "matter_pki_serve_batch_csrs", "CSRs per signing batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "matter_pki_serve_batch_seconds", "Time the signing thread spends per batch (sign, ledger, audit)",
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.connections = Gauge("matter_pki_serve_connections", "Open client connections", registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
