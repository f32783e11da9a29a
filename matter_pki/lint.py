"""Lint Matter attestation certificates: every finding, not only the first.

Structured the way pkilint is: each rule is a small class that declares every code it can raise
(``codes``), the rules are grouped per lint role in a registry, and a rule that crashes becomes one
FATAL ``internal.unhandled_exception`` finding that never hides the others. Codes, severities and
the chip check each one maps to are in ``codes.csv``.

Rules read certificates through ``certparse`` (OpenSSL's reading of the bytes) and ``chip`` (what
chip does with them), so a MUST finding here is exactly a certificate chip rejects.

Adding a lint role (for example ``crl``): write a loader ``(bytes, role) -> view`` that raises
``DerError`` on unreadable input, rule classes deriving from ``Rule[View]`` that declare their
``codes`` (each listed in ``codes.csv``) and yield ``self.finding(role, code, message)``, and register
them once, at import time of the module that defines them::

    register_role("crl", load_crl_view, malformed_code="crl.der_malformed", issuer_role="crl-signer")
    register_rule("crl", CrlNumberRule())
    register_issuer_rule("crl", CrlSignedByIssuerRule())  # check((crl_view, signer_view))

``lint(data, "crl", issuer=signer_der)`` then runs them (the issuer read by the ``crl-signer`` role's
loader); ``roles()`` and ``rules_for(role)`` list what is registered. The revocation roles ``crl`` and
``crl-signer`` are registered this way by ``matter_pki.revocation.lint``, loaded with this module.
"""

from __future__ import annotations

import hashlib
import importlib
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from cryptography import x509

from matter_pki import chip, der
from matter_pki.certparse import (
    ECDSA_SHA256,
    OID_AIA,
    OID_AKID,
    OID_BC,
    OID_CDP,
    OID_EKU,
    OID_KU,
    OID_SAN,
    OID_SKID,
    OPENSSL_SUPPORTED_EXTENSIONS,
    BasicConstraintsValue,
    KeyUsageValue,
    RawCertificate,
    RawExtension,
    decode_akid,
    decode_akid_full,
    decode_basic_constraints,
    decode_crl_distribution_points,
    decode_key_usage,
    decode_skid,
    parse_certificate,
)
from matter_pki.der import DerError
from matter_pki.findings import Finding, Role, catalogue, finding
from matter_pki.vidpid import VidPid, VidPidError, extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "CA_ROLES",
    "MAX_DER",
    "CertView",
    "Rule",
    "CertificateRule",
    "IssuerRule",
    "BasicConstraintsValue",
    "KeyUsageValue",
    "decode_basic_constraints",
    "decode_key_usage",
    "decode_skid",
    "decode_akid",
    "format_failures",
    "lint",
    "apply_rules",
    "load_view",
    "register_role",
    "register_rule",
    "register_issuer_rule",
    "roles",
    "rules_for",
    "run_role",
    "run_rules",
]

MAX_DER = chip.MAX_DER
KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, KU_CRL_SIGN = 0, 5, 6
CA_ROLES = frozenset({Role.PAA.value, Role.PAI.value})  # every other certificate role is an end entity
V = TypeVar("V")


# -- the registry ---------------------------------------------------------------------------------
class Rule(Generic[V]):
    """One lint rule: declares every code it may raise and yields findings for one view."""

    codes: ClassVar[tuple[str, ...]] = ()

    def check(self, view: V) -> Iterator[Finding]:
        """Findings for ``view``."""
        raise NotImplementedError

    def finding(self, role: str, code: str, message: str) -> Finding:
        """A finding with a declared, catalogued code (anything else is a programming error)."""
        if code not in self.codes:
            raise ValueError(f"{type(self).__name__} raises undeclared code {code}")
        return finding(code, message, role)

    @property
    def name(self) -> str:
        """The rule's name, for listings."""
        return type(self).__name__


