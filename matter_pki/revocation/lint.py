"""Lint roles ``crl`` and ``crl-signer``: every finding, with stable codes from ``codes.csv``.

``crl``: RFC 5280 5 (v2, ecdsa-with-SHA256, nextUpdate, AKID, CRL Number, critical IDP with one
http(s) URI, critical certificateIssuer on every entry of an indirect CRL) plus what the Matter SDK
needs to use it (generate_revocation_set.py: a DER CRL cryptography loads, AKID = signer SKID, the
IDP URI; TestDACRevocationDelegateImpl.cpp: serials of at most 20 octets). Given the signer
certificate, also the issuer bytes, AKID, signature and the signer's cRLSign; given a time, validity.

``crl-signer``: the delegated signer profile (revocation/signer.py): the certificate rules every
Matter certificate shares (matter_pki.lint, judged as an end-entity), keyUsage cRLSign with nothing
else but digitalSignature, and with the issuer: name, AKID, signature and validity linkage.

Both roles are registered in matter_pki.lint's rule registry, so ``lint(data, "crl", issuer=signer)``
and ``matter-pki lint --role crl`` run exactly the rules below; each rule declares the codes it raises.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki import der
from matter_pki import lint as cert_lint
from matter_pki.certparse import KU_CRL_SIGN
from matter_pki.der import DerError
from matter_pki.findings import Finding, Role, finding
from matter_pki.oid import ExtensionOID, SignatureAlgorithmOID
from matter_pki.revocation.rawcrl import RawCrl, crl_der_from_bytes, parse_crl
from matter_pki.revocation.rules import MAX_SERIAL_OCTETS, data_url_problem
from matter_pki.vidpid import VidPidError, extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from matter_pki.certparse import RawTime
    from matter_pki.lint import CertView

CRL_ROLE = "crl"
SIGNER_ROLE = "crl-signer"
ECDSA_SHA256 = SignatureAlgorithmOID.ECDSA_WITH_SHA256.dotted_string
_AKID = ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string
_CRL_NUMBER = ExtensionOID.CRL_NUMBER.dotted_string
_IDP = ExtensionOID.ISSUING_DISTRIBUTION_POINT.dotted_string
_DELTA = ExtensionOID.DELTA_CRL_INDICATOR.dotted_string
_CERT_ISSUER = "2.5.29.29"
_REASON = "2.5.29.21"
_INVALIDITY_DATE = "2.5.29.24"
_KNOWN_CRL_EXTENSIONS = {_AKID, _CRL_NUMBER, _IDP, _DELTA, ExtensionOID.ISSUER_ALTERNATIVE_NAME.dotted_string,
                         ExtensionOID.FRESHEST_CRL.dotted_string, ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string}
_KNOWN_ENTRY_EXTENSIONS = {_CERT_ISSUER, _REASON, _INVALIDITY_DATE}
_KU_DIGITAL_SIGNATURE, _KU_CRL_SIGN = cert_lint.KU_DIGITAL_SIGNATURE, cert_lint.KU_CRL_SIGN


class CrlView:
    """A CRL as the rules see it: the raw view always, the cryptography object when it loads."""

    def __init__(self, raw: RawCrl, crl: x509.CertificateRevocationList | None, strict_error: str | None, pem: bool) -> None:
        self.raw, self.crl, self.strict_error, self.pem = raw, crl, strict_error, pem

    def idp(self) -> x509.IssuingDistributionPoint | None:
        """The decoded IssuingDistributionPoint, if present and decodable."""
        if self.crl is None:
            return None
        try:
            return self.crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
        except (x509.ExtensionNotFound, ValueError):
            return None

    @property
    def indirect(self) -> bool:
        """The CRL says it is indirect (IDP indirectCRL) or any entry names a certificate issuer."""
        idp = self.idp()
        return bool(idp and idp.indirect_crl) or any(e.extensions_for(_CERT_ISSUER) for e in self.raw.entries)


def load_crl_view(data: bytes, role: str = CRL_ROLE) -> CrlView:
    """Parse leniently and strictly; DerError when the bytes are not a CRL at all (the ``crl`` loader)."""
    der_bytes, was_pem = crl_der_from_bytes(data)
    raw = parse_crl(der_bytes)
    try:
        crl: x509.CertificateRevocationList | None = x509.load_der_x509_crl(der_bytes)
        error = None
    except ValueError as e:
        crl, error = None, str(e) or type(e).__name__
    return CrlView(raw, crl, error, was_pem)


# -- crl -----------------------------------------------------------------------------------------
class CrlRule(cert_lint.Rule[CrlView]):
    """A rule over one CRL."""

    def f(self, code: str, message: str) -> Finding:
        """A finding for the ``crl`` role."""
        return self.finding(CRL_ROLE, code, message)


class CrlEncodingRule(CrlRule):
    """DER a strict parser loads (the SDK script uses cryptography's load_der_x509_crl)."""

    codes = ("crl.pem_encoded", "crl.unparseable")

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        if v.pem:
            yield self.f("crl.pem_encoded", "the CRL is PEM: publish the DER form at the dataURL (commissioners fetch DER)")
        if v.raw.trailing:
            yield self.f("crl.unparseable", f"{v.raw.trailing} byte(s) follow the CRL: strict parsers refuse it")
        elif v.crl is None:
            yield self.f("crl.unparseable", f"strict parser refuses it: {v.strict_error}")


class CrlVersionSignatureRule(CrlRule):
    """v2; ecdsa-with-SHA256, the same inside and outside the TBS."""

    codes = ("crl.version_not_v2", "crl.signature_algorithm")

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        if v.raw.version != 1:
            shown = "absent (v1)" if v.raw.version is None else str(v.raw.version)
            yield self.f("crl.version_not_v2", f"version is {shown}, must be 1 (v2): the CRL carries extensions")
        if v.raw.signature_algorithm_oid != ECDSA_SHA256:
            yield self.f("crl.signature_algorithm", f"signature algorithm {v.raw.signature_algorithm_oid}, must be ecdsa-with-SHA256")
        if v.raw.tbs_signature_algorithm != v.raw.signature_algorithm:
            yield self.f("crl.signature_algorithm", "TBS and outer signature algorithms differ")


def _time_problem(t: RawTime) -> str | None:
    size = 13 if t.tag == der.UTC_TIME else 15
    if len(t.text) != size or not t.text.endswith("Z") or not t.text[:-1].isdigit():
        return f"{t.text!r} is not {size - 1} digits + Z"
    return None


def _year(t: RawTime) -> int:
    if t.tag == der.UTC_TIME:
        yy = int(t.text[:2])
        return yy + (2000 if yy < 50 else 1900)
    return int(t.text[:4])


def _sortable(t: RawTime) -> str:
    return str(_year(t)) + t.text[-11:-1]


class CrlTimeRule(CrlRule):
    """thisUpdate/nextUpdate: Z times, UTCTime before 2050; nextUpdate present and later."""

    codes = ("crl.time_format", "crl.time_encoding", "crl.next_update_missing", "crl.next_update_order")

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        times = [("thisUpdate", v.raw.this_update)] + ([("nextUpdate", v.raw.next_update)] if v.raw.next_update else [])
        times += [(f"revocationDate of {e.serial.hex()}", e.revocation_date) for e in v.raw.entries]
        good = True
        for label, t in times:
            problem = _time_problem(t)
            if problem:
                good = False
                yield self.f("crl.time_format", f"{label} {problem}")
            elif (_year(t) < 2050) != (t.tag == der.UTC_TIME):
                yield self.f("crl.time_encoding", f"{label} year {_year(t)} in the wrong time type (RFC 5280 5.1.2.4)")
        if v.raw.next_update is None:
            yield self.f("crl.next_update_missing", "nextUpdate is absent (RFC 5280 5.1.2.5: conforming issuers include it)")
        elif good and _sortable(v.raw.next_update) <= _sortable(v.raw.this_update):
            yield self.f("crl.next_update_order", "nextUpdate is not after thisUpdate")


class CrlExtensionRule(CrlRule):
    """AKID and CRL Number present and non-critical; no duplicates; no unknown critical extension."""

    codes = (
        "crl.extension_duplicate",
        "crl.unknown_critical",
        "crl.extension_criticality",
        "crl.akid_missing",
        "crl.crl_number_missing",
        "crl.delta_crl",
    )

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        counts = Counter(e.oid for e in v.raw.extensions)
        for oid, n in counts.items():
            if n > 1:
                yield self.f("crl.extension_duplicate", f"CRL extension {oid} appears {n} times")
        for ext in v.raw.extensions:
            if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
                yield self.f("crl.unknown_critical", f"CRL extension {ext.oid} is critical and unknown")
            if ext.critical and ext.oid in (_AKID, _CRL_NUMBER):
                yield self.f("crl.extension_criticality", f"{'AKID' if ext.oid == _AKID else 'CRL Number'} must not be critical")
        if _AKID not in counts or v.raw.akid() is None:
            yield self.f("crl.akid_missing", "no AKID keyIdentifier: generate_revocation_set.py step 7a drops the CRL")
        if _CRL_NUMBER not in counts:
            yield self.f("crl.crl_number_missing", "no CRL Number (RFC 5280 5.2.3: MUST)")
        if _DELTA in counts:
            yield self.f("crl.delta_crl", "a delta CRL: the Matter revocation set is built from complete CRLs")


class CrlIssuingDistributionPointRule(CrlRule):
    """A critical IDP with exactly one http(s) fullName URI; indirectCRL on an indirect CRL."""

    codes = ("crl.indirect_without_idp", "crl.idp_not_critical", "crl.idp_shape", "crl.idp_url")

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        found = v.raw.extensions_for(_IDP)
        has_issuer_entries = any(e.extensions_for(_CERT_ISSUER) for e in v.raw.entries)
        if not found:
            if has_issuer_entries:
                yield self.f("crl.indirect_without_idp", "entries name certificate issuers but no IDP says indirectCRL")
            return
        if not found[0].critical:
            yield self.f("crl.idp_not_critical", "IssuingDistributionPoint must be critical (RFC 5280 5.2.5)")
        idp = v.idp()
        if idp is None:
            if v.crl is not None:
                yield self.f("crl.idp_shape", "IssuingDistributionPoint cannot be decoded")
            return
        names = idp.full_name or []
        if len(names) != 1 or not isinstance(names[0], x509.UniformResourceIdentifier):
            yield self.f("crl.idp_shape", "the IDP must hold exactly one fullName URI (generate_revocation_set.py step 7b)")
        else:
            problem = data_url_problem(names[0].value)
            if problem:
                yield self.f("crl.idp_url", f"IDP URI {names[0].value!r}: {problem}")
        if idp.only_some_reasons or idp.only_contains_attribute_certs or idp.relative_name is not None:
            yield self.f("crl.idp_shape", "the IDP must not restrict reasons or carry a relative name")
        if has_issuer_entries and not idp.indirect_crl:
            yield self.f("crl.indirect_without_idp", "entries name certificate issuers but the IDP lacks indirectCRL")


class CrlEntryRule(CrlRule):
    """Serials matchable (positive, ≤ 20 octets, unique); certificateIssuer critical and on every indirect entry."""

    codes = (
        "crl.entry_serial_not_positive",
        "crl.entry_serial_too_long",
        "crl.extension_duplicate",
        "crl.unknown_critical",
        "crl.entry_issuer_not_critical",
        "crl.entry_issuer_shape",
        "crl.entry_issuer_missing",
        "crl.entry_hold",
        "crl.entry_duplicate",
    )

    def check(self, v: CrlView) -> Iterator[Finding]:
        """Findings."""
        indirect = v.indirect
        seen: Counter[tuple[bytes, bytes]] = Counter()
        current_issuer = b""
        reasons = _reasons(v)
        for index, entry in enumerate(v.raw.entries):
            shown = entry.serial_magnitude.hex().upper()
            if entry.serial[0] & 0x80 or not any(entry.serial):
                yield self.f("crl.entry_serial_not_positive", f"serial {entry.serial.hex()} is not positive")
            if len(entry.serial_magnitude) > MAX_SERIAL_OCTETS:
                yield self.f("crl.entry_serial_too_long", f"serial {shown} is over {MAX_SERIAL_OCTETS} octets: never matched")
            counts = Counter(e.oid for e in entry.extensions)
            if any(n > 1 for n in counts.values()):
                yield self.f("crl.extension_duplicate", f"entry {shown} repeats an entry extension")
            for ext in entry.extensions:
                if ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
                    yield self.f("crl.unknown_critical", f"entry {shown}: extension {ext.oid} is critical and unknown")
            issuer_ext = entry.extensions_for(_CERT_ISSUER)
            if issuer_ext:
                if not issuer_ext[0].critical:
                    yield self.f("crl.entry_issuer_not_critical", f"entry {shown}: certificateIssuer must be critical (RFC 5280 5.3.3)")
                try:
                    names = entry.certificate_issuer_names() or []
                except DerError:
                    names = []
                if len(names) != 1:
                    yield self.f("crl.entry_issuer_shape", f"entry {shown}: certificateIssuer must hold exactly one directoryName")
                current_issuer = names[0] if names else b""
            elif indirect:
                yield self.f(
                    "crl.entry_issuer_missing",
                    f"entry {shown} of an indirect CRL has no certificateIssuer: the SDK credits it to every CA using this CRL",
                )
            seen[(current_issuer, entry.serial_magnitude)] += 1
            reason = reasons[index] if index < len(reasons) else None
            if reason in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl):
                yield self.f("crl.entry_hold", f"entry {shown} is {reason.value}: attestation revocation is permanent")
        for (_issuer, serial), n in seen.items():
            if n > 1:
                yield self.f("crl.entry_duplicate", f"serial {serial.hex().upper()} is listed {n} times for one issuer")


