"""Packaging: installs from a clone (``pip install .``) or as a built wheel, with SPDX license metadata,
the LICENSE file, the Python versions the tests run on, and the data files the CLI reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from typing import TYPE_CHECKING

import pytest

from matter_pki import __version__

if TYPE_CHECKING:
    from pathlib import Path

from tests.unit.test_local_fixtures import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PYTHONS = ("3.11", "3.12", "3.13")


def test_project_metadata_is_spdx_and_names_the_tested_pythons() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    classifiers = set(project["classifiers"])
    assert {f"Programming Language :: Python :: {v}" for v in PYTHONS} <= classifiers
    assert project["requires-python"] == ">=3.11"
    assert "version" in project["dynamic"]  # one place: matter_pki.__version__
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "matter_pki.__version__"}
    # moto 5 has no 'acm-pca' extra (pip warned on every install); the extra is 'acmpca'
    test_extra = " ".join(project["optional-dependencies"]["test"])
    assert "acm-pca" not in test_extra and "acmpca" in test_extra


def test_license_file_is_the_apache_2_text() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text.splitlines()) > 170


@pytest.mark.slow
def test_built_wheel_installs_and_runs_with_its_data_files(tmp_path: Path) -> None:
    # GIVEN the tracked files of the repository (what a clone holds)
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    # WHEN a wheel is built from it (isolated build, as pip install . does)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("matter_pki-*.whl")
    # THEN its metadata carries the SPDX expression, the license file and the classifiers
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = Parser().parsestr(zf.read(f"matter_pki-{__version__}.dist-info/METADATA").decode())
    assert meta["License-Expression"] == "Apache-2.0" and meta["License-File"] == "LICENSE"
    assert f"matter_pki-{__version__}.dist-info/licenses/LICENSE" in names
    assert {f"Programming Language :: Python :: {v}" for v in PYTHONS} <= set(meta.get_all("Classifier"))
    assert {"matter_pki/codes.csv", "matter_pki/error_codes.csv", "matter_pki/py.typed"} <= names
    # AND installed on its own it runs and finds its data files
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    code = "import matter_pki, sys; from matter_pki.cli import main; print(matter_pki.__file__, file=sys.stderr); main()"
    run = subprocess.run([sys.executable, "-c", code, "codes", "--kind", "error", "--format", "csv"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith(str(tmp_path / "site"))
    assert "storage.busy,error,-,3," in run.stdout
