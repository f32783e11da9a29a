"""The two literal commands synthesize, and their dev defaults block an accidental deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth


@pytest.mark.parametrize(
    ("app_fixture", "stacks"),
    [
        ("dev_paa_app", ["MatterStackPAA", "MatterAudit"]),
        ("dev_pai_app", ["MatterStackPAI", "MatterCsrPipeline"]),
    ],
)
def test_dev_synth_requires_acknowledgement_parameter(
    app_fixture: str, stacks: list[str], request: pytest.FixtureRequest
) -> None:
    # GIVEN a synth that fell back to development defaults
    synth: Synth = request.getfixturevalue(app_fixture)
    assert [s.stack_name for s in synth.stacks()] == stacks
    for name in stacks:
        template = synth.template(name).to_json()
        # THEN deploying needs DevDefaultsAcknowledged=yes (no default), asserted by a rule
        assert template["Parameters"]["DevDefaultsAcknowledged"]["AllowedValues"] == ["yes"]
        assert "Default" not in template["Parameters"]["DevDefaultsAcknowledged"]
        assert template["Rules"]["DevDefaultsRule"]["Assertions"][0]["Assert"] == {
            "Fn::Equals": [{"Ref": "DevDefaultsAcknowledged"}, "yes"]
        }


def test_real_context_has_no_dev_guard(paa_app: Synth) -> None:
    # GIVEN a full context WHEN synthesized THEN the templates deploy without the extra parameter
    for stack in paa_app.stacks():
        assert "DevDefaultsAcknowledged" not in paa_app.template(stack.node.id).to_json().get(
            "Parameters", {}
        )


def test_dev_pai_uses_placeholder_paa_in_account_zero(dev_pai_app: Synth) -> None:
    # GIVEN the literal PAI command WHEN synthesized THEN the placeholder PAA can never be a real CA
    stack = dev_pai_app.stack("MatterStackPAI")
    assert stack.account == "000000000000"
    assert "000000000000:certificate-authority/00000000-0000-0000-0000-000000000000" in str(
        dev_pai_app.template("MatterStackPAI").find_resources("Custom::MatterPaa")
    )
