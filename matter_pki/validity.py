"""The DAC validity policy, decided in one place for the local CA, both CLIs, the Lambda and the CDK config.

A policy is ``issuer`` (the DAC ends when its PAI ends), ``no-expiry`` (99991231235959Z, RFC 5280
4.1.2.5) or a number of days (chip-cert's convention: ``start + days - 1 s``). ``resolve`` turns it
into the ``Validity`` of one DAC under one issuer:

* notBefore is never before the issuer's notBefore, and the issuer must still be valid at that
  instant as ``profiles.issuer_valid_at`` states it (notBefore <= t < notAfter: chip verifies the
  chain at the DAC's notBefore with OpenSSL, where a notAfter equal to t has expired); otherwise
  the issuer cannot issue anymore: ``config.issuer_expired``.
* ``within_issuer``: the DAC must also end by the issuer's notAfter. chip does not require it
  (matter-rules §4 Validity), but AWS Private CA does ("The end of the validity period configured
  on a certificate must not exceed the limit set on its parents in the CA hierarchy", API
  reference, IssueCertificate ``Validity``), so a DAC that would outlive its PAI there is a
  configuration error (``config.dac_validity_beyond_pai``), never a per-CSR refusal.

``fits_under`` is the same rule stated on what is known at CDK synth time (the PAI's validity in
days or its end date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from matter_pki.errors import ConfigError, InputError
from matter_pki.profiles import NO_EXPIRY, Validity, issuer_valid_at, require_utc

PolicyKind = Literal["issuer", "no-expiry", "days"]
ISSUER = "issuer"
NO_EXPIRY_WORD = "no-expiry"
WORDS = (ISSUER, NO_EXPIRY_WORD)


def _stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}"


@dataclass(frozen=True, slots=True)
class ValidityPolicy:
    """How long a DAC lives: until its issuer ends, forever (99991231235959Z), or ``days``."""

    kind: PolicyKind
    days: int | None = None

    def __post_init__(self) -> None:
        if (self.kind == "days") != (self.days is not None) or (self.days is not None and self.days < 1):
            raise ConfigError("config.dac_validity", f"invalid DAC validity policy {self.kind!r} / {self.days!r}")

    @classmethod
    def parse(cls, text: str) -> ValidityPolicy:
        """``issuer``, ``no-expiry``, ``<N>`` or ``<N>d`` (N ≥ 1); anything else is ``config.dac_validity``."""
        value = str(text).strip().lower()
        if value == ISSUER:
            return cls("issuer")
        if value == NO_EXPIRY_WORD:
            return cls("no-expiry")
        digits = value[:-1] if value.endswith("d") else value
        if digits.isdigit() and int(digits) > 0:
            return cls("days", int(digits))
        raise ConfigError(
            "config.dac_validity", f"DAC validity {text!r} must be 'issuer', 'no-expiry' or a number of days"
        )

    @classmethod
    def from_days(cls, days: int | None) -> ValidityPolicy:
        """``days``, or ``no-expiry`` when None (the local CLI's ``--validity-days`` / ``--no-expiry``)."""
        return cls("no-expiry") if days is None else cls("days", days)

    def __str__(self) -> str:
        return str(self.days) if self.kind == "days" else self.kind

    def resolve(
        self,
        start: datetime,
        *,
        issuer_not_before: datetime | None = None,
        issuer_not_after: datetime | None = None,
        within_issuer: bool = False,
    ) -> Validity:
        """The validity of a DAC issued at ``start`` under an issuer valid ``issuer_not_before..issuer_not_after``."""
        begin = require_utc(start, "start")
        if issuer_not_before is not None:
            begin = max(begin, require_utc(issuer_not_before, "issuer notBefore"))
        end = None if issuer_not_after is None else require_utc(issuer_not_after, "issuer notAfter")
        if end is not None and not issuer_valid_at(begin, begin, end):
            raise ConfigError(
                "config.issuer_expired", f"the issuer's validity ends at {_stamp(end)}; it cannot issue anymore"
            )
        if self.kind == "issuer":
            if end is None or end >= NO_EXPIRY:
                return Validity.no_expiry(begin)
            return Validity(not_before=begin, not_after=end)
        validity = Validity.no_expiry(begin) if self.kind == "no-expiry" else self._for_days(begin)
        if within_issuer and end is not None and validity.not_after > end:
            raise ConfigError(
                "config.dac_validity_beyond_pai",
                f"a DAC valid {self.describe()} would outlive its PAI (notAfter {_stamp(end)}), which Private CA "
                "refuses: use 'issuer' or fewer days",
            )
        return validity

    def _for_days(self, begin: datetime) -> Validity:
        """``days`` from ``begin``; a span ending after 9999 is ``input.validity`` (never an OverflowError)."""
        try:
            return Validity.for_days(begin, self.days or 0)
        except (OverflowError, ValueError) as e:
            raise InputError(
                "input.validity",
                f"a validity of {self.days} days from {_stamp(begin)} ends after the year 9999; use --no-expiry",
            ) from e

    def describe(self) -> str:
        """Human form: ``until its issuer ends``, ``without expiry``, ``for 365 days``."""
        if self.kind == "issuer":
            return "until its issuer ends"
        return "without expiry" if self.kind == "no-expiry" else f"for {self.days} days"

    def fits_under(
        self, *, ca_days: int | None = None, ca_end: datetime | None = None, now: datetime | None = None
    ) -> str | None:
        """Why a DAC under a Private CA PAI valid ``ca_days`` (or until ``ca_end``) cannot have this policy; None if it can."""
        if self.kind == "issuer":
            return None
        if ca_end is not None and require_utc(ca_end, "PAI end") >= NO_EXPIRY:
            return None
        if self.kind == "no-expiry":
            return "'no-expiry' DACs would outlive a PAI that expires; Private CA refuses them (use 'issuer')"
        days = self.days or 0
        if ca_days is not None and days >= ca_days:
            return f"{days} days must be less than the PAI validityInDays ({ca_days})"
        if ca_end is not None:
            start = require_utc(now or datetime.now(UTC), "now")
            if start + timedelta(days=days) > require_utc(ca_end, "PAI end"):
                return f"{days} days from now end after the PAI ({_stamp(require_utc(ca_end, 'PAI end'))})"
        return None