@dataclass
class _RoleEntry(Generic[V]):
    loader: Callable[[bytes, str], V]
    malformed_code: str
    rules: list[Rule[V]] = field(default_factory=list)
    issuer_rules: list[Rule[Any]] = field(default_factory=list)
    issuer_role: str | None = None


_REGISTRY: dict[str, _RoleEntry[Any]] = {}


def register_role(
    role: str, loader: Callable[[bytes, str], Any], *, malformed_code: str, issuer_role: str | None = None
) -> None:
    """Declare a lint role: how to read its input, the code for unreadable input, its issuer's role."""
    if role in _REGISTRY:
        raise ValueError(f"lint role {role!r} is already registered")
    if malformed_code not in catalogue():
        raise ValueError(f"{malformed_code} is not in codes.csv")
    _REGISTRY[role] = _RoleEntry(loader, malformed_code, issuer_role=issuer_role)


def _declared(rule: Rule[Any]) -> Rule[Any]:
    missing = [c for c in rule.codes if c not in catalogue()]
    if missing or not rule.codes:
        raise ValueError(f"{rule.name} declares codes missing from codes.csv: {missing or 'none declared'}")
    return rule


def register_rule(role: str, rule: Rule[Any]) -> None:
    """Add a rule to a registered role; its declared codes must all be catalogued."""
    _REGISTRY[role].rules.append(_declared(rule))


def register_issuer_rule(role: str, rule: Rule[Any]) -> None:
    """Add a rule that checks an input against its issuer's (``check`` gets ``(view, issuer_view)``)."""
    _REGISTRY[role].issuer_rules.append(_declared(rule))


def roles() -> list[str]:
    """Every registered lint role."""
    return list(_REGISTRY)


def rules_for(role: str) -> list[Rule[Any]]:
    """The rules of one role, issuer rules included, in run order."""
    entry = _REGISTRY[role]
    return [*entry.rules, *entry.issuer_rules]


# -- the certificate view ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CertView:
    """A certificate as OpenSSL reads it, with the role it is linted as."""

    role: str
    raw: RawCertificate
    data: bytes = b""

    def single(self, oid: str) -> RawExtension | None:
        """The extension when it appears exactly once."""
        found = self.raw.extensions_for(oid)
        return found[0] if len(found) == 1 else None

    def skid(self) -> bytes | None:
        """SKID bytes as OpenSSL caches them (None if absent, duplicated or undecodable)."""
        return self.raw.v3.skid

    def akid(self) -> bytes | None:
        """AKID keyIdentifier as OpenSSL caches it."""
        akid = self.raw.v3.akid
        return akid.keyid if akid else None

    def public_key(self) -> ec.EllipticCurvePublicKey | None:
        """The P-256 public key, or None when it is not one."""
        key = self.raw.public_key
        return key.key if key is not None and key.p256 else None


def load_view(data: bytes, role: Role | str) -> CertView:
    """Parse as OpenSSL's d2i_X509 does; raises DerError where OpenSSL cannot read the bytes."""
    try:
        return CertView(str(Role(role)), parse_certificate(data), data)
    except IndexError as e:  # a truncated structure the template walk runs off
        raise DerError(f"truncated structure: {e}") from e


class CertificateRule(Rule[CertView]):
    """A rule over one certificate; ``roles`` limits it to some certificate roles."""

    roles: ClassVar[frozenset[str] | None] = None

    def applies(self, view: CertView) -> bool:
        """Whether the rule runs for this view's role."""
        return self.roles is None or view.role in self.roles

    def f(self, view: CertView, code: str, message: str) -> Finding:
        """A finding for this view's role."""
        return self.finding(view.role, code, message)


class IssuerRule(Rule[tuple[CertView, CertView]]):
    """A rule over a certificate and its issuer's certificate."""

    def f(self, view: CertView, code: str, message: str) -> Finding:
        """A finding for the subject certificate's role."""
        return self.finding(view.role, code, message)


