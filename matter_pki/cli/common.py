"""Helpers shared by CLI commands: error reporting, safe file reading, output formats."""

from __future__ import annotations

import functools
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from matter_pki.errors import InputError, MatterPkiError

if TYPE_CHECKING:
    from collections.abc import Callable

F = TypeVar("F", bound="Callable[..., Any]")
MAX_FILE_BYTES = 1024 * 1024


def cli_errors(fn: F) -> F:
    """Turn a MatterPkiError into one line on stderr and the error's exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MatterPkiError as e:
            click.echo(e.one_line(), err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("error[cli.interrupted]: interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def read_file(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a regular file, refusing directories, devices and oversized input with a coded error."""
    p = Path(path)
    try:
        if not p.is_file():
            raise InputError("input.not_a_file", f"{what} {str(p)!r} is not a readable regular file")
        size = p.stat().st_size
        if size > max_bytes:
            raise InputError("input.too_large", f"{what} {str(p)!r} is {size} bytes, over {max_bytes}")
        return p.read_bytes()
    except OSError as e:
        raise InputError("input.unreadable", f"cannot read {what} {str(p)!r}: {e.strerror}") from e


def parse_time(value: str | None) -> datetime:
    """``--at`` values: ISO 8601 (``2026-01-01``, ``2026-01-01T12:00:00Z``) or ``now``; naive means UTC."""
    if value is None or value == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError("input.time", f"cannot read time {value!r}: use ISO 8601, e.g. 2026-01-01T00:00:00Z") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def emit_json(data: Any) -> None:
    """Pretty JSON on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
