"""Findings: what lint and validation report, each with a stable code from ``codes.csv``."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import cache
from importlib import resources


class Role(StrEnum):
    """The three Matter attestation certificate types (the certificate lint roles)."""

    PAA = "paa"
    PAI = "pai"
    DAC = "dac"


class Severity(IntEnum):
    """MUST broken → ERROR; SHOULD broken → WARNING; FATAL means the input could not be read."""

    INFO = 10
    NOTICE = 20
    WARNING = 30
    ERROR = 40
    FATAL = 50


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """One row of the code catalogue."""

    code: str
    severity: Severity
    chip: str  # format | chain | vidpid | relation | -
    clause: str
    description: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule on one certificate."""

    severity: Severity
    code: str
    message: str
    cert_role: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"severity": self.severity.name, "code": self.code, "message": self.message, "role": self.cert_role}


@cache
def catalogue() -> dict[str, CodeInfo]:
    """Every finding code, loaded from the packaged ``codes.csv``."""
    text = resources.files("matter_pki").joinpath("codes.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text))
    return {
        r["code"]: CodeInfo(r["code"], Severity[r["severity"]], r["chip"], r["clause"], r["description"]) for r in rows
    }


def finding(code: str, message: str, role: str) -> Finding:
    """A finding whose severity comes from the catalogue (unknown codes are a programming error)."""
    return Finding(catalogue()[code].severity, code, message, role)
