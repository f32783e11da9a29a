"""cfn-lint on every synthesized template (W3005, redundant DependsOn emitted by CDK, is accepted)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

cfnlint_api = pytest.importorskip("cfnlint.api")

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

APPS = ["paa_app", "existing_paa_app", "pai_app", "cross_region_pai_app", "dev_paa_app", "dev_pai_app"]


@pytest.mark.parametrize("app_fixture", APPS)
def test_templates_are_cfn_lint_clean(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # GIVEN the templates of one app configuration
    synth: Synth = request.getfixturevalue(app_fixture)
    templates = sorted(synth.outdir.glob("*.template.json"))
    assert templates
    for template in templates:
        # WHEN linted THEN nothing but W3005 is reported
        matches = cfnlint_api.lint_file(Path(template), cfnlint_api.ManualArgs(ignore_checks=["W3005"]))
        assert [str(m) for m in matches] == [], template.name