def _reasons(v: CrlView) -> list[x509.ReasonFlags | None]:
    """The reasonCode of every entry, in order (one pass: a lookup by serial is linear per entry)."""
    out: list[x509.ReasonFlags | None] = []
    if v.crl is None:
        return out
    for revoked in v.crl:
        try:
            out.append(revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason)
        except (x509.ExtensionNotFound, ValueError):
            out.append(None)
    return out


class CrlSignerRule(cert_lint.Rule[tuple[CrlView, "CertView"]]):
    """The CRL against its signer: issuer bytes, AKID, signature, cRLSign (RFC 5280 6.3.3 b, f, g)."""

    codes = ("crl.signer_name_mismatch", "crl.signer_akid_mismatch", "crl.signer_signature_invalid", "crl.signer_not_crl_sign")

    def check(self, view: tuple[CrlView, CertView]) -> Iterator[Finding]:
        """Findings."""
        v, signer = view
        if v.raw.issuer != signer.raw.subject.der:
            yield self.finding(CRL_ROLE, "crl.signer_name_mismatch", "the CRL issuer is not byte-for-byte the signer's subject")
        skid, akid = signer.skid(), v.raw.akid()
        if akid is not None and akid != skid:
            shown = (skid or b"").hex().upper() or "(none)"
            yield self.finding(CRL_ROLE, "crl.signer_akid_mismatch", f"CRL AKID {akid.hex().upper()} is not the signer SKID {shown}")
        key = signer.raw.public_key.key if signer.raw.public_key is not None else None
        ok = False
        if isinstance(key, ec.EllipticCurvePublicKey) and v.raw.signature_algorithm_oid == ECDSA_SHA256:
            try:
                key.verify(v.raw.signature, v.raw.tbs, ec.ECDSA(hashes.SHA256()))
                ok = True
            except InvalidSignature:
                ok = False
        if not ok:
            yield self.finding(CRL_ROLE, "crl.signer_signature_invalid", "the CRL signature does not verify with the signer's key")
        kusage = signer.raw.v3.kusage  # None: no (single, decodable) keyUsage
        if kusage is None or not kusage & KU_CRL_SIGN:
            yield self.finding(CRL_ROLE, "crl.signer_not_crl_sign", "the signer's keyUsage lacks cRLSign (RFC 5280 6.3.3 f)")


