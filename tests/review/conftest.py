"""Helpers for the adversarial review tests: the real CLI in a child process, homes made through the CLI."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSPHRASE = "review passphrase 1234"
DEVICE_PASSPHRASE = "review device passphrase 1234"
CLI = [sys.executable, "-c", "from matter_pki.cli import main; main()"]


@dataclass
class Run:
    """One CLI run: exit status and the two streams."""

    code: int
    out: str
    err: str

    @property
    def error_code(self) -> str | None:
        """The ``error[...]`` code of the first stderr line, if any."""
        line = self.err.strip().splitlines()[0] if self.err.strip() else ""
        return line.split("]", 1)[0].split("[", 1)[1] if line.startswith("error[") else None


@dataclass
class Home:
    """A home made through the CLI (PAA FFF1, pai-1 for PID 8000) and its environment."""

    path: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, **env: str) -> Run:
        """``matter-pki ARGS`` against this home."""
        proc = subprocess.run(
            [*CLI, *args], env={**self.env, **env}, capture_output=True, text=True, timeout=timeout, check=False
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)


def make_home(path: Path, tmp: Path) -> Home:
    """``init --vid FFF1`` and ``pai create --pid 8000`` through the CLI, in a clean environment."""
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # the suite's one key-derivation knob (tests/kdf_shim), so homes made here and in-process agree
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(tmp),
        "MATTER_PKI_HOME": str(path),
        "MATTER_PKI_PASSPHRASE": PASSPHRASE,
        "MATTER_PKI_DEVICE_PASSPHRASE": DEVICE_PASSPHRASE,
        "MATTER_PKI_LOG_DIR": str(state),
        "MATTER_PKI_OPERATOR": "reviewer",
    }
    home = Home(path, env)
    assert home.run("init", "--vid", "FFF1").code == 0
    assert home.run("pai", "create", "--pid", "8000").code == 0
    return home


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """One home made through the CLI per session (pai-1 for PID 8000, pai-2 for any PID, pai-3 for 8001)."""
    root = tmp_path_factory.mktemp("template")
    made = make_home(root / "home", root)
    assert made.run("pai", "create").code == 0
    assert made.run("pai", "create", "--pid", "8001").code == 0
    return made


@pytest.fixture
def home(template_home: Home, tmp_path: Path) -> Home:
    """A fresh copy of the template home (pai-1 for 8000, pai-2 for any PID, pai-3 for 8001)."""
    path = tmp_path / "home"
    shutil.copytree(template_home.path, path, symlinks=True)
    (tmp_path / "state").mkdir()
    env = {**template_home.env, "MATTER_PKI_HOME": str(path), "HOME": str(tmp_path), "MATTER_PKI_LOG_DIR": str(tmp_path / "state")}
    return Home(path, env)


def write(folder: Path, name: str, data: bytes) -> Path:
    """``folder/name`` holding ``data``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def csrs(home: Home, folder: Path, count: int, prefix: str = "device-") -> list[Path]:
    """``count`` CSRs made by ``csr generate``."""
    result = home.run("csr", "generate", "--count", str(count), "--out", str(folder), "--prefix", prefix, "--jobs", "1")
    assert result.code == 0, result.err
    return sorted(folder.glob("*.csr"))


def audit_position(home: Path) -> tuple[int, str]:
    """(seq, line hash) of the audit log's last line: all an attacker needs to forge a ledger transaction."""
    last = (home / "audit" / "audit.log").read_bytes().splitlines(keepends=True)[-1]
    return json.loads(last)["seq"], hashlib.sha256(last).hexdigest()


@contextlib.contextmanager
def small_disk(where: Path, size_kib: int) -> Iterator[Path]:
    """A tmpfs of ``size_kib`` (skips where mounting is not permitted)."""
    where.mkdir(parents=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
