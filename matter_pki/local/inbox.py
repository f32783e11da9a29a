"""The local CSR inbox: ``<dir>/<PAI id>/<PID>/<name>.csr`` answered by ``<name>.pem`` or ``<name>.err``.

Same key layout as the cloud bucket (``layout.parse_csr_key(key, cloud=False)``). The walk never
follows a symlink: folders are opened relative to their parent's descriptor with ``O_NOFOLLOW``
and CSRs are read with ``O_NOFOLLOW`` too, so a symlinked folder is skipped and a symlinked CSR is
refused with ``storage.symlink``; nothing outside the inbox is read or written. Names with ``..``,
absolute paths or odd characters cannot come out of a directory listing, and anything that does not
match the layout is reported and left alone.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from matter_pki.errors import InputError, IssuanceError, MatterPkiError, ProfileError, StorageError
from matter_pki.layout import dumps_err, err_record, is_answer, parse_csr_key
from matter_pki.local.home import PAA_ID, PkiHome, is_ca_id
from matter_pki.local.issue import (
    CsrFiles,
    DacIssuer,
    Outcome,
    OutputDir,
    RunTotals,
    csr_filenames,
    err_code,
)
from matter_pki.local.ledger import iso
from matter_pki.local.state import CaState
from matter_pki.storage.local import open_dir, remove_stale_temps

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from matter_pki.local.keys import Secrets


@dataclass
class InboxGroup:
    """CSRs addressed to one PAI and PID (one output folder)."""

    ca: str
    pid_text: str
    dir_fd: int
    inputs: CsrFiles


@dataclass
class InboxReport:
    """Outcome of one ``inbox run``: counts, the first refusals, notes (nothing grows per CSR)."""

    totals: RunTotals = field(default_factory=RunTotals)
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many CSRs ended with this status."""
        return self.totals.counts.get(status, 0)

    @property
    def refusals(self) -> list[Outcome]:
        """The first refusals."""
        return self.totals.refusals


def _subdirs(parent_fd: int, notes: list[str], where: str) -> list[tuple[str, int]]:
    """Real sub-folders of an open folder, opened without following symlinks."""
    found: list[tuple[str, int]] = []
    with os.scandir(parent_fd) as entries:
        listing = sorted(entries, key=lambda e: e.name)
    for entry in listing:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            notes.append(f"skipped {where}{entry.name}: symlinked folders are not followed")
            continue
        if not entry.is_dir(follow_symlinks=False):
            if not is_answer(entry.name):
                notes.append(f"ignored {where}{entry.name}: not a <PAI id>/<PID>/ folder")
            continue
        try:
            found.append((entry.name, open_dir(entry.name, dir_fd=parent_fd, follow=False)))
        except StorageError as e:
            notes.append(f"skipped {where}{entry.name}: {e.message}")
    return found


def _describe(ca: str, pid_text: str) -> Callable[[str], tuple[str, str]]:
    prefix = f"{ca}/{pid_text}/"

    def describe(filename: str) -> tuple[str, str]:
        # The key was checked with parse_csr_key when the folder was scanned: the name is the file's without ".csr".
        return filename[:-4], prefix + filename

    return describe


def scan_inbox(root_fd: int, home: PkiHome, notes: list[str], groups: list[InboxGroup]) -> None:
    """Find every CSR in the inbox, grouped by PAI and PID (appended to ``groups``); skips are noted."""
    for ca, ca_fd in _subdirs(root_fd, notes, ""):
        try:
            if not is_ca_id(ca):
                notes.append(f"skipped {ca}/: not a PAI id (letters, digits, '-', '_'; 1-64, starting alphanumeric)")
                continue
            if ca == PAA_ID or not home.has_ca(ca):
                notes.append(f"skipped {ca}/: no PAI {ca!r} in this home")
                continue
            if home.ca_info(ca).state != "active":
                notes.append(f"skipped {ca}/: PAI {ca!r} has no certificate yet (pai import)")
                continue
            for pid_text, pid_fd in _subdirs(ca_fd, notes, f"{ca}/"):
                group = InboxGroup(ca, pid_text, pid_fd, CsrFiles(_describe(ca, pid_text), dir_fd=pid_fd))
                groups.append(group)
                remove_stale_temps(pid_fd)  # left by a killed run; the inbox lock is held
                for filename in csr_filenames(pid_fd, f"{ca}/{pid_text}/", notes):
                    key = f"{ca}/{pid_text}/{filename}"
                    try:
                        parse_csr_key(key, cloud=False)
                    except InputError as e:
                        notes.append(f"ignored {key}: {e.message}")
                        continue
                    group.inputs.filenames.append(filename)  # read when issued (memory stays bounded)
        finally:
            os.close(ca_fd)