# -- certificate rules -------------------------------------------------------------------------------
class EncodingRule(CertificateRule):
    """Size (chip's 600-byte buffers), trailing bytes, BER where DER is required, strict parsers."""

    codes = ("cert.trailing_data", "cert.der_too_large", "cert.not_der", "cert.unparseable")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x509.load_der_x509_certificate(v.raw.der)
        except Exception as e:  # cryptography raises ValueError and its own InvalidVersion
            yield self.f(v, "cert.unparseable", f"Python cryptography refuses it: {e or type(e).__name__}")
        if v.raw.trailing:
            yield self.f(v, "cert.trailing_data", f"{v.raw.trailing} byte(s) follow the certificate")
        if len(v.raw.der) > MAX_DER:
            yield self.f(v, "cert.der_too_large", f"DER is {len(v.raw.der)} bytes, over {MAX_DER}")
        ber = [*v.raw.ber, *v.raw.v3.ext_notes]
        if ber:
            yield self.f(v, "cert.not_der", f"BER where DER is required: {'; '.join(ber)}")


class VersionSerialRule(CertificateRule):
    """Version 3; serial positive and at most 20 octets."""

    codes = ("cert.version_not_v3", "cert.serial_not_positive", "cert.serial_too_long")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        if v.raw.version != 2:
            yield self.f(v, "cert.version_not_v3", f"version field is {v.raw.version}, must be 2 (v3)")
        if v.raw.serial_value <= 0:
            yield self.f(v, "cert.serial_not_positive", f"serial {v.raw.serial_value} is not positive")
        if len(v.raw.serial) > 20:
            yield self.f(v, "cert.serial_too_long", f"serial is {len(v.raw.serial)} octets, over 20")


class SignatureAlgorithmRule(CertificateRule):
    """ecdsa-with-SHA256, identical in the TBS and the outer structure, no unused signature bits."""

    codes = ("cert.signature_algorithm", "cert.signature_algorithm_mismatch", "cert.signature_unused_bits")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        raw = v.raw
        if raw.signature_algorithm_oid != ECDSA_SHA256:
            yield self.f(v, "cert.signature_algorithm", f"signature algorithm {raw.signature_algorithm_oid}")
        tbs, outer = raw.tbs_algorithm, raw.outer_algorithm
        if tbs is None or outer is None or (tbs.oid, tbs.params) != (outer.oid, outer.params):
            yield self.f(v, "cert.signature_algorithm_mismatch", "TBS and outer signature algorithms differ")
        if raw.signature_unused_bits:
            yield self.f(v, "cert.signature_unused_bits", f"signature BIT STRING declares {raw.signature_unused_bits} unused bits")


class PublicKeyRule(CertificateRule):
    """id-ecPublicKey on named curve prime256v1, a 65-byte uncompressed point."""

    codes = ("cert.key_not_ec", "cert.key_curve", "cert.key_point", "cert.key_explicit_params", "cert.key_point_form")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        problem = chip.public_key_problem(v.raw)
        if problem is not None:
            yield self.f(v, problem.code, problem.message)
        key = v.raw.public_key
        if key is not None and key.explicit:
            yield self.f(v, "cert.key_explicit_params", "the curve is given as explicit parameters, not as a named curve")
        if key is not None and key.form == "hybrid":
            yield self.f(v, "cert.key_point_form", "hybrid point encoding (0x06/0x07): the Matter profile requires 0x04")


