"""Revocation that stays revoked, through the real CLI: revoked keys and PAIs on every issuing path, undone ledgers, CRL numbers."""

from __future__ import annotations

import json
import shutil
import sqlite3
from typing import TYPE_CHECKING

from cryptography import x509

from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home


def _issue_one(home: Home, folder: Path, data: bytes, out: Path, pai: str = "pai-1", pid: str = "8000") -> tuple[int, dict]:
    run = home.run("dac", "issue", "--pai", pai, "--pid", pid, "--csr", str(write(folder, "dev.csr", data)),
                   "--out", str(out), "--format", "json")
    assert run.out.strip(), run.err
    return run.code, json.loads(run.out)["results"][0]


def _pai_serial(home: Home, pai: str = "pai-1") -> str:
    return format(x509.load_pem_x509_certificate((home.path / "ca" / pai / "cert.pem").read_bytes()).serial_number, "X")


def _crl_number(home: Home, ca: str) -> int:
    crl = x509.load_der_x509_crl((home.path / "crl" / f"{ca}.crl").read_bytes())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def _copy_ledger(home: Home, to: Path) -> None:
    to.mkdir()
    for f in home.path.glob("ledger.sqlite*"):
        shutil.copy2(f, to / f.name)


def _restore_ledger(home: Home, frm: Path) -> None:
    for f in home.path.glob("ledger.sqlite*"):
        f.unlink()
    for f in frm.iterdir():
        shutil.copy2(f, home.path / f.name)


def test_a_key_revoked_for_compromise_never_gets_a_dac_again_on_any_pai(home: Home, tmp_path: Path) -> None:
    """GIVEN a DAC revoked keyCompromise WHEN the key comes back (new CSR; same PAI; another PAI with --reissue-reason;
    through the inbox) THEN issue.key_revoked each time, exit 1, no .pem."""
    k = crafted.key()
    code, first = _issue_one(home, tmp_path / "a", crafted.csr(k), tmp_path / "out-a")
    assert code == 0
    run = home.run("revoke", "--serial", first["serial"], "--reason", "keyCompromise")
    assert run.code == 0, run.err
    for i, (pai, pid, extra) in enumerate((("pai-1", "8000", ()), ("pai-2", "8001", ("--reissue-reason", "why not")))):
        out = tmp_path / f"out-{i}"
        folder = tmp_path / f"c{i}"
        run = home.run("dac", "issue", "--pai", pai, "--pid", pid, "--csr", str(write(folder, "dev.csr", crafted.csr(k, cn=str(i)))),
                       "--out", str(out), "--format", "json", *extra)
        assert run.code == 1, run
        assert json.loads(run.out)["results"][0]["code"] == "issue.key_revoked"
        assert not (out / "dev.pem").exists()
    inbox = tmp_path / "inbox"
    write(inbox / "pai-1" / "8000", "dev.csr", crafted.flip_s(crafted.csr(k, cn="inbox")))
    run = home.run("inbox", "run", "--dir", str(inbox))
    assert not (inbox / "pai-1" / "8000" / "dev.pem").exists()
    err = json.loads((inbox / "pai-1" / "8000" / "dev.err").read_text())
    assert err["code"] == "issue.key_revoked", (err, run)


