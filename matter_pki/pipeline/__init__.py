"""The S3 → SQS → Lambda DAC-signing pipeline: exactly one released DAC per (PAI, PID, device key).

A manufacturer uploads ``<PAI ARN>/<PID>/<name>.csr``; the bucket notifies SQS; the Lambda handler
(``lambdas/dac_signer/handler.py``) hands each SQS record to this package. For each object:

1. only a created ``.csr`` in ``MATTER_CSR_BUCKET`` is handled; ``<name>.pem`` or ``<name>.err``
   existing (two HeadObject calls) means it is answered: skip;
2. the object's *current* version is read (at most 4 KiB + 1); an event for an older version is
   skipped (its newer version has its own event), so only what is in the bucket now is signed;
3. intake: the key (``layout.parse_csr_key``), the PAI allow-list, the CSR (``csr.load_device_csr``,
   only its public key reaches the DAC) and what Private CA would copy from it
   (``aws_pca.check_pca_intake``: no subjectAltName);
4. the PAI chain (cached per container), the validity policy fitted under the PAI (a policy that
   does not fit is a configuration error: the record goes to the DLQ, no ``.err``), the profile;
5. the claim (``claims``): the one durable record per (PAI, PID, device key) that decides whether to call
   ``IssueCertificate``, with which token and request, or which certificate already exists;
6. ``GetCertificate`` polled with bounded waits until issued (its first success is the answer);
7. the release gate (``matter_pki.gate``); a refused certificate is revoked, recorded in the claim
   and answered with ``.err`` (code, serial, certificate ARN, whether it was revoked);
8. ``<name>.pem`` written create-only, after checking the CSR was not overwritten meanwhile.

Outcomes: a refusal of the request (intake, key, profile, gate, ``MalformedCSRException``) writes
``.err`` and the record succeeds. Anything else fails the record (``batchItemFailures``) and SQS
redelivers it: transient errors (botocore's adaptive retry mode already retried inside the call),
and operator errors (quota such as ``LimitExceededException``, configuration, CA state, a claim
that needs reconciling), which after ``maxReceiveCount`` receives land in the DLQ and raise its
alarm; their log lines carry ``operator_action: true`` for a faster alarm.

**Exactly once.** The design leans on these AWS guarantees, and on nothing else:

* S3 conditional writes: ``If-None-Match: *`` creates only if absent, ``If-Match: <ETag>`` replaces
  only the version read (S3 user guide, "Conditional requests"); S3's strong read-after-write
  consistency; bucket versioning (an event names the version it is about).
* Private CA's IdempotencyToken: the same token within five minutes returns the same certificate
  (API reference, IssueCertificate). The token is derived from (PAI, PID, device key), so every
  upload, name and version of one CSR, and every other CSR of the same key (re-signed, its ECDSA
  signature flipped from s to n - s), shares it. A call whose outcome is unknown (a timeout, a 5xx,
  a crash) is only repeated while the claim's oldest uncertain attempt is younger than
  ``claim_window_seconds`` (default 240 s = 5 min − 60 s margin); past that the record goes to the
  DLQ for reconciliation (``pipeline.reconcile``) rather than risk a second certificate.
* SQS delivers at least once; a message a Lambda did not delete comes back after the visibility
  timeout. The stack sets the timeout (180 s, 6 × the 30 s function timeout) below the claim window,
  so a crash after IssueCertificate is normally redelivered while the token still deduplicates.
* Lambda gives the remaining time (``context.get_remaining_time_in_millis``); every wait stops
  ``deadline_margin_ms`` before it and the record is returned as a batch-item failure.

**Test seam** (stable): ``configure(pca=, s3=, config=, logger=)`` sets the container's pipeline
(boto3 clients or ``PrivateCa``/``S3Store``; optional clocks ``now=``, ``sleep=``, ``monotonic=``),
``PipelineConfig.from_env(env)`` reads the settings, ``runtime()`` returns the pipeline (building it
from the environment on first use) and ``reset()`` forgets it.

Modules: ``config`` (settings), ``events`` (S3 notifications), ``claims`` (the exactly-once record),
``core`` (one object), ``batch`` (records on worker threads), ``runtime`` (the container's pipeline).
"""

from __future__ import annotations

from matter_pki.pipeline.batch import Batch, Runner
from matter_pki.pipeline.claims import Claim, ClaimStore
from matter_pki.pipeline.config import PipelineConfig
from matter_pki.pipeline.core import Deadline, Outcome, Pipeline, PipelineLogger, is_refusal
from matter_pki.pipeline.events import S3ObjectRef, parse_s3_event
from matter_pki.pipeline.runtime import aws_clients, configure, reset, runtime

__all__ = [
    "Batch",
    "Claim",
    "ClaimStore",
    "Deadline",
    "Outcome",
    "Pipeline",
    "PipelineConfig",
    "PipelineLogger",
    "Runner",
    "S3ObjectRef",
    "aws_clients",
    "configure",
    "is_refusal",
    "parse_s3_event",
    "reset",
    "runtime",
]