class NameRule(CertificateRule):
    """Non-empty names; subject VID/PID encoding and presence by role."""

    codes = (
        "cert.issuer_empty",
        "cert.subject_empty",
        "subject.common_name_missing",
        "subject.vidpid_malformed",
        "subject.vidpid_legacy_cn",
        "subject.vidpid_not_utf8",
        "subject.vid_missing",
        "subject.pid_missing",
        "subject.pid_present",
    )

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        if not v.raw.issuer.attributes:
            yield self.f(v, "cert.issuer_empty", "issuer name is empty")
        if not v.raw.subject.attributes:
            yield self.f(v, "cert.subject_empty", "subject name is empty")
        if not any(oid == "2.5.4.3" for oid, _, _ in v.raw.subject.attributes):
            yield self.f(v, "subject.common_name_missing", "subject has no CN")
        try:
            ids = extract_vid_pid(v.raw.subject)
        except VidPidError as e:
            yield self.f(v, "subject.vidpid_malformed", str(e))
            return
        yield from self._presence(v, ids)

    def _presence(self, v: CertView, ids: VidPid) -> Iterator[Finding]:
        if ids.source == "cn":
            yield self.f(v, "subject.vidpid_legacy_cn", "VID/PID taken from the Common Name (Mvid:/Mpid:)")
        if any(tag != der.UTF8_STRING for tag in ids.string_tags):
            yield self.f(v, "subject.vidpid_not_utf8", "VendorID/ProductID is not a UTF8String")
        if v.role in (Role.PAI, Role.DAC) and ids.vid is None:
            yield self.f(v, "subject.vid_missing", f"a {v.role.upper()} must carry a VendorID")
        if v.role == Role.DAC and ids.pid is None:
            yield self.f(v, "subject.pid_missing", "a DAC must carry a ProductID")
        if v.role == Role.PAA and ids.pid is not None:
            yield self.f(v, "subject.pid_present", f"PAA carries ProductID {ids.pid:04X}")


class ValidityRule(CertificateRule):
    """Times OpenSSL reads; UTCTime before 2050 and GeneralizedTime from 2050; chip's 1970-2105 range."""

    codes = ("cert.time_format", "cert.time_encoding", "cert.validity_inverted", "cert.time_outside_chip_range")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        times = []
        for label, t in (("notBefore", v.raw.not_before), ("notAfter", v.raw.not_after)):
            value = t.openssl
            if value is None:
                yield self.f(v, "cert.time_format", f"{label} {t.text!r} is not a YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ time")
                continue
            times.append(value)
            year = int(t.text[:2]) if t.tag == der.UTC_TIME else int(t.text[:4])
            if t.tag == der.UTC_TIME:
                year += 2000 if year < 50 else 1900
            if (year < 2050) != (t.tag == der.UTC_TIME) and not (year >= 2050 and t.text == "99991231235959Z"):
                kind = "UTCTime" if t.tag == der.UTC_TIME else "GeneralizedTime"
                yield self.f(v, "cert.time_encoding", f"{label} year {year} encoded as {kind}")
        if len(times) == 2 and times[1] <= times[0]:
            yield self.f(v, "cert.validity_inverted", "notAfter is not after notBefore")
        if v.role == Role.DAC and v.raw.not_before.openssl is not None and v.raw.not_before.chip_unix is None:
            yield self.f(v, "cert.time_outside_chip_range", f"notBefore {v.raw.not_before.text!r} is outside chip's 1970-2105 time range")


class ExtensionSetRule(CertificateRule):
    """No duplicates, nothing OpenSSL cannot decode, no critical extension OpenSSL does not process."""

    codes = (
        "ext.duplicate",
        "ext.duplicate_uncached",
        "ext.malformed",
        "ext.unknown_critical",
        "ext.extended_key_usage_present",
        "ext.subject_alt_name_present",
        "ext.authority_info_access_present",
    )
    # Looked up by ossl_x509v3_cache_extensions (v3_purp.c), where a duplicate invalidates the certificate.
    _CACHED = frozenset(
        {OID_BC, OID_KU, OID_SKID, OID_AKID, OID_SAN, OID_EKU, OID_CDP, "2.5.29.30", "2.16.840.1.113730.1.1",
         "1.3.6.1.5.5.7.1.14", "1.3.6.1.5.5.7.1.7", "1.3.6.1.5.5.7.1.8"}
    )

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        seen: set[str] = set()
        for ext in v.raw.extensions:
            if ext.oid in seen:
                if ext.oid in self._CACHED:
                    yield self.f(v, "ext.duplicate", f"extension {ext.oid} appears more than once: OpenSSL marks the certificate invalid")
                else:
                    yield self.f(v, "ext.duplicate_uncached", f"extension {ext.oid} appears more than once")
            seen.add(ext.oid)
            if ext.critical and ext.oid not in OPENSSL_SUPPORTED_EXTENSIONS and ext.oid not in (OID_SKID, OID_AKID):
                yield self.f(v, "ext.unknown_critical", f"extension {ext.oid} is critical but not processed by OpenSSL")
        for reason in v.raw.v3.invalid:
            if "more than once" not in reason:
                yield self.f(v, "ext.malformed", f"OpenSSL marks the certificate invalid: {reason}")
        for oid, code in ((OID_EKU, "ext.extended_key_usage_present"), (OID_SAN, "ext.subject_alt_name_present"), (OID_AIA, "ext.authority_info_access_present")):
            if oid in seen:
                yield self.f(v, code, f"{oid} is present")


