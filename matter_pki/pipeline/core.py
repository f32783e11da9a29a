"""One S3 object through the signer: checks, claim, IssueCertificate, release gate, ``.pem`` or ``.err``."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.backends.aws_pca import (
    CaChain,
    PrivateCa,
    build_dac_request,
    check_pca_intake,
    dac_token,
    dac_validity,
    release_or_revoke,
)
from matter_pki.csr import MAX_CSR_BYTES, DeviceCsr, load_device_csr
from matter_pki.errors import (
    ConfigError,
    CsrError,
    InputError,
    IssuanceError,
    MatterPkiError,
    OperatorError,
    StorageError,
    TransientError,
)
from matter_pki.gate import ReleaseRefused
from matter_pki.layout import CSR_SUFFIX, CsrKey, claim_key, dumps_err, err_record, parse_csr_key
from matter_pki.pipeline.claims import Attempt, Claim, ClaimStore
from matter_pki.pipeline.config import PipelineConfig
from matter_pki.profiles import DacProfile, Validity

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from matter_pki.pipeline.events import S3ObjectRef
    from matter_pki.storage.s3 import S3Head, S3Object, S3Store

Status = Literal["issued", "refused", "exists", "ignored", "missing", "stale"]
#: Conditional-write rounds on one claim before the record is retried later.
CLAIM_ROUNDS = 8


class PipelineLogger(Protocol):
    """stdlib ``logging.Logger`` or Powertools ``Logger``: structured fields go in ``extra``."""

    def info(self, msg: str, *args: object, extra: Mapping[str, object] | None = ...) -> None:
        """Log at INFO."""

    def warning(self, msg: str, *args: object, extra: Mapping[str, object] | None = ...) -> None:
        """Log at WARNING."""

    def error(
        self, msg: str, *args: object, extra: Mapping[str, object] | None = ..., exc_info: bool = ...
    ) -> None:
        """Log at ERROR."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one object."""

    key: str
    status: Status
    output: str | None = None
    code: str | None = None
    serial: int | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """The instant (``monotonic`` seconds) by which a record must be given back, and the clock."""

    at: float | None
    monotonic: Callable[[], float] = time.monotonic

    def left(self) -> float:
        """Seconds left (infinite without a deadline)."""
        return float("inf") if self.at is None else self.at - self.monotonic()

    def check(self, what: str) -> None:
        """Refuse to start ``what`` once the time is up: the record goes back to SQS instead of being killed."""
        if self.left() <= 0:
            raise TransientError("pipeline.deadline", f"{what}: no time left before the Lambda timeout")


NO_DEADLINE = Deadline(None)


def is_refusal(error: MatterPkiError) -> bool:
    """The request's fault (answered with ``.err``); transient, operator, configuration and storage errors are not."""
    return not (error.retryable or isinstance(error, ConfigError | StorageError | OperatorError))


@dataclass(slots=True)
class _Progress:
    """What is known about a CSR when it is refused (goes into ``.err``)."""

    device: DeviceCsr | None = None


def _same_object(ref: S3ObjectRef, obj: S3Object | S3Head) -> bool:
    """The event names the object's current version (by version id, or by ETag in an unversioned bucket)."""
    if ref.version_id and obj.version_id:
        return ref.version_id == obj.version_id
    if ref.etag and obj.etag:
        return ref.etag.strip('"') == obj.etag.strip('"')
    return True


