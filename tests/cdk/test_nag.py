"""cdk-nag AwsSolutionsChecks: no unacknowledged finding in any stack, and every acknowledgement has a reason."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Annotations, Match  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

APPS = ["paa_app", "existing_paa_app", "pai_app", "cross_region_pai_app", "dev_paa_app", "dev_pai_app"]


@pytest.mark.parametrize("app_fixture", APPS)
def test_no_unacknowledged_aws_solutions_findings(app_fixture: str, request: pytest.FixtureRequest) -> None:
    # GIVEN an app configuration synthesized with AwsSolutionsChecks WHEN reading the annotations
    synth: Synth = request.getfixturevalue(app_fixture)
    for stack in synth.stacks():
        annotations = Annotations.from_stack(stack)
        # THEN no stack carries a cdk-nag error or warning
        assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
        assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []


@pytest.mark.parametrize("app_fixture", APPS)
def test_nag_reports_hold_only_compliant_or_acknowledged_rows(
    app_fixture: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN the NagReport CSVs written at synth WHEN reading them
    synth: Synth = request.getfixturevalue(app_fixture)
    reports = sorted(synth.outdir.glob("AwsSolutions-*-NagReport.csv"))
    assert len(reports) == len(synth.stacks())
    for report in reports:
        for row in csv.DictReader(report.open()):
            # THEN each row is compliant or suppressed with a written reason
            assert row["Compliance"] in ("Compliant", "Suppressed"), row
            if row["Compliance"] == "Suppressed":
                assert len(row["Exception Reason"]) > 40, row