class BasicConstraintsRule(CertificateRule):
    """Critical; PAA CA pathLen absent/1, PAI CA pathLen 0, DAC not CA without pathLen."""

    codes = ("ext.basic_constraints_missing", "ext.basic_constraints_not_critical", "ext.basic_constraints_ca", "ext.basic_constraints_pathlen")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        found = v.raw.extensions_for(OID_BC)
        if not found:
            yield self.f(v, "ext.basic_constraints_missing", "basicConstraints is missing")
            return
        if not found[0].critical:
            yield self.f(v, "ext.basic_constraints_not_critical", "basicConstraints is not critical")
        try:
            bc = decode_basic_constraints(found[0].value)
        except DerError:
            return  # reported as ext.malformed
        want_ca = v.role in CA_ROLES
        if bc.ca != want_ca:
            yield self.f(v, "ext.basic_constraints_ca", f"cA is {bc.ca}, must be {want_ca} for a {v.role.upper()}")
        allowed = {Role.PAA.value: (None, 1), Role.PAI.value: (0,)}.get(v.role, (None,))
        if bc.path_length not in allowed:
            yield self.f(v, "ext.basic_constraints_pathlen", f"pathLenConstraint is {bc.path_length}, allowed: {allowed}")


class KeyUsageRule(CertificateRule):
    """Critical; DAC digitalSignature only; CA keyCertSign+cRLSign, digitalSignature optional."""

    codes = ("ext.key_usage_missing", "ext.key_usage_not_critical", "ext.key_usage_bits", "ext.key_usage_not_minimal")
    bits_code: ClassVar[str] = "ext.key_usage_bits"

    def wanted_bits(self, role: str, bits: frozenset[int]) -> str | None:
        """What the bits must be for the role, when they are not that (None when they are right)."""
        if role == Role.DAC:
            return None if bits == {KU_DIGITAL_SIGNATURE} else "digitalSignature only"
        required = {KU_KEY_CERT_SIGN, KU_CRL_SIGN}
        return None if required <= bits <= required | {KU_DIGITAL_SIGNATURE} else "keyCertSign+cRLSign (digitalSignature optional)"

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        found = v.raw.extensions_for(OID_KU)
        if not found:
            yield self.f(v, "ext.key_usage_missing", "keyUsage is missing")
            return
        if not found[0].critical:
            yield self.f(v, "ext.key_usage_not_critical", "keyUsage is not critical")
        try:
            ku = decode_key_usage(found[0].value)
        except DerError:
            return
        if not ku.minimal or not ku.padding_clean:
            yield self.f(v, "ext.key_usage_not_minimal", f"keyUsage encoded as {found[0].value.hex()}")
        want = self.wanted_bits(v.role, ku.bits)
        if want is not None:
            yield self.f(v, self.bits_code, f"keyUsage is {'+'.join(ku.names()) or 'empty'}, must be {want}")


