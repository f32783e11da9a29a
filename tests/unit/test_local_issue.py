"""``matter_pki.local.issue``: the in-memory issuing API, the factory bundle, answers re-checked on re-runs."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from matter_pki.audit import verify_log
from matter_pki.csr import load_device_csr
from matter_pki.errors import InputError
from matter_pki.local.issue import DacIssuer, Outcome, der_to_pem, issue_files, pem_to_der
from tests.unit.test_local_fixtures import BAD_CSRS, REPO, good_csr, make_pki, write_csrs

if TYPE_CHECKING:
    from pathlib import Path


def test_in_memory_csrs_get_per_csr_outcomes_with_the_der(tmp_path: Path) -> None:
    # GIVEN an issuer opened once (keys loaded once), as a long-running server would
    pki = make_pki(tmp_path / "home")
    good, twin = good_csr(), good_csr()
    with DacIssuer.open(pki.home, pai_id=pki.pai_id, secrets=pki.secrets) as issuer:
        # WHEN it is called twice with CSRs held in memory
        first = {o.name: o for o in issuer.issue_csrs([("a", good), ("bad", BAD_CSRS["p384"][0]()), ("b", twin)])}
        second = {o.name: o for o in issuer.issue_csrs([("a-again", good)])}
    # THEN every CSR has one outcome: a DAC (DER, serial) or a code; the same key again gets the same DAC
    assert (first["a"].status, first["b"].status, first["bad"].status) == ("issued", "issued", "refused")
    assert first["bad"].code == "csr.key_curve" and first["bad"].der is None
    for o in (first["a"], first["b"]):
        cert = x509.load_der_x509_certificate(o.der or b"")
        assert f"{cert.serial_number:X}".zfill(len(o.serial or "")) == o.serial
    assert (second["a-again"].status, second["a-again"].der) == ("reused", first["a"].der)
    # AND the audit log announced each DAC once
    assert verify_log(tmp_path / "home" / "audit").ok
    log = (tmp_path / "home" / "audit" / "audit.log").read_text()
    assert log.count('"event":"dac.issued"') == 2


def test_the_bundle_lists_every_dac_of_the_batch(tmp_path: Path) -> None:
    # GIVEN 5 CSRs, one refused
    pki = make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 4)
    (tmp_path / "csrs" / "bad.csr").write_bytes(BAD_CSRS["rsa"][0]())
    # WHEN issued with a bundle
    report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                         secrets=pki.secrets, now=datetime.now(UTC), bundle="line-7")
    # THEN line-7.csv and line-7.jsonl list the four DACs: name, serial, VID, PID, PEM, DER hex, CSR digest
    assert report.totals.bundle == ["line-7.csv", "line-7.jsonl"]
    rows = list(csv.DictReader((tmp_path / "out" / "line-7.csv").open()))
    lines = [json.loads(x) for x in (tmp_path / "out" / "line-7.jsonl").read_text().splitlines()]
    assert rows == lines and sorted(r["name"] for r in rows) == ["dev-0000", "dev-0001", "dev-0002", "dev-0003"]
    for row in rows:
        pem = (tmp_path / "out" / f"{row['name']}.pem").read_bytes()
        assert row["dac_pem"].encode() == pem and bytes.fromhex(row["dac_der_hex"]) == pem_to_der(pem)
        assert (row["vid"], row["pid"]) == ("FFF1", "8000")
        assert row["csr_sha256"] == load_device_csr((tmp_path / "csrs" / f"{row['name']}.csr").read_bytes()).sha256
        cert = x509.load_der_x509_certificate(bytes.fromhex(row["dac_der_hex"]))
        assert int(row["serial"], 16) == cert.serial_number
    # AND a re-run with the same bundle name refuses to replace it; a new name lists the same DACs (already answered)
    with pytest.raises(InputError) as err:
        issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                    secrets=pki.secrets, now=datetime.now(UTC), bundle="line-7")
    assert err.value.code == "input.exists"
    issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                secrets=pki.secrets, now=datetime.now(UTC), bundle="line-7b")
    assert (tmp_path / "out" / "line-7b.jsonl").read_text() == (tmp_path / "out" / "line-7.jsonl").read_text()
    assert not [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_pem_round_trip_is_exact() -> None:
    der = hashlib.sha256(b"x").digest() * 20
    assert pem_to_der(der_to_pem(der)) == der
    assert pem_to_der(der_to_pem(der)[:-5]) is None
    assert pem_to_der(der_to_pem(der).replace(b"\n", b"\r\n")) is None


def test_outcomes_never_accumulate(tmp_path: Path) -> None:
    # GIVEN 30 refusals: the report keeps counts and the first 20, not one entry per CSR
    pki = make_pki(tmp_path / "home")
    (tmp_path / "csrs").mkdir()
    for i in range(30):
        (tmp_path / "csrs" / f"bad-{i:02d}.csr").write_bytes(b"junk")
    seen: list[Outcome] = []
    report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                         secrets=pki.secrets, now=datetime.now(UTC), on_result=seen.append)
    assert report.count("refused") == 30 and len(report.refusals) == 20 and len(seen) == 30





def test_retry_refused_answers_a_refused_csr_again_and_replaces_its_err(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "home")
    (tmp_path / "csrs").mkdir()
    (tmp_path / "csrs" / "dev.csr").write_bytes(b"not yet a CSR")

    def run(**kw: object) -> dict[str, int]:
        report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                             secrets=pki.secrets, now=datetime.now(UTC), **kw)  # type: ignore[arg-type]
        return report.totals.counts

    assert run()["refused"] == 1
    (tmp_path / "csrs" / "dev.csr").write_bytes(good_csr())
    assert run()["skipped"] == 1  # a refusal is an answer
    assert run(retry_refused=True)["issued"] == 1
    assert sorted(p.name for p in (tmp_path / "out").glob("dev.*")) == ["dev.pem"]


def test_a_certificate_the_release_gate_withholds_is_recorded_announced_and_named_in_the_err(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a release gate that refuses every DAC (a broken signer, say), after it was signed
    from matter_pki import gate

    def refuse(self: gate.ReleaseGate, dac_der: bytes, *, public_point: bytes, at: object = None) -> int:
        serial = x509.load_der_x509_certificate(dac_der).serial_number
        raise gate.ReleaseRefused("issue.validation_failed", "refused for the test", serial=serial)

    pki = make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 2)
    monkeypatch.setattr(gate.ReleaseGate, "check", refuse)
    # WHEN the CSRs are issued
    report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                         secrets=pki.secrets, now=datetime.now(UTC))  # fmt: skip
    monkeypatch.undo()
    # THEN each CSR is refused with the gate's code and its .err names the withheld certificate's serial
    assert report.count("refused") == 2 and not list((tmp_path / "out").glob("dev-*.pem"))
    errs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out").glob("dev-*.err")}
    assert {e["code"] for e in errs.values()} == {"issue.validation_failed"}
    named = {e["certificate_serial"] for e in errs.values()}
    # AND every withheld serial (the two refused DACs, plus the fast path's probe) is in the ledger ...
    from matter_pki.local.ledger import Ledger

    with Ledger(tmp_path / "home" / "ledger.sqlite") as ledger:
        rows = ledger.db.execute("SELECT serial, code FROM withheld WHERE ca = 'pai-1'").fetchall()
        txn = ledger.begin()
        taken = txn.serials_taken("pai-1", [serial for serial, _code in rows])
        ledger.rollback()
    withheld = {serial: code for serial, code in rows}
    assert named <= set(withheld) and {withheld[s] for s in named} == {"issue.validation_failed"}
    # ... never to be used again by the PAI ...
    assert taken == set(withheld)
    # ... and announced once each, in a log that verifies, with the ledger it vouches for
    records = [json.loads(line) for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    announced = [r["serial"] for r in records if r["event"] == "dac.withheld"]
    assert sorted(announced) == sorted(withheld)
    refused = [r for r in records if r["event"] == "dac.refused"]
    assert {r["certificate_serial"] for r in refused} == named
    from matter_pki.local.repair import rebuild_ledger, verify_home

    assert verify_home(pki.home).ok
    # AND a ledger rebuilt from the audit log keeps them
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / "home" / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    rebuild_ledger(pki.home, sources=[tmp_path / "out"], secrets=pki.secrets, reason="test")
    with Ledger(tmp_path / "home" / "ledger.sqlite") as ledger:
        assert dict(ledger.db.execute("SELECT serial, code FROM withheld WHERE ca = 'pai-1'").fetchall()) == withheld


def _ran_alone(request: pytest.FixtureRequest) -> bool:
    """True when this test was run again, alone, in a fresh interpreter (and passed there).

    The writer process and the fork of the signing workers need a process running one thread;
    earlier tests in this process may have left threads behind.
    """
    if threading.active_count() == 1:
        return False
    assert not os.environ.get("MATTER_PKI_TEST_ALONE"), "a fresh interpreter runs more than one thread"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", request.node.nodeid],
        cwd=REPO, env={**os.environ, "MATTER_PKI_TEST_ALONE": "1"}, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return True


def test_workers_fork_from_a_single_thread_and_every_answer_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if _ran_alone(request):
        return
    # GIVEN a folder with 40 CSRs answered by an earlier run and 300 new ones (more than one chunk)
    import multiprocessing

    from matter_pki import batch

    pki = make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 40)
    issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                secrets=pki.secrets, now=datetime.now(UTC))
    write_csrs(tmp_path / "csrs", 300, prefix="new-")
    forks: list[tuple[str | None, list[str]]] = []

    class Spy:
        @staticmethod
        def get_context(method: str | None = None) -> object:
            forks.append((method, [t.name for t in threading.enumerate()]))
            return multiprocessing.get_context(method)

    monkeypatch.setattr(batch, "multiprocessing", Spy)
    # WHEN issued with two workers and small groups (the earlier answers re-checked first)
    report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                         secrets=pki.secrets, now=datetime.now(UTC), jobs=2, group_size=32)
    # THEN the run started no thread before the workers: they are forked from a process running one thread
    assert forks == [("fork", ["MainThread"])]
    # AND every CSR has its DAC, each recorded and announced once
    assert (report.count("issued"), report.count("skipped")) == (300, 40)
    pems = sorted(p.name for p in (tmp_path / "out").glob("*.pem") if p.name not in ("pai.pem", "paa.pem"))
    assert len(pems) == 340
    assert verify_log(tmp_path / "home" / "audit").ok
    assert (tmp_path / "home" / "audit" / "audit.log").read_text().count('"event":"dac.issued"') == 340


def test_a_failed_barrier_stops_the_run_and_a_rerun_delivers_what_was_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if _ran_alone(request):
        return
    # GIVEN 200 CSRs and an output folder whose third barrier fails (it runs while the next group commits)
    from matter_pki.errors import StorageError
    from matter_pki.local import issue

    pki = make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 200)
    calls: list[int] = []
    real = issue.sync_filesystem

    def failing(fd: int) -> None:
        calls.append(fd)  # counted in the process that runs the barriers
        if len(calls) == 3:
            raise StorageError("storage.disk_full", "no space left")
        real(fd)

    monkeypatch.setattr(issue, "sync_filesystem", failing)
    reported: list[Outcome] = []
    # WHEN issued in groups of 16, 32, 64, 64, ...
    with pytest.raises(StorageError) as err:
        issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                    secrets=pki.secrets, now=datetime.now(UTC), group_size=64, on_result=reported.append)
    # THEN the run fails with the barrier's error once the fourth group is committed (never written)
    assert err.value.code == "storage.disk_full"
    announced = (tmp_path / "home" / "audit" / "audit.log").read_text().count('"event":"dac.issued"')
    assert announced == 16 + 32 + 64 + 64
    assert len(list((tmp_path / "out").glob("dev-*.pem"))) == 16 + 32 + 64
    # AND only the groups whose barrier returned were reported
    assert len(reported) == 16 + 32
    # AND a re-run delivers the recorded DACs (the same ones) and issues the rest
    monkeypatch.setattr(issue, "sync_filesystem", real)
    report = issue_files(pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out",
                         secrets=pki.secrets, now=datetime.now(UTC))
    assert (report.count("skipped"), report.count("reused"), report.count("issued")) == (112, 64, 24)
    assert len(list((tmp_path / "out").glob("dev-*.pem"))) == 200
    assert (tmp_path / "home" / "audit" / "audit.log").read_text().count('"event":"dac.issued"') == 200
