"""PipLocalBundling: the Docker-free Lambda asset (pip runner faked: no network)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from matter_cdk.constructs.lambda_asset import PipLocalBundling  # noqa: E402

if TYPE_CHECKING:
    from pathlib import Path


def _repo(tmp_path: Path, *, handler: bool = True) -> Path:
    (tmp_path / "matter_pki" / "testing").mkdir(parents=True)
    (tmp_path / "matter_pki" / "__pycache__").mkdir()
    (tmp_path / "matter_pki" / "__init__.py").write_text("")
    (tmp_path / "matter_pki" / "profiles.py").write_text("X = 1\n")
    (tmp_path / "matter_pki" / "testing" / "pca_model.py").write_text("")
    (tmp_path / "matter_pki" / "__pycache__" / "x.pyc").write_bytes(b"")
    (tmp_path / "lambdas" / "dac_signer").mkdir(parents=True)
    if handler:
        (tmp_path / "lambdas" / "dac_signer" / "handler.py").write_text("def lambda_handler(e, c): ...\n")
    return tmp_path


def test_bundle_runs_pip_for_lambda_linux_wheels_and_copies_sources(tmp_path: Path) -> None:
    # GIVEN a repository with matter_pki and the handler, and a recording pip runner
    calls: list[list[str]] = []
    bundler = PipLocalBundling(repo_root=_repo(tmp_path / "repo"), run=lambda cmd, check: calls.append(cmd))
    out = tmp_path / "out"
    out.mkdir()
    # WHEN bundling
    assert bundler.try_bundle(str(out)) is True
    # THEN pip fetched manylinux2014 x86_64 CPython 3.12 wheels only, into the output, without .pyc
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "install"]
    for flag in (
        ["--platform", "manylinux2014_x86_64"],
        ["--python-version", "3.12"],
        ["--implementation", "cp"],
        ["-t", str(out)],
    ):
        index = command.index(flag[0])
        assert command[index : index + 2] == flag
    assert "--only-binary=:all:" in command and "--no-compile" in command
    assert command[-2:] == ["cryptography", "aws-lambda-powertools"]
    # AND matter_pki (minus tests helpers and caches) and the handler sit at the asset root
    assert (out / "handler.py").is_file()
    assert (out / "matter_pki" / "profiles.py").read_text() == "X = 1\n"
    assert not (out / "matter_pki" / "testing").exists()
    assert not (out / "matter_pki" / "__pycache__").exists()


def test_missing_handler_is_a_clear_error(tmp_path: Path) -> None:
    # GIVEN no lambdas/dac_signer/handler.py WHEN bundling THEN the error names the path and the way around it
    bundler = PipLocalBundling(repo_root=_repo(tmp_path, handler=False), run=lambda cmd, check: None)
    with pytest.raises(FileNotFoundError, match=r"lambdas/dac_signer/handler\.py not found.*bundling-stacks"):
        bundler.try_bundle(str(tmp_path / "out"))
