"""``scripts/kill-loop``: SIGKILL at random moments of dac issue, inbox run, revoke, crl-signer revoke, crl publish --signer
and audit seal, then checks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kill-loop"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False)


def test_a_few_kills_of_each_command_leave_everything_verifiable() -> None:
    # GIVEN two kills per command at random moments (seeded: reproducible)
    proc = _run("--kills", "2", "--csrs", "40", "--seed", "7", timeout=600)
    # THEN audit verify, ledger verify and the one-answer-per-CSR check pass afterwards
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("kill-loop: all checks passed")
    for section in ("crl-signer revoke: 2 kills", "crl publish --signer: 2 kills"):
        assert section in proc.stdout


@pytest.mark.slow
def test_twenty_kills_of_each_command_leave_everything_verifiable() -> None:
    proc = _run("--kills", "20", "--csrs", "300", timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
