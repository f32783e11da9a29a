"""The progress bar of batch commands on a terminal: drawn per group, without a thread of its own."""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING

from matter_pki.cli import local as cli_local

if TYPE_CHECKING:
    import pytest


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_bar_starts_no_thread_so_workers_and_writer_are_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN stderr on a terminal (the issuing process forks its writer and workers only while single-threaded)
    err = _Terminal()
    monkeypatch.setattr("sys.stderr", err)
    before = threading.active_count()
    # WHEN a bar runs through 1,000 answers
    with cli_local._progress("DACs", True) as (start, advance):
        start(1000)
        threads_during = threading.active_count()
        for _ in range(4):
            advance(250)
    # THEN no thread was started for it, and it was drawn with the count
    assert threads_during == before
    assert "1000/1000" in err.getvalue()
