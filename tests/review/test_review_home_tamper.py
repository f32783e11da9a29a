"""Home files swapped, edited or replaced by hostile objects: a coded refusal, never a DAC that should not exist, never a hang."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from typing import TYPE_CHECKING

from cryptography import x509

from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home


def _issue(home: Home, tmp_path: Path, tag: str, *extra: str, pai: str = "pai-1") -> tuple[int, Path, str]:
    path = write(tmp_path / f"in-{tag}", "dev.csr", crafted.csr(crafted.key()))
    out = tmp_path / f"out-{tag}"
    run = home.run("dac", "issue", "--pai", pai, "--csr", str(path), "--out", str(out), *extra, timeout=60)
    assert "Traceback" not in run.err, run
    return run.code, out, run.err + run.out


def test_a_swapped_pai_certificate_never_yields_a_dac(home: Home, tmp_path: Path) -> None:
    """GIVEN ca/pai-1/cert.pem replaced by pai-3's certificate (another key, PID 8001) WHEN `dac issue --pai pai-1`
    runs (PID 8000, then 8001) THEN a coded refusal and no .pem: the DAC would not chain to the certificate shipped."""
    shutil.copy2(home.path / "ca" / "pai-3" / "cert.pem", home.path / "ca" / "pai-1" / "cert.pem")
    for pid in ("8000", "8001"):
        code, out, text = _issue(home, tmp_path, pid, "--pid", pid)
        assert code != 0 and "error[" in text or code == 1, text
        assert not (out / "dev.pem").exists(), (pid, text)


def test_a_widened_pid_in_ca_json_never_yields_a_dac_for_another_product(home: Home, tmp_path: Path) -> None:
    """GIVEN ca/pai-1/ca.json edited to say PID 8001 (the certificate says 8000) WHEN `dac issue --pid 8001` runs
    THEN no DAC for 8001 leaves the CA (coded refusal)."""
    info_path = home.path / "ca" / "pai-1" / "ca.json"
    info = json.loads(info_path.read_text())
    info["pid"] = 0x8001
    info_path.write_text(json.dumps(info))
    code, out, text = _issue(home, tmp_path, "w", "--pid", "8001")
    assert code != 0, text
    assert not (out / "dev.pem").exists()
    info["pid"] = None
    info_path.write_text(json.dumps(info))
    code, out, text = _issue(home, tmp_path, "n", "--pid", "8001")
    assert code != 0 and not (out / "dev.pem").exists(), text


def test_a_ledger_replaced_by_garbage_a_fifo_or_a_symlink_is_refused_without_hanging(home: Home, tmp_path: Path) -> None:
    """GIVEN ledger.sqlite replaced by random bytes, a FIFO, a symlink to /dev/zero or a folder WHEN `dac issue` runs
    THEN it ends within the timeout with a coded ledger.* / storage.* error and no .pem."""
    ledger = home.path / "ledger.sqlite"
    for f in home.path.glob("ledger.sqlite-*"):
        f.unlink()
    for kind in ("garbage", "fifo", "zero", "folder"):
        if ledger.is_dir() and not ledger.is_symlink():
            ledger.rmdir()
        elif ledger.exists() or ledger.is_symlink():
            ledger.unlink()
        if kind == "garbage":
            ledger.write_bytes(b"SQLite format 3\x00" + os.urandom(8000))
        elif kind == "fifo":
            os.mkfifo(ledger)
        elif kind == "zero":
            ledger.symlink_to("/dev/zero")
        else:
            ledger.mkdir()
        code, out, text = _issue(home, tmp_path, kind)
        assert code in (1, 2), (kind, text)
        assert "error[ledger." in text or "error[storage." in text or "error[config." in text, (kind, text)
        assert not (out / "dev.pem").exists()


def test_hostile_config_and_head_files_give_coded_errors(home: Home, tmp_path: Path) -> None:
    """GIVEN config.json that is not JSON, then audit/head that is garbage WHEN issuing and `audit verify` run
    THEN coded one-line errors, exit 1 or 2, no traceback, no DAC."""
    config = home.path / "config.json"
    saved = config.read_bytes()
    config.write_bytes(b"{not json")
    code, out, text = _issue(home, tmp_path, "c")
    assert code == 2 and "error[config." in text, text
    config.write_bytes(saved)
    (home.path / "audit" / "head").write_bytes(b'{"seq": "x"}' + os.urandom(50))
    code, out, text = _issue(home, tmp_path, "h")
    assert code in (1, 2) and "error[audit." in text and not (out / "dev.pem").exists(), text
    run = home.run("audit", "verify", "--format", "json")
    assert run.code == 1, run
    json.loads(run.out)


def test_a_crl_number_row_deleted_by_hand_is_refused(home: Home, tmp_path: Path) -> None:
    """GIVEN two CRLs published WHEN the crl_numbers rows are deleted with sqlite3 (to make numbering restart)
    THEN `crl publish` refuses (ledger.corrupt) and the published CRL keeps its number."""
    for _ in range(2):
        assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    db = sqlite3.connect(home.path / "ledger.sqlite")
    for trigger in [r[0] for r in db.execute("select name from sqlite_master where type='trigger'")]:
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DELETE FROM crl_numbers")
    db.commit()
    db.close()
    run = home.run("crl", "publish", "--pai", "pai-1")
    assert run.code == 1 and run.error_code == "ledger.corrupt", run
    crl = x509.load_der_x509_crl((home.path / "crl" / "pai-1.crl").read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
