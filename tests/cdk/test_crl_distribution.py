"""CRL publication: CloudFront with origin access control in front of the private CRL bucket (crlDistribution=1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match  # noqa: E402
from matter_cdk.config import ContextError, load  # noqa: E402
from matter_cdk.constructs.crl_distribution import crl_path  # noqa: E402

from tests.cdk.conftest import PAI_CONTEXT  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth


def test_the_distribution_reads_the_private_bucket_through_origin_access_control(paa_app: Synth) -> None:
    # GIVEN generatePaa=1 with crlDistribution=1 WHEN synthesized
    template = paa_app.template("MatterStackPAA")
    # THEN a read-only distribution with an S3 origin access control (SigV4, always) fronts the bucket
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {"OriginAccessControlConfig": Match.object_like({"OriginAccessControlOriginType": "s3", "SigningBehavior": "always"})},
    )
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {"DefaultCacheBehavior": Match.object_like({"AllowedMethods": ["GET", "HEAD"], "ViewerProtocolPolicy": "allow-all"})}
            )
        },
    )
    # AND the bucket stays private: only CloudFront, for this distribution, may read it
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}},
    )
    statements = [
        s for p in template.find_resources("AWS::S3::BucketPolicy").values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (read,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert read["Action"] == "s3:GetObject" and "AWS:SourceArn" in read["Condition"]["StringEquals"]


def test_the_crl_base_url_is_an_output_for_dcl_revocation_points(paa_app: Synth) -> None:
    # GIVEN the distribution WHEN synthesized THEN CrlBaseUrl = https://<domain>; a CA's CRL is <base>/crl/<CA id>.crl
    output = paa_app.template("MatterStackPAA").find_outputs("CrlBaseUrl")["CrlBaseUrl"]
    assert output["Value"]["Fn::Join"][1][0] == "https://"
    assert "DomainName" in str(output["Value"])
    assert crl_path("0f3c2b1a-0000-4000-8000-000000000001") == "crl/0f3c2b1a-0000-4000-8000-000000000001.crl"


def test_without_the_option_there_is_no_distribution(pai_app: Synth) -> None:
    template = pai_app.template("MatterStackPAI")
    template.resource_count_is("AWS::CloudFront::Distribution", 0)
    assert template.find_outputs("CrlBaseUrl") == {}


def test_a_distribution_needs_the_bucket_this_stack_creates() -> None:
    # GIVEN PAI mode with an existing CRL bucket (its policy cannot be changed here)
    with pytest.raises(ContextError) as err:
        load({**PAI_CONTEXT, "crlBucketName": "existing-crls", "crlDistribution": "1"})
    assert err.value.key == "crlDistribution"