class KeyIdentifierRule(CertificateRule):
    """SKID non-critical 20 bytes; AKID non-critical keyIdentifier-only 20 bytes (required on PAI/DAC)."""

    codes = (
        "ext.skid_missing",
        "ext.skid_critical",
        "ext.skid_length",
        "ext.skid_method",
        "ext.akid_missing",
        "ext.akid_critical",
        "ext.akid_length",
        "ext.akid_issuer_serial",
        "ext.paa_akid_not_skid",
    )

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        found = v.raw.extensions_for(OID_SKID)
        if not found:
            yield self.f(v, "ext.skid_missing", "subjectKeyIdentifier is missing")
        else:
            if found[0].critical:
                yield self.f(v, "ext.skid_critical", "subjectKeyIdentifier is critical")
            try:
                skid = decode_skid(found[0].value)
            except DerError:
                skid = None
            if skid is not None and len(skid) != 20:
                yield self.f(v, "ext.skid_length", f"subjectKeyIdentifier is {len(skid)} bytes")
            elif skid is not None and skid != hashlib.sha1(v.raw.public_key_bits).digest():  # noqa: S324 - RFC 5280 method 1
                yield self.f(v, "ext.skid_method", "SKID is not SHA-1(subjectPublicKey)")
        found = v.raw.extensions_for(OID_AKID)
        if not found:
            if v.role != Role.PAA:
                yield self.f(v, "ext.akid_missing", "authorityKeyIdentifier is missing")
            return
        if found[0].critical:
            yield self.f(v, "ext.akid_critical", "authorityKeyIdentifier is critical")
        try:
            akid = decode_akid_full(found[0].value)
        except DerError:
            return
        if akid.keyid is None or len(akid.keyid) != 20:
            shown = "absent" if akid.keyid is None else f"{len(akid.keyid)} bytes"
            yield self.f(v, "ext.akid_length", f"keyIdentifier is {shown}")
        elif v.role == Role.PAA and v.skid() is not None and akid.keyid != v.skid():
            yield self.f(v, "ext.paa_akid_not_skid", "PAA AKID differs from its SKID")
        if akid.issuer is not None or akid.serial is not None:
            yield self.f(v, "ext.akid_issuer_serial", "authorityKeyIdentifier carries authorityCertIssuer/serial; OpenSSL checks them")


class CrlDistributionPointRule(CertificateRule):
    """At most one DP with one http(s) URI of at most 100 characters; none on a PAA."""

    codes = ("ext.crl_distribution_points_shape", "ext.crl_distribution_points_on_paa")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        found = v.raw.extensions_for(OID_CDP)
        if not found:
            return
        if v.role == Role.PAA:
            yield self.f(v, "ext.crl_distribution_points_on_paa", "a root should not carry a CRL distribution point")
        if len(found) != 1:
            return  # ext.duplicate
        problem = _cdp_problem(found[0])
        if problem:
            yield self.f(v, "ext.crl_distribution_points_shape", problem)


def _cdp_problem(ext: RawExtension) -> str | None:
    """chip's ExtractCRLDistributionPointURIFromX509Cert / ExtractCDPExtensionCRLIssuerFromX509Cert shape."""
    if ext.critical:
        return "cRLDistributionPoints is critical"
    try:
        points = decode_crl_distribution_points(ext.value)
    except DerError as e:
        return f"cRLDistributionPoints does not decode: {e}"
    if len(points) != 1:
        return f"{len(points)} distribution points, must be 1"
    dp = points[0]
    if dp.reasons or dp.relative or not dp.full_name or len(dp.full_name) != 1:
        return "the distribution point must be one fullName URI without reasons"
    uri = dp.full_name[0]
    if uri.kind != 6:
        return "fullName is not a URI"
    url = uri.value.decode("latin-1")
    if not (url.startswith(("http://", "https://")) and len(url) > len("https://")) or len(url) > 100:
        return f"URI {url!r} must be http(s) and at most 100 characters"
    if dp.crl_issuer is not None and (len(dp.crl_issuer) != 1 or dp.crl_issuer[0].kind != 4):
        return "cRLIssuer must be one directoryName"
    return None