class CrlFreshnessRule(cert_lint.Rule[tuple[CrlView, "datetime"]]):
    """Is the CRL current at a time: thisUpdate not in the future, nextUpdate not passed (``lint_crl(at=)``)."""

    codes = ("crl.not_yet_valid", "crl.expired")

    def check(self, view: tuple[CrlView, datetime]) -> Iterator[Finding]:
        """Findings."""
        v, at = view
        if v.crl is None:
            return
        if v.crl.last_update_utc > at:
            yield self.finding(CRL_ROLE, "crl.not_yet_valid", f"thisUpdate {v.crl.last_update_utc:%Y-%m-%dT%H:%M:%SZ} is in the future")
        next_update = v.crl.next_update_utc
        if next_update is not None and next_update < at:
            yield self.finding(CRL_ROLE, "crl.expired", f"nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ} has passed: publish a new CRL")


CRL_RULES: tuple[CrlRule, ...] = (
    CrlEncodingRule(),
    CrlVersionSignatureRule(),
    CrlTimeRule(),
    CrlExtensionRule(),
    CrlIssuingDistributionPointRule(),
    CrlEntryRule(),
)
FRESHNESS_RULE = CrlFreshnessRule()


def lint_crl(data: bytes, *, signer: x509.Certificate | None = None, at: datetime | None = None) -> list[Finding]:
    """Every finding for one CRL (DER or PEM); with its signer and a time, the linkage and freshness too."""
    try:
        view = load_crl_view(data)
    except DerError as e:
        return [finding("crl.der_malformed", str(e), CRL_ROLE)]
    signer_view: CertView | None = None
    results: list[Finding] = []
    if signer is not None:
        try:
            signer_view = load_signer_view(signer.public_bytes(Encoding.DER))
        except DerError as e:
            results.append(finding("cert.der_malformed", f"issuer: {e}", SIGNER_ROLE))
    results.extend(cert_lint.run_role(CRL_ROLE, view, signer_view))
    if at is not None:
        results.extend(cert_lint.apply_rules([FRESHNESS_RULE], (view, at), CRL_ROLE))
    return sorted(results, key=lambda f: (-f.severity, f.code))


