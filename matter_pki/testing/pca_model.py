"""A MODEL of AWS Private CA ``IssueCertificate`` for the templates matter-pki uses.

This is not AWS. moto accepts these requests but ignores subject, passthrough extensions,
validity and signing algorithm, so it cannot show what a real Private CA returns. This model
follows the documented template behaviour (Private CA user guide, "Understanding certificate
templates", and matter-rules.md §11) so tests can reason about the certificate a request
describes:

* ``BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough/V1``: critical
  basicConstraints CA:FALSE, SKI from the CSR key, AKI = issuing CA's SKI, plus passthrough.
* ``BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1``: critical CA:TRUE pathLen 0,
  SKI, AKI, plus passthrough.
* ``RootCACertificate_APIPassthrough/V1``: critical CA:TRUE (no pathLen), critical keyUsage
  digitalSignature+keyCertSign+cRLSign, SKI, no AKI unless passed through.

Assumptions (not documented by AWS, chosen to match chip-cert): extension order BC, KU, SKI,
AKI; subject RDNs in ``CustomAttributes`` order as UTF8String; SKI by RFC 5280 method 1.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from matter_pki.profiles import PCA_TEMPLATE_DAC, PCA_TEMPLATE_PAA, PCA_TEMPLATE_PAI, build_subject

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

_ALLOWED_PASSTHROUGH = {"2.5.29.15"}


def _time(spec: dict[str, Any], start: datetime | None) -> datetime:
    kind, value = spec["Type"], int(spec["Value"])
    if kind == "ABSOLUTE":
        return datetime.fromtimestamp(value, UTC)
    if kind == "END_DATE":
        text = str(value)
        fmt = "%Y%m%d%H%M%S" if len(text) == 14 else "%y%m%d%H%M%S"
        return datetime.strptime(text, fmt).replace(tzinfo=UTC)
    if kind == "DAYS" and start is not None:
        return start + timedelta(days=value)
    raise ValueError(f"validity type {kind!r} not modelled")


def issue_certificate(
    request: dict[str, Any],
    *,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_certificate: x509.Certificate | None,
    serial: int,
    now: datetime,
) -> x509.Certificate:
    """The certificate the documented template + ApiPassthrough behaviour yields for ``request``."""
    csr = x509.load_pem_x509_csr(request["Csr"]) if request["Csr"].startswith(b"-----") else x509.load_der_x509_csr(request["Csr"])
    if request.get("SigningAlgorithm") != "SHA256WITHECDSA":
        raise ValueError("model only covers SHA256WITHECDSA")
    template = request["TemplateArn"]
    passthrough = request.get("ApiPassthrough", {})
    attrs = passthrough.get("Subject", {}).get("CustomAttributes")
    subject = build_subject([(x509.ObjectIdentifier(a["ObjectIdentifier"]), a["Value"]) for a in attrs]) if attrs else csr.subject
    not_before = _time(request["ValidityNotBefore"], None) if "ValidityNotBefore" in request else now
    not_after = _time(request["Validity"], not_before)
    public_key = csr.public_key()
    skid = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    custom = {e["ObjectIdentifier"]: e for e in passthrough.get("Extensions", {}).get("CustomExtensions", [])}
    if set(custom) - _ALLOWED_PASSTHROUGH - {"2.5.29.35"}:
        raise ValueError(f"model does not cover passthrough extensions {sorted(custom)}")
    ku = custom.get("2.5.29.15")
    ku_ext = (
        x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.15"), base64.b64decode(ku["Value"])) if ku else None
    )
    if template == PCA_TEMPLATE_PAA:
        builder = builder.issuer_name(subject)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        builder = builder.add_extension(skid, critical=False)
        if "2.5.29.35" in custom:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.35"), base64.b64decode(custom["2.5.29.35"]["Value"])),
                critical=False,
            )
    elif template in (PCA_TEMPLATE_PAI, PCA_TEMPLATE_DAC):
        if ca_certificate is None:
            raise ValueError("subordinate and end-entity templates need the issuing CA certificate")
        ca_skid = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        builder = builder.issuer_name(ca_certificate.subject)
        bc = x509.BasicConstraints(ca=True, path_length=0) if template == PCA_TEMPLATE_PAI else x509.BasicConstraints(ca=False, path_length=None)
        builder = builder.add_extension(bc, critical=True)
        if ku_ext is not None:
            builder = builder.add_extension(ku_ext, critical=bool(ku["Critical"]))  # type: ignore[index]
        builder = builder.add_extension(skid, critical=False)
        builder = builder.add_extension(x509.AuthorityKeyIdentifier(ca_skid, None, None), critical=False)
    else:
        raise ValueError(f"template {template} not modelled")
    return builder.sign(ca_key, hashes.SHA256())
