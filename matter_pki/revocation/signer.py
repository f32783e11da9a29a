"""The delegated CRL signer profile: an end-entity certificate a PAA or PAI issues to sign its CRLs.

The profile is the one the Matter SDK's delegate vectors carry
(credentials/test/revoked-attestation-certificates/indirect/Chip-Test-PAI-Delegate-FFF1-01-Cert.pem)
and the one the DCL checks for a non-self-signed CRL signer (zigbee-alliance/distributed-compliance-ledger
x/pki/keeper/msg_server_add_pki_revocation_distribution_point.go, VerifyCRLSignerCertFormat):
v3, P-256, ecdsa-with-SHA256, basicConstraints critical cA FALSE, keyUsage critical with cRLSign and
nothing else but (optionally) digitalSignature, SKID, AKID equal to the issuer's SKID.

The subject holds a CN and no VendorID, except under a product-scoped PAI: there the DCL requires the
point's pid to equal the signer's PID (verifyPAI) while generate_revocation_set.py requires it to equal
the delegator's PID (validate_vid_pid), so only a signer carrying the PAI's VID and PID satisfies both.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import ProfileError
from matter_pki.oid import ExtensionOID, MatterOID, NameOID
from matter_pki.profiles import (
    MAX_CN_LENGTH,
    PCA_SIGNING_ALGORITHM,
    PCA_TEMPLATE_DAC,
    PcaIssueParts,
    Validity,
    build_subject,
    check_public_key,
    check_serial,
    issuer_subject_key_id,
    issuer_valid_at,
)
from matter_pki.vidpid import VidPid, extract_vid_pid, format_hex16

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

#: The Private CA template with critical basicConstraints CA:FALSE whose keyUsage comes from the passthrough.
PCA_TEMPLATE_CRL_SIGNER = PCA_TEMPLATE_DAC
DEFAULT_SIGNER_CN = "Matter CRL Signer"


def cert_vid_pid(cert: x509.Certificate) -> VidPid:
    """VID/PID of a certificate's subject, read as chip reads them (raises VidPidError when malformed)."""
    return extract_vid_pid(parse_certificate(cert.public_bytes(Encoding.DER)).subject)