class PaaSelfRule(CertificateRule):
    """A PAA is self-issued and (SHOULD) self-signed."""

    codes = ("paa.not_self_issued", "paa.self_signature_invalid")
    roles = frozenset({Role.PAA.value})

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        if not v.raw.issuer.matches(v.raw.subject):
            yield self.f(v, "paa.not_self_issued", "issuer name differs from subject")
            return
        if v.public_key() is not None and not verify_signature(v.raw, v.raw):
            yield self.f(v, "paa.self_signature_invalid", "self-signature does not verify")


class DivergenceRule(CertificateRule):
    """Where a BoringSSL-based commissioner reads the certificate differently from chip on OpenSSL."""

    codes = (
        "divergence.ber_encoding",
        "divergence.bit_string_padding",
        "divergence.hybrid_point",
        "divergence.compressed_point",
        "divergence.explicit_curve",
        "divergence.critical_extension",
        "divergence.time_format",
        "divergence.policy_processing",
        "divergence.trust_anchor_checks",
        "divergence.extension_decoding",
        "divergence.name_constraints",
        "divergence.algorithm_parameters",
    )

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        from matter_pki.divergence import certificate_divergences

        for d in certificate_divergences(v.raw, v.role):
            yield self.f(v, d.code, d.message)


# -- issuer rules ----------------------------------------------------------------------------------------
def verify_signature(raw: RawCertificate, issuer: RawCertificate) -> bool:
    """The ECDSA signature over the TBS bytes verifies with the issuer's key (as X509_verify checks it)."""
    return chip.signature_problem(issuer, raw) is None


class IssuerLinkRule(IssuerRule):
    """Names, key identifiers, signature, validity and VID/PID against the issuer's certificate."""

    codes = (
        "issuer.name_mismatch",
        "issuer.name_not_byte_equal",
        "issuer.akid_mismatch",
        "issuer.akid_issuer_serial_mismatch",
        "issuer.signature_invalid",
        "issuer.validity",
        "issuer.vid_mismatch",
        "issuer.pid_mismatch",
        "issuer.name_constraints",
    )

    def check(self, view: tuple[CertView, CertView]) -> Iterator[Finding]:
        """Findings."""
        v, issuer = view
        if not v.raw.issuer.matches(issuer.raw.subject):
            yield self.f(v, "issuer.name_mismatch", "issuer name does not match the issuer's subject (OpenSSL X509_NAME_cmp)")
        elif v.raw.issuer.der != issuer.raw.subject.der:
            yield self.f(v, "issuer.name_not_byte_equal", "issuer name is not byte-for-byte the issuer's subject")
        akid, skid = v.akid(), issuer.skid()
        if akid is not None and skid is not None and akid != skid:
            yield self.f(v, "issuer.akid_mismatch", f"AKID {akid.hex()} differs from issuer SKID {skid.hex()}")
        problem = chip.akid_problem(issuer.raw, v.raw.v3.akid)
        if problem and "key identifier" not in problem:
            yield self.f(v, "issuer.akid_issuer_serial_mismatch", problem)
        if not verify_signature(v.raw, issuer.raw):
            yield self.f(v, "issuer.signature_invalid", "signature does not verify with the issuer's key")
        nc = issuer.raw.v3.name_constraints
        problem = chip.name_constraints_problem((v.raw, issuer.raw), leaf=v.role not in CA_ROLES) if nc else None
        if problem:
            yield self.f(v, "issuer.name_constraints", problem.split(": ", 1)[-1])
        nb, inb, ina = v.raw.not_before.openssl, issuer.raw.not_before.openssl, issuer.raw.not_after.openssl
        if nb is not None and inb is not None and ina is not None and not inb <= nb < ina:
            yield self.f(v, "issuer.validity", "notBefore is outside the issuer's validity (OpenSSL: notBefore <= t < notAfter)")
        try:
            mine, theirs = extract_vid_pid(v.raw.subject), extract_vid_pid(issuer.raw.subject)
        except VidPidError:
            return
        if theirs.vid is not None and mine.vid != theirs.vid:
            yield self.f(v, "issuer.vid_mismatch", f"VID {mine.vid} differs from issuer VID {theirs.vid}")
        if issuer.role == Role.PAI and theirs.pid is not None and mine.pid != theirs.pid:
            yield self.f(v, "issuer.pid_mismatch", f"PID {mine.pid} differs from issuer PID {theirs.pid}")