def test_a_pai_revoked_by_the_paa_issues_nothing_on_any_path(home: Home, tmp_path: Path) -> None:
    """GIVEN pai-1 revoked with `revoke --paa` and the PAA CRL published WHEN dac issue, inbox run, or a
    re-delivery of an already certified key runs THEN issue.ca_revoked and no new DAC in the ledger."""
    k_old = crafted.key()
    assert _issue_one(home, tmp_path / "a", crafted.csr(k_old), tmp_path / "out-a")[0] == 0
    run = home.run("revoke", "--paa", "--serial", _pai_serial(home), "--reason", "cACompromise")
    assert run.code == 0, run.err
    assert home.run("crl", "publish", "--paa").code == 0
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(write(tmp_path / "b", "new.csr", crafted.csr(crafted.key()))),
                   "--out", str(tmp_path / "out-b"))
    assert run.code != 0
    assert "issue.ca_revoked" in run.err + run.out
    assert not (tmp_path / "out-b" / "new.pem").exists()
    inbox = tmp_path / "inbox"
    write(inbox / "pai-1" / "8000", "new.csr", crafted.csr(crafted.key()))
    write(inbox / "pai-3" / "8001", "ok.csr", crafted.csr(crafted.key()))
    run = home.run("inbox", "run", "--dir", str(inbox))
    assert not (inbox / "pai-1" / "8000" / "new.pem").exists()
    assert json.loads((inbox / "pai-1" / "8000" / "new.err").read_text())["code"] == "issue.ca_revoked"
    assert (inbox / "pai-3" / "8001" / "ok.pem").exists(), run.err
    listed = json.loads(home.run("dac", "list", "--pai", "pai-1", "--format", "json").out)
    assert len(listed) == 1


def test_a_revocation_undone_by_restoring_an_older_ledger_is_refused(home: Home, tmp_path: Path) -> None:
    """GIVEN a ledger copied before a keyCompromise revocation WHEN it is put back THEN every state-changing command
    refuses (ledger.rollback, exit 1) and the revoked key gets no DAC; `ledger verify` exits 1."""
    k = crafted.key()
    code, first = _issue_one(home, tmp_path / "a", crafted.csr(k), tmp_path / "out-a")
    assert code == 0
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    _copy_ledger(home, tmp_path / "before")
    assert home.run("revoke", "--serial", first["serial"], "--reason", "keyCompromise").code == 0
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    assert _crl_number(home, "pai-1") == 2
    _restore_ledger(home, tmp_path / "before")
    run = home.run("dac", "issue", "--pai", "pai-2", "--pid", "8001", "--reissue-reason", "x", "--csr",
                   str(write(tmp_path / "b", "dev.csr", crafted.csr(k, cn="again"))), "--out", str(tmp_path / "out-b"))
    assert run.code == 1 and run.error_code == "ledger.rollback", run
    assert not (tmp_path / "out-b" / "dev.pem").exists()
    run = home.run("crl", "publish", "--pai", "pai-1")
    assert run.code == 1 and run.error_code == "ledger.rollback", run
    assert _crl_number(home, "pai-1") == 2
    assert home.run("ledger", "verify").code == 1
    assert home.run("audit", "verify").code == 1


def test_a_deleted_or_emptied_ledger_is_refused_not_recreated(home: Home, tmp_path: Path) -> None:
    """GIVEN a home with a DAC WHEN the ledger is deleted, or replaced by an empty file THEN dac issue refuses
    ledger.missing (exit 1) and issues nothing; no ledger is silently re-created."""
    k = crafted.key()
    assert _issue_one(home, tmp_path / "a", crafted.csr(k), tmp_path / "out-a")[0] == 0
    for how in ("delete", "empty"):
        for f in home.path.glob("ledger.sqlite*"):
            f.unlink()
        if how == "empty":
            (home.path / "ledger.sqlite").write_bytes(b"")
        run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(write(tmp_path / how, "dev.csr", crafted.csr(k, cn=how))),
                       "--out", str(tmp_path / f"out-{how}"))
        assert run.code == 1 and run.error_code == "ledger.missing", (how, run)
        assert not (tmp_path / f"out-{how}" / "dev.pem").exists()
        run = home.run("revoke", "--serial", "01", "--reason", "superseded")
        assert run.code == 1 and run.error_code == "ledger.missing", (how, run)
        assert how == "empty" or not (home.path / "ledger.sqlite").exists()


def test_a_hand_edited_ledger_row_is_refused(home: Home, tmp_path: Path) -> None:
    """GIVEN a revoked DAC WHEN the revocation row is deleted with sqlite3, or the key id of the DAC is changed
    THEN ledger.corrupt before anything is issued; the key gets no second DAC."""
    k = crafted.key()
    code, first = _issue_one(home, tmp_path / "a", crafted.csr(k), tmp_path / "out-a")
    assert code == 0
    assert home.run("revoke", "--serial", first["serial"], "--reason", "keyCompromise").code == 0
    pristine = tmp_path / "pristine"
    _copy_ledger(home, pristine)
    tables = [r[0] for r in sqlite3.connect(pristine / "ledger.sqlite").execute("select name from sqlite_master where type='table'")]
    assert "revocations" in tables, tables
    edits = {
        "unrevoke": "DELETE FROM revocations",
        "rekey": "UPDATE certificates SET key_id = 'ff' || substr(key_id, 3) WHERE kind = 'dac'",
    }
    for name, sql in edits.items():
        _restore_ledger(home, pristine)
        db = sqlite3.connect(home.path / "ledger.sqlite")
        db.execute("PRAGMA recursive_triggers = OFF")
        for trigger in [r[0] for r in db.execute("select name from sqlite_master where type='trigger'")]:
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute(sql)
        db.commit()
        db.close()
        out = tmp_path / f"out-{name}"
        run = home.run("dac", "issue", "--pai", "pai-2", "--pid", "8001", "--reissue-reason", "x",
                       "--csr", str(write(tmp_path / name, "dev.csr", crafted.csr(k, cn=name))), "--out", str(out))
        assert run.code == 1 and run.error_code == "ledger.corrupt", (name, run)
        assert not (out / "dev.pem").exists()
        assert home.run("ledger", "verify").code == 1


def test_crl_numbers_only_grow_and_revoked_serials_stay_listed(home: Home, tmp_path: Path) -> None:
    """GIVEN two revoked DACs WHEN the CRL is published three times (also after a failed publish) THEN numbers
    1, 2, 3 and every CRL lists both serials with its reason."""
    serials = []
    for i in range(2):
        code, result = _issue_one(home, tmp_path / f"c{i}", crafted.csr(crafted.key()), tmp_path / f"out{i}")
        assert code == 0
        serials.append(int(result["serial"], 16))
        assert home.run("revoke", "--serial", result["serial"], "--reason", "keyCompromise").code == 0
    numbers = []
    for _ in range(2):
        assert home.run("crl", "publish", "--pai", "pai-1").code == 0
        numbers.append(_crl_number(home, "pai-1"))
    bad = home.run("crl", "publish", "--pai", "pai-1", "--next-update-days", "1000000000")
    assert bad.code == 2 and bad.error_code == "input.next_update", bad
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    numbers.append(_crl_number(home, "pai-1"))
    assert numbers == sorted(set(numbers)) and len(numbers) == 3
    crl = x509.load_der_x509_crl((home.path / "crl" / "pai-1.crl").read_bytes())
    assert sorted(r.serial_number for r in crl) == sorted(serials)


def test_what_a_commissioner_answers_after_revocations_published_by_the_cli(home: Home, tmp_path: Path) -> None:
    """GIVEN two DACs of pai-1, one revoked, the PAI CRL published WHEN `revocation check` runs on each THEN 302 (exit 1)
    for the revoked one and 0 (exit 0) for the other; after the PAI is revoked too: 208 and 202."""
    outs = []
    for i in range(2):
        code, result = _issue_one(home, tmp_path / f"c{i}", crafted.csr(crafted.key()), tmp_path / f"out{i}")
        assert code == 0
        outs.append((tmp_path / f"out{i}", result["serial"]))
    assert home.run("revoke", "--serial", outs[0][1], "--reason", "keyCompromise").code == 0
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0

    def check(out: Path, sets: list[str]) -> tuple[int, str]:
        merged = tmp_path / "set.json"
        merged.write_text(json.dumps([e for name in sets for e in json.loads((home.path / "crl" / f"{name}.revocation-set.json").read_text())]))
        run = home.run("revocation", "check", "--revocation-set", str(merged), "--dac", str(out / "dev.pem"),
                       "--pai", str(out / "pai.pem"), "--paa", str(out / "paa.pem"), "--format", "json")
        return run.code, run.out

    code, text = check(outs[0][0], ["pai-1"])
    assert code == 1 and "302" in text, text
    code, text = check(outs[1][0], ["pai-1"])
    assert code == 0, text
    assert home.run("revoke", "--paa", "--serial", _pai_serial(home), "--reason", "cACompromise").code == 0
    assert home.run("crl", "publish", "--paa").code == 0
    code, text = check(outs[0][0], ["pai-1", "paa"])
    assert code == 1 and "208" in text, text
    code, text = check(outs[1][0], ["pai-1", "paa"])
    assert code == 1 and "202" in text, text


