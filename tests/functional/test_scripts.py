"""``scripts/demo`` and ``scripts/test`` rebuild a ``.venv`` made by another Python (``scripts/_venv.sh``)."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.unit.test_local_fixtures import REPO

if TYPE_CHECKING:
    from pathlib import Path

CURRENT = "{}.{}".format(*sys.version_info[:2])


def ensure_venv(venv: Path) -> subprocess.CompletedProcess[str]:
    """Run the scripts' ``ensure_venv`` with this interpreter."""
    script = f'source "{REPO / "scripts" / "_venv.sh"}" && ensure_venv "$1" "$2"'
    return subprocess.run(["bash", "-c", script, "ensure_venv", str(venv), sys.executable],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def _fake_venv(venv: Path, python: str) -> None:
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /opt/python3.9/bin\nversion = 3.9.18\n")
    (venv / "marker").write_text("from the old venv")
    (venv / "bin" / "python").write_text(f"#!/bin/sh\necho {python}\n")
    (venv / "bin" / "python").chmod(0o755)


@pytest.mark.slow
def test_a_venv_made_by_another_python_is_rebuilt(tmp_path: Path) -> None:
    # GIVEN a .venv made by Python 3.9 (an interpreter that no longer runs is treated the same way)
    venv = tmp_path / ".venv"
    _fake_venv(venv, "3.9")
    # WHEN the scripts' venv check runs
    result = ensure_venv(venv)
    # THEN the venv is rebuilt with the current Python
    assert result.returncode == 0, result.stderr
    assert "was made by Python 3.9; rebuilding it with Python " + CURRENT in result.stdout
    assert not (venv / "marker").exists()
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert check.stdout.strip() == CURRENT


def test_the_version_check_keeps_a_usable_venv_and_refuses_a_non_venv_folder(tmp_path: Path) -> None:
    # GIVEN a venv of the current version (a fake that reports it)
    venv = tmp_path / ".venv"
    _fake_venv(venv, CURRENT)
    # WHEN checked THEN kept as it is
    assert ensure_venv(venv).returncode == 0 and (venv / "marker").exists()
    # GIVEN a folder named .venv that is not a virtualenv WHEN checked THEN refused and left alone
    other = tmp_path / "other" / ".venv"
    (other / "bin").mkdir(parents=True)
    (other / "precious").write_text("data")
    result = ensure_venv(other)
    assert result.returncode == 2 and "is not a virtualenv" in result.stderr
    assert (other / "precious").read_text() == "data"


def test_demo_and_test_scripts_use_the_check() -> None:
    for name in ("demo", "test"):
        assert "ensure_venv " in (REPO / "scripts" / name).read_text(), name
