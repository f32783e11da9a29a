"""Matter certificate profiles (PAA, PAI, DAC), each defined once and rendered two ways.

A profile is a frozen value holding everything the issuer decides: subject attributes built
from VID/PID (never from a CSR), every extension, and the validity. It renders to

* a ``cryptography`` ``CertificateBuilder`` (local key files and PKCS#11 signing), and
* the AWS Private CA request parts (``TemplateArn``, ``ApiPassthrough``, ``SigningAlgorithm``,
  ``Validity``) for ``IssueCertificate``.

``matter_pki.testing.pca_model`` turns the second form back into a certificate the way the
documented Private CA templates do, and the test suite proves both forms give the same bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.errors import ProfileError
from matter_pki.findings import Role as Role  # re-exported: the role belongs to the checker side
from matter_pki.idrules import check_pid, check_vid
from matter_pki.oid import ExtensionOID, MatterOID, NameOID
from matter_pki.vidpid import VidPid, extract_vid_pid, format_hex16

if TYPE_CHECKING:
    from collections.abc import Sequence

# RFC 5280 4.1.2.5: "no well-defined expiration date" is GeneralizedTime 99991231235959Z.
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
MAX_SERIAL_OCTETS = 20
MAX_CN_LENGTH = 64

PCA_SIGNING_ALGORITHM = "SHA256WITHECDSA"
PCA_KEY_ALGORITHM = "EC_prime256v1"
PCA_KEY_STORAGE = "FIPS_140_2_LEVEL_3_OR_HIGHER"
PCA_TEMPLATE_PAA = "arn:aws:acm-pca:::template/RootCACertificate_APIPassthrough/V1"
PCA_TEMPLATE_PAI = "arn:aws:acm-pca:::template/BlankSubordinateCACertificate_PathLen0_APIPassthrough/V1"
PCA_TEMPLATE_DAC = "arn:aws:acm-pca:::template/BlankEndEntityCertificate_CriticalBasicConstraints_APIPassthrough/V1"


class PcaCustomAttribute(TypedDict):
    """One ``Subject.CustomAttributes`` entry of the Private CA API."""

    ObjectIdentifier: str
    Value: str


class PcaCustomExtension(TypedDict):
    """One ``Extensions.CustomExtensions`` entry of the Private CA API."""

    ObjectIdentifier: str
    Value: str
    Critical: bool


class PcaSubject(TypedDict):
    """``ASN1Subject`` given only as custom attributes (AWS forbids mixing both kinds)."""

    CustomAttributes: list[PcaCustomAttribute]


class PcaExtensions(TypedDict):
    """``Extensions`` of ``ApiPassthrough``."""

    CustomExtensions: list[PcaCustomExtension]


class PcaApiPassthrough(TypedDict):
    """``ApiPassthrough`` of ``IssueCertificate``."""

    Subject: PcaSubject
    Extensions: PcaExtensions


class PcaValidity(TypedDict):
    """``Validity`` / ``ValidityNotBefore`` of ``IssueCertificate``."""

    Type: Literal["ABSOLUTE", "END_DATE", "DAYS"]
    Value: int


class PcaIssueParts(TypedDict):
    """The profile-determined parameters of ``IssueCertificate`` (the caller adds CA ARN, CSR, token)."""

    TemplateArn: str
    SigningAlgorithm: str
    ApiPassthrough: PcaApiPassthrough
    Validity: PcaValidity
    ValidityNotBefore: PcaValidity


class PcaCaConfiguration(TypedDict):
    """``CertificateAuthorityConfiguration`` of ``CreateCertificateAuthority``."""

    KeyAlgorithm: str
    SigningAlgorithm: str
    Subject: PcaSubject


def require_utc(moment: datetime, what: str = "time") -> datetime:
    """A timezone-aware instant converted to UTC, truncated to whole seconds."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ProfileError("profile.naive_time", f"{what} must be timezone-aware (UTC)")
    return moment.astimezone(UTC).replace(microsecond=0)


