"""The KMS-backed delegated CRL signer (delegatedCrlSigner=1): key spec, least-privilege role, cdk-nag clean."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

pytest.importorskip("aws_cdk")

from aws_cdk.assertions import Annotations, Match  # noqa: E402

from matter_pki.revocation.signer import PCA_TEMPLATE_CRL_SIGNER  # noqa: E402
from tests.cdk.conftest import PAI_CONTEXT, synth  # noqa: E402

if TYPE_CHECKING:
    from tests.cdk.conftest import Synth


@pytest.fixture(scope="module")
def signer_app(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The PAI app with the delegated CRL signer."""
    return synth(tmp_path_factory, {**PAI_CONTEXT, "delegatedCrlSigner": "1"})


def test_key_is_an_ecc_p256_signing_key_kept_on_delete(signer_app: Synth) -> None:
    template = signer_app.template("MatterStackPAI")
    template.has_resource("AWS::KMS::Key", {
        "Properties": Match.object_like({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
        "DeletionPolicy": "Retain",
    })  # fmt: skip
    template.has_output("*", {"Description": "KMS key of the delegated CRL signer"})


def test_publisher_role_is_least_privilege(signer_app: Synth) -> None:
    template = signer_app.template("MatterStackPAI")
    policy = template.find_resources("AWS::IAM::Policy", {"Properties": {"PolicyDocument": Match.any_value()}})
    statements = {s["Sid"]: s for p in policy.values() for s in p["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}
    sign = statements["SignWithTheCrlSignerKey"]
    assert sign["Action"] == "kms:Sign" and sign["Condition"] == {"StringEquals": {"kms:SigningAlgorithm": "ECDSA_SHA_256"}}
    assert "Fn::GetAtt" in str(sign["Resource"]) and "*" not in str(sign["Resource"])
    issue = statements["IssueTheSignerWithTheBlankEndEntityTemplate"]
    assert issue["Action"] == "acm-pca:IssueCertificate"
    assert issue["Condition"] == {"StringEquals": {"acm-pca:TemplateArn": PCA_TEMPLATE_CRL_SIGNER}}
    assert len(issue["Resource"]) == 2  # the two PAIs, nothing else
    publish = statements["PublishDelegatedCrls"]
    assert sorted(publish["Action"]) == ["s3:GetObject", "s3:PutObject"] and "/delegated-crl/*" in str(publish["Resource"])
    actions = {a for s in statements.values() for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.endswith("*") for a in actions)


def test_off_by_default_and_nag_clean(signer_app: Synth, pai_app: Synth) -> None:
    assert pai_app.template("MatterStackPAI").find_resources("AWS::KMS::Key", {"Properties": {"KeySpec": "ECC_NIST_P256"}}) == {}
    for stack in signer_app.stacks():
        annotations = Annotations.from_stack(stack)
        assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
        assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []
