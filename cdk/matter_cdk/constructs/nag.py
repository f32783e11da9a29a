"""cdk-nag acknowledgements: every one names the rule, what it applies to, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aws_cdk import Stack
    from constructs import IConstruct

AppliesTo = str | RegexAppliesTo


def arn_pattern(service: str, region: str, resource: str) -> RegexAppliesTo:
    """``Resource::<arn>`` finding of this account's ``service``, whether partition/account are tokens or literals."""
    return RegexAppliesTo(
        regex=rf"/^Resource::arn:(<AWS::Partition>|aws[a-z-]*):{service}:{region}:(<AWS::AccountId>|\d{{12}}):{resource}$/g"
    )


def acknowledge(
    construct: IConstruct,
    rule: str,
    reason: str,
    *,
    applies_to: Sequence[AppliesTo] | None = None,
    children: bool = True,
) -> None:
    """Acknowledge one cdk-nag finding on ``construct`` (and its children) with a reason."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=children,
    )


def acknowledge_path(
    stack: Stack, path: str, rule: str, reason: str, *, applies_to: Sequence[AppliesTo] | None = None
) -> None:
    """Acknowledge a finding on a construct CDK creates itself (singleton handlers), by path."""
    NagSuppressions.add_resource_suppressions_by_path(
        stack,
        path,
        [NagPackSuppression(id=rule, reason=reason, applies_to=list(applies_to) if applies_to else None)],
        apply_to_children=True,
    )
