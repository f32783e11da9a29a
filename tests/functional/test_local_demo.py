"""``scripts/demo``: the README's first command, run twice against the installed matter-pki."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.unit.test_local_fixtures import REPO

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.skipif(shutil.which("matter-pki") is None or shutil.which("openssl") is None,
                    reason="needs matter-pki on PATH (pip install -e .) and openssl")
def test_demo_builds_a_valid_development_pki_and_is_idempotent(tmp_path: Path) -> None:
    # GIVEN a fresh PKI home and the installed CLI (no virtualenv creation in tests)
    env = {**os.environ, "MATTER_PKI_HOME": str(tmp_path / "pki"), "MATTER_PKI_DEMO_NO_VENV": "1"}
    env.pop("MATTER_PKI_PASSPHRASE", None)
    demo = REPO / "scripts" / "demo"
    assert os.access(demo, os.X_OK)
    # WHEN the demo runs twice
    first = subprocess.run([str(demo)], env=env, capture_output=True, text=True, timeout=120, check=False)
    dac = (tmp_path / "pki" / "demo" / "out" / "device.pem").read_bytes()
    second = subprocess.run([str(demo)], env=env, capture_output=True, text=True, timeout=120, check=False)
    # THEN both succeed, the chain validated, and the second run reused everything
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "valid: kSuccess" in first.stdout and "valid: kSuccess" in second.stdout
    assert "already answered" in second.stdout
    assert (tmp_path / "pki" / "demo" / "out" / "device.pem").read_bytes() == dac
    assert len(list((tmp_path / "pki" / "ca").iterdir())) == 2  # the PAA and one PAI, not two
