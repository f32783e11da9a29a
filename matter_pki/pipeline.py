"""The S3 → SQS → Lambda DAC-signing pipeline, one object at a time (the handler stays thin).

A manufacturer uploads ``<PAI ARN>/<PID>/<name>.csr``; the bucket notifies SQS; for each object:

1. skip unless it is a created ``.csr``; skip when ``<name>.pem`` or ``<name>.err`` already exists;
2. check the key (``layout.parse_csr_key``), the PAI allow-list, the size; read at most 4 KiB + 1;
3. intake the CSR (``csr.load_device_csr``): only its public key reaches the DAC;
4. fetch the PAI and PAA once per container (cached by ARN) and build ``DacProfile.for_issuer``
   (VID from the PAI, PID checked against a product-scoped PAI);
5. ``IssueCertificate`` with a token derived from bucket/key/version/CSR digest, tag the CSR with the
   certificate ARN (idempotency beyond Private CA's five-minute token window), wait, fetch;
6. validate PAA → PAI → DAC (commissioner order) and that the DAC is the one requested;
7. write ``<name>.pem`` create-only, or ``<name>.err`` (JSON: code, message, request id).

Permanent refusals write ``.err`` and succeed. Transient errors are retried here with bounded
exponential backoff and full jitter; if they persist, and for configuration errors (missing
permissions, bad settings), the SQS message fails and comes back (then goes to the DLQ). Nothing is
dropped silently: every skip is logged.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.backends.aws_pca import (
    CaChain,
    PrivateCa,
    build_dac_request,
    check_issued_dac,
    dac_token,
    dac_validity,
    parse_validity_policy,
)
from matter_pki.csr import MAX_CSR_BYTES, DeviceCsr, load_device_csr
from matter_pki.errors import (
    ConfigError,
    CsrError,
    InputError,
    MatterPkiError,
    ProfileError,
    StorageError,
    TransientError,
)
from matter_pki.layout import dumps_err, err_record, parse_csr_key
from matter_pki.profiles import DacProfile, Validity
from matter_pki.storage.s3 import CERTIFICATE_ARN_TAG, S3Object, S3Store

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from concurrent.futures import Future

    from botocore.client import BaseClient

T = TypeVar("T")
Status = Literal["issued", "refused", "exists", "ignored", "missing"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < 0:
            raise ConfigError("config.retry", "retry attempts must be >= 1 and delays >= 0")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Sleep before retry number ``attempt + 1``."""
        return rng.uniform(0.0, min(self.cap, self.base * (2**attempt)))