# -- crl-signer --------------------------------------------------------------------------------
def load_signer_view(data: bytes, role: str = SIGNER_ROLE) -> CertView:
    """A certificate as OpenSSL reads it, linted as a CRL signer (the ``crl-signer`` loader)."""
    return dataclasses.replace(cert_lint.load_view(data, Role.DAC), role=role)


class SignerKeyUsageRule(cert_lint.KeyUsageRule):
    """keyUsage critical and minimal, cRLSign with nothing else but digitalSignature."""

    codes = ("ext.key_usage_missing", "ext.key_usage_not_critical", "ext.key_usage_not_minimal", "signer.key_usage_bits")
    bits_code = "signer.key_usage_bits"

    def wanted_bits(self, role: str, bits: frozenset[int]) -> str | None:
        """cRLSign, digitalSignature optional, nothing else."""
        ok = _KU_CRL_SIGN in bits and bits <= {_KU_CRL_SIGN, _KU_DIGITAL_SIGNATURE}
        return None if ok else "cRLSign (digitalSignature optional)"


class SignerSubjectRule(cert_lint.CertificateRule):
    """A subject; VID/PID well-formed, a PID only with a VID."""

    codes = ("cert.subject_empty", "subject.vidpid_malformed", "signer.pid_without_vid")

    def check(self, v: CertView) -> Iterator[Finding]:
        """Findings."""
        if not v.raw.subject.attributes:
            yield self.f(v, "cert.subject_empty", "subject name is empty")
        try:
            ids = extract_vid_pid(v.raw.subject)
        except VidPidError as e:
            yield self.f(v, "subject.vidpid_malformed", str(e))
            return
        if ids.pid is not None and ids.vid is None:
            yield self.f(v, "signer.pid_without_vid", "the signer carries a PID but no VID")


