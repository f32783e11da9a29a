"""MatterCrlDistribution: CloudFront with origin access control in front of a private CRL bucket.

Private CA writes each CA's CRL to ``crl/<CA id>.crl`` in the CRL bucket (user guide, "Planning a
certificate revocation list (CRL)": "crl/<CA ID>.crl" unless a custom path is configured). The
bucket keeps Block Public Access; only this distribution may read it (origin access control, a bucket
policy naming the distribution as ``AWS:SourceArn``). The revocation point's ``dataURL`` for a CA
is ``<CrlBaseUrl>/crl/<CA id>.crl``, where ``<CA id>`` is the last part of the CA's ARN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from constructs import Construct

from matter_cdk.constructs.crl_bucket import CRL_PREFIX
from matter_cdk.constructs.nag import acknowledge

if TYPE_CHECKING:
    from matter_cdk.config import MatterConfig

#: Private CA refreshes a CRL about 30 minutes after a revocation (API reference, RevokeCertificate);
#: the edge keeps a copy for at most five minutes.
CRL_CACHE_SECONDS = 300


def crl_path(ca_id: str) -> str:
    """Where Private CA writes the CRL of the CA whose ARN ends in ``ca_id``."""
    return f"{CRL_PREFIX}{ca_id}.crl"


class MatterCrlDistribution(Construct):
    """A CloudFront distribution serving the CRL bucket over HTTP and HTTPS, read-only (GET/HEAD)."""

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        cache = cloudfront.CachePolicy(
            self,
            "CrlCache",
            comment="Matter PKI CRLs: short edge caching so a revocation shows within minutes of the CRL update",
            default_ttl=Duration.seconds(CRL_CACHE_SECONDS),
            max_ttl=Duration.seconds(CRL_CACHE_SECONDS),
            min_ttl=Duration.seconds(0),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Matter PKI CRLs (Private CA writes crl/<CA id>.crl)",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(
                    bucket, origin_access_levels=[cloudfront.AccessLevel.READ]
                ),
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                # CRLs are signed; commissioners and the DCL fetch them over http:// or https://.
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.ALLOW_ALL,
                cache_policy=cache,
            ),
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
        )
        #: ``https://<distribution domain>``; a CA's CRL is at ``<base>/crl/<CA id>.crl``.
        self.base_url = f"https://{self.distribution.distribution_domain_name}"
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "CRLs must be reachable by every commissioner and the DCL, wherever they are: no geo restriction.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR2",
            "The distribution serves signed, public CRL files read-only (GET/HEAD): a WAF adds cost without protecting anything.",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR3",
            "The objects are public CRLs; changes to the distribution are recorded by CloudTrail, and access logs add cost "
            "without audit value (as for the CRL bucket itself).",
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "The default *.cloudfront.net certificate cannot pin TLS 1.2; attach a custom domain with an ACM certificate "
            "to enforce it. CRLs are signed and also served over plain HTTP by design (RFC 5280 4.2.1.13).",
        )


def publish_crls(stack: Stack, config: MatterConfig, bucket: s3.IBucket) -> MatterCrlDistribution | None:
    """With ``crlDistribution=1``: the distribution and the ``CrlBaseUrl`` output (for DCL revocation points)."""
    if not config.crl_distribution:
        return None
    distribution = MatterCrlDistribution(stack, "CrlDistribution", bucket=bucket)
    CfnOutput(
        stack,
        "CrlBaseUrl",
        value=distribution.base_url,
        description="CRL base URL: a CA's CRL (the DCL revocation point dataURL) is <CrlBaseUrl>/crl/<CA id>.crl",
    )
    return distribution
