"""Revocation on AWS: Private CA CRL locations, a KMS-backed delegated CRL signer, CRLs signed through KMS.

* Private CA writes each CA's CRL to its bucket at ``crl/<CA id>.crl`` (DER), the CA id being the
  last part of the CA ARN (Private CA user guide, crl-planning.md "CRL structure" / CrlConfiguration).
  The CDK app serves that bucket through CloudFront (stack output ``CrlBaseUrl``), so the dataURL of a
  Private CA PAI is ``<CrlBaseUrl>/crl/<CA id>.crl``. Those CRLs carry no IssuingDistributionPoint.
* For an IDP or a delegate, the delegated signer's key lives in KMS (ECC_NIST_P256), its certificate
  is issued by the Private CA PAI through ApiPassthrough (blank end-entity template, critical
  keyUsage cRLSign), and the CRL is built here from the revocation records the project keeps (a
  Private CA audit report, PcaAuditReport.md) and signed through KMS, then written to the bucket.

Clients are injected; nothing here builds one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.errors import CertificateError, InputError, MatterPkiError
from matter_pki.findings import Severity
from matter_pki.revocation import crl as core
from matter_pki.revocation.lint import lint_crl_signer
from matter_pki.revocation.rules import data_url_problem
from matter_pki.revocation.setgen import check_before_publishing
from matter_pki.revocation.signer import CrlSignerProfile

if TYPE_CHECKING:
    from collections.abc import Sequence

    from botocore.client import BaseClient

    from matter_pki.backends.aws_pca import PrivateCa
    from matter_pki.backends.kms import KmsEcPrivateKey
    from matter_pki.profiles import Validity
    from matter_pki.revocation.setgen import PointReport

#: Where Private CA writes a CA's CRL inside its CRL bucket.
PCA_CRL_PREFIX = "crl/"
#: Where the project writes CRLs signed by a KMS delegated signer (the signer role may write only here).
DELEGATED_CRL_PREFIX = "delegated-crl/"
CRL_BASE_URL_OUTPUT = "CrlBaseUrl"
_CA_ARN = re.compile(
    r"arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority/"
    r"(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
_PCA_REASONS = {
    "UNSPECIFIED": x509.ReasonFlags.unspecified,
    "KEY_COMPROMISE": x509.ReasonFlags.key_compromise,
    "CERTIFICATE_AUTHORITY_COMPROMISE": x509.ReasonFlags.ca_compromise,
    "AFFILIATION_CHANGED": x509.ReasonFlags.affiliation_changed,
    "SUPERSEDED": x509.ReasonFlags.superseded,
    "CESSATION_OF_OPERATION": x509.ReasonFlags.cessation_of_operation,
    "PRIVILEGE_WITHDRAWN": x509.ReasonFlags.privilege_withdrawn,
    "A_A_COMPROMISE": x509.ReasonFlags.aa_compromise,
}
MAX_OUTPUTS_BYTES = 1024 * 1024


def ca_id(ca_arn: str) -> str:
    """The CA id (UUID) of a Private CA ARN; ``input.ca_arn`` otherwise."""
    match = _CA_ARN.fullmatch(ca_arn.strip())
    if match is None:
        raise InputError("input.ca_arn", f"{ca_arn!r} is not a Private CA certificate-authority ARN")
    return match.group("id")


def private_ca_crl_url(base_url: str, ca_arn: str) -> str:
    """``<base>/crl/<CA id>.crl``: where commissioners fetch the CRL Private CA writes for ``ca_arn``."""
    url = f"{base_url.rstrip('/')}/{PCA_CRL_PREFIX}{ca_id(ca_arn)}.crl"
    problem = data_url_problem(url)
    if problem:
        raise InputError("input.crl_url", f"CRL URL {url!r}: {problem}")
    return url


# -- CDK outputs -----------------------------------------------------------------------------------
def load_cdk_outputs(data: bytes) -> dict[str, dict[str, str]]:
    """``cdk deploy --outputs-file`` JSON: ``{stack: {output key: value}}``."""
    if len(data) > MAX_OUTPUTS_BYTES:
        raise InputError("input.cdk_outputs", "the CDK outputs file is too large")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("input.cdk_outputs", f"the CDK outputs file is not JSON: {e}") from e
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise InputError("input.cdk_outputs", "the CDK outputs file must map stack names to output objects")
    return {str(stack): {str(k): str(v) for k, v in outputs.items()} for stack, outputs in doc.items()}


def output(outputs: dict[str, dict[str, str]], key: str, stack: str | None = None) -> str:
    """One output value; ``input.cdk_outputs`` when missing or ambiguous (pass the stack)."""
    stacks = [stack] if stack else list(outputs)
    found = [outputs[s][key] for s in stacks if s in outputs and key in outputs[s]]
    if len(found) != 1:
        where = f"stack {stack!r}" if stack else "any stack"
        what = "no" if not found else "several"
        raise InputError("input.cdk_outputs", f"{what} output {key!r} in {where} of the CDK outputs file")
    return found[0]


def pai_arn_from_outputs(outputs: dict[str, dict[str, str]], index: int, stack: str | None = None) -> str:
    """The CA ARN of ``PAI<index>`` (its output reads ``<description> <ARN>``)."""
    value = output(outputs, f"PAI{index}", stack)
    arn = value.split()[-1] if value.split() else ""
    ca_id(arn)
    return arn


# -- revocation records ----------------------------------------------------------------------------
def revocations_from_audit_report(data: bytes, *, exclude: Sequence[int] = ()) -> list[core.Revocation]:
    """The revoked certificates of a Private CA audit report (JSON form): serial, revokedAt, reason."""
    try:
        rows = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("input.audit_report", f"the audit report is not JSON: {e}") from e
    if not isinstance(rows, list):
        raise InputError("input.audit_report", "a Private CA audit report (JSON) is a list of certificates")
    out: list[core.Revocation] = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("revokedAt"):
            continue
        try:
            serial = int(str(row["serial"]).replace(":", ""), 16)
            when = datetime.strptime(str(row["revokedAt"]), "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
        except (KeyError, ValueError) as e:
            raise InputError("input.audit_report", f"audit report row {i}: unreadable serial or revokedAt: {e}") from e
        reason = _PCA_REASONS.get(str(row.get("revocationReason") or "UNSPECIFIED"))
        if reason is None:
            raise InputError("input.audit_report", f"audit report row {i}: unknown revocationReason {row.get('revocationReason')!r}")
        if serial not in exclude:
            out.append(core.Revocation(serial, when, reason))
    return out


# -- the KMS delegated signer ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KmsSigner:
    """A delegated CRL signer whose key is in KMS and whose certificate a Private CA PAI issued."""

    certificate: x509.Certificate
    pai: x509.Certificate
    paa: x509.Certificate
    certificate_arn: str


def issue_kms_crl_signer(
    pca: PrivateCa,
    key: KmsEcPrivateKey,
    *,
    pai_arn: str,
    validity: Validity,
    token: str,
    common_name: str = "Matter CRL Signer",
) -> KmsSigner:
    """Have the Private CA PAI issue the signer certificate for the KMS key (a CSR signed in KMS), and check it."""
    chain = pca.ca_chain(pai_arn)
    profile = CrlSignerProfile.for_issuer(chain.pai, validity=validity, common_name=common_name)
    csr = x509.CertificateSigningRequestBuilder().subject_name(profile.subject()).sign(key, hashes.SHA256())
    from matter_pki.backends.aws_pca import issue_request

    request = issue_request(ca_arn=pai_arn, csr=csr.public_bytes(Encoding.PEM), parts=profile.pca_issue_parts(), token=token)
    certificate_arn = pca.issue(request)
    der = pca.fetch(pai_arn, certificate_arn)
    cert = x509.load_der_x509_certificate(der)
    if cert.public_key() != key.public_key():
        raise CertificateError("cert.key_mismatch", "the signer certificate Private CA returned does not certify the KMS key")
    errors = [f for f in lint_crl_signer(der, chain.pai_der) if f.severity >= Severity.ERROR]
    if errors:
        raise CertificateError(
            "cert.not_matter_compliant",
            "the signer certificate breaks its profile (does the template keep the passthrough keyUsage?): "
            + "; ".join(f"{f.code}: {f.message}" for f in errors[:5]),
        )
    return KmsSigner(cert, chain.pai, chain.paa, certificate_arn)


def _previous_crl_number(s3: BaseClient, bucket: str, key: str) -> int | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # noqa: BLE001 - NoSuchKey: first publication; anything else is raised below
        code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404"):
            return None
        from matter_pki.backends.aws_pca import wrap_aws_error

        raise wrap_aws_error(e, operation="s3:GetObject", prefix="storage", bucket=bucket, key=key) from e
    try:
        crl = x509.load_der_x509_crl(body)
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except (ValueError, x509.ExtensionNotFound):
        return None


@dataclass(frozen=True, slots=True)
class PublishedCrl:
    """A CRL written to the bucket, and the dry run it passed before."""

    der: bytes
    bucket: str
    key: str
    crl_number: int
    revoked: int
    report: PointReport


def publish_kms_crl(
    *,
    s3: BaseClient,
    key: KmsEcPrivateKey,
    signer: x509.Certificate,
    pai: x509.Certificate,
    paa: x509.Certificate,
    revocations: Sequence[core.Revocation],
    bucket: str,
    object_key: str,
    url: str,
    now: datetime,
    next_update_days: int = 30,
) -> PublishedCrl:
    """Build the indirect CRL (IDP = ``url``), sign it in KMS, check it with the SDK's rules, write it.

    The CRL Number is the publication time in seconds, and always above the number of the CRL the
    object holds now: it never goes back or repeats, whatever the clock does. Nothing is written
    when the dry run (``check_before_publishing``) fails.
    """
    if not object_key.startswith(DELEGATED_CRL_PREFIX) or ".." in object_key:
        raise InputError("input.crl_key", f"delegated CRLs are written under {DELEGATED_CRL_PREFIX!r}, not {object_key!r}")
    previous = _previous_crl_number(s3, bucket, object_key)
    number = max(int(now.timestamp()), (previous or 0) + 1)
    params = core.CrlParams(this_update=now, next_update=now + timedelta(days=next_update_days), crl_number=number, idp_url=url)
    signer_serial = signer.serial_number
    scope = core.CrlScope(pai, [r for r in revocations if r.serial != signer_serial])
    crl_der = core.build_indirect_crl(signer, key, [scope], params)
    report = check_before_publishing(crl_der, signer=signer, delegator=pai, paa=paa, is_paa=False, url=url, vid=None, now=now)
    try:
        s3.put_object(Bucket=bucket, Key=object_key, Body=crl_der, ContentType="application/pkix-crl")
    except Exception as e:
        if isinstance(e, MatterPkiError):
            raise
        from matter_pki.backends.aws_pca import wrap_aws_error

        raise wrap_aws_error(e, operation="s3:PutObject", prefix="storage", bucket=bucket, key=object_key) from e
    return PublishedCrl(crl_der, bucket, object_key, number, len(scope.revocations), report)


def check_signer_certificate(data: bytes, *, pai: x509.Certificate) -> x509.Certificate:
    """A stored signer certificate (PEM/DER), checked against its PAI."""
    from matter_pki.certparse import certificate_der_from_bytes

    try:
        cert = x509.load_der_x509_certificate(certificate_der_from_bytes(data))
    except ValueError as e:
        raise CertificateError("cert.unreadable", f"the signer certificate cannot be read: {e}") from e
    errors = [f for f in lint_crl_signer(cert.public_bytes(Encoding.DER), pai.public_bytes(Encoding.DER)) if f.severity >= Severity.ERROR]
    if errors:
        raise CertificateError("cert.not_matter_compliant", f"the signer certificate: {errors[0].code}: {errors[0].message}")
    return cert


__all__ = [
    "CRL_BASE_URL_OUTPUT",
    "DELEGATED_CRL_PREFIX",
    "PCA_CRL_PREFIX",
    "KmsSigner",
    "PublishedCrl",
    "ca_id",
    "check_signer_certificate",
    "issue_kms_crl_signer",
    "load_cdk_outputs",
    "output",
    "pai_arn_from_outputs",
    "private_ca_crl_url",
    "publish_kms_crl",
    "revocations_from_audit_report",
]
