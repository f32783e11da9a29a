"""Claims: the durable record that makes DAC issuance exactly-once per (PAI, PID, device key).

One S3 object per (PAI, PID, device key id) under ``claims/`` (``layout.claim_key``), JSON, written
only with S3 conditional writes: created with ``If-None-Match: *``, replaced with ``If-Match:
<ETag it was read with>``. Every write carries a fresh ``writer`` id, so two writes never share an
ETag. States:

``issuing``  an IssueCertificate may be in flight; ``attempts`` lists each one (id, time, outcome)
``issued``   ``certificate_arn`` is the certificate of this CSR (every later delivery publishes it)
``refused``  the release gate refused that certificate (``refusal``: code, serial, revoked)
``free``     every attempt was answered with a 4xx: nothing was issued, a new attempt may start

Rules (``Pipeline`` follows them):

1. Nobody calls IssueCertificate without first writing the claim with its own ``pending`` attempt
   (a create, or a conditional replace). The call uses the claim's token and request parameters,
   so a repeated call is the same request.
2. A ``pending`` or ``unknown`` attempt may have issued a certificate. Another attempt may join
   only while the oldest such attempt is younger than ``window`` (Private CA deduplicates a token
   for five minutes, API reference IssueCertificate ``IdempotencyToken``; the window keeps a margin
   for clock differences). Past it, nobody can know without an operator: the record goes to the
   DLQ (``pipeline.reconcile``).
3. An attempt that ends with a 4xx on every botocore try is ``not_issued``; when every attempt of the
   claim is ``not_issued`` the claim becomes ``free``. A crash leaves the attempt ``pending``.
4. The first writer of ``issued`` wins; within the token window every caller gets the same ARN,
   so a second, different ARN would be a broken guarantee and is reported as such
   (``pipeline.claim_conflict``), never overwritten.

The ``claims/`` prefix must be writable by the signer alone (the CDK stack's bucket policy denies
everyone else): a claim is trusted as the signer's own record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from matter_pki.errors import ConfigError, OperatorError, TransientError
from matter_pki.layout import key_binding_key

if TYPE_CHECKING:
    from collections.abc import Callable

    from matter_pki.storage.s3 import S3Store

CLAIM_FORMAT = "matter-pki-claim/1"
MAX_CLAIM_BYTES = 16 * 1024
State = Literal["issuing", "issued", "refused", "free"]
Outcome = Literal["pending", "not_issued", "unknown", "issued"]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One IssueCertificate call made under a claim."""

    id: str
    at: datetime
    outcome: Outcome = "pending"

    def to_dict(self) -> dict[str, str]:
        """JSON form."""
        return {"id": self.id, "at": _iso(self.at), "outcome": self.outcome}