class SignerIssuerRule(cert_lint.IssuerRule):
    """Name, AKID, signature, validity and VID/PID linkage to the issuer, except for IDs the signer leaves out."""

    codes = cert_lint.IssuerLinkRule.codes
    _link = cert_lint.IssuerLinkRule()

    def check(self, view: tuple[CertView, CertView]) -> Iterator[Finding]:
        """Findings."""
        try:
            mine = extract_vid_pid(view[0].raw.subject)
        except VidPidError:
            mine = None  # reported by SignerSubjectRule; the link rule skips VID/PID then
        for f in self._link.check(view):
            # A delegate carries no VID/PID unless its PAI is product-scoped.
            if mine is not None and ((f.code == "issuer.vid_mismatch" and mine.vid is None) or (f.code == "issuer.pid_mismatch" and mine.pid is None)):
                continue
            yield f


# Rules every Matter certificate shares, judged as an end-entity (CA:FALSE, AKID required).
SIGNER_RULES: tuple[cert_lint.CertificateRule, ...] = (
    cert_lint.EncodingRule(),
    cert_lint.VersionSerialRule(),
    cert_lint.SignatureAlgorithmRule(),
    cert_lint.PublicKeyRule(),
    cert_lint.ValidityRule(),
    cert_lint.ExtensionSetRule(),
    cert_lint.BasicConstraintsRule(),
    cert_lint.KeyIdentifierRule(),
    SignerKeyUsageRule(),
    SignerSubjectRule(),
)


def lint_crl_signer(data: bytes, issuer: bytes | None = None) -> list[Finding]:
    """Every finding for a delegated CRL signer certificate (DER), optionally against its issuer (DER)."""
    return cert_lint.lint(data, SIGNER_ROLE, issuer)


cert_lint.register_role(CRL_ROLE, load_crl_view, malformed_code="crl.der_malformed", issuer_role=SIGNER_ROLE)
for _rule in CRL_RULES:
    cert_lint.register_rule(CRL_ROLE, _rule)
cert_lint.register_issuer_rule(CRL_ROLE, CrlSignerRule())
cert_lint.register_role(SIGNER_ROLE, load_signer_view, malformed_code="cert.der_malformed", issuer_role=Role.PAI.value)
for _signer_rule in SIGNER_RULES:
    cert_lint.register_rule(SIGNER_ROLE, _signer_rule)
cert_lint.register_issuer_rule(SIGNER_ROLE, SignerIssuerRule())

__all__ = [
    "CRL_ROLE",
    "CRL_RULES",
    "SIGNER_ROLE",
    "SIGNER_RULES",
    "CrlView",
    "lint_crl",
    "lint_crl_signer",
    "load_crl_view",
    "load_signer_view",
]
