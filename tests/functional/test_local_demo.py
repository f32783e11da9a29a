"""``scripts/demo``: the README's first command, run twice, then its closing commands pasted into a new shell.

Runs under ``./scripts/test`` and CI (never skipped): the demo uses the virtualenv running the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from typing import TYPE_CHECKING

import pytest

from tests.unit.test_local_fixtures import REPO

if TYPE_CHECKING:
    from pathlib import Path


def _demo_env(tmp_path: Path) -> dict[str, str]:
    """The demo against a fresh home, using this interpreter's virtualenv (or its scripts on PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATTER_PKI_")}
    env["MATTER_PKI_HOME"] = str(tmp_path / "pki")
    if sys.prefix != sys.base_prefix:
        env["MATTER_PKI_DEMO_VENV"] = sys.prefix
    else:
        env["MATTER_PKI_DEMO_NO_VENV"] = "1"
        env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    return env


@pytest.mark.slow
def test_demo_builds_a_valid_development_pki_and_is_idempotent(tmp_path: Path) -> None:
    # GIVEN a fresh PKI home and OpenSSL (a documented requirement of the demo)
    assert shutil.which("openssl"), "scripts/demo needs the openssl command (apt install openssl)"
    env = _demo_env(tmp_path)
    demo = REPO / "scripts" / "demo"
    assert os.access(demo, os.X_OK)
    # WHEN the demo runs twice
    first = subprocess.run([str(demo)], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    dac = (tmp_path / "pki" / "demo" / "out" / "device.pem").read_bytes()
    second = subprocess.run([str(demo)], env=env, capture_output=True, text=True, timeout=300, check=False)
    # THEN both succeed, the chain validated, and the second run reused everything
    assert second.returncode == 0, second.stdout + second.stderr
    assert "valid: kSuccess" in first.stdout and "valid: kSuccess" in second.stdout
    assert "already answered" in second.stdout
    assert (tmp_path / "pki" / "demo" / "out" / "device.pem").read_bytes() == dac
    assert len(list((tmp_path / "pki" / "ca").iterdir())) == 2  # the PAA and one PAI, not two
    assert "Traceback" not in first.stderr + second.stderr

    # WHEN the closing "Next" commands are pasted into a new shell (no venv, no MATTER_PKI_* variables)
    lines = second.stdout.split("Next, in a new shell:\n", 1)[1].splitlines()
    commands = [line.strip() for line in lines if line.startswith("  ")]
    assert commands[0].startswith(". ") and any(c.startswith("matter-pki dac issue") for c in commands)
    new_shell = {"HOME": str(tmp_path / "user"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                 "PYTHONPATH": str(REPO / "tests" / "kdf_shim")}  # the suite's key-file KDF (tests/kdf_shim), as the demo's home was made with it
    (tmp_path / "user").mkdir()
    pasted = subprocess.run(["bash", "-euc", "\n".join(commands)], env=new_shell, cwd=tmp_path / "user",
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    # THEN they work: 10 CSRs made and answered with DACs
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    assert "issued 10," in pasted.stdout
    assert len(list((tmp_path / "pki" / "demo" / "dacs").glob("device-*.pem"))) == 10
    # AND the env file holds only the demo's development passphrases, readable by the owner only
    env_file = tmp_path / "pki" / "env.sh"
    assert env_file.stat().st_mode & 0o077 == 0