def issuer_valid_at(moment: datetime, issuer_not_before: datetime, issuer_not_after: datetime) -> bool:
    """Whether an issuer can sign a certificate with notBefore ``moment``: issuer notBefore <= t < notAfter.

    The one rule for every issuing path. chip verifies the chain at the DAC's notBefore with OpenSSL,
    where a notAfter equal to the time is already expired (crypto/x509/x509_vfy.c check_cert_time via
    X509_cmp_time), so a certificate starting at its issuer's last second would never chain.
    """
    return issuer_not_before <= moment < issuer_not_after


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """notBefore/notAfter; ``NO_EXPIRY`` is the Matter "no well-defined expiration" form."""

    not_before: datetime
    not_after: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "not_before", require_utc(self.not_before, "notBefore"))
        object.__setattr__(self, "not_after", require_utc(self.not_after, "notAfter"))
        if self.not_after <= self.not_before:
            raise ProfileError("profile.validity_inverted", "notAfter must be after notBefore")

    @classmethod
    def for_days(cls, start: datetime, days: int) -> Validity:
        """``days`` long, ending one second before ``start + days`` (chip-cert's convention)."""
        if days <= 0:
            raise ProfileError("profile.validity_days", f"validity must be at least one day, got {days}")
        begin = require_utc(start, "start")
        return cls(not_before=begin, not_after=begin + timedelta(days=days) - timedelta(seconds=1))

    @classmethod
    def no_expiry(cls, start: datetime) -> Validity:
        """From ``start`` to 99991231235959Z."""
        return cls(not_before=start, not_after=NO_EXPIRY)

    @property
    def has_no_expiry(self) -> bool:
        """True for the 99991231235959Z form."""
        return self.not_after == NO_EXPIRY

    def pca_validity(self) -> PcaValidity:
        """notAfter for Private CA: END_DATE for 9999, otherwise ABSOLUTE epoch seconds."""
        if self.has_no_expiry:
            return {"Type": "END_DATE", "Value": 99991231235959}
        return {"Type": "ABSOLUTE", "Value": int(self.not_after.timestamp())}

    def pca_not_before(self) -> PcaValidity:
        """notBefore for Private CA (``ValidityNotBefore``)."""
        return {"Type": "ABSOLUTE", "Value": int(self.not_before.timestamp())}


