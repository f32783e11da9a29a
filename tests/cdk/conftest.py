"""CDK fixtures: each app configuration is synthesized once per session (bundling skipped) and shared."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping

ROOT = Path(__file__).resolve().parents[2]
CDK_DIR = ROOT / "cdk"
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(ROOT / ".cache" / "jsii"))
for _var in ("CDK_CONTEXT_JSON", "CDK_OUTDIR", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
    os.environ.pop(_var, None)  # the fixtures pass context and environment explicitly
if str(CDK_DIR) not in sys.path:
    sys.path.insert(0, str(CDK_DIR))

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}
PAA_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
PAA_CONTEXT = {
    "generatePaa": "1",
    "vendorId": "FFF2",
    "paaCommonName": "Acme Matter PAA",
    "paaOrganization": "Acme",
    "validityInDays": "7300",
    "crlDistribution": "1",
}
PAI_CONTEXT = {
    "generatePaiCnt": "2",
    "paaArn": PAA_ARN,
    "vendorId": "FFF2",
    "productIds": "8000,8001",
    "paiCommonNames": "Acme PAI 8000,Acme PAI 8001",
    "paiOrganizations": "Acme,Acme",
    "validityInDays": "3600",
    "dacValidityInDays": "1000",
}


@dataclass
class Synth:
    """A synthesized app: its stacks by construct id and the cloud assembly directory."""

    app: Any
    outdir: Path

    def stack(self, name: str) -> Any:
        """The stack with construct id ``name``."""
        return self.app.node.find_child(name)

    def template(self, name: str) -> Any:
        """``aws_cdk.assertions.Template`` of a stack."""
        from aws_cdk.assertions import Template

        return Template.from_stack(self.stack(name))

    def stacks(self) -> list[Any]:
        """Every stack of the app."""
        import aws_cdk as cdk

        return [c for c in self.app.node.children if isinstance(c, cdk.Stack)]


def synth(
    factory: pytest.TempPathFactory, context: Mapping[str, object], environ: Mapping[str, str] | None = None
) -> Synth:
    """Build and synthesize the app (cdk-nag included) into a temporary cloud assembly."""
    pytest.importorskip("aws_cdk")
    pytest.importorskip("cdk_nag")
    from app import build_app

    outdir = factory.mktemp("cdk.out")
    app = build_app({**NO_BUNDLING, **context}, dict(environ or {}), str(outdir))
    app.synth()
    return Synth(app, outdir)


@pytest.fixture(scope="session")
def paa_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """generatePaa=1 with a full PAA subject."""
    return synth(tmp_path_factory, PAA_CONTEXT)


@pytest.fixture(scope="session")
def existing_paa_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Roles and audit around an existing PAA (paaArn, no generatePaa)."""
    return synth(tmp_path_factory, {"paaArn": PAA_ARN, "stackNamePrefix": "Lab"})


@pytest.fixture(scope="session")
def pai_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Two product-scoped PAIs in the PAA's Region."""
    return synth(tmp_path_factory, PAI_CONTEXT)


@pytest.fixture(scope="session")
def cross_region_pai_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """Two PAIs in us-west-2 under the eu-west-1 PAA."""
    return synth(tmp_path_factory, PAI_CONTEXT, {"CDK_DEFAULT_REGION": "us-west-2"})


@pytest.fixture(scope="session")
def dev_paa_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The literal first command: only generatePaa=1 (development defaults)."""
    return synth(tmp_path_factory, {"generatePaa": "1"})


@pytest.fixture(scope="session")
def dev_pai_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The literal second command: only generatePaiCnt=2 (placeholder PAA, development defaults)."""
    return synth(tmp_path_factory, {"generatePaiCnt": "2"})
