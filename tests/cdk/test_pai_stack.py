"""PaiStack template: PAIs from profiles, signed by the PAA in its Region (natively or by custom resource)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match  # noqa: E402
from matter_cdk.config import load  # noqa: E402
from matter_cdk.constructs.certificate_authority import certificate_request  # noqa: E402

from matter_pki.profiles import PCA_TEMPLATE_PAI  # noqa: E402
from tests.cdk.conftest import PAA_ARN, PAI_CONTEXT  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

STACK = "MatterStackPAI"
PAIS = load(PAI_CONTEXT).pais


@pytest.mark.parametrize("pai", PAIS, ids=lambda p: f"PAI{p.index}")
def test_pai_ca_subject_and_configuration_come_from_the_profile(pai_app: Synth, pai) -> None:  # noqa: ANN001
    # GIVEN a product-scoped PAI WHEN synthesized THEN its CA is a P-256 FIPS subordinate with the profile subject
    configuration = pai.profile().pca_ca_configuration()
    pai_app.template(STACK).has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority",
        {
            "Type": "SUBORDINATE",
            "KeyAlgorithm": "EC_prime256v1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            "KeyStorageSecurityStandard": "FIPS_140_2_LEVEL_3_OR_HIGHER",
            "Subject": configuration["Subject"],
            "Tags": [{"Key": "matterCAType", "Value": "pai"}],
            "RevocationConfiguration": {
                "CrlConfiguration": Match.object_like(
                    {"CrlDistributionPointExtensionConfiguration": {"OmitExtension": True}}
                )
            },
        },
    )
    # AND the subject carries the PID as 4 upper-case hex digits
    assert {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.2", "Value": f"{pai.pid:04X}"} in configuration[
        "Subject"
    ]["CustomAttributes"]


@pytest.mark.parametrize("pai", PAIS, ids=lambda p: f"PAI{p.index}")
def test_same_region_pai_certificate_is_issued_by_the_paa_with_profile_passthrough(
    pai_app: Synth, pai
) -> None:  # noqa: ANN001
    # GIVEN PAIs in the PAA's Region WHEN synthesized THEN AWS::ACMPCA::Certificate signs them with the PAA
    passthrough = pai.profile().pca_issue_parts()["ApiPassthrough"]
    assert passthrough["Extensions"]["CustomExtensions"] == [
        {"ObjectIdentifier": "2.5.29.15", "Value": "AwIBBg==", "Critical": True}
    ]
    pai_app.template(STACK).has_resource_properties(
        "AWS::ACMPCA::Certificate",
        {
            "CertificateAuthorityArn": PAA_ARN,
            "TemplateArn": PCA_TEMPLATE_PAI,
            "SigningAlgorithm": "SHA256WITHECDSA",
            "ApiPassthrough": Match.exact(passthrough),
            "Validity": {"Type": "DAYS", "Value": 3600},
        },
    )


def test_pais_are_activated_with_the_paa_chain_after_the_paa_check(pai_app: Synth) -> None:
    # GIVEN the PAIs WHEN synthesized THEN each activation installs the PAA certificate (from the check) as chain
    template = pai_app.template(STACK)
    template.resource_count_is("AWS::ACMPCA::CertificateAuthorityActivation", 2)
    template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthorityActivation",
        {
            "Status": "ACTIVE",
            "CertificateChain": {"Fn::GetAtt": [Match.string_like_regexp("PaaCheck"), "Certificate"]},
        },
    )
    # AND the check verifies VID, key algorithm and tag of the PAA before any CA is created
    template.has_resource_properties(
        "Custom::MatterPaa",
        {
            "Action": "DescribePaa",
            "Region": "eu-west-1",
            "CertificateAuthorityArn": PAA_ARN,
            "ExpectedVendorId": "FFF2",
            "VendorIdOid": "1.3.6.1.4.1.37244.2.1",
            "ExpectedKeyAlgorithm": "EC_prime256v1",
            "TagKey": "matterCAType",
            "TagValue": "paa",
        },
    )
    for ca in template.find_resources("AWS::ACMPCA::CertificateAuthority").values():
        assert any(d.startswith("PaaCheck") for d in ca["DependsOn"])
        assert ca["DeletionPolicy"] == "Retain"


def test_same_region_custom_resource_cannot_issue(pai_app: Synth) -> None:
    # GIVEN PAIs in the PAA's Region WHEN synthesized THEN the custom resource role only reads the PAA
    policies = str(pai_app.template(STACK).find_resources("AWS::IAM::Role"))
    assert "acm-pca:IssueCertificate" not in policies


def test_pai_outputs_match_the_sample(pai_app: Synth) -> None:
    # GIVEN two PAIs WHEN synthesized THEN PAI<i>, CertArnPAI<i> and CertLinkPAI<i> are output
    template = pai_app.template(STACK)
    for i in range(2):
        for name in (f"PAI{i}", f"CertArnPAI{i}", f"CertLinkPAI{i}"):
            template.has_output(name, {})
    template.has_output(
        "PAI0", {"Value": {"Fn::Join": ["", ["VID=FFF2 PID=8000 CN=Acme PAI 8000 ", Match.any_value()]]}}
    )


def test_cross_region_pais_are_signed_by_the_custom_resource_in_the_paa_region(
    cross_region_pai_app: Synth,
) -> None:
    # GIVEN the deployment Region us-west-2 and a PAA in eu-west-1 WHEN synthesized
    template = cross_region_pai_app.template(STACK)
    assert cross_region_pai_app.stack(STACK).region == "us-west-2"
    # THEN no native certificate (it cannot reach another Region) but one signing request per PAI
    template.resource_count_is("AWS::ACMPCA::Certificate", 0)
    template.resource_count_is("Custom::MatterPaiCertificate", 2)
    for pai in PAIS:
        request = certificate_request(pai.profile(), load(PAI_CONTEXT).pai_validity)  # type: ignore[arg-type]
        template.has_resource_properties(
            "Custom::MatterPaiCertificate",
            {
                "Action": "IssueCertificate",
                "Region": "eu-west-1",
                "CertificateAuthorityArn": PAA_ARN,
                "Request": json.dumps(request, sort_keys=True),
            },
        )
        assert request["TemplateArn"] == PCA_TEMPLATE_PAI
        assert request["ApiPassthrough"] == pai.profile().pca_issue_parts()["ApiPassthrough"]
    template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthorityActivation",
        {"Certificate": {"Fn::GetAtt": [Match.string_like_regexp("PaiCa0Certificate"), "Certificate"]}},
    )


def test_cross_region_signer_may_only_issue_pais_from_the_paa(cross_region_pai_app: Synth) -> None:
    # GIVEN the cross-Region custom resource WHEN synthesized THEN its IssueCertificate needs the PAI template
    roles = cross_region_pai_app.template(STACK).find_resources("AWS::IAM::Role")
    statements = [
        s
        for r in roles.values()
        for p in r["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
    ]
    allow = next(
        s for s in statements if s["Action"] == "acm-pca:IssueCertificate" and s["Effect"] == "Allow"
    )
    assert allow["Resource"] == PAA_ARN
    assert allow["Condition"] == {
        "StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_PAI, "aws:ResourceTag/matterCAType": "paa"}
    }


def test_cross_region_adds_a_regional_audit_stack(cross_region_pai_app: Synth) -> None:
    # GIVEN PAIs in another Region WHEN synthesized THEN that Region gets its own single-Region audit trail
    audit = cross_region_pai_app.template("MatterAudit")
    audit.has_resource_properties(
        "AWS::CloudTrail::Trail", {"IsMultiRegionTrail": False, "EnableLogFileValidation": True}
    )
    assert ":role/MatterPKI/MatterAuditorRole" in str(audit.find_resources("AWS::S3::BucketPolicy"))


def test_same_region_pais_reuse_the_paa_region_audit(pai_app: Synth) -> None:
    # GIVEN PAIs in the PAA's Region WHEN synthesized THEN no second audit stack is created
    assert [s.stack_name for s in pai_app.stacks()] == ["MatterStackPAI", "MatterCsrPipeline"]
