"""DevDefaultsGuard: a stack synthesized with development defaults cannot be deployed by accident."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnParameter, CfnRule, CfnRuleAssertion, Fn
from constructs import Construct

if TYPE_CHECKING:
    from collections.abc import Sequence

PARAMETER = "DevDefaultsAcknowledged"


class DevDefaultsGuard(Construct):
    """Adds the parameter ``DevDefaultsAcknowledged`` (no default, only ``yes``) and a rule checking it.

    CloudFormation refuses the template before creating anything unless the deployer passes
    ``--parameters DevDefaultsAcknowledged=yes``: a placeholder PAA ARN or the test VID never
    creates retained (and billed) CAs silently.
    """

    def __init__(self, scope: Construct, construct_id: str, *, defaults: Sequence[str]) -> None:
        super().__init__(scope, construct_id)
        described = "; ".join(defaults)
        self.parameter = CfnParameter(
            scope,
            PARAMETER,
            type="String",
            allowed_values=["yes"],
            description=f"Synthesized with development defaults ({described}). Pass yes only in a test account.",
        )
        CfnRule(
            scope,
            "DevDefaultsRule",
            assertions=[
                CfnRuleAssertion(
                    assert_=Fn.condition_equals(self.parameter.value_as_string, "yes"),
                    assert_description=f"Development defaults in use: {described}",
                )
            ],
        )
