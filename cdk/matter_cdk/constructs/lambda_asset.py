"""Lambda asset for the DAC signer, bundled without Docker.

``pip install --platform manylinux2014_x86_64 --only-binary=:all: --python-version 3.12
--implementation cp`` fetches Linux wheels for the Lambda runtime from any host, then the
``matter_pki`` package and the handler folder are copied next to them. Tests skip bundling with
the context ``aws:cdk:bundling-stacks: []``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER_DIR = Path("lambdas") / "dac_signer"
HANDLER = "handler.lambda_handler"
PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_x86_64"
REQUIREMENTS = ("cryptography", "aws-lambda-powertools")
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "testing")


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Builds the asset on the host: Linux wheels via ``pip --platform``, then matter_pki and the handler."""

    def __init__(
        self,
        *,
        repo_root: Path = REPO_ROOT,
        requirements: Sequence[str] = REQUIREMENTS,
        run: Callable[..., object] = subprocess.run,
    ) -> None:
        self.repo_root = repo_root
        self.requirements = tuple(requirements)
        self._run = run

    def pip_command(self, output_dir: str) -> list[str]:
        """The pip invocation (Lambda Python 3.12 on x86_64, wheels only, no .pyc)."""
        return [
            sys.executable, "-m", "pip", "install",
            "--platform", PLATFORM,
            "--only-binary=:all:",
            "--python-version", PYTHON_VERSION,
            "--implementation", "cp",
            "--no-compile",
            "--disable-pip-version-check",
            "--no-warn-conflicts",
            "-t", output_dir,
            *self.requirements,
        ]  # fmt: skip

    def try_bundle(self, output_dir: str, *_args: object, **_kwargs: object) -> bool:
        """Write the asset into ``output_dir``; True tells CDK not to use Docker."""
        handler_dir = self.repo_root / HANDLER_DIR
        if not (handler_dir / "handler.py").is_file():
            raise FileNotFoundError(
                f"{handler_dir / 'handler.py'} not found: the DAC signer Lambda is bundled from there "
                "(skip bundling with -c 'aws:cdk:bundling-stacks=[]' to synthesize without it)"
            )
        self._run(self.pip_command(output_dir), check=True)
        out = Path(output_dir)
        shutil.copytree(self.repo_root / "matter_pki", out / "matter_pki", ignore=_IGNORE, dirs_exist_ok=True)
        for item in handler_dir.iterdir():
            if item.is_file() and item.suffix == ".py":
                shutil.copy2(item, out / item.name)
        return True


def dac_signer_code(repo_root: Path = REPO_ROOT) -> lambda_.Code:
    """The DAC signer asset: hashed by output, so the repository is never fingerprinted."""
    return lambda_.Code.from_asset(
        str(repo_root),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=lambda_.Runtime.PYTHON_3_12.bundling_image,
            local=PipLocalBundling(repo_root=repo_root),
            # Only used where local bundling is impossible; same result inside the SAM build image.
            command=[
                "bash", "-c",
                "pip install --no-compile -t /asset-output " + " ".join(REQUIREMENTS)
                + f" && cp -r matter_pki /asset-output/ && cp {HANDLER_DIR.as_posix()}/*.py /asset-output/",
            ],
        ),
    )  # fmt: skip
