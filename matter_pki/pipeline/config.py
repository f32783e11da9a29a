"""The signer's settings, read once per container from ``MATTER_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from matter_pki.errors import ConfigError, ProfileError
from matter_pki.profiles import DacProfile, Validity
from matter_pki.validity import ValidityPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Private CA answers a repeated IdempotencyToken with the same certificate for five minutes
#: (API reference, IssueCertificate). A claim whose outcome is unknown is only retried inside
#: that window minus a margin for clock differences between Lambda containers.
TOKEN_WINDOW_SECONDS = 300
CLAIM_MARGIN_SECONDS = 60


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

    validity: ValidityPolicy | str = "issuer"
    common_name: str | None = "Matter DAC"
    #: The one bucket the signer serves; events naming another are a configuration error (DLQ).
    csr_bucket: str | None = None
    allowed_pai_arns: frozenset[str] = frozenset()
    trusted_paa_sha256: frozenset[str] = frozenset()
    workers: int = 10
    #: botocore attempts per AWS call (its retry mode retries throttling and 5xx; nothing retries on top).
    max_attempts: int = 3
    waiter_delay: float = 0.5
    waiter_max_attempts: int = 40
    cache_seconds: float = 900.0
    deadline_margin_ms: int = 8000
    #: How long after an IssueCertificate whose outcome is unknown it may be repeated with the same token.
    claim_window_seconds: float = TOKEN_WINDOW_SECONDS - CLAIM_MARGIN_SECONDS
    policy: ValidityPolicy = field(init=False, default=ValidityPolicy("issuer"))

    def __post_init__(self) -> None:
        policy = self.validity if isinstance(self.validity, ValidityPolicy) else ValidityPolicy.parse(self.validity)
        object.__setattr__(self, "policy", policy)
        object.__setattr__(self, "validity", str(policy))
        if self.workers < 1 or self.max_attempts < 1:
            raise ConfigError("config.environment", "workers and max_attempts must be >= 1")
        if not 0 < self.claim_window_seconds <= TOKEN_WINDOW_SECONDS:
            raise ConfigError(
                "config.environment", f"the claim window must be inside Private CA's {TOKEN_WINDOW_SECONDS}-second token window"
            )
        try:  # the profile checks the CN; checking it here makes a bad setting a config error, not a refusal
            DacProfile(vid=0xFFF1, pid=1, common_name=self.common_name, validity=_probe_validity())
        except ProfileError as e:
            raise ConfigError("config.dac_common_name", f"DAC common name: {e.message}") from e

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineConfig:
        """Settings from ``MATTER_*`` environment variables (absent or empty means the default).

        ``MATTER_DAC_VALIDITY`` (issuer | no-expiry | days), ``MATTER_DAC_COMMON_NAME``,
        ``MATTER_CSR_BUCKET`` (the only bucket served), ``MATTER_PAI_ARNS`` (comma-separated
        allow-list), ``MATTER_PAA_SHA256`` (trusted PAA fingerprints), ``MATTER_WORKERS``,
        ``MATTER_MAX_ATTEMPTS`` (botocore attempts per call), ``MATTER_WAITER_DELAY``,
        ``MATTER_WAITER_MAX_ATTEMPTS``, ``MATTER_CA_CACHE_SECONDS``, ``MATTER_DEADLINE_MARGIN_MS``,
        ``MATTER_CLAIM_WINDOW_SECONDS``.
        """
        env = os.environ if environ is None else environ
        cn = env.get("MATTER_DAC_COMMON_NAME", "Matter DAC")
        return cls(
            validity=env.get("MATTER_DAC_VALIDITY", "issuer") or "issuer",
            common_name=cn or None,
            csr_bucket=env.get("MATTER_CSR_BUCKET", "").strip() or None,
            allowed_pai_arns=_env_set(env, "MATTER_PAI_ARNS"),
            trusted_paa_sha256=frozenset(h.lower() for h in _env_set(env, "MATTER_PAA_SHA256")),
            workers=_env_int(env, "MATTER_WORKERS", 10),
            max_attempts=_env_int(env, "MATTER_MAX_ATTEMPTS", 3),
            waiter_delay=_env_float(env, "MATTER_WAITER_DELAY", 0.5),
            waiter_max_attempts=_env_int(env, "MATTER_WAITER_MAX_ATTEMPTS", 40),
            cache_seconds=_env_float(env, "MATTER_CA_CACHE_SECONDS", 900.0),
            deadline_margin_ms=_env_int(env, "MATTER_DEADLINE_MARGIN_MS", 8000, minimum=0),
            claim_window_seconds=_env_float(
                env, "MATTER_CLAIM_WINDOW_SECONDS", TOKEN_WINDOW_SECONDS - CLAIM_MARGIN_SECONDS
            ),
        )


def _probe_validity() -> Validity:
    return Validity.no_expiry(datetime(2000, 1, 1, tzinfo=UTC))
