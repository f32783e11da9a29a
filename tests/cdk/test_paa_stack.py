"""PaaStack template: the PAA CA, its certificate from the profile, the CRL bucket and the four roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Match  # noqa: E402
from matter_cdk.config import load  # noqa: E402

from matter_pki.profiles import PCA_TEMPLATE_DAC, PCA_TEMPLATE_PAA, PCA_TEMPLATE_PAI  # noqa: E402
from tests.cdk.conftest import PAA_ARN, PAA_CONTEXT  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth

STACK = "MatterStackPAA"


def _profile():  # noqa: ANN202 - test helper
    config = load(PAA_CONTEXT)
    assert config.paa is not None
    return config.paa.profile()


def test_paa_ca_is_p256_fips_with_matter_subject_and_crl_without_cdp(paa_app: Synth) -> None:
    # GIVEN generatePaa=1 WHEN synthesized THEN the root CA has the Matter CA configuration
    template = paa_app.template(STACK)
    template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority",
        {
            "Type": "ROOT",
            "KeyAlgorithm": "EC_prime256v1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            "KeyStorageSecurityStandard": "FIPS_140_2_LEVEL_3_OR_HIGHER",
            "Subject": {
                "CustomAttributes": [
                    {"ObjectIdentifier": "2.5.4.3", "Value": "Acme Matter PAA"},
                    {"ObjectIdentifier": "2.5.4.10", "Value": "Acme"},
                    {"ObjectIdentifier": "1.3.6.1.4.1.37244.2.1", "Value": "FFF2"},
                ]
            },
            "RevocationConfiguration": {
                "CrlConfiguration": Match.object_like(
                    {
                        "Enabled": True,
                        "S3BucketName": {"Ref": Match.string_like_regexp("CrlBucket")},
                        "S3ObjectAcl": "BUCKET_OWNER_FULL_CONTROL",
                        "CrlDistributionPointExtensionConfiguration": {"OmitExtension": True},
                    }
                )
            },
            "Tags": [{"Key": "matterCAType", "Value": "paa"}],
        },
    )
    # AND the subject is exactly the profile's (single source of truth)
    template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthority", {"Subject": _profile().pca_ca_configuration()["Subject"]}
    )


def test_paa_certificate_uses_root_template_and_profile_passthrough(paa_app: Synth) -> None:
    # GIVEN the PAA profile WHEN synthesized THEN the self-issued certificate uses its template and passthrough
    passthrough = _profile().pca_issue_parts()["ApiPassthrough"]
    assert passthrough["Extensions"]["CustomExtensions"] == []  # the root template sets KU itself
    template = paa_app.template(STACK)
    template.has_resource_properties(
        "AWS::ACMPCA::Certificate",
        {
            "TemplateArn": "arn:aws:acm-pca:::template/RootCACertificate_APIPassthrough/V1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            # the API refuses an empty CustomExtensions list, so only the subject is passed
            "ApiPassthrough": Match.exact({"Subject": passthrough["Subject"]}),
            "Validity": {"Type": "DAYS", "Value": 7300},
            "CertificateAuthorityArn": {"Fn::GetAtt": [Match.string_like_regexp("PaaCaAuthority"), "Arn"]},
            "CertificateSigningRequest": {
                "Fn::GetAtt": [Match.string_like_regexp("PaaCaAuthority"), "CertificateSigningRequest"]
            },
        },
    )
    assert PCA_TEMPLATE_PAA == "arn:aws:acm-pca:::template/RootCACertificate_APIPassthrough/V1"
    template.has_resource_properties(
        "AWS::ACMPCA::CertificateAuthorityActivation",
        {
            "Status": "ACTIVE",
            "Certificate": {"Fn::GetAtt": [Match.string_like_regexp("PaaCaCertificate"), "Certificate"]},
        },
    )


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::ACMPCA::CertificateAuthority",
        "AWS::ACMPCA::Certificate",
        "AWS::ACMPCA::CertificateAuthorityActivation",
    ],
)
def test_ca_resources_are_retained(paa_app: Synth, resource_type: str) -> None:
    # GIVEN the PAA resources WHEN the stack is deleted or the CA replaced THEN CloudFormation keeps them
    paa_app.template(STACK).has_resource(
        resource_type, {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_crl_bucket_is_private_and_only_private_ca_writes(paa_app: Synth) -> None:
    # GIVEN the CRL bucket WHEN synthesized THEN public access is blocked and versioning is on
    template = paa_app.template(STACK)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )
    # AND only acm-pca of this account may put CRLs under crl/, over TLS
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ),
                        Match.object_like(
                            {
                                "Sid": "PrivateCaWritesCrls",
                                "Principal": {"Service": "acm-pca.amazonaws.com"},
                                "Action": ["s3:PutObject", "s3:PutObjectAcl"],
                                "Condition": Match.object_like(
                                    {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                                ),
                            }
                        ),
                    ]
                )
            }
        },
    )


def test_roles_live_under_matter_pki_path(paa_app: Synth) -> None:
    # GIVEN the four roles WHEN synthesized THEN each has the sample's name and the /MatterPKI/ path
    template = paa_app.template(STACK)
    for name in ("MatterIssueDACRole", "MatterIssuePAIRole", "MatterManagePAARole", "MatterAuditorRole"):
        template.has_resource_properties("AWS::IAM::Role", {"RoleName": name, "Path": "/MatterPKI/"})
    roles = template.find_resources("AWS::IAM::Role")
    assert all(r["Properties"]["Path"] == "/MatterPKI/" for r in roles.values())


def _statements(template, role_name: str) -> list[dict]:  # noqa: ANN001
    for resource in template.find_resources("AWS::IAM::Role").values():
        if resource["Properties"].get("RoleName") == role_name:
            return [s for p in resource["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    raise AssertionError(role_name)


def test_issue_dac_role_only_issues_dacs_from_pais(paa_app: Synth) -> None:
    # GIVEN MatterIssueDACRole WHEN synthesized THEN IssueCertificate needs the DAC template and a PAI tag
    statements = _statements(paa_app.template(STACK), "MatterIssueDACRole")
    allow = next(
        s for s in statements if s["Effect"] == "Allow" and s["Action"] == "acm-pca:IssueCertificate"
    )
    assert allow["Condition"] == {
        "StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_DAC, "aws:ResourceTag/matterCAType": "pai"}
    }
    deny = next(s for s in statements if s["Effect"] == "Deny")
    assert deny["Action"] == "acm-pca:IssueCertificate"
    assert deny["Condition"] == {"StringNotEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_DAC}}


def test_issue_pai_role_only_signs_pais_with_the_paa(paa_app: Synth) -> None:
    # GIVEN MatterIssuePAIRole WHEN synthesized THEN IssueCertificate is on the PAA with the PAI template only
    statements = _statements(paa_app.template(STACK), "MatterIssuePAIRole")
    allow = next(
        s for s in statements if s["Effect"] == "Allow" and s["Action"] == "acm-pca:IssueCertificate"
    )
    logical_id, attribute = allow["Resource"]["Fn::GetAtt"]
    assert logical_id.startswith("PaaCaAuthority") and attribute == "Arn"
    assert allow["Condition"] == {
        "StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_PAI, "aws:ResourceTag/matterCAType": "paa"}
    }
    create = next(s for s in statements if "acm-pca:CreateCertificateAuthority" in s["Action"])
    assert create["Condition"] == {"StringEquals": {"aws:RequestTag/matterCAType": "pai"}}


def test_auditor_reads_only_matter_tagged_cas(paa_app: Synth) -> None:
    # GIVEN MatterAuditorRole WHEN synthesized THEN CA reads are limited to matterCAType paa/pai, no writes
    statements = _statements(paa_app.template(STACK), "MatterAuditorRole")
    reads = next(s for s in statements if s.get("Sid") == "ReadMatterCas")
    assert reads["Condition"] == {"StringEquals": {"aws:ResourceTag/matterCAType": ["paa", "pai"]}}
    actions = [
        a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert not [
        a for a in actions if a.split(":")[1].startswith(("Issue", "Revoke", "Delete", "Update", "Put"))
    ]


def test_outputs_match_the_sample(paa_app: Synth) -> None:
    # GIVEN the PAA stack WHEN synthesized THEN the sample's outputs exist
    template = paa_app.template(STACK)
    for name in ("PAA", "PAACertArn", "PAACertLink", "CrlBucketName"):
        template.has_output(name, {})
    template.has_output(
        "PAA", {"Value": {"Fn::Join": ["", ["VID=FFF2 CN=Acme Matter PAA ", Match.any_value()]]}}
    )


def test_existing_paa_gets_roles_but_no_new_ca(existing_paa_app: Synth) -> None:
    # GIVEN only paaArn (and a prefix) WHEN synthesized THEN no CA is created and roles are prefixed and scoped
    template = existing_paa_app.template("LabMatterStackPAA")
    template.resource_count_is("AWS::ACMPCA::CertificateAuthority", 0)
    template.has_resource_properties(
        "AWS::IAM::Role", {"RoleName": "LabMatterManagePAARole", "Path": "/MatterPKI/"}
    )
    statements = _statements(template, "LabMatterIssuePAIRole")
    allow = next(
        s for s in statements if s["Effect"] == "Allow" and s["Action"] == "acm-pca:IssueCertificate"
    )
    assert allow["Resource"] == PAA_ARN
