"""Hostile or odd input never blocks, aborts a whole run or passes silently: a coded answer for each."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.unit.test_local_fixtures import CLI_PREFIX, cli_env, good_csr, make_pki, run_cli

if TYPE_CHECKING:
    from pathlib import Path


def _der(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(Encoding.DER)


@pytest.mark.parametrize("order", ["der-then-pem", "pem-then-der"])
def test_a_file_holding_a_der_and_a_pem_csr_is_refused(tmp_path: Path, order: str) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    first, second = good_csr(), good_csr()
    data = _der(first) + second if order == "der-then-pem" else first + _der(second)
    (tmp_path / "two.csr").write_bytes(data)
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "two.csr"), "--out", str(tmp_path / "out")], env)
    assert result.exit_code == 1 and "error[csr.multiple]" in result.stderr
    assert json.loads((tmp_path / "out" / "two.err").read_text())["code"] == "csr.multiple"
    assert not (tmp_path / "out" / "two.pem").exists()


def test_a_fifo_named_as_the_csr_is_refused_without_blocking(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    os.mkfifo(tmp_path / "fifo.csr")
    proc = subprocess.run(
        [*CLI_PREFIX, "dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "fifo.csr"), "--out", str(tmp_path / "out")],
        env={**os.environ, **cli_env(tmp_path / "home")}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2 and "error[input.not_a_file]" in proc.stderr, proc.stderr


def test_bad_inbox_folder_names_are_skipped_with_a_note_and_the_rest_answered(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    inbox = tmp_path / "inbox"
    bad = ["-pai", "pai 1", "pai.x", "p" * 65]
    for name in [*bad, "pai-1"]:
        (inbox / name / "8000").mkdir(parents=True)
        (inbox / name / "8000" / "dev.csr").write_bytes(good_csr())
    result = run_cli(["inbox", "run", "--dir", str(inbox), "--format", "json"], env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counts"]["issued"] == 1
    assert (inbox / "pai-1" / "8000" / "dev.pem").exists()
    for name in bad:
        assert any(note.startswith(f"skipped {name}/") for note in report["notes"]), (name, report["notes"])
        assert not (inbox / name / "8000" / "dev.pem").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["dac", "issue", "--pai", "pai-1", "--csr", "{csr}", "--out", "{out}", "--validity-days", "3000000"],
        ["pai", "create", "--pid", "8001", "--validity-days", "3000000"],
        ["crl", "publish", "--pai", "pai-1", "--next-update-days", "1000000000"],
    ],
)
def test_huge_day_counts_are_one_line_coded_errors(tmp_path: Path, args: list[str]) -> None:
    make_pki(tmp_path / "home")
    (tmp_path / "d.csr").write_bytes(good_csr())
    filled = [a.format(csr=tmp_path / "d.csr", out=tmp_path / "out") for a in args]
    result = run_cli(filled, cli_env(tmp_path / "home"))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(("error[input.validity]", "error[input.next_update]")), result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_init_with_huge_validity_is_a_coded_error(tmp_path: Path) -> None:
    result = run_cli(["init", "--vid", "FFF1", "--validity-days", "3000000"], cli_env(tmp_path / "home"))
    assert result.exit_code == 2 and result.stderr.startswith("error[input.validity]")


def test_audit_query_on_a_malformed_line_is_a_coded_error(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    with (tmp_path / "home" / "audit" / "audit.log").open("ab") as fh:
        fh.write(b'{"not": "a record"}\n')
    result = run_cli(["audit", "query"], cli_env(tmp_path / "home"))
    assert result.exit_code == 1 and "error[audit.malformed]" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_reserved_names_are_refused_and_a_wrongly_cased_extension_is_mentioned(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    for name in ("pai", "paa", "x"):
        (csrs / f"{name}.csr").write_bytes(good_csr())
    (csrs / "x.CSR").write_bytes(good_csr())
    args = ["dac", "issue", "--pai", "pai-1", "--csr", str(csrs), "--out", str(tmp_path / "out"), "--format", "json"]
    report = json.loads(run_cli(args, env).stdout)
    # THEN pai.csr and paa.csr get input.reserved_name (the chain files are not their answers)
    assert report["counts"] == {"issued": 1, "reused": 0, "skipped": 0, "refused": 2}
    for name in ("pai", "paa"):
        assert json.loads((tmp_path / "out" / f"{name}.err").read_text())["code"] == "input.reserved_name"
    assert any("x.CSR" in note and "lower case" in note for note in report["notes"]), report["notes"]
    # AND a second run answers nothing twice
    again = json.loads(run_cli(args, env).stdout)
    assert again["counts"] == {"issued": 0, "reused": 0, "skipped": 3, "refused": 0}


def test_init_into_an_existing_folder_makes_it_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    assert run_cli(["init", "--vid", "FFF1"], cli_env(home)).exit_code == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
