"""Killing issuance mid-batch, then re-running: every CSR answered exactly once, nothing issued twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from matter_pki.audit import AuditLog
from matter_pki.csr import load_device_csr
from matter_pki.local import issue as issue_module
from matter_pki.local.issue import issue_files
from tests.unit.test_local_fixtures import BAD_CSRS, CLI_PREFIX, cli_env, good_csr, make_pki, run_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COUNT = 200


def _fill(folder: Path, count: int) -> dict[str, str | None]:
    """``count`` CSRs, every 10th one refused (P-384); returns name -> CSR sha256 (None when refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}
    for i in range(count):
        name = f"dev-{i:04d}"
        data = BAD_CSRS["p384"][0]() if i % 10 == 9 else good_csr()
        (folder / f"{name}.csr").write_bytes(data)
        expected[name] = None if i % 10 == 9 else load_device_csr(data).sha256
    return expected


@pytest.fixture
def process_groups() -> Iterator[list[int]]:
    """Process groups started by a test, SIGKILLed at its end (orphaned batch workers included)."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


def _kill_after_first_answers(
    args: list[str], env: dict[str, str], watch: Path, groups: list[int], minimum: int = 20
) -> int:
    """Start the CLI, SIGKILL it (its main process only) once ``minimum`` DACs are written; returns the answers then."""
    proc = subprocess.Popen(
        [*CLI_PREFIX, *args], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    groups.append(proc.pid)
    deadline = time.monotonic() + 120
    answered = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            answers = [p.suffix for p in watch.glob("dev-*")] if watch.is_dir() else []
            answered = sum(1 for a in answers if a in (".pem", ".err"))
            if answers.count(".pem") >= minimum:
                break
            time.sleep(0.002)
        finished_early = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not finished_early, f"the run ended before it could be killed: {proc.stderr.read().decode() if proc.stderr else ''}"
    return answered


def _check_exactly_once(folder: Path, expected: dict[str, str | None], home: Path, pai_id: str) -> None:
    """Exactly one answer per CSR; ledger: one DAC per CSR sha256, unique serials, same DER as the .pem."""
    ledger = sqlite3.connect(home / "ledger.sqlite")
    rows = ledger.execute("SELECT serial, csr_sha256, der FROM certificates WHERE kind='dac' AND ca=?", (pai_id,)).fetchall()
    by_sha = {sha: (serial, der) for serial, sha, der in rows}
    assert len(rows) == len(by_sha) == sum(1 for v in expected.values() if v), "one ledger row per CSR sha256"
    assert len({serial for serial, _sha, _der in rows}) == len(rows), "no duplicate serials"
    for name, sha in expected.items():
        pem, err = folder / f"{name}.pem", folder / f"{name}.err"
        assert pem.exists() != err.exists(), f"{name}: exactly one of .pem/.err"
        if sha is None:
            assert json.loads(err.read_text())["code"] == "csr.key_curve"
            continue
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        from cryptography.hazmat.primitives.serialization import Encoding

        assert cert.public_bytes(Encoding.DER) == by_sha[sha][1], f"{name}: .pem is the ledger's DAC"
    assert not [p.name for p in folder.iterdir() if ".tmp-" in p.name], "no temporary files left"
    issued = [r for r in AuditLog(home).records() if r.event == "dac.issued" and r.fields.get("ca") == pai_id]
    assert sorted(str(r.fields["serial"]) for r in issued) == sorted(serial for serial, _s, _d in rows), "announced once"


def test_killed_dac_issue_finishes_on_rerun(tmp_path: Path, process_groups: list[int]) -> None:
    # GIVEN 200 CSRs (every 10th refused)
    pki = make_pki(tmp_path / "home")
    expected = _fill(tmp_path / "csrs", COUNT)
    env = cli_env(tmp_path / "home")
    args = ["dac", "issue", "--pai", pki.pai_id, "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")]
    # WHEN the run is killed after its first answers, then run again
    answered = _kill_after_first_answers(args, env, tmp_path / "out", process_groups)
    assert answered < COUNT
    rerun = run_cli([*args, "--format", "json"], env)
    # THEN the re-run answers the rest, and each CSR has exactly one answer and at most one DAC
    counts = json.loads(rerun.stdout)["counts"]
    assert counts["skipped"] >= answered and sum(counts.values()) == COUNT
    _check_exactly_once(tmp_path / "out", expected, tmp_path / "home", pki.pai_id)


def test_killed_inbox_run_finishes_on_rerun(tmp_path: Path, process_groups: list[int]) -> None:
    pki = make_pki(tmp_path / "home")
    folder = tmp_path / "inbox" / pki.pai_id / "8000"
    expected = _fill(folder, COUNT)
    env = cli_env(tmp_path / "home")
    args = ["inbox", "run", "--dir", str(tmp_path / "inbox"), "--jobs", "2"]
    answered = _kill_after_first_answers(args, env, folder, process_groups)
    assert answered < COUNT
    rerun = run_cli([*args, "--format", "json"], env)
    counts = json.loads(rerun.stdout)["counts"]
    assert sum(counts.values()) == COUNT
    _check_exactly_once(folder, expected, tmp_path / "home", pki.pai_id)
    # A third run has nothing left to do
    assert json.loads(run_cli([*args, "--format", "json"], env).stdout)["counts"]["skipped"] == COUNT


class _Crash(BaseException):
    """Stands for the process dying at a chosen point."""


@pytest.mark.parametrize("crash_at", ["write_pem", "announce", "announce_whole_group"])
def test_crash_between_ledger_and_answer_reuses_the_recorded_dac(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    # GIVEN a run that dies after recording DACs in the ledger but before all were announced or written
    pki = make_pki(tmp_path / "home")
    expected = _fill(tmp_path / "csrs", 40)
    calls = {"n": 0}
    if crash_at == "write_pem":
        original = issue_module.OutputDir.write_pems

        def dying_write(self: issue_module.OutputDir, dacs: list[tuple[str, bytes]]) -> None:
            original(self, dacs[:5])  # the process dies after renaming five of the group's files
            raise _Crash

        monkeypatch.setattr(issue_module.OutputDir, "write_pems", dying_write)
    else:
        original_many = AuditLog.record_many
        keep = 5 if crash_at == "announce" else None

        def dying_record_many(self: AuditLog, records: list, **kw: object):  # type: ignore[no-untyped-def]
            if records and records[0][0] == "dac.issued":
                calls["n"] += 1
                if calls["n"] == 2:
                    # The second group: the process dies after appending five of its announcements
                    # (or all of them, before the ledger learnt their seqs).
                    original_many(self, records[:keep], **kw)  # type: ignore[arg-type]
                    raise _Crash
            return original_many(self, records, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(AuditLog, "record_many", dying_record_many)

    def run() -> issue_module.IssueReport:
        return issue_files(
            pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
            secrets=pki.secrets, now=datetime.now(UTC),
        )

    with pytest.raises(_Crash):
        run()
    recorded = sqlite3.connect(tmp_path / "home" / "ledger.sqlite").execute(
        "SELECT COUNT(*) FROM certificates WHERE kind='dac'"
    ).fetchone()[0]
    written = len(list((tmp_path / "out").glob("dev-*.pem")))
    assert recorded > written  # the crash window under test
    monkeypatch.undo()
    # WHEN the run is repeated
    report = run()
    # THEN the recorded-but-unwritten DACs are re-delivered from the ledger, not signed again
    assert report.count("reused") == recorded - written
    _check_exactly_once(tmp_path / "out", expected, tmp_path / "home", pki.pai_id)


def test_every_refusal_gets_its_coded_err_and_one_refused_record_across_windows(tmp_path: Path) -> None:
    # GIVEN every kind of bad CSR (envelope and cryptographic refusals) among good ones, one good CSR twice
    pki = make_pki(tmp_path / "home")
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    for kind, (make, _code) in BAD_CSRS.items():
        (csrs / f"bad-{kind}.csr").write_bytes(make())
    twice = good_csr()
    for name in ("dup-a", "dup-b"):
        (csrs / f"{name}.csr").write_bytes(twice)
    for i in range(40):
        (csrs / f"dev-{i:04d}.csr").write_bytes(good_csr())
    # WHEN issued with two workers (several batches in flight)
    report = issue_files(
        pki.home, pai_id=pki.pai_id, csr_path=csrs, out_dir=tmp_path / "out", secrets=pki.secrets,
        now=datetime.now(UTC), jobs=2,
    )
    # THEN each bad CSR has a .err with its code, and one dac.refused record with that code
    refused = {r.fields["csr"]: r.fields for r in AuditLog(tmp_path / "home").records() if r.event == "dac.refused"}
    for kind, (_make, code) in BAD_CSRS.items():
        err = json.loads((tmp_path / "out" / f"bad-{kind}.err").read_text())
        assert err["code"] == code and "csr_sha256" not in err
        assert refused[str(csrs / f"bad-{kind}.csr")]["code"] == code
    assert len(refused) == len(BAD_CSRS)
    # AND the duplicate CSR got one DAC, delivered to both names, recorded under load_device_csr's sha256
    assert (report.count("issued"), report.count("reused")) == (41, 1)
    assert (tmp_path / "out" / "dup-a.pem").read_bytes() == (tmp_path / "out" / "dup-b.pem").read_bytes()
    expected = {p.stem: load_device_csr(p.read_bytes()).sha256 for p in csrs.glob("de*.csr")}
    expected["dup-a"] = load_device_csr(twice).sha256
    _check_exactly_once(tmp_path / "out", expected, tmp_path / "home", pki.pai_id)