@dataclass(frozen=True, slots=True)
class Claim:
    """The claim of one (PAI, PID, device key): what was requested and what became of it."""

    pai_arn: str
    pid: int
    csr_sha256: str
    token: str
    not_before: int
    not_after: int
    common_name: str | None
    csr_key: str
    state: State = "issuing"
    attempts: tuple[Attempt, ...] = ()
    certificate_arn: str | None = None
    refusal: dict[str, Any] | None = None
    writer: str = field(default_factory=lambda: uuid.uuid4().hex)

    # -- transitions (each returns a new value with a new writer id) ----------------------------
    def with_attempt(self, attempt: Attempt) -> Claim:
        """Register an attempt (rule 1); the claim is ``issuing``."""
        return replace(self, state="issuing", attempts=(*self.attempts, attempt), writer=uuid.uuid4().hex)

    def settled(self, attempt_id: str, outcome: Outcome, certificate_arn: str | None = None) -> Claim:
        """Record an attempt's outcome; ``issued`` takes the ARN, all ``not_issued`` frees the claim."""
        attempts = tuple(replace(a, outcome=outcome) if a.id == attempt_id else a for a in self.attempts)
        state: State = self.state
        arn = self.certificate_arn
        if outcome == "issued":
            state, arn = "issued", certificate_arn
        elif self.state == "issuing" and attempts and all(a.outcome == "not_issued" for a in attempts):
            state = "free"
        return replace(self, state=state, attempts=attempts, certificate_arn=arn, writer=uuid.uuid4().hex)

    def refused(self, refusal: dict[str, Any]) -> Claim:
        """The release gate refused the certificate: final."""
        return replace(self, state="refused", refusal=dict(refusal), writer=uuid.uuid4().hex)

    def uncertain_since(self) -> datetime | None:
        """The time of the oldest attempt that may have issued a certificate (rule 2)."""
        times = [a.at for a in self.attempts if a.outcome in ("pending", "unknown")]
        return min(times) if times else None

    # -- wire form ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The JSON object stored in S3."""
        body = {
            "format": CLAIM_FORMAT,
            "state": self.state,
            "pai_arn": self.pai_arn,
            "pid": f"{self.pid:04X}",
            "csr_sha256": self.csr_sha256,
            "token": self.token,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "common_name": self.common_name,
            "csr_key": self.csr_key,
            "attempts": [a.to_dict() for a in self.attempts],
            "certificate_arn": self.certificate_arn,
            "refusal": self.refusal,
            "writer": self.writer,
        }
        return (json.dumps(body, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Claim:
        """Parse a stored claim; anything unexpected is an operator's problem (``pipeline.claim_corrupt``)."""
        try:
            body = json.loads(data)
            if body.get("format") != CLAIM_FORMAT or body["state"] not in ("issuing", "issued", "refused", "free"):
                raise ValueError(f"format {body.get('format')!r}, state {body.get('state')!r}")
            return cls(
                pai_arn=str(body["pai_arn"]),
                pid=int(body["pid"], 16),
                csr_sha256=str(body["csr_sha256"]),
                token=str(body["token"]),
                not_before=int(body["not_before"]),
                not_after=int(body["not_after"]),
                common_name=None if body["common_name"] is None else str(body["common_name"]),
                csr_key=str(body["csr_key"]),
                state=body["state"],
                attempts=tuple(
                    Attempt(str(a["id"]), _parse_time(str(a["at"])), a["outcome"]) for a in body["attempts"]
                ),
                certificate_arn=body.get("certificate_arn"),
                refusal=body.get("refusal"),
                writer=str(body["writer"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise OperatorError("pipeline.claim_corrupt", f"a claim cannot be read: {e}") from e


@dataclass(slots=True)
class ClaimStore:
    """Claims in the CSR bucket, read and written with S3 conditional requests only."""

    store: S3Store
    window: timedelta
    now: Callable[[], datetime]

    def __post_init__(self) -> None:
        if not self.store.conditional_writes:
            raise ConfigError(
                "config.s3_conditional_writes",
                "this botocore has no PutObject IfNoneMatch/IfMatch: claims cannot be kept exactly-once",
            )

    def load(self, bucket: str, key: str) -> tuple[Claim, str] | None:
        """The claim and its ETag, or None."""
        found = self.store.read(bucket, key, version_id=None, limit=MAX_CLAIM_BYTES)
        if found is None:
            return None
        if found.size > MAX_CLAIM_BYTES or not found.etag:
            raise OperatorError("pipeline.claim_corrupt", f"claim {key} is oversized or has no ETag")
        return Claim.from_bytes(found.body), found.etag

    def create(self, bucket: str, key: str, claim: Claim) -> str | None:
        """Write a new claim; None when one exists already."""
        return self.store.write(bucket, key, claim.to_bytes(), content_type="application/json")

    def replace(self, bucket: str, key: str, claim: Claim, etag: str) -> str | None:
        """Replace the claim read with ``etag``; None when someone wrote it since."""
        return self.store.write(bucket, key, claim.to_bytes(), content_type="application/json", if_match=etag)

    def may_join(self, claim: Claim) -> bool:
        """True when a new attempt may repeat the claim's token (rule 2)."""
        since = claim.uncertain_since()
        return since is None or self.now() - since < self.window

    def bind_key(self, bucket: str, key_id: str, pai_arn: str, pid: int) -> tuple[str, int]:
        """The (PAI ARN, PID) a device key is bound to: its first, written once with ``If-None-Match``.

        The device-key rule of the local CA (one key, one PAI and PID) held across deliveries,
        names and Lambda instances: a key bound elsewhere is refused by the caller (``issue.key_reused``).
        """
        name = key_binding_key(key_id)
        body = json.dumps({"format": 1, "pai_arn": pai_arn, "pid": pid}, sort_keys=True).encode()
        for _round in range(3):
            if self.store.write(bucket, name, body, content_type="application/json") is not None:
                return pai_arn, pid
            found = self.store.read(bucket, name, version_id=None, limit=MAX_CLAIM_BYTES)
            if found is None:
                continue  # removed between the two calls: write it again
            try:
                bound = json.loads(found.body)
                return str(bound["pai_arn"]), int(bound["pid"])
            except (ValueError, KeyError, TypeError) as e:
                raise OperatorError("pipeline.claim_corrupt", f"key binding {name} cannot be read: {e}") from e
        raise TransientError("pipeline.claim_contention", f"key binding {name} kept changing; the record is retried later")