@dataclass(frozen=True, slots=True, kw_only=True)
class CrlSignerProfile:
    """Delegated CRL signer: CA:FALSE, keyUsage cRLSign [+ digitalSignature], SKID, AKID."""

    validity: Validity
    common_name: str = DEFAULT_SIGNER_CN
    organization: str | None = None
    vid: int | None = None
    pid: int | None = None
    digital_signature: bool = False

    def __post_init__(self) -> None:
        for text, what in ((self.common_name, "common name"), (self.organization, "organization")):
            if text is None:
                continue
            if not text or len(text) > MAX_CN_LENGTH or text != text.strip() or any(ord(c) < 0x20 for c in text):
                raise ProfileError("profile.subject_text", f"{what} must be 1..{MAX_CN_LENGTH} printable characters")
        for number, what in ((self.vid, "VID"), (self.pid, "PID")):
            if number is not None and (isinstance(number, bool) or not 0 <= number <= 0xFFFF):
                raise ProfileError(f"profile.{what.lower()}_range", f"{what} must be a 16-bit value")
        if self.pid is not None and self.vid is None:
            raise ProfileError("profile.vid_required", "a CRL signer with a PID must also carry the VID")

    @classmethod
    def for_issuer(
        cls, issuer: x509.Certificate, *, validity: Validity, common_name: str = DEFAULT_SIGNER_CN,
        digital_signature: bool = False,
    ) -> CrlSignerProfile:
        """The signer a PAA or PAI may delegate to: VID and PID copied only from a product-scoped PAI."""
        ids = cert_vid_pid(issuer)
        scoped = ids.pid is not None and ids.vid is not None
        return cls(
            validity=validity, common_name=common_name, digital_signature=digital_signature,
            vid=ids.vid if scoped else None, pid=ids.pid if scoped else None,
        )

    def subject(self) -> x509.Name:
        """CN [O] [VID PID], each a UTF8String."""
        attrs: list[tuple[x509.ObjectIdentifier, str]] = [(NameOID.COMMON_NAME, self.common_name)]
        if self.organization is not None:
            attrs.append((NameOID.ORGANIZATION_NAME, self.organization))
        if self.vid is not None:
            attrs.append((MatterOID.VENDOR_ID, format_hex16(self.vid)))
        if self.pid is not None:
            attrs.append((MatterOID.PRODUCT_ID, format_hex16(self.pid)))
        return build_subject(attrs)

    def key_usage(self) -> x509.KeyUsage:
        """cRLSign (``03 02 01 02``), plus digitalSignature when asked (``03 02 01 82``)."""
        return x509.KeyUsage(self.digital_signature, False, False, False, False, False, True, False, False)

    def extensions(self, public_key: ec.EllipticCurvePublicKey, issuer_skid: bytes) -> list[tuple[x509.ExtensionType, bool]]:
        """BC (critical, CA:FALSE), KU (critical), SKID, AKID keyid-only: chip-cert's order."""
        return [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (self.key_usage(), True),
            (x509.SubjectKeyIdentifier.from_public_key(public_key), False),
            (x509.AuthorityKeyIdentifier(issuer_skid, None, None), False),
        ]

    def check_issuer(self, issuer: x509.Certificate) -> None:
        """The issuer is a CA that may sign CRLs, valid at notBefore, and its VID/PID scope holds."""
        try:
            bc = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
            ku = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound as e:
            raise ProfileError("profile.issuer_not_ca", "the issuer has no basicConstraints/keyUsage") from e
        if not bc.ca or not ku.key_cert_sign or not ku.crl_sign:
            raise ProfileError("profile.issuer_not_ca", "the issuer must be a CA with keyCertSign and cRLSign")
        nb = self.validity.not_before
        if not issuer_valid_at(nb, issuer.not_valid_before_utc, issuer.not_valid_after_utc):
            raise ProfileError("profile.validity_outside_issuer", "notBefore is outside the issuer's validity")
        ids = cert_vid_pid(issuer)
        if self.vid is not None and ids.vid is not None and self.vid != ids.vid:
            raise ProfileError("profile.vid_mismatch", "the signer's VID differs from its issuer's")
        if self.pid is not None and ids.pid is not None and self.pid != ids.pid:
            raise ProfileError("profile.pid_not_allowed", "the signer's PID differs from its issuer's")

    def builder(self, public_key: ec.EllipticCurvePublicKey, *, serial: int, issuer: x509.Certificate) -> x509.CertificateBuilder:
        """A ``CertificateBuilder`` for the whole signer certificate except the signature."""
        check_public_key(public_key)
        check_serial(serial)
        self.check_issuer(issuer)
        builder = (
            x509.CertificateBuilder()
            .subject_name(self.subject())
            .issuer_name(issuer.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(self.validity.not_before)
            .not_valid_after(self.validity.not_after)
        )
        for ext, critical in self.extensions(public_key, issuer_subject_key_id(issuer)):
            builder = builder.add_extension(ext, critical=critical)
        return builder

    def pca_issue_parts(self) -> PcaIssueParts:
        """``IssueCertificate`` parameters for a Private CA PAI: blank end-entity template + passthrough.

        The template sets basicConstraints (critical, CA:FALSE), SKI and AKI; the passthrough gives the
        subject and the keyUsage, in minimal DER (Private CA user guide, UsingTemplates.md).
        """
        return {
            "TemplateArn": PCA_TEMPLATE_CRL_SIGNER,
            "SigningAlgorithm": PCA_SIGNING_ALGORITHM,
            "ApiPassthrough": {
                "Subject": {
                    "CustomAttributes": [
                        {"ObjectIdentifier": a.oid.dotted_string, "Value": str(a.value)} for a in self.subject()
                    ]
                },
                "Extensions": {
                    "CustomExtensions": [
                        {
                            "ObjectIdentifier": ExtensionOID.KEY_USAGE.dotted_string,
                            "Value": base64.b64encode(self.key_usage().public_bytes()).decode(),
                            "Critical": True,
                        }
                    ]
                },
            },
            "Validity": self.validity.pca_validity(),
            "ValidityNotBefore": self.validity.pca_not_before(),
        }


__all__ = ["DEFAULT_SIGNER_CN", "PCA_TEMPLATE_CRL_SIGNER", "CrlSignerProfile", "cert_vid_pid"]
