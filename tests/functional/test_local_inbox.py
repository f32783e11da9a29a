"""``matter-pki inbox run``: layout, idempotency and path tricks."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import TYPE_CHECKING

from matter_pki.local.home import PkiHome
from tests.unit.test_local_fixtures import BAD_CSRS, cli_env, good_csr, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path


def _run(inbox: Path, home: Path) -> dict[str, object]:
    result = run_cli(["inbox", "run", "--dir", str(inbox), "--format", "json"], cli_env(home))
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_inbox_answers_every_csr_once_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    # GIVEN an inbox with good and bad CSRs for a product-scoped PAI and a shared PAI
    make_pki(tmp_path / "home", pid=0x8000)
    run_cli(["pai", "create", "--id", "shared"], cli_env(tmp_path / "home"))
    inbox = tmp_path / "inbox"
    write_csrs(inbox / "pai-1" / "8000", 5)
    write_csrs(inbox / "shared" / "8001", 3)
    (inbox / "pai-1" / "8000" / "rsa.csr").write_bytes(BAD_CSRS["rsa"][0]())
    write_csrs(inbox / "pai-1" / "8001", 2)  # a PID the product-scoped PAI may not certify
    # WHEN the inbox runs
    report = _run(inbox, tmp_path / "home")
    # THEN every CSR has exactly one answer: .pem for good ones, .err (with code) otherwise
    assert report["counts"] == {"issued": 8, "reused": 0, "skipped": 0, "refused": 3}
    for csr in inbox.rglob("*.csr"):
        answers = [p for p in (csr.with_suffix(".pem"), csr.with_suffix(".err")) if p.exists()]
        assert len(answers) == 1, csr
    assert json.loads((inbox / "pai-1" / "8000" / "rsa.err").read_text())["code"] == "csr.key_not_ec"
    err = json.loads((inbox / "pai-1" / "8001" / "dev-0000.err").read_text())
    assert err["code"] == "profile.pid_not_allowed" and err["csr_key"] == "pai-1/8001/dev-0000.csr"
    # AND a second run issues nothing and rewrites nothing
    before = _snapshot(inbox)
    again = _run(inbox, tmp_path / "home")
    assert again["counts"] == {"issued": 0, "reused": 0, "skipped": 11, "refused": 0}
    assert _snapshot(inbox) == before
    db = sqlite3.connect(PkiHome(tmp_path / "home").ledger_path)
    assert db.execute("SELECT COUNT(*) FROM certificates WHERE kind='dac'").fetchone() == (8,)


def test_new_csrs_dropped_later_are_picked_up(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    inbox = tmp_path / "inbox"
    write_csrs(inbox / "pai-1" / "8000", 2, prefix="a-")
    _run(inbox, tmp_path / "home")
    write_csrs(inbox / "pai-1" / "8000", 3, prefix="b-")
    report = _run(inbox, tmp_path / "home")
    assert report["counts"] == {"issued": 3, "reused": 0, "skipped": 2, "refused": 0}


def test_symlinked_csr_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    # GIVEN a CSR in the inbox that is a symlink to a CSR outside it
    make_pki(tmp_path / "home")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.csr").write_bytes(good_csr())
    folder = tmp_path / "inbox" / "pai-1" / "8000"
    folder.mkdir(parents=True)
    (folder / "evil.csr").symlink_to(outside / "victim.csr")
    # WHEN the inbox runs
    report = _run(tmp_path / "inbox", tmp_path / "home")
    # THEN the link is refused with storage.symlink, no DAC is made, and nothing is written outside
    assert report["counts"] == {"issued": 0, "reused": 0, "skipped": 0, "refused": 1}
    assert json.loads((folder / "evil.err").read_text())["code"] == "storage.symlink"
    assert not (folder / "evil.pem").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["victim.csr"]


def test_symlinked_folders_are_not_followed(tmp_path: Path) -> None:
    # GIVEN a PAI folder and a PID folder that are symlinks to folders outside the inbox
    make_pki(tmp_path / "home")
    outside = tmp_path / "outside"
    write_csrs(outside / "8000", 2)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "pai-1").symlink_to(outside)
    other = tmp_path / "inbox2"
    (other / "pai-1").mkdir(parents=True)
    (other / "pai-1" / "8000").symlink_to(outside / "8000")
    before = _snapshot(outside)
    # WHEN both inboxes run
    first = _run(inbox, tmp_path / "home")
    second = _run(other, tmp_path / "home")
    # THEN nothing is issued, the skips are reported, and nothing outside changed
    assert first["counts"]["issued"] == second["counts"]["issued"] == 0  # type: ignore[index]
    assert any("symlink" in n for n in first["notes"])  # type: ignore[attr-defined]
    assert any("symlink" in n for n in second["notes"])  # type: ignore[attr-defined]
    assert _snapshot(outside) == before


def test_odd_names_and_unknown_folders_are_left_alone(tmp_path: Path) -> None:
    # GIVEN names that do not fit <PAI id>/<PID>/<name>.csr
    make_pki(tmp_path / "home")
    inbox = tmp_path / "inbox"
    folder = inbox / "pai-1" / "8000"
    folder.mkdir(parents=True)
    for name in (".hidden.csr", "has space.csr", "-dash.csr", "x" * 130 + ".csr"):
        (folder / name).write_bytes(good_csr())
    (inbox / "pai-1" / "80000").mkdir()  # not 4 hex digits
    (inbox / "pai-1" / "80000" / "a.csr").write_bytes(good_csr())
    (inbox / "pai-9" / "8000").mkdir(parents=True)  # no such PAI
    (inbox / "pai-9" / "8000" / "a.csr").write_bytes(good_csr())
    (inbox / "paa" / "8000").mkdir(parents=True)  # the PAA never issues DACs
    (inbox / "paa" / "8000" / "a.csr").write_bytes(good_csr())
    (inbox / "top.csr").write_bytes(good_csr())
    before = _snapshot(inbox)
    # WHEN the inbox runs
    report = _run(inbox, tmp_path / "home")
    # THEN nothing is issued or written, and each case is reported
    assert report["counts"] == {"issued": 0, "reused": 0, "skipped": 0, "refused": 0}
    assert _snapshot(inbox) == before
    notes = " | ".join(report["notes"])  # type: ignore[arg-type]
    for fragment in ("has space.csr", "-dash.csr", "80000", "no PAI 'pai-9'", "no PAI 'paa'", "top.csr"):
        assert fragment in notes, fragment


def test_a_second_concurrent_run_on_the_same_inbox_is_refused(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "home")
    inbox = tmp_path / "inbox"
    write_csrs(inbox / "pai-1" / "8000", 1)
    import hashlib

    name = "inbox-" + hashlib.sha256(os.path.realpath(inbox).encode()).hexdigest()[:16]
    with pki.home.try_lock(name):
        busy = run_cli(["inbox", "run", "--dir", str(inbox)], cli_env(tmp_path / "home"))
    assert busy.exit_code == 3 and "error[storage.busy]" in busy.stderr  # retry later
    assert not (inbox / "pai-1" / "8000" / "dev-0000.pem").exists()