def run_inbox(
    home: PkiHome,
    inbox: Path,
    *,
    secrets: Secrets,
    now: datetime,
    validity_days: int | None = None,
    common_name: str | None = "Matter DAC",
    jobs: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[Outcome], None] | None = None,
    retry_refused: bool = False,
) -> InboxReport:
    """Answer every unanswered CSR in the inbox; safe to re-run (and to re-run after a crash)."""
    home.require()
    home.refuse_inside(inbox, "the inbox")
    report = InboxReport()
    root_fd = open_dir(inbox)
    lock_name = "inbox-" + hashlib.sha256(os.path.realpath(inbox).encode()).hexdigest()[:16]
    request_id = uuid.uuid4().hex
    groups: list[InboxGroup] = []
    try:
        with home.try_lock(lock_name), CaState.open(home, secrets) as state:
            scan_inbox(root_fd, home, report.notes, groups)
            if on_start is not None:
                on_start(sum(len(g.inputs) for g in groups))
            for group in groups:
                if not group.inputs:
                    continue
                out = OutputDir(group.dir_fd, retry_refused=retry_refused)
                pid = int(group.pid_text, 16)
                try:
                    issuer = DacIssuer(
                        home, state, pai_id=group.ca, pid=pid, validity_days=validity_days, secrets=secrets,
                        now=now, request_id=request_id, common_name=common_name, jobs=jobs,
                    )
                except (ProfileError, IssuanceError) as e:
                    if e.code not in ("profile.pid_not_allowed", "issue.ca_revoked", "issue.ca_expired"):
                        raise
                    # Addressed to a PID this PAI may not certify, or to a PAI that issues nothing
                    # anymore: a permanent, per-request refusal; the rest of the inbox is answered.
                    report.totals.merge(_refuse_all(group, out, e, request_id, now, state, on_result))
                    continue
                report.totals.merge(issuer.run(group.inputs, out, on_result))
    finally:
        for group in groups:
            os.close(group.dir_fd)
        os.close(root_fd)
    return report


def _refuse_all(
    group: InboxGroup,
    out: OutputDir,
    error: MatterPkiError,
    request_id: str,
    now: datetime,
    state: CaState,
    on_result: Callable[[Outcome], None] | None,
) -> RunTotals:
    totals = RunTotals()
    source = iter(group.inputs)
    while block := list(islice(source, 256)):
        files: list[tuple[str, bytes]] = []
        records: list[tuple[str, dict[str, Any]]] = []
        outcomes: list[Outcome] = []
        for item in block:
            pem, err = out.answer(item.name)
            if pem:
                outcomes.append(Outcome(item.name, item.key, "skipped"))
                continue
            if (earlier := err_code(err)) is not None:
                outcomes.append(Outcome(item.name, item.key, "skipped", code=earlier))
                continue
            record = err_record(error, csr_key=item.key, request_id=request_id, time=iso(now))
            files.append((item.name, dumps_err(record)))
            records.append(("dac.refused", {"ca": group.ca, "csr": item.key, "code": error.code, "request_id": request_id}))
            outcomes.append(Outcome(item.name, item.key, "refused", code=error.code, message=error.message))
        state.record_many(records)
        out.write_errs(files)
        out.barrier()
        for outcome in outcomes:
            totals.add(outcome)
            if on_result is not None:
                on_result(outcome)
    return totals
