"""MatterCertificateAuthority: a PAA or PAI on AWS Private CA, rendered from a matter_pki profile."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from aws_cdk import CfnTag, RemovalPolicy
from aws_cdk import aws_acmpca as pca
from constructs import Construct

from matter_cdk import CA_TYPE_PAA, CA_TYPE_PAI, CA_TYPE_TAG
from matter_pki.profiles import PCA_KEY_STORAGE, PaaProfile, PcaApiPassthrough, PcaCustomAttribute

if TYPE_CHECKING:
    from aws_cdk import aws_s3 as s3

    from matter_cdk.config import CaValidity
    from matter_pki.profiles import PaiProfile

#: Days a CRL stays valid; Private CA regenerates it well before (as in the sample).
CRL_EXPIRATION_DAYS = 90


class CertificateRequest(TypedDict):
    """The profile-determined IssueCertificate parameters, with the CA-certificate validity."""

    TemplateArn: str
    SigningAlgorithm: str
    ApiPassthrough: PcaApiPassthrough
    Validity: dict[str, str | int]


def api_passthrough(profile: PaaProfile | PaiProfile) -> PcaApiPassthrough:
    """The profile's ApiPassthrough minus empty lists (the API requires 1..150 CustomExtensions)."""
    passthrough = profile.pca_issue_parts()["ApiPassthrough"]
    if passthrough["Extensions"]["CustomExtensions"]:
        return passthrough
    return {"Subject": passthrough["Subject"]}


def certificate_request(profile: PaaProfile | PaiProfile, validity: CaValidity) -> CertificateRequest:
    """TemplateArn, SigningAlgorithm and ApiPassthrough from the profile; validity from the context."""
    parts = profile.pca_issue_parts()
    return {
        "TemplateArn": parts["TemplateArn"],
        "SigningAlgorithm": parts["SigningAlgorithm"],
        "ApiPassthrough": api_passthrough(profile),
        "Validity": validity.pca(),
    }


def _attributes(attrs: list[PcaCustomAttribute]) -> list[pca.CfnCertificate.CustomAttributeProperty]:
    return [
        pca.CfnCertificate.CustomAttributeProperty(object_identifier=a["ObjectIdentifier"], value=a["Value"])
        for a in attrs
    ]


def cfn_api_passthrough(passthrough: PcaApiPassthrough) -> pca.CfnCertificate.ApiPassthroughProperty:
    """The API-shaped passthrough as the L1 struct (same field names in CloudFormation)."""
    extensions = passthrough.get("Extensions")
    return pca.CfnCertificate.ApiPassthroughProperty(
        subject=pca.CfnCertificate.SubjectProperty(
            custom_attributes=_attributes(passthrough["Subject"]["CustomAttributes"])
        ),
        extensions=None
        if not extensions
        else pca.CfnCertificate.ExtensionsProperty(
            custom_extensions=[
                pca.CfnCertificate.CustomExtensionProperty(
                    object_identifier=e["ObjectIdentifier"], value=e["Value"], critical=e["Critical"]
                )
                for e in extensions["CustomExtensions"]
            ]
        ),
    )


class MatterCertificateAuthority(Construct):
    """A Matter CA (ROOT for a PAA, SUBORDINATE for a PAI): EC P-256, FIPS 140-2 level 3, CRL without CDP.

    The CA, its certificate and its activation are retained when the stack is deleted: a CA
    holds the only copy of its key and deleting it is a PKI decision, not a stack operation.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile: PaaProfile | PaiProfile,
        crl_bucket: s3.IBucket,
        validity: CaValidity,
    ) -> None:
        super().__init__(scope, construct_id)
        self.profile = profile
        self.validity = validity
        is_root = isinstance(profile, PaaProfile)
        self.ca_type = CA_TYPE_PAA if is_root else CA_TYPE_PAI
        configuration = profile.pca_ca_configuration()
        self.authority = pca.CfnCertificateAuthority(
            self,
            "Authority",
            type="ROOT" if is_root else "SUBORDINATE",
            key_algorithm=configuration["KeyAlgorithm"],
            signing_algorithm=configuration["SigningAlgorithm"],
            key_storage_security_standard=PCA_KEY_STORAGE,
            usage_mode="GENERAL_PURPOSE",
            subject=pca.CfnCertificateAuthority.SubjectProperty(
                custom_attributes=[
                    pca.CfnCertificateAuthority.CustomAttributeProperty(
                        object_identifier=a["ObjectIdentifier"], value=a["Value"]
                    )
                    for a in configuration["Subject"]["CustomAttributes"]
                ]
            ),
            revocation_configuration=pca.CfnCertificateAuthority.RevocationConfigurationProperty(
                crl_configuration=pca.CfnCertificateAuthority.CrlConfigurationProperty(
                    enabled=True,
                    expiration_in_days=CRL_EXPIRATION_DAYS,
                    s3_bucket_name=crl_bucket.bucket_name,
                    # Works with S3 Block Public Access; public reads go through CloudFront (README).
                    s3_object_acl="BUCKET_OWNER_FULL_CONTROL",
                    # matter-rules §11: no CDP in issued certificates (chip limits CDP URIs to 100 chars).
                    crl_distribution_point_extension_configuration=pca.CfnCertificateAuthority.CrlDistributionPointExtensionConfigurationProperty(
                        omit_extension=True
                    ),
                )
            ),
            tags=[CfnTag(key=CA_TYPE_TAG, value=self.ca_type)],
        )
        self.authority.apply_removal_policy(RemovalPolicy.RETAIN)
        if crl_bucket.policy is not None:
            # Private CA checks that it can write the CRL when the CA is created.
            self.authority.node.add_dependency(crl_bucket.policy)
        self.certificate: pca.CfnCertificate | None = None
        self.activation: pca.CfnCertificateAuthorityActivation | None = None

    @property
    def arn(self) -> str:
        """The CA ARN."""
        return self.authority.attr_arn

    @property
    def csr(self) -> str:
        """The CA's certificate signing request (PEM)."""
        return self.authority.attr_certificate_signing_request

    def certificate_request(self) -> CertificateRequest:
        """IssueCertificate parameters for this CA's own certificate."""
        return certificate_request(self.profile, self.validity)

    def issue_with_cloudformation(self, issuer_arn: str) -> str:
        """Issue this CA's certificate with AWS::ACMPCA::Certificate from ``issuer_arn`` (same Region); PEM."""
        request = self.certificate_request()
        validity = request["Validity"]
        self.certificate = pca.CfnCertificate(
            self,
            "Certificate",
            certificate_authority_arn=issuer_arn,
            certificate_signing_request=self.csr,
            signing_algorithm=request["SigningAlgorithm"],
            template_arn=request["TemplateArn"],
            api_passthrough=cfn_api_passthrough(request["ApiPassthrough"]),
            validity=pca.CfnCertificate.ValidityProperty(
                type=str(validity["Type"]), value=int(validity["Value"])
            ),
        )
        self.certificate.apply_removal_policy(RemovalPolicy.RETAIN)
        return self.certificate.attr_certificate

    def activate(self, certificate: str, chain: str | None = None) -> pca.CfnCertificateAuthorityActivation:
        """Install the CA certificate (and the issuer chain for a PAI) and set the CA ACTIVE."""
        self.activation = pca.CfnCertificateAuthorityActivation(
            self,
            "Activation",
            certificate_authority_arn=self.arn,
            certificate=certificate,
            certificate_chain=chain,
            status="ACTIVE",
        )
        # Deleting the activation would disable the CA; keep it with the CA.
        self.activation.apply_removal_policy(RemovalPolicy.RETAIN)
        return self.activation
