"""MatterPkiRoles: the four human/automation roles of the Matter PKI, least privilege, under /MatterPKI/."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from matter_cdk import CA_TYPE_PAA, CA_TYPE_PAI, CA_TYPE_TAG, ROLE_PATH
from matter_cdk.constructs.nag import acknowledge, arn_pattern
from matter_pki.profiles import PCA_TEMPLATE_DAC, PCA_TEMPLATE_PAI

ISSUE_DAC_ROLE = "MatterIssueDACRole"
ISSUE_PAI_ROLE = "MatterIssuePAIRole"
MANAGE_PAA_ROLE = "MatterManagePAARole"
AUDITOR_ROLE = "MatterAuditorRole"
AUDIT_LOG_GROUP = "MatterAudit"

TEMPLATE_CONDITION_KEY = "acm-pca:TemplateArn"
CA_TAG_CONDITION_KEY = f"aws:ResourceTag/{CA_TYPE_TAG}"


def role_arn(scope: Construct, prefix: str, name: str) -> str:
    """ARN of a role this app names, for stacks that only refer to it (other Region, other stack)."""
    return Stack.of(scope).format_arn(
        service="iam", region="", resource="role", resource_name=f"{ROLE_PATH.strip('/')}/{prefix}{name}"
    )


def certificate_authorities_arn(scope: Construct) -> str:
    """Every Private CA of this account, in any Region (narrowed by tag conditions)."""
    return Stack.of(scope).format_arn(
        service="acm-pca",
        region="*",
        resource="certificate-authority",
        resource_name="*",
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def issue_with_template(ca_arns: list[str], template_arn: str, ca_type: str) -> list[iam.PolicyStatement]:
    """IssueCertificate on ``ca_arns`` with exactly ``template_arn``, only on CAs tagged ``ca_type``; deny any other template."""
    return [
        iam.PolicyStatement(
            sid=f"Issue{ca_type.capitalize()}SignedWithTemplate",
            actions=["acm-pca:IssueCertificate"],
            resources=ca_arns,
            conditions={
                "StringEquals": {TEMPLATE_CONDITION_KEY: template_arn, CA_TAG_CONDITION_KEY: ca_type}
            },
        ),
        iam.PolicyStatement(
            sid=f"DenyOtherTemplatesOn{ca_type.capitalize()}",
            effect=iam.Effect.DENY,
            actions=["acm-pca:IssueCertificate"],
            resources=ca_arns,
            conditions={"StringNotEquals": {TEMPLATE_CONDITION_KEY: template_arn}},
        ),
    ]


class MatterPkiRoles(Construct):
    """MatterManagePAARole, MatterIssuePAIRole, MatterIssueDACRole and MatterAuditorRole.

    Assumable by principals of this account that IAM policies allow to (as in the sample). The
    audit bucket and key name the auditor role in their resource policies.
    """

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str, paa_arn: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        account = iam.AccountPrincipal(stack.account)
        all_cas = certificate_authorities_arn(self)
        list_cas = iam.PolicyStatement(
            sid="ListCas", actions=["acm-pca:ListCertificateAuthorities"], resources=["*"]
        )

        self.manage_paa = iam.Role(
            self,
            "ManagePAA",
            role_name=f"{prefix}{MANAGE_PAA_ROLE}",
            path=ROLE_PATH,
            assumed_by=account,
            description="Matter PKI: manage the PAA (update, revoke PAIs, read)",
            inline_policies={
                "MatterManagePAA": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ManagePaa",
                            actions=[
                                "acm-pca:DescribeCertificateAuthority",
                                "acm-pca:GetCertificate",
                                "acm-pca:GetCertificateAuthorityCertificate",
                                "acm-pca:GetCertificateAuthorityCsr",
                                "acm-pca:ListTags",
                                "acm-pca:RevokeCertificate",
                                "acm-pca:UpdateCertificateAuthority",
                            ],
                            resources=[paa_arn],
                            conditions={"StringEquals": {CA_TAG_CONDITION_KEY: CA_TYPE_PAA}},
                        ),
                        list_cas,
                    ]
                )
            },
        )

        self.issue_pai = iam.Role(
            self,
            "IssuePAI",
            role_name=f"{prefix}{ISSUE_PAI_ROLE}",
            path=ROLE_PATH,
            assumed_by=account,
            description="Matter PKI: create PAIs and sign them with the PAA (PAI template only)",
            inline_policies={
                "MatterIssuePAI": iam.PolicyDocument(
                    statements=[
                        *issue_with_template([paa_arn], PCA_TEMPLATE_PAI, CA_TYPE_PAA),
                        iam.PolicyStatement(
                            sid="ReadPaa",
                            actions=[
                                "acm-pca:DescribeCertificateAuthority",
                                "acm-pca:GetCertificate",
                                "acm-pca:GetCertificateAuthorityCertificate",
                            ],
                            resources=[paa_arn],
                        ),
                        iam.PolicyStatement(
                            sid="CreateTaggedPai",
                            actions=["acm-pca:CreateCertificateAuthority", "acm-pca:TagCertificateAuthority"],
                            resources=["*"],
                            conditions={"StringEquals": {f"aws:RequestTag/{CA_TYPE_TAG}": CA_TYPE_PAI}},
                        ),
                        iam.PolicyStatement(
                            sid="InstallPaiCertificate",
                            actions=[
                                "acm-pca:DescribeCertificateAuthority",
                                "acm-pca:GetCertificateAuthorityCertificate",
                                "acm-pca:GetCertificateAuthorityCsr",
                                "acm-pca:ImportCertificateAuthorityCertificate",
                                "acm-pca:UpdateCertificateAuthority",
                            ],
                            resources=[all_cas],
                            conditions={"StringEquals": {CA_TAG_CONDITION_KEY: CA_TYPE_PAI}},
                        ),
                        list_cas,
                    ]
                )
            },
        )

        self.issue_dac = iam.Role(
            self,
            "IssueDAC",
            role_name=f"{prefix}{ISSUE_DAC_ROLE}",
            path=ROLE_PATH,
            assumed_by=account,
            description="Matter PKI: issue and revoke DACs from PAIs (DAC template only)",
            inline_policies={
                "MatterIssueDAC": iam.PolicyDocument(
                    statements=[
                        *issue_with_template([all_cas], PCA_TEMPLATE_DAC, CA_TYPE_PAI),
                        iam.PolicyStatement(
                            sid="ReadAndRevokeOnPais",
                            actions=[
                                "acm-pca:DescribeCertificateAuthority",
                                "acm-pca:GetCertificate",
                                "acm-pca:GetCertificateAuthorityCertificate",
                                "acm-pca:RevokeCertificate",
                            ],
                            resources=[all_cas],
                            conditions={"StringEquals": {CA_TAG_CONDITION_KEY: CA_TYPE_PAI}},
                        ),
                        list_cas,
                    ]
                )
            },
        )

        audit_log_groups = stack.format_arn(
            service="logs",
            region="*",
            resource="log-group",
            resource_name=f"{prefix}{AUDIT_LOG_GROUP}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.auditor = iam.Role(
            self,
            "Auditor",
            role_name=f"{prefix}{AUDITOR_ROLE}",
            path=ROLE_PATH,
            assumed_by=account,
            description="Matter PKI: read-only audit of the CAs, the audit trail and the audit bucket",
            inline_policies={
                "MatterAuditor": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="ReadMatterCas",
                            actions=[
                                "acm-pca:CreateCertificateAuthorityAuditReport",
                                "acm-pca:DescribeCertificateAuthority",
                                "acm-pca:DescribeCertificateAuthorityAuditReport",
                                "acm-pca:GetCertificate",
                                "acm-pca:GetCertificateAuthorityCertificate",
                                "acm-pca:GetCertificateAuthorityCsr",
                                "acm-pca:GetPolicy",
                                "acm-pca:ListPermissions",
                                "acm-pca:ListTags",
                            ],
                            resources=[all_cas],
                            conditions={"StringEquals": {CA_TAG_CONDITION_KEY: [CA_TYPE_PAA, CA_TYPE_PAI]}},
                        ),
                        list_cas,
                        iam.PolicyStatement(
                            sid="ReadAuditLogGroup",
                            actions=[
                                "logs:DescribeLogStreams",
                                "logs:FilterLogEvents",
                                "logs:GetLogEvents",
                                "logs:StartQuery",
                            ],
                            resources=[audit_log_groups],
                        ),
                        iam.PolicyStatement(
                            sid="ReadTrailAndQueries",
                            actions=[
                                "cloudtrail:DescribeTrails",
                                "cloudtrail:GetEventSelectors",
                                "cloudtrail:GetTrailStatus",
                                "cloudtrail:LookupEvents",
                                "logs:DescribeLogGroups",
                                "logs:DescribeMetricFilters",
                                "logs:GetQueryResults",
                                "logs:StopQuery",
                            ],
                            resources=["*"],
                        ),
                    ]
                )
            },
        )

        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "ListCertificateAuthorities, CreateCertificateAuthority (narrowed by aws:RequestTag/matterCAType=pai), "
            "the CloudTrail reads and the Logs query reads have no resource-level permissions.",
            applies_to=["Resource::*"],
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "PAIs are created later, in any Region, so their ARNs cannot be listed here: every statement on "
            "certificate-authority/* is narrowed by aws:ResourceTag/matterCAType, and IssueCertificate also by "
            "the exact acm-pca:TemplateArn.",
            applies_to=[arn_pattern("acm-pca", r"\*", r"certificate-authority/\*")],
        )
        acknowledge(
            self,
            "AwsSolutions-IAM5",
            "The MatterAudit log group is named exactly; ':*' is how IAM addresses its log streams, in each "
            "Region that has an audit stack.",
            applies_to=[arn_pattern("logs", r"\*", rf"log-group:{prefix}{AUDIT_LOG_GROUP}:\*")],
        )