def test_a_serial_written_another_way_revokes_that_certificate_and_nothing_else(home: Home, tmp_path: Path) -> None:
    """GIVEN two DACs WHEN one is revoked by its serial in lower case with leading zeros (and again in upper case)
    THEN the CRL lists exactly that serial, the second revoke says already revoked (exit 0), the other DAC stays valid."""
    results = []
    for i in range(2):
        code, result = _issue_one(home, tmp_path / f"c{i}", crafted.csr(crafted.key()), tmp_path / f"out{i}")
        assert code == 0
        results.append(result["serial"])
    odd = "00" + results[0].lower()
    run = home.run("revoke", "--serial", odd, "--reason", "keyCompromise")
    assert run.code == 0, run
    again = home.run("revoke", "--serial", results[0], "--reason", "keyCompromise")
    assert again.code == 0 and "already" in again.out + again.err, again
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    crl = x509.load_der_x509_crl((home.path / "crl" / "pai-1.crl").read_bytes())
    assert [r.serial_number for r in crl] == [int(results[0], 16)]
    listed = {d["serial"]: d["status"] for d in json.loads(home.run("dac", "list", "--format", "json").out)}
    assert listed == {results[0]: "revoked", results[1]: "issued"}


def test_a_pai_is_revoked_only_when_the_operator_says_paa(home: Home, tmp_path: Path) -> None:
    """GIVEN pai-1's serial WHEN `revoke --serial` runs without --paa (as for a DAC) THEN input.revoke_scope, exit 2,
    and pai-1 still issues; with --paa it is revoked."""
    run = home.run("revoke", "--serial", _pai_serial(home), "--reason", "keyCompromise")
    assert run.code == 2 and run.error_code == "input.revoke_scope", run
    code, _ = _issue_one(home, tmp_path / "a", crafted.csr(crafted.key()), tmp_path / "out-a")
    assert code == 0
    assert home.run("revoke", "--paa", "--serial", _pai_serial(home), "--reason", "keyCompromise").code == 0
    assert json.loads(home.run("pai", "list", "--format", "json").out)[0]["revoked"] is True


def test_a_rerun_after_a_revocation_no_longer_presents_the_revoked_dac_as_an_answer(home: Home, tmp_path: Path) -> None:
    """GIVEN a folder of two answered CSRs WHEN one DAC is revoked keyCompromise and the same `dac issue` runs again
    THEN that CSR is answered issue.key_revoked (.err, no .pem; exit 1) exactly as in a fresh folder; the other stays."""
    folder = tmp_path / "csrs"
    for i in range(2):
        write(folder, f"d{i}.csr", crafted.csr(crafted.key()))
    args = ("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--format", "json")
    first = home.run(*args, "--out", str(tmp_path / "out"))
    assert first.code == 0, first
    serial = {r["name"]: r["serial"] for r in json.loads(first.out)["results"]}["d0"]
    assert home.run("revoke", "--serial", serial, "--reason", "keyCompromise").code == 0
    for out in (tmp_path / "out", tmp_path / "fresh"):
        run = home.run(*args, "--out", str(out))
        assert run.code == 1, (out, run)
        assert not (out / "d0.pem").exists(), out
        assert json.loads((out / "d0.err").read_text())["code"] == "issue.key_revoked"
        assert (out / "d1.pem").exists() and not (out / "d1.err").exists()
