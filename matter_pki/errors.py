"""One error tree for matter-pki: every error carries a stable dotted code.

Codes are never renamed; new ones are added to ``codes.csv`` (``matter-pki codes`` lists them).
The CLI prints ``error[<code>]: <message>`` on one line and exits non-zero; the pipeline
writes the code and message into ``<name>.err``.
"""

from __future__ import annotations

from typing import Any


def extra_hint(extra: str) -> str:
    """How to install an optional extra: from a clone (the package is not published on a package index)."""
    return f"in a clone of the matter-pki repository: pip install '.[{extra}]'"


class MatterPkiError(Exception):
    """Root of all matter-pki errors: a stable code, a one-line message and context fields."""

    #: Exit status the CLI uses for this error class.
    exit_code = 1
    #: Whether retrying the same operation later may succeed (throttling, timeouts, 5xx).
    retryable = False

    def __init__(self, code: str, message: str, **context: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"

    def one_line(self) -> str:
        """The CLI form: ``error[code]: message`` without newlines."""
        text = " ".join(self.message.split())
        return f"error[{self.code}]: {text}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by ``.err`` files and ``--format json``."""
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        for key, value in self.context.items():
            data[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        return data


class InputError(MatterPkiError):
    """Unreadable, oversized or malformed input given by a user (files, options, names)."""

    exit_code = 2


class CsrError(MatterPkiError):
    """A device CSR was refused by intake (``csr.*``)."""


class CertificateError(MatterPkiError):
    """A certificate could not be parsed or is not acceptable (``cert.*``)."""


class ProfileError(MatterPkiError):
    """A profile parameter breaks a Matter rule (``profile.*``): bad VID/PID, validity, serial."""


class IssuanceError(MatterPkiError):
    """Issuance refused after intake (``issue.*``): PID not allowed, issued cert failed validation."""


class ConfigError(MatterPkiError):
    """Missing or inconsistent configuration, PKI home, or key store (``config.*``)."""

    exit_code = 2


class KeyStoreError(MatterPkiError):
    """Key storage failure: wrong passphrase, missing key, HSM error (``key.*``)."""


class StorageError(MatterPkiError):
    """Reading or writing the inbox/bucket failed (``storage.*``)."""


class BackendError(MatterPkiError):
    """A signing backend failed permanently (``backend.*``)."""


class TransientError(BackendError):
    """A backend or storage call failed in a way that a retry may fix."""

    retryable = True


class AuditError(MatterPkiError):
    """The audit log is unreadable or fails verification (``audit.*``)."""


class ServiceError(MatterPkiError):
    """The DAC signing service refused a request or cannot serve (``serve.*``)."""


class OperatorError(BackendError):
    """A backend refused for a reason only an operator can fix (quota, CA state, settings); never a per-request answer."""


class LedgerError(MatterPkiError):
    """The issuance ledger is missing, older than its audit log, altered or of an old format (``ledger.*``)."""