def _check_text(value: str | None, what: str) -> None:
    if value is None:
        return
    if not value or len(value) > MAX_CN_LENGTH or value != value.strip():
        raise ProfileError(
            "profile.subject_text", f"{what} must be 1..{MAX_CN_LENGTH} characters without outer spaces"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ProfileError("profile.subject_text", f"{what} must not contain control characters")


def _check_id(value: int | None, what: str, required: bool) -> None:
    if value is None:
        if required:
            raise ProfileError(f"profile.{what.lower()}_required", f"{what} is required for this certificate")
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ProfileError(f"profile.{what.lower()}_range", f"{what} must be a 16-bit value, got {value!r}")
    (check_vid if what == "VID" else check_pid)(value)


def check_serial(serial: int) -> int:
    """RFC 5280 4.1.2.2: positive, at most 20 octets (Matter revocation indexes on it)."""
    if serial <= 0:
        raise ProfileError("profile.serial_not_positive", "serial number must be positive")
    if (serial.bit_length() + 8) // 8 > MAX_SERIAL_OCTETS:
        raise ProfileError("profile.serial_too_long", f"serial number must fit in {MAX_SERIAL_OCTETS} octets")
    return serial


@dataclass(frozen=True, slots=True, kw_only=True)
class _Profile:
    """Fields and rendering shared by the three profiles."""

    common_name: str | None
    vid: int | None = None
    pid: int | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    validity: Validity
    role: Role = field(init=False)

    def _check_common(self) -> None:
        _check_text(self.common_name, "common name")
        _check_text(self.organization, "organization")
        _check_text(self.organizational_unit, "organizational unit")

    # -- subject ---------------------------------------------------------------------------
    def subject_attributes(self) -> list[tuple[x509.ObjectIdentifier, str]]:
        """Subject RDNs in chip-cert order: CN, [O], [OU], [VID], [PID]; one attribute each."""
        attrs: list[tuple[x509.ObjectIdentifier, str]] = []
        if self.common_name is not None:
            attrs.append((NameOID.COMMON_NAME, self.common_name))
        if self.organization is not None:
            attrs.append((NameOID.ORGANIZATION_NAME, self.organization))
        if self.organizational_unit is not None:
            attrs.append((NameOID.ORGANIZATIONAL_UNIT_NAME, self.organizational_unit))
        if self.vid is not None:
            attrs.append((MatterOID.VENDOR_ID, format_hex16(self.vid)))
        if self.pid is not None:
            attrs.append((MatterOID.PRODUCT_ID, format_hex16(self.pid)))
        return attrs

    def subject(self) -> x509.Name:
        """The subject DN, every value a UTF8String."""
        return build_subject(self.subject_attributes())

    # -- extensions ------------------------------------------------------------------------
    def basic_constraints(self) -> x509.BasicConstraints:
        """basicConstraints value (always emitted critical)."""
        raise NotImplementedError

    def key_usage(self) -> x509.KeyUsage:
        """keyUsage value (always emitted critical)."""
        raise NotImplementedError

    def extensions(
        self, public_key: ec.EllipticCurvePublicKey, issuer_skid: bytes | None
    ) -> list[tuple[x509.ExtensionType, bool]]:
        """Every extension in chip-cert order: BC, KU, SKID, AKID (keyid only)."""
        skid = x509.SubjectKeyIdentifier.from_public_key(public_key)
        exts: list[tuple[x509.ExtensionType, bool]] = [
            (self.basic_constraints(), True),
            (self.key_usage(), True),
            (skid, False),
        ]
        if self.role is Role.PAA:
            if getattr(self, "authority_key_id", True):
                exts.append((x509.AuthorityKeyIdentifier(skid.digest, None, None), False))
            return exts
        if issuer_skid is None:
            raise ProfileError("profile.issuer_skid_required", f"a {self.role.upper()} needs its issuer's SKID")
        exts.append((x509.AuthorityKeyIdentifier(issuer_skid, None, None), False))
        return exts

    # -- rendering (a): cryptography builder -------------------------------------------------
    def builder(
        self,
        public_key: ec.EllipticCurvePublicKey,
        *,
        serial: int,
        issuer: x509.Certificate | None = None,
    ) -> x509.CertificateBuilder:
        """A ``CertificateBuilder`` holding the whole certificate except the signature."""
        check_public_key(public_key)
        check_serial(serial)
        if self.role is Role.PAA:
            if issuer is not None:
                raise ProfileError("profile.paa_issuer", "a PAA is self-signed; no issuer certificate")
            issuer_name, issuer_skid = self.subject(), None
        else:
            if issuer is None:
                raise ProfileError("profile.issuer_required", f"a {self.role.upper()} needs an issuer certificate")
            self.check_issuer(issuer)
            issuer_name, issuer_skid = issuer.subject, issuer_subject_key_id(issuer)
        builder = (
            x509.CertificateBuilder()
            .subject_name(self.subject())
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(self.validity.not_before)
            .not_valid_after(self.validity.not_after)
        )
        for ext, critical in self.extensions(public_key, issuer_skid):
            builder = builder.add_extension(ext, critical=critical)
        return builder

    def check_issuer(self, issuer: x509.Certificate) -> None:
        """Rules this certificate must keep with its issuer: validity at issuance and VID scope."""
        nb = self.validity.not_before
        if not issuer_valid_at(nb, issuer.not_valid_before_utc, issuer.not_valid_after_utc):
            raise ProfileError(
                "profile.validity_outside_issuer",
                f"notBefore {nb:%Y-%m-%dT%H:%M:%SZ} is outside the issuer's validity "
                f"({issuer.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} .. {issuer.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})",
            )

    # -- rendering (b): AWS Private CA request parts -----------------------------------------
    def pca_subject(self) -> PcaSubject:
        """The subject as Private CA ``CustomAttributes`` (same order as ``subject()``)."""
        return {
            "CustomAttributes": [
                {"ObjectIdentifier": oid.dotted_string, "Value": value} for oid, value in self.subject_attributes()
            ]
        }

    def pca_custom_extensions(self) -> list[PcaCustomExtension]:
        """Extensions the template does not set itself, passed through in minimal DER."""
        return [
            {
                "ObjectIdentifier": ExtensionOID.KEY_USAGE.dotted_string,
                "Value": base64.b64encode(self.key_usage().public_bytes()).decode(),
                "Critical": True,
            }
        ]

    @property
    def pca_template_arn(self) -> str:
        """Private CA template giving this profile's basicConstraints and key identifiers."""
        raise NotImplementedError

    def pca_issue_parts(self) -> PcaIssueParts:
        """``IssueCertificate`` parameters fixed by this profile."""
        return {
            "TemplateArn": self.pca_template_arn,
            "SigningAlgorithm": PCA_SIGNING_ALGORITHM,
            "ApiPassthrough": {
                "Subject": self.pca_subject(),
                "Extensions": {"CustomExtensions": self.pca_custom_extensions()},
            },
            "Validity": self.validity.pca_validity(),
            "ValidityNotBefore": self.validity.pca_not_before(),
        }

    def pca_ca_configuration(self) -> PcaCaConfiguration:
        """``CertificateAuthorityConfiguration`` for a PAA or PAI created on Private CA."""
        if self.role is Role.DAC:
            raise ProfileError("profile.not_a_ca", "a DAC is not a certificate authority")
        return {
            "KeyAlgorithm": PCA_KEY_ALGORITHM,
            "SigningAlgorithm": PCA_SIGNING_ALGORITHM,
            "Subject": self.pca_subject(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PaaProfile(_Profile):
    """Product Attestation Authority: self-signed, VID optional, never a PID."""

    common_name: str | None = "Matter PAA"
    path_length: int | None = 1
    digital_signature: bool = False
    authority_key_id: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role.PAA)
        self._check_common()
        _check_id(self.vid, "VID", required=False)
        if self.pid is not None:
            raise ProfileError("profile.paa_pid", "a PAA must not carry a ProductID (chip: kPaaFormatInvalid)")
        if self.path_length not in (None, 1):
            raise ProfileError("profile.paa_pathlen", "PAA pathLenConstraint must be absent or 1")

    @classmethod
    def for_private_ca(cls, **kwargs: object) -> PaaProfile:
        """The PAA Private CA's root template produces: no pathLen, KU adds digitalSignature, no AKID."""
        return cls(path_length=None, digital_signature=True, authority_key_id=False, **kwargs)  # type: ignore[arg-type]

    def basic_constraints(self) -> x509.BasicConstraints:
        """CA:TRUE, pathLen 1 (or absent)."""
        return x509.BasicConstraints(ca=True, path_length=self.path_length)

    def key_usage(self) -> x509.KeyUsage:
        """keyCertSign + cRLSign (+ digitalSignature for the Private CA root template)."""
        return _ca_key_usage(self.digital_signature)

    @property
    def pca_template_arn(self) -> str:
        """Private CA root template with API passthrough."""
        return PCA_TEMPLATE_PAA

    def pca_custom_extensions(self) -> list[PcaCustomExtension]:
        """The root template sets KU itself; nothing to pass through."""
        if self.path_length is not None or not self.digital_signature or self.authority_key_id:
            raise ProfileError(
                "profile.pca_paa_shape",
                "the Private CA root template emits CA:TRUE without pathLen, KU with digitalSignature and no AKID; "
                "use PaaProfile.for_private_ca()",
            )
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class PaiProfile(_Profile):
    """Product Attestation Intermediate: VID required, PID optional, pathLen 0."""

    common_name: str | None = "Matter PAI"

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role.PAI)
        self._check_common()
        _check_id(self.vid, "VID", required=True)
        _check_id(self.pid, "PID", required=False)

    def basic_constraints(self) -> x509.BasicConstraints:
        """CA:TRUE, pathLen 0."""
        return x509.BasicConstraints(ca=True, path_length=0)

    def key_usage(self) -> x509.KeyUsage:
        """keyCertSign + cRLSign: ``03 02 01 06``."""
        return _ca_key_usage(False)

    @property
    def pca_template_arn(self) -> str:
        """Blank subordinate template, pathLen 0."""
        return PCA_TEMPLATE_PAI

    def check_issuer(self, issuer: x509.Certificate) -> None:
        """A VID-scoped PAA only issues PAIs of its own VID."""
        _Profile.check_issuer(self, issuer)
        issuer_vid = _vid_of(issuer)
        if issuer_vid is not None and issuer_vid != self.vid:
            raise ProfileError(
                "profile.vid_mismatch",
                f"PAI VID {format_hex16(self.vid or 0)} differs from the PAA VID {format_hex16(issuer_vid)}",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class DacProfile(_Profile):
    """Device Attestation Certificate: VID and PID required, CA:FALSE, KU digitalSignature only."""

    common_name: str | None = "Matter DAC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role.DAC)
        self._check_common()
        _check_id(self.vid, "VID", required=True)
        _check_id(self.pid, "PID", required=True)

    @classmethod
    def for_issuer(
        cls, pai: x509.Certificate, *, pid: int, validity: Validity, common_name: str | None = "Matter DAC"
    ) -> DacProfile:
        """The DAC profile a PAI may issue: VID from the PAI; PID checked against a product-scoped PAI."""
        _check_id(pid, "PID", required=True)
        raw = _raw_vid_pid(pai)
        if raw.vid is None:
            raise ProfileError("profile.pai_vid_missing", "the PAI has no VendorID")
        if raw.pid is not None and raw.pid != pid:
            raise ProfileError(
                "profile.pid_not_allowed",
                f"PID {format_hex16(pid)} is not allowed by this PAI (scoped to PID {format_hex16(raw.pid)})",
            )
        return cls(vid=raw.vid, pid=pid, validity=validity, common_name=common_name)

    def basic_constraints(self) -> x509.BasicConstraints:
        """CA:FALSE, encoded as an empty SEQUENCE (``30 00``)."""
        return x509.BasicConstraints(ca=False, path_length=None)

    def key_usage(self) -> x509.KeyUsage:
        """digitalSignature only: ``03 02 07 80``."""
        return x509.KeyUsage(True, False, False, False, False, False, False, False, False)

    @property
    def pca_template_arn(self) -> str:
        """Blank end-entity template with critical basicConstraints."""
        return PCA_TEMPLATE_DAC

    def check_issuer(self, issuer: x509.Certificate) -> None:
        """DAC VID equals the PAI VID; PID equals a product-scoped PAI's PID."""
        _Profile.check_issuer(self, issuer)
        raw = _raw_vid_pid(issuer)
        if raw.vid != self.vid:
            raise ProfileError("profile.vid_mismatch", "DAC VID must equal the PAI VID")
        if raw.pid is not None and raw.pid != self.pid:
            raise ProfileError("profile.pid_not_allowed", "DAC PID must equal the PAI PID")


Profile = PaaProfile | PaiProfile | DacProfile


def _ca_key_usage(digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature, False, False, False, False, True, True, False, False)


def _raw_vid_pid(cert: x509.Certificate) -> VidPid:
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.certparse import parse_certificate

    return extract_vid_pid(parse_certificate(cert.public_bytes(Encoding.DER)).subject)


def _vid_of(cert: x509.Certificate) -> int | None:
    return _raw_vid_pid(cert).vid


def issuer_subject_key_id(issuer: x509.Certificate) -> bytes:
    """The issuer's SKID, which becomes the AKID keyIdentifier."""
    try:
        digest: bytes = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound as e:
        raise ProfileError("profile.issuer_skid_missing", "issuer certificate has no subjectKeyIdentifier") from e
    if len(digest) != 20:
        raise ProfileError("profile.issuer_skid_length", "issuer SKID must be 20 bytes")
    return digest


def check_public_key(public_key: object) -> ec.EllipticCurvePublicKey:
    """Matter keys are P-256 (secp256r1) only."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP256R1):
        raise ProfileError("profile.key_not_p256", "Matter certificates carry EC P-256 keys only")
    return public_key


def sign(builder: x509.CertificateBuilder, private_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """Sign with ECDSA-with-SHA256, the only algorithm Matter accepts."""
    return builder.sign(private_key, hashes.SHA256())


def build_subject(attrs: Sequence[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    """A Name from (oid, value) pairs; CN, O, OU, VID and PID all default to UTF8String."""
    return x509.Name([x509.NameAttribute(o, v) for o, v in attrs])


def default_serial() -> int:
    """Random positive serial of at most 159 bits (fits 20 octets)."""
    return x509.random_serial_number()