def _env_int(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    text = environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise ConfigError("config.environment", f"{name}={text!r} must be an integer >= {minimum}")
    return int(text)


def _env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError("config.environment", f"{name}={text!r} must be a number >= 0")
    return value


def _env_set(environ: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(p.strip() for p in environ.get(name, "").split(",") if p.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineConfig:
    """Settings of the signer (environment variables in Lambda, see ``from_env``)."""

    validity: str = "issuer"
    common_name: str | None = "Matter DAC"
    allowed_pai_arns: frozenset[str] = frozenset()
    trusted_paa_sha256: frozenset[str] = frozenset()
    workers: int = 10
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    waiter_delay: float = 0.5
    waiter_max_attempts: int = 40
    cache_seconds: float = 900.0
    deadline_margin_ms: int = 5000

    def __post_init__(self) -> None:
        object.__setattr__(self, "validity", parse_validity_policy(self.validity))
        if self.workers < 1:
            raise ConfigError("config.environment", "workers must be >= 1")
        try:  # the profile checks the CN; checking it here makes a bad setting a config error, not a refusal
            DacProfile(vid=0xFFF1, pid=1, common_name=self.common_name, validity=_probe_validity())
        except ProfileError as e:
            raise ConfigError("config.dac_common_name", f"DAC common name: {e.message}") from e

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineConfig:
        """Settings from ``MATTER_*`` environment variables (absent or empty means the default).

        ``MATTER_DAC_VALIDITY`` (issuer | no-expiry | days), ``MATTER_DAC_COMMON_NAME``, ``MATTER_PAI_ARNS``
        (comma-separated allow-list), ``MATTER_PAA_SHA256`` (trusted PAA fingerprints), ``MATTER_WORKERS``,
        ``MATTER_MAX_ATTEMPTS``, ``MATTER_WAITER_DELAY``, ``MATTER_WAITER_MAX_ATTEMPTS``, ``MATTER_CA_CACHE_SECONDS``.
        """
        env = os.environ if environ is None else environ
        cn = env.get("MATTER_DAC_COMMON_NAME", "Matter DAC")
        return cls(
            validity=env.get("MATTER_DAC_VALIDITY", "issuer") or "issuer",
            common_name=cn or None,
            allowed_pai_arns=_env_set(env, "MATTER_PAI_ARNS"),
            trusted_paa_sha256=frozenset(h.lower() for h in _env_set(env, "MATTER_PAA_SHA256")),
            workers=_env_int(env, "MATTER_WORKERS", 10),
            retry=RetryPolicy(attempts=_env_int(env, "MATTER_MAX_ATTEMPTS", 5)),
            waiter_delay=_env_float(env, "MATTER_WAITER_DELAY", 0.5),
            waiter_max_attempts=_env_int(env, "MATTER_WAITER_MAX_ATTEMPTS", 40),
            cache_seconds=_env_float(env, "MATTER_CA_CACHE_SECONDS", 900.0),
        )


def _probe_validity() -> Validity:
    return Validity.no_expiry(datetime(2000, 1, 1, tzinfo=UTC))


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class S3ObjectRef:
    """One object named by an S3 event notification (key already URL-decoded)."""

    bucket: str
    key: str
    event_name: str = "ObjectCreated:Put"
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    event_time: datetime | None = None


def _event_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_s3_event(body: str | Mapping[str, object]) -> list[S3ObjectRef]:
    """Objects in an S3 event notification (an SQS message body); ``s3:TestEvent`` gives none.

    Keys arrive URL-encoded (``quote_plus``) and are decoded with ``unquote_plus``.
    Raises InputError ``event.malformed`` for anything that is not an S3 notification.
    """
    try:
        data = json.loads(body) if isinstance(body, str) else body
        if not isinstance(data, dict):
            raise TypeError("not an object")
        if data.get("Event") == "s3:TestEvent":
            return []
        refs = []
        for record in data["Records"]:
            s3 = record["s3"]
            obj = s3["object"]
            refs.append(
                S3ObjectRef(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(obj["key"])),
                    event_name=str(record.get("eventName", "")),
                    version_id=obj.get("versionId") or None,
                    etag=obj.get("eTag") or None,
                    size=int(obj["size"]) if isinstance(obj.get("size"), int) else None,
                    event_time=_event_time(record.get("eventTime")),
                )
            )
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise InputError("event.malformed", f"SQS message is not an S3 event notification: {e}") from e
    return refs


# -- outcomes -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one object."""

    key: str
    status: Status
    output: str | None = None
    code: str | None = None
    serial: int | None = None


def _is_refusal(error: MatterPkiError) -> bool:
    """The request's fault (answered with ``.err``); transient, configuration and storage errors are not."""
    return not (error.retryable or isinstance(error, ConfigError | StorageError))


@dataclass(slots=True)
class _Progress:
    """What is known about a CSR when it is refused (goes into ``.err``)."""

    device: DeviceCsr | None = None
    serial: int | None = None


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
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pca = pca
        self.store = store
        self.config = config or PipelineConfig()
        self.log: PipelineLogger = logger or logging.getLogger("matter_pki.pipeline")
        self._now = now
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._monotonic = monotonic
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- retry ------------------------------------------------------------------------------------
    def _retry(self, what: str, fn: Callable[[], T], deadline: float | None) -> T:
        policy = self.config.retry
        attempt = 0
        while True:
            try:
                return fn()
            except MatterPkiError as e:
                attempt += 1
                if not e.retryable or attempt >= policy.attempts:
                    raise
                pause = policy.delay(attempt - 1, self._rng)
                if deadline is not None and self._monotonic() + pause > deadline:
                    raise TransientError(
                        "pipeline.deadline",
                        f"{what}: no time left to retry before the Lambda timeout: {e.message}",
                    ) from e
                self.log.warning(
                    "transient error, retrying",
                    extra={"operation": what, "code": e.code, "attempt": attempt, "sleep_s": round(pause, 3)},
                )
                self._sleep(pause)

    # -- one object -------------------------------------------------------------------------------
    def handle_object(self, ref: S3ObjectRef, *, request_id: str, deadline: float | None = None) -> Outcome:
        """Answer one S3 object: ``.pem``, ``.err``, or a logged skip; raises only to fail the message."""
        key = ref.key
        fields: dict[str, object] = {"bucket": ref.bucket, "key": key, "request_id": request_id}
        if not ref.event_name.startswith("ObjectCreated"):
            self.log.info(
                "ignored: not an object-created event", extra={**fields, "event_name": ref.event_name}
            )
            return Outcome(key, "ignored")
        if not key.endswith(".csr"):
            self.log.info("ignored: not a .csr key (check the notification suffix filter)", extra=fields)
            return Outcome(key, "ignored")
        stem = key[: -len(".csr")]
        pem_key, err_key = stem + ".pem", stem + ".err"
        existing = self._retry(
            "list_objects_v2",
            lambda: self.store.existing(ref.bucket, (pem_key, err_key), stem + "."),
            deadline,
        )
        if existing:
            self.log.info("skipped: result exists", extra={**fields, "result": sorted(existing)})
            return Outcome(key, "exists", output=sorted(existing)[0])
        progress = _Progress()
        try:
            return self._sign(ref, fields, pem_key, progress, deadline)
        except MatterPkiError as e:
            if not _is_refusal(e):
                self.log.error(
                    "failed; the message goes back to SQS",
                    extra={**fields, "code": e.code, "error": e.message},
                )
                raise
            return self._refuse(ref, fields, err_key, e, progress, request_id, deadline)

    def _sign(
        self,
        ref: S3ObjectRef,
        fields: dict[str, object],
        pem_key: str,
        progress: _Progress,
        deadline: float | None,
    ) -> Outcome:
        csr_key = parse_csr_key(ref.key, cloud=True)
        ca = csr_key.ca
        fields["pai_arn"] = ca
        self._check_ca_allowed(ca)
        if ref.size is not None and ref.size > MAX_CSR_BYTES:
            raise CsrError("csr.too_large", f"CSR is {ref.size} bytes, over the {MAX_CSR_BYTES}-byte limit")
        obj = self._retry(
            "get_object",
            lambda: self.store.read(ref.bucket, ref.key, version_id=ref.version_id, limit=MAX_CSR_BYTES),
            deadline,
        )
        if obj is None:
            self.log.warning("skipped: the CSR object no longer exists", extra=fields)
            return Outcome(ref.key, "missing")
        if obj.size > MAX_CSR_BYTES or len(obj.body) > MAX_CSR_BYTES:
            raise CsrError("csr.too_large", f"CSR is {obj.size} bytes, over the {MAX_CSR_BYTES}-byte limit")
        device = progress.device = load_device_csr(obj.body)
        chain = self._retry("get_certificate_authority_certificate", lambda: self.pca.ca_chain(ca), deadline)
        now = self._now()
        # notBefore from the upload time keeps the request identical across redeliveries.
        validity = dac_validity(self.config.validity, start=min(ref.event_time or now, now), pai=chain.pai)
        profile = DacProfile.for_issuer(
            chain.pai, pid=csr_key.pid, validity=validity, common_name=self.config.common_name
        )
        profile.check_issuer(chain.pai)
        version = obj.version_id or obj.etag or ref.etag
        token = dac_token(bucket=ref.bucket, key=ref.key, version=version, csr_sha256=device.sha256)
        request = build_dac_request(ca_arn=ca, device=device, profile=profile, token=token)
        version_id = obj.version_id or ref.version_id
        tags = self._tags(ref, obj, version_id, deadline)
        cert_arn, der, serial = self._previous_certificate(tags, device, profile, chain, ca, fields, deadline)
        if cert_arn is None:
            cert_arn = self._retry("issue_certificate", lambda: self.pca.issue(request), deadline)
            self._tag(ref, version_id, {**tags, CERTIFICATE_ARN_TAG: cert_arn}, fields, deadline)
            der = self._retry("get_certificate", lambda: self.pca.fetch(ca, cert_arn), deadline)
            try:
                serial = check_issued_dac(der, device=device, profile=profile, chain=chain, at=self._now())
            except MatterPkiError as e:
                progress.serial = _serial_of(der)
                self.log.error(
                    "Private CA returned a DAC that is not released",
                    extra={
                        **fields,
                        "code": e.code,
                        "certificate_arn": cert_arn,
                        "serial": _hex(progress.serial),
                    },
                )
                raise
        assert der is not None and serial is not None
        pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM)
        metadata = {"serial": _hex(serial) or "", "certificate-arn": cert_arn, "csr-sha256": device.sha256}
        created = self._retry(
            "put_object",
            lambda: self.store.create(
                ref.bucket, pem_key, pem, content_type="application/x-pem-file", metadata=metadata
            ),
            deadline,
        )
        extra = {**fields, "serial": _hex(serial), "certificate_arn": cert_arn, "output": pem_key}
        if not created:
            self.log.info("skipped: another delivery published the DAC first", extra=extra)
            return Outcome(ref.key, "exists", output=pem_key, serial=serial)
        self.log.info("DAC issued", extra=extra)
        return Outcome(ref.key, "issued", output=pem_key, serial=serial)

    def _check_ca_allowed(self, ca: str) -> None:
        allowed = self.config.allowed_pai_arns
        if allowed and ca not in allowed:
            raise InputError("key.ca_not_allowed", f"{ca} is not one of the PAIs this signer may use")
        region = self.pca.region
        if not allowed and region and ca.split(":")[3] != region:
            raise InputError("key.ca_not_allowed", f"{ca} is not in this signer's region {region}")

    def _tags(
        self, ref: S3ObjectRef, obj: S3Object, version_id: str | None, deadline: float | None
    ) -> dict[str, str]:
        if not obj.tag_count:  # GetObject reports the count: no extra call in the usual case
            return {}
        return self._retry(
            "get_object_tagging",
            lambda: self.store.tags(ref.bucket, ref.key, version_id=version_id),
            deadline,
        )

    def _previous_certificate(
        self,
        tags: Mapping[str, str],
        device: DeviceCsr,
        profile: DacProfile,
        chain: CaChain,
        ca: str,
        fields: dict[str, object],
        deadline: float | None,
    ) -> tuple[str | None, bytes | None, int | None]:
        """The certificate an earlier delivery issued for this CSR (its ARN is tagged on the CSR), if usable.

        A tag that names something else — written by hand or by an uploader — is ignored, never trusted:
        the certificate must be under this PAI and pass every release check for this very CSR.
        """
        arn = tags.get(CERTIFICATE_ARN_TAG, "")
        if not arn.startswith(ca + "/certificate/"):
            return None, None, None
        try:
            der = self._retry("get_certificate", lambda: self.pca.fetch(ca, arn), deadline)
            serial = check_issued_dac(der, device=device, profile=profile, chain=chain, at=self._now())
        except MatterPkiError as e:
            if not _is_refusal(e):
                raise
            self.log.warning(
                "ignoring the certificate named by the CSR's tag", extra={**fields, "code": e.code}
            )
            return None, None, None
        self.log.info(
            "reusing the certificate a previous delivery issued", extra={**fields, "certificate_arn": arn}
        )
        return arn, der, serial

    def _tag(
        self,
        ref: S3ObjectRef,
        version_id: str | None,
        tags: Mapping[str, str],
        fields: dict[str, object],
        deadline: float | None,
    ) -> None:
        """Record the certificate ARN on the CSR while Private CA is still issuing (costs no wall time)."""
        try:
            self._retry(
                "put_object_tagging",
                lambda: self.store.put_tags(ref.bucket, ref.key, version_id=version_id, tags=tags),
                deadline,
            )
        except MatterPkiError as e:
            # Best effort: the IdempotencyToken still covers redeliveries within five minutes.
            self.log.warning(
                "could not tag the CSR with its certificate ARN", extra={**fields, "code": e.code}
            )

    def _refuse(
        self,
        ref: S3ObjectRef,
        fields: dict[str, object],
        err_key: str,
        error: MatterPkiError,
        progress: _Progress,
        request_id: str,
        deadline: float | None,
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
        if progress.serial is not None:
            record["certificate_serial"] = _hex(progress.serial)
        if "aws_request_id" in error.context:
            record["aws_request_id"] = str(error.context["aws_request_id"])
        body = dumps_err(record)
        created = self._retry(
            "put_object",
            lambda: self.store.create(ref.bucket, err_key, body, content_type="application/json"),
            deadline,
        )
        self.log.warning(
            "CSR refused",
            extra={
                **fields,
                "code": error.code,
                "error": error.message,
                "output": err_key,
                "written": created,
            },
        )
        return Outcome(ref.key, "refused", output=err_key, code=error.code, serial=progress.serial)

    # -- messages and batches ---------------------------------------------------------------------
    def handle_message(self, body: str, *, request_id: str, deadline: float | None = None) -> list[Outcome]:
        """Every object of one SQS message (an S3 event); raises to send the message back to SQS."""
        try:
            refs = parse_s3_event(body)
        except InputError as e:
            self.log.error(
                "unreadable message; it will go to the DLQ after its retries",
                extra={"code": e.code, "error": e.message},
            )
            raise
        if not refs:
            self.log.info("skipped: s3:TestEvent", extra={"request_id": request_id})
        return [self.handle_object(ref, request_id=request_id, deadline=deadline) for ref in refs]

    def start(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        request_id: str,
        remaining_ms: Callable[[], int] | None = None,
    ) -> Batch:
        """Start every SQS record of a batch (``workers`` at a time); ``Batch.finish`` collects each one."""
        deadline = None
        if remaining_ms is not None:
            deadline = self._monotonic() + (remaining_ms() - self.config.deadline_margin_ms) / 1000.0
        return Batch(self, records, request_id=request_id, deadline=deadline)

    def executor(self) -> ThreadPoolExecutor | None:
        """The container's worker threads (None when ``workers`` is 1)."""
        if self.config.workers <= 1:
            return None
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="dac-signer")
            return self._pool


class Batch:
    """The records of one Lambda invocation, running concurrently; ``finish`` is the record handler."""

    def __init__(
        self,
        pipeline: Pipeline,
        records: Sequence[Mapping[str, object]],
        *,
        request_id: str,
        deadline: float | None,
    ) -> None:
        self.pipeline = pipeline
        self.request_id = request_id
        self.deadline = deadline
        self._futures: dict[str, list[Future[list[Outcome]]]] = {}
        pool = pipeline.executor()
        if pool is not None:
            for record in records:
                self._futures.setdefault(_message_id(record), []).append(pool.submit(self._run, record))

    def _run(self, record: Mapping[str, object]) -> list[Outcome]:
        try:
            return self.pipeline.handle_message(
                str(record.get("body", "")), request_id=self.request_id, deadline=self.deadline
            )
        except MatterPkiError:
            raise  # already logged with its code
        except Exception:
            # Powertools does not log record failures; a bug must not vanish into a retry loop.
            self.pipeline.log.error(
                "unexpected error; the message goes back to SQS",
                extra={"message_id": _message_id(record), "request_id": self.request_id},
                exc_info=True,
            )
            raise

    def finish(self, record: Mapping[str, object]) -> list[Outcome]:
        """Outcomes of one record; raises (failing only this record) on transient or configuration errors."""
        pending = self._futures.get(_message_id(record))
        return pending.pop(0).result() if pending else self._run(record)


def _message_id(record: Mapping[str, object]) -> str:
    return str(record.get("messageId", id(record)))


def _serial_of(der: bytes) -> int | None:
    try:
        serial: int = x509.load_der_x509_certificate(der).serial_number
    except ValueError:
        return None
    return serial


def _hex(serial: int | None) -> str | None:
    return None if serial is None else f"{serial:X}"


# -- the container's pipeline ----------------------------------------------------------------------
_RUNTIME: Pipeline | None = None
_RUNTIME_LOCK = threading.Lock()


def aws_clients(workers: int) -> tuple[BaseClient, BaseClient]:
    """boto3 ``acm-pca`` and ``s3`` clients for Lambda: standard retries, short timeouts, a pool per worker."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        connect_timeout=5,
        read_timeout=15,
        max_pool_connections=max(10, 2 * workers),
    )
    return boto3.client("acm-pca", config=config), boto3.client("s3", config=config)


def configure(
    *,
    pca: BaseClient | PrivateCa | None = None,
    s3: BaseClient | S3Store | None = None,
    config: PipelineConfig | None = None,
    logger: PipelineLogger | None = None,
    **options: object,
) -> Pipeline:
    """Set the container's pipeline; clients default to boto3 built from the environment (tests inject)."""
    global _RUNTIME
    cfg = config or PipelineConfig.from_env()
    if pca is None or s3 is None:
        default_pca, default_s3 = aws_clients(cfg.workers)
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
        )
    )
    store = s3 if isinstance(s3, S3Store) else S3Store(s3)
    pipeline = Pipeline(pca=backend, store=store, config=cfg, logger=logger, **options)  # type: ignore[arg-type]
    with _RUNTIME_LOCK:
        _RUNTIME = pipeline
    return pipeline


def runtime(*, logger: PipelineLogger | None = None) -> Pipeline:
    """The container's pipeline, built from the environment on first use."""
    with _RUNTIME_LOCK:
        current = _RUNTIME
    return current if current is not None else configure(logger=logger)


def reset() -> None:
    """Forget the container's pipeline (tests)."""
    global _RUNTIME
    with _RUNTIME_LOCK:
        _RUNTIME = None
