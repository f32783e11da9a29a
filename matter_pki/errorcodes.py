"""The error-code registry: every ``error[<code>]`` matter-pki can print, with its exit class.

``error_codes.csv`` (packaged) holds one row per code: the code, its exit class (``refused``,
``usage``, ``retry``, ``interrupted`` or ``internal``), the Matter specification / SDK / RFC clause
the rule comes from (``-`` when none applies) and a description. ``matter-pki codes`` prints it
next to the finding codes of ``codes.csv``; the CLI's exit status is derived from the exit class.

To add a code: raise it (``InputError("input.something", ...)``) and add its row here; a test scans
the source for every code raised and fails on one that is not registered.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matter_pki.errors import MatterPkiError


class ExitClass(StrEnum):
    """What kind of failure a code is, which decides the CLI exit status."""

    REFUSED = "refused"  # the input was examined and refused / found invalid
    USAGE = "usage"  # wrong command line, configuration or unreadable input: fix it and retry
    RETRY = "retry"  # busy, throttled, timed out: the same command may succeed later
    INTERRUPTED = "interrupted"  # stopped by the user; re-run to finish
    INTERNAL = "internal"  # a bug: details are logged


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One registered error code."""

    code: str
    exit: ExitClass
    clause: str
    description: str


@cache
def registry() -> dict[str, ErrorCode]:
    """Every registered error code, from the packaged ``error_codes.csv``."""
    text = resources.files("matter_pki").joinpath("error_codes.csv").read_text(encoding="utf-8")
    return {
        r["code"]: ErrorCode(r["code"], ExitClass(r["exit"]), r["clause"], r["description"])
        for r in csv.DictReader(io.StringIO(text))
    }


def exit_class(error: MatterPkiError) -> ExitClass:
    """The class of an error: retryable errors retry; else its code's row; an unregistered code goes by type.

    Retryability is decided where the error is raised (a backend's throttling/5xx classification), so
    a code raised both ways (``backend.logs``) is "retry later" only when that instance is retryable.
    """
    if error.retryable:
        return ExitClass.RETRY
    known = registry().get(error.code)
    if known is not None:
        return known.exit
    return ExitClass.USAGE if error.exit_code == 2 else ExitClass.REFUSED
