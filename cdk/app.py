#!/usr/bin/env python3
"""Matter PKI CDK app: wires the stacks for the PAA side (generatePaa / paaArn) or the PAI side (generatePaiCnt)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE_ROOT", str(REPO_ROOT / ".cache" / "jsii"))
for path in (REPO_ROOT, HERE):  # matter_pki from this repository, matter_cdk beside this file
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import aws_cdk as cdk  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402
from matter_cdk.config import CONTEXT_KEYS, Mode, feature_flags, load_or_exit  # noqa: E402
from matter_cdk.constructs.dev_defaults import DevDefaultsGuard  # noqa: E402
from matter_cdk.stacks.audit_stack import AuditStack  # noqa: E402
from matter_cdk.stacks.csr_pipeline_stack import CsrPipelineStack  # noqa: E402
from matter_cdk.stacks.paa_stack import PaaStack  # noqa: E402
from matter_cdk.stacks.pai_stack import PaiStack  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Mapping


def build_app(
    context: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    outdir: str | None = None,
) -> cdk.App:
    """The app with its stacks and cdk-nag; ``context`` adds to cdk.json's flags, CDK_CONTEXT_JSON wins."""
    app = cdk.App(context={**feature_flags(HERE / "cdk.json"), **(context or {})}, outdir=outdir)
    config = load_or_exit(
        {key: app.node.try_get_context(key) for key in CONTEXT_KEYS},
        os.environ if environ is None else environ,
    )
    for line in config.warnings():
        print(f"[matter-pki] WARNING: {line}", file=sys.stderr)
    env = cdk.Environment(account=config.account, region=config.region)
    prefix = config.prefix
    stacks: list[cdk.Stack] = []
    if config.mode is Mode.PAA:
        paa = PaaStack(app, f"{prefix}MatterStackPAA", config=config, env=env)
        audit = AuditStack(
            app, f"{prefix}MatterAudit", prefix=prefix, auditor_role=paa.roles.auditor,
            lock_mode=config.audit_lock_mode, env=env,
        )  # fmt: skip
        stacks += [paa, audit]
    else:
        assert config.pipeline is not None
        pai = PaiStack(app, f"{prefix}MatterStackPAI", config=config, env=env)
        pipeline = CsrPipelineStack(
            app, f"{prefix}MatterCsrPipeline", pais=pai.pai_refs, settings=config.pipeline, prefix=prefix,
            crl_bucket=pai.crl_bucket, env=env,
        )  # fmt: skip
        pipeline.add_stack_dependency(pai, "the signer may only run once the PAIs are active")
        stacks += [pai, pipeline]
        if config.cross_region:
            # The PAA Region's audit stack exists already; this Region gets its own (as in the sample).
            stacks.append(
                AuditStack(
                    app,
                    f"{prefix}MatterAudit",
                    prefix=prefix,
                    lock_mode=config.audit_lock_mode,
                    multi_region_trail=False,
                    env=env,
                )  # fmt: skip
            )
    if config.dev_defaults:
        for stack in stacks:
            DevDefaultsGuard(stack, "DevDefaults", defaults=config.dev_defaults)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


if __name__ == "__main__":
    build_app().synth()