# -- running --------------------------------------------------------------------------------------------
def apply_rules(rules: Iterable[Rule[Any]], view: Any, role: str) -> list[Finding]:
    """Run rules on one view; a rule that crashes becomes one FATAL finding that hides nothing else."""
    results: list[Finding] = []
    for rule in rules:
        if isinstance(rule, CertificateRule) and not rule.applies(view):
            continue
        try:
            results.extend(rule.check(view))
        except Exception as e:
            results.append(finding("internal.unhandled_exception", f"{rule.name}: {type(e).__name__}: {e}", role))
    return results


def run_rules(view: CertView) -> list[Finding]:
    """Every rule registered for the view's role; a crashing rule becomes one FATAL finding."""
    return apply_rules(_REGISTRY[view.role].rules, view, view.role)


def run_role(role: str, view: Any, issuer_view: Any = None) -> list[Finding]:
    """A registered role's rules on a loaded view, and its issuer rules when an issuer view is given."""
    entry = _REGISTRY[role]
    results = apply_rules(entry.rules, view, role)
    if issuer_view is not None:
        results.extend(apply_rules(entry.issuer_rules, (view, issuer_view), role))
    return results


def lint(data: bytes, role: Role | str, issuer: bytes | None = None) -> list[Finding]:
    """All findings for one input of a lint role, optionally with its issuer's certificate (DER)."""
    role = str(role.value if isinstance(role, Role) else role)
    entry = _REGISTRY[role]
    try:
        view = entry.loader(data, role)
    except DerError as e:
        return [finding(entry.malformed_code, str(e), role)]
    issuer_view: Any = None
    results: list[Finding] = []
    if issuer is not None and entry.issuer_role is not None:
        issuer_entry = _REGISTRY[entry.issuer_role]
        try:
            issuer_view = issuer_entry.loader(issuer, entry.issuer_role)
        except DerError as e:
            results.append(finding(issuer_entry.malformed_code, f"issuer: {e}", entry.issuer_role))
    results.extend(run_role(role, view, issuer_view))
    return sorted(results, key=lambda f: (-f.severity, f.code))


def format_failures(findings: list[Finding]) -> list[Finding]:
    """Findings chip's VerifyAttestationCertificateFormat rejects (plus unreadable input)."""
    table = catalogue()
    return [f for f in findings if table[f.code].chip == "format" or f.code == "internal.unhandled_exception"]


CERTIFICATE_RULES: tuple[CertificateRule, ...] = (
    EncodingRule(),
    VersionSerialRule(),
    SignatureAlgorithmRule(),
    PublicKeyRule(),
    NameRule(),
    ValidityRule(),
    ExtensionSetRule(),
    BasicConstraintsRule(),
    KeyUsageRule(),
    KeyIdentifierRule(),
    CrlDistributionPointRule(),
    PaaSelfRule(),
    DivergenceRule(),
)

for _role, _issuer in ((Role.PAA, None), (Role.PAI, Role.PAA), (Role.DAC, Role.PAI)):
    register_role(_role.value, load_view, malformed_code="cert.der_malformed", issuer_role=_issuer.value if _issuer else None)
    for _rule in CERTIFICATE_RULES:
        register_rule(_role.value, _rule)
    register_issuer_rule(_role.value, IssuerLinkRule())


# Lint roles defined in other modules register themselves when imported; they load with this one.
for _module in ("matter_pki.revocation.lint",):  # the crl and crl-signer roles
    importlib.import_module(_module)