class Pipeline:
    """Signs CSRs named by S3 events on Private CA and publishes the results next to them."""

    def __init__(
        self,
        *,
        pca: PrivateCa,
        store: S3Store,
        config: PipelineConfig | None = None,
        logger: PipelineLogger | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.pca = pca
        self.store = store
        self.config = config or PipelineConfig()
        self.log: PipelineLogger = logger or logging.getLogger("matter_pki.pipeline")
        self._now = now
        self.claims = ClaimStore(store, timedelta(seconds=self.config.claim_window_seconds), now)

    # -- one object -------------------------------------------------------------------------------
    def handle_object(self, ref: S3ObjectRef, *, request_id: str, deadline: Deadline = NO_DEADLINE) -> Outcome:
        """Answer one S3 object: ``.pem``, ``.err``, or a logged skip; raises only to fail the message."""
        key = ref.key
        fields: dict[str, object] = {"bucket": ref.bucket, "key": key, "request_id": request_id}
        if not ref.event_name.startswith("ObjectCreated"):
            self.log.info("ignored: not an object-created event", extra={**fields, "event_name": ref.event_name})
            return Outcome(key, "ignored")
        if not key.endswith(CSR_SUFFIX):
            self.log.info("ignored: not a .csr key (check the notification suffix filter)", extra=fields)
            return Outcome(key, "ignored")
        try:
            return self._handle(ref, fields, request_id, deadline)
        except MatterPkiError as e:
            if not is_refusal(e):
                self.log.error(
                    "failed; the message goes back to SQS",
                    extra={
                        **fields,
                        "code": e.code,
                        "error": e.message,
                        "operator_action": not e.retryable,
                        **{k: str(v) for k, v in e.context.items() if k in ("certificate_arn", "serial", "aws_code")},
                    },
                )
            raise

    def _handle(self, ref: S3ObjectRef, fields: dict[str, object], request_id: str, deadline: Deadline) -> Outcome:
        bucket = self.config.csr_bucket
        if bucket is not None and ref.bucket != bucket:
            raise ConfigError(
                "config.csr_bucket", f"event for bucket {ref.bucket!r}; this signer serves {bucket!r} only"
            )
        answers = CsrKey.unchecked(ref.key)
        for name in answers.answers:
            deadline.check("head_object")
            if self.store.exists(ref.bucket, name):
                self.log.info("skipped: result exists", extra={**fields, "result": name})
                return Outcome(ref.key, "exists", output=name)
        progress = _Progress()
        try:
            return self._sign(ref, fields, progress, deadline)
        except MatterPkiError as e:
            if not is_refusal(e):
                raise
            return self._refuse(ref, fields, answers.err, e, progress, request_id, deadline)

    def _read_current(self, ref: S3ObjectRef, fields: dict[str, object], deadline: Deadline) -> S3Object | Outcome:
        deadline.check("get_object")
        obj = self.store.read(ref.bucket, ref.key, version_id=None, limit=MAX_CSR_BYTES)
        if obj is None:
            self.log.warning("skipped: the CSR object no longer exists", extra=fields)
            return Outcome(ref.key, "missing")
        if not _same_object(ref, obj):
            # Only the current version is signed; its own event comes (or came) separately.
            self.log.info(
                "skipped: the CSR was overwritten; its current version is answered by its own event",
                extra={**fields, "event_version": ref.version_id, "current_version": obj.version_id},
            )
            return Outcome(ref.key, "stale")
        return obj

    def _sign(self, ref: S3ObjectRef, fields: dict[str, object], progress: _Progress, deadline: Deadline) -> Outcome:
        csr_key = parse_csr_key(ref.key, cloud=True)
        ca = csr_key.ca
        fields["pai_arn"] = ca
        self._check_ca_allowed(ca)
        if ref.size is not None and ref.size > MAX_CSR_BYTES:
            raise CsrError("csr.too_large", f"CSR is {ref.size} bytes, over the {MAX_CSR_BYTES}-byte limit")
        obj = self._read_current(ref, fields, deadline)
        if isinstance(obj, Outcome):
            return obj
        if obj.size > MAX_CSR_BYTES or len(obj.body) > MAX_CSR_BYTES:
            raise CsrError("csr.too_large", f"CSR is {obj.size} bytes, over the {MAX_CSR_BYTES}-byte limit")
        device = progress.device = load_device_csr(obj.body)
        check_pca_intake(device)
        deadline.check("get_certificate_authority_certificate")
        chain = self.pca.ca_chain(ca)
        self._check_key_binding(ref.bucket, ca, csr_key.pid, device, deadline)
        name = claim_key(ca, csr_key.pid, device.key_id)
        arn, claim = self._certificate(ref, csr_key, chain, device, name, fields, deadline)
        profile = self._profile(chain, claim)
        deadline.check("get_certificate")
        der = self.pca.wait_certificate(ca, arn, time_left=deadline.left)
        fields["certificate_arn"] = arn
        try:
            serial = release_or_revoke(
                self.pca, der, certificate_arn=arn, device=device, profile=profile, chain=chain, at=self._now()
            )
        except ReleaseRefused as refused:
            self.log.error(
                "Private CA returned a DAC that is not released",
                extra={**fields, "code": refused.code, "serial": refused.context.get("serial"),
                       "revoked": refused.context.get("revoked"), "operator_action": True},
            )  # fmt: skip
            self._record_refusal(ref.bucket, name, refused, deadline)
            raise
        return self._publish(ref, csr_key, der, serial, arn, device, fields, deadline)

    def _check_key_binding(self, bucket: str, ca: str, pid: int, device: DeviceCsr, deadline: Deadline) -> None:
        """One device key, one (PAI, PID), as on the local CA: another PAI or PID is ``issue.key_reused``."""
        deadline.check("claim")
        bound = self.claims.bind_key(bucket, device.key_id, ca, pid)
        if bound != (ca, pid):
            raise IssuanceError(
                "issue.key_reused",
                f"device key {device.key_id[:16]}… is already bound to PID {bound[1]:04X} under {bound[0]}: one device "
                "key gets DACs under one PAI and PID only",
                key_id=device.key_id,
            )

    def _profile(self, chain: CaChain, claim: Claim) -> DacProfile:
        """The profile the claim requested (the same request on every delivery)."""
        validity = Validity(
            not_before=datetime.fromtimestamp(claim.not_before, UTC), not_after=datetime.fromtimestamp(claim.not_after, UTC)
        )
        return DacProfile.for_issuer(chain.pai, pid=claim.pid, validity=validity, common_name=claim.common_name)

    def _new_claim(self, ref: S3ObjectRef, csr_key: CsrKey, chain: CaChain, device: DeviceCsr) -> Claim:
        now = self._now()
        # notBefore from the upload time; the policy fits it under the PAI (config.* errors go to the DLQ).
        validity = dac_validity(self.config.policy, start=min(ref.event_time or now, now), pai=chain.pai)
        profile = DacProfile.for_issuer(chain.pai, pid=csr_key.pid, validity=validity, common_name=self.config.common_name)
        profile.check_issuer(chain.pai)
        return Claim(
            pai_arn=csr_key.ca,
            pid=csr_key.pid,
            csr_sha256=device.sha256,
            token=dac_token(pai_arn=csr_key.ca, pid=csr_key.pid, key_id=device.key_id),
            not_before=int(validity.not_before.timestamp()),
            not_after=int(validity.not_after.timestamp()),
            common_name=self.config.common_name,
            csr_key=ref.key,
        )

    def _certificate(
        self,
        ref: S3ObjectRef,
        csr_key: CsrKey,
        chain: CaChain,
        device: DeviceCsr,
        name: str,
        fields: dict[str, object],
        deadline: Deadline,
    ) -> tuple[str, Claim]:
        """The certificate ARN for this (PAI, PID, device key): from its claim, or from one IssueCertificate under it."""
        bucket = ref.bucket
        fresh: Claim | None = None
        found: tuple[Claim, str] | None = None
        for round_ in range(CLAIM_ROUNDS):
            deadline.check("claim")
            if round_:  # the first round creates without reading: the usual case for a new CSR
                found = self.claims.load(bucket, name)
            attempt = Attempt(uuid.uuid4().hex, self._now())
            if found is None:
                fresh = fresh or self._new_claim(ref, csr_key, chain, device)
                claim = fresh.with_attempt(attempt)
                etag = self.claims.create(bucket, name, claim)
            else:
                current, seen = found
                if current.state == "issued" and current.certificate_arn:
                    self.log.info("reusing the certificate this CSR's claim names", extra={**fields, "certificate_arn": current.certificate_arn})
                    return current.certificate_arn, current
                if current.state == "refused":
                    raise _refusal_of(current)
                if not self.claims.may_join(current):
                    raise OperatorError(
                        "pipeline.reconcile",
                        f"claim {name} has an IssueCertificate of unknown outcome older than Private CA's token "
                        "window: whether a certificate exists must be checked before anything is issued again "
                        "(README, reconciliation)",
                        claim=name,
                    )
                claim = current.with_attempt(attempt)
                etag = self.claims.replace(bucket, name, claim, seen)
            if etag is None:
                continue  # another delivery wrote the claim first: read it again
            return self._attempt(bucket, name, claim, etag, attempt, chain, device, fields, deadline), claim
        raise TransientError("pipeline.claim_contention", f"claim {name} kept changing; the record is retried later")

    def _attempt(
        self,
        bucket: str,
        name: str,
        claim: Claim,
        etag: str,
        attempt: Attempt,
        chain: CaChain,
        device: DeviceCsr,
        fields: dict[str, object],
        deadline: Deadline,
    ) -> str:
        request = build_dac_request(ca_arn=claim.pai_arn, device=device, profile=self._profile(chain, claim), token=claim.token)
        deadline.check("issue_certificate")
        try:
            arn = self.pca.issue(request)
        except MatterPkiError as e:
            outcome = "not_issued" if e.context.get("not_issued") else "unknown"
            try:
                self._settle(bucket, name, attempt.id, outcome, known=(claim, etag))
            except MatterPkiError as settle_error:  # the attempt stays pending: the safe reading
                self.log.warning("could not record an IssueCertificate outcome", extra={**fields, "code": settle_error.code})
            raise
        self._settle(bucket, name, attempt.id, "issued", arn, known=(claim, etag))
        return arn

    def _settle(
        self,
        bucket: str,
        name: str,
        attempt_id: str,
        outcome: str,
        arn: str | None = None,
        *,
        known: tuple[Claim, str] | None = None,
    ) -> None:
        """Record an attempt's outcome with a conditional replace (first on the claim as this delivery wrote it)."""
        for round_ in range(CLAIM_ROUNDS):
            found = known if round_ == 0 and known is not None else self.claims.load(bucket, name)
            if found is None:
                raise OperatorError("pipeline.claim_lost", f"claim {name} disappeared")
            claim, etag = found
            if arn is not None and claim.state == "issued":
                if claim.certificate_arn == arn:
                    return
                raise OperatorError(
                    "pipeline.claim_conflict",
                    f"claim {name} names {claim.certificate_arn} but IssueCertificate returned {arn}: two certificates",
                    certificate_arn=arn,
                )
            if claim.state == "refused":
                return
            settled = claim.settled(attempt_id, outcome, arn)  # type: ignore[arg-type]
            if self.claims.replace(bucket, name, settled, etag) is not None:
                return
        raise TransientError("pipeline.claim_contention", f"claim {name} kept changing")

    def _record_refusal(self, bucket: str, name: str, refused: ReleaseRefused, deadline: Deadline) -> None:
        refusal = {"code": refused.code, "message": refused.message, **{k: v for k, v in refused.context.items()}}
        for _round in range(CLAIM_ROUNDS):
            deadline.check("claim")
            found = self.claims.load(bucket, name)
            if found is None:
                return
            claim, etag = found
            if claim.state == "refused" or self.claims.replace(bucket, name, claim.refused(refusal), etag) is not None:
                return

    def _publish(
        self,
        ref: S3ObjectRef,
        csr_key: CsrKey,
        der: bytes,
        serial: int,
        arn: str,
        device: DeviceCsr,
        fields: dict[str, object],
        deadline: Deadline,
    ) -> Outcome:
        # The CSR may have been overwritten while this one was issued: never publish it as the answer
        # to the newer object (its certificate stays recorded in its claim).
        deadline.check("head_object")
        current = self.store.head(ref.bucket, ref.key)
        if current is None or not _same_object(ref, current):
            self.log.info(
                "skipped: the CSR was overwritten or deleted while it was signed; its certificate stays in its claim",
                extra={**fields, "event_version": ref.version_id},
            )
            return Outcome(ref.key, "stale")
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        metadata = {
            "serial": f"{serial:X}",
            "certificate-arn": arn,
            "csr-sha256": device.sha256,
            "csr-version": current.version_id or "",
        }
        deadline.check("put_object")
        created = self.store.create(
            ref.bucket, csr_key.pem, pem, content_type="application/x-pem-file", metadata=metadata
        )
        extra = {**fields, "serial": f"{serial:X}", "certificate_arn": arn, "output": csr_key.pem}
        if not created:
            self.log.info("skipped: another delivery published the DAC first", extra=extra)
            return Outcome(ref.key, "exists", output=csr_key.pem, serial=serial)
        self.log.info("DAC issued", extra=extra)
        return Outcome(ref.key, "issued", output=csr_key.pem, serial=serial)

    def _check_ca_allowed(self, ca: str) -> None:
        allowed = self.config.allowed_pai_arns
        if allowed and ca not in allowed:
            raise InputError("key.ca_not_allowed", f"{ca} is not one of the PAIs this signer may use")
        region = self.pca.region
        if not allowed and region and ca.split(":")[3] != region:
            raise InputError("key.ca_not_allowed", f"{ca} is not in this signer's region {region}")

    def _refuse(
        self,
        ref: S3ObjectRef,
        fields: dict[str, object],
        err_key: str,
        error: MatterPkiError,
        progress: _Progress,
        request_id: str,
        deadline: Deadline,
    ) -> Outcome:
        record: dict[str, object] = dict(
            err_record(
                error,
                csr_key=ref.key,
                request_id=request_id,
                time=self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                csr_sha256=progress.device.sha256 if progress.device else None,
            )
        )
        for name in ("serial", "certificate_arn", "revoked", "not_revoked_because", "aws_request_id", "field", "oid"):
            if name in error.context and error.context[name] is not None:
                record["certificate_serial" if name == "serial" else name] = error.context[name]
        deadline.check("put_object")
        created = self.store.create(ref.bucket, err_key, dumps_err(record), content_type="application/json")
        self.log.warning(
            "CSR refused",
            extra={**fields, "code": error.code, "error": error.message, "output": err_key, "written": created},
        )
        serial = error.context.get("serial")
        return Outcome(
            ref.key, "refused", output=err_key, code=error.code, serial=int(serial, 16) if isinstance(serial, str) else None
        )


def _refusal_of(claim: Claim) -> ReleaseRefused:
    """The refusal a claim recorded, raised again for another delivery or name of the same CSR."""
    refusal = dict(claim.refusal or {})
    code = str(refusal.pop("code", "issue.validation_failed"))
    message = str(refusal.pop("message", "the certificate was refused by the release gate"))
    serial_text = refusal.pop("serial", None)
    serial = int(serial_text, 16) if isinstance(serial_text, str) else None
    return ReleaseRefused(code, message, serial=serial, **refusal)
