"""Lint roles ``crl`` and ``crl-signer``: every finding, with stable codes from ``codes.csv``.

``crl``: RFC 5280 5 (v2, ecdsa-with-SHA256, nextUpdate, AKID, CRL Number, critical IDP with one
http(s) URI, critical certificateIssuer on every entry of an indirect CRL) plus what the Matter SDK
needs to use it (generate_revocation_set.py: a DER CRL cryptography loads, AKID = signer SKID, the
IDP URI; TestDACRevocationDelegateImpl.cpp: serials of at most 20 octets). Given the signer
certificate, also the issuer bytes, AKID, signature and the signer's cRLSign; given a time, validity.

``crl-signer``: the delegated signer profile (revocation/signer.py): the certificate rules every
Matter certificate shares (matter_pki.lint, judged as an end-entity), keyUsage cRLSign with nothing
else but digitalSignature, and with the issuer: name, AKID, signature and validity linkage.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.der import DerError
from matter_pki.findings import Finding, finding
from matter_pki.oid import ExtensionOID, SignatureAlgorithmOID
from matter_pki.revocation.rawcrl import RawCrl, crl_der_from_bytes, parse_crl
from matter_pki.revocation.rules import MAX_SERIAL_OCTETS, data_url_problem
from matter_pki.vidpid import VidPidError, extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from datetime import datetime

    from matter_pki.certparse import RawTime

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
_KU_DIGITAL_SIGNATURE, _KU_CRL_SIGN = 0, 6


def _f(code: str, message: str, role: str = CRL_ROLE) -> Finding:
    return finding(code, message, role)


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


def load_crl_view(data: bytes) -> CrlView:
    """Parse leniently and strictly; DerError when the bytes are not a CRL at all."""
    der_bytes, was_pem = crl_der_from_bytes(data)
    raw = parse_crl(der_bytes)
    try:
        crl: x509.CertificateRevocationList | None = x509.load_der_x509_crl(der_bytes)
        error = None
    except ValueError as e:
        crl, error = None, str(e) or type(e).__name__
    return CrlView(raw, crl, error, was_pem)


_RULES: list[Callable[[CrlView], Iterator[Finding]]] = []


def _rule(fn: Callable[[CrlView], Iterator[Finding]]) -> Callable[[CrlView], Iterator[Finding]]:
    _RULES.append(fn)
    return fn


@_rule
def encoding_rules(v: CrlView) -> Iterator[Finding]:
    """DER a strict parser loads (the SDK script uses cryptography's load_der_x509_crl)."""
    if v.pem:
        yield _f("crl.pem_encoded", "the CRL is PEM: publish the DER form at the dataURL (commissioners fetch DER)")
    if v.raw.trailing:
        yield _f("crl.unparseable", f"{v.raw.trailing} byte(s) follow the CRL: strict parsers refuse it")
    elif v.crl is None:
        yield _f("crl.unparseable", f"strict parser refuses it: {v.strict_error}")


@_rule
def version_signature_rules(v: CrlView) -> Iterator[Finding]:
    """v2; ecdsa-with-SHA256, the same inside and outside the TBS."""
    if v.raw.version != 1:
        shown = "absent (v1)" if v.raw.version is None else str(v.raw.version)
        yield _f("crl.version_not_v2", f"version is {shown}, must be 1 (v2): the CRL carries extensions")
    if v.raw.signature_algorithm_oid != ECDSA_SHA256:
        yield _f("crl.signature_algorithm", f"signature algorithm {v.raw.signature_algorithm_oid}, must be ecdsa-with-SHA256")
    if v.raw.tbs_signature_algorithm != v.raw.signature_algorithm:
        yield _f("crl.signature_algorithm", "TBS and outer signature algorithms differ")


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


@_rule
def time_rules(v: CrlView) -> Iterator[Finding]:
    """thisUpdate/nextUpdate: Z times, UTCTime before 2050; nextUpdate present and later."""
    times = [("thisUpdate", v.raw.this_update)] + ([("nextUpdate", v.raw.next_update)] if v.raw.next_update else [])
    times += [(f"revocationDate of {e.serial.hex()}", e.revocation_date) for e in v.raw.entries]
    good = True
    for label, t in times:
        problem = _time_problem(t)
        if problem:
            good = False
            yield _f("crl.time_format", f"{label} {problem}")
        elif (_year(t) < 2050) != (t.tag == der.UTC_TIME):
            yield _f("crl.time_encoding", f"{label} year {_year(t)} in the wrong time type (RFC 5280 5.1.2.4)")
    if v.raw.next_update is None:
        yield _f("crl.next_update_missing", "nextUpdate is absent (RFC 5280 5.1.2.5: conforming issuers include it)")
    elif good and _sortable(v.raw.next_update) <= _sortable(v.raw.this_update):
        yield _f("crl.next_update_order", "nextUpdate is not after thisUpdate")


@_rule
def extension_rules(v: CrlView) -> Iterator[Finding]:
    """AKID and CRL Number present and non-critical; no duplicates; no unknown critical extension."""
    counts = Counter(e.oid for e in v.raw.extensions)
    for oid, n in counts.items():
        if n > 1:
            yield _f("crl.extension_duplicate", f"CRL extension {oid} appears {n} times")
    for ext in v.raw.extensions:
        if ext.critical and ext.oid not in _KNOWN_CRL_EXTENSIONS:
            yield _f("crl.unknown_critical", f"CRL extension {ext.oid} is critical and unknown")
        if ext.critical and ext.oid in (_AKID, _CRL_NUMBER):
            yield _f("crl.extension_criticality", f"{'AKID' if ext.oid == _AKID else 'CRL Number'} must not be critical")
    if _AKID not in counts or v.raw.akid() is None:
        yield _f("crl.akid_missing", "no AKID keyIdentifier: generate_revocation_set.py step 7a drops the CRL")
    if _CRL_NUMBER not in counts:
        yield _f("crl.crl_number_missing", "no CRL Number (RFC 5280 5.2.3: MUST)")
    if _DELTA in counts:
        yield _f("crl.delta_crl", "a delta CRL: the Matter revocation set is built from complete CRLs")


@_rule
def idp_rules(v: CrlView) -> Iterator[Finding]:
    """A critical IDP with exactly one http(s) fullName URI; indirectCRL on an indirect CRL."""
    found = v.raw.extensions_for(_IDP)
    has_issuer_entries = any(e.extensions_for(_CERT_ISSUER) for e in v.raw.entries)
    if not found:
        if has_issuer_entries:
            yield _f("crl.indirect_without_idp", "entries name certificate issuers but no IDP says indirectCRL")
        return
    if not found[0].critical:
        yield _f("crl.idp_not_critical", "IssuingDistributionPoint must be critical (RFC 5280 5.2.5)")
    idp = v.idp()
    if idp is None:
        if v.crl is not None:
            yield _f("crl.idp_shape", "IssuingDistributionPoint cannot be decoded")
        return
    names = idp.full_name or []
    if len(names) != 1 or not isinstance(names[0], x509.UniformResourceIdentifier):
        yield _f("crl.idp_shape", "the IDP must hold exactly one fullName URI (generate_revocation_set.py step 7b)")
    else:
        problem = data_url_problem(names[0].value)
        if problem:
            yield _f("crl.idp_url", f"IDP URI {names[0].value!r}: {problem}")
    if idp.only_some_reasons or idp.only_contains_attribute_certs or idp.relative_name is not None:
        yield _f("crl.idp_shape", "the IDP must not restrict reasons or carry a relative name")
    if has_issuer_entries and not idp.indirect_crl:
        yield _f("crl.indirect_without_idp", "entries name certificate issuers but the IDP lacks indirectCRL")


@_rule
def entry_rules(v: CrlView) -> Iterator[Finding]:
    """Serials matchable (positive, ≤ 20 octets, unique); certificateIssuer critical and on every indirect entry."""
    indirect = v.indirect
    seen: Counter[tuple[bytes, bytes]] = Counter()
    current_issuer = b""
    reasons = _reasons(v)
    for index, entry in enumerate(v.raw.entries):
        shown = entry.serial_magnitude.hex().upper()
        if entry.serial[0] & 0x80 or not any(entry.serial):
            yield _f("crl.entry_serial_not_positive", f"serial {entry.serial.hex()} is not positive")
        if len(entry.serial_magnitude) > MAX_SERIAL_OCTETS:
            yield _f("crl.entry_serial_too_long", f"serial {shown} is over {MAX_SERIAL_OCTETS} octets: never matched")
        counts = Counter(e.oid for e in entry.extensions)
        if any(n > 1 for n in counts.values()):
            yield _f("crl.extension_duplicate", f"entry {shown} repeats an entry extension")
        for ext in entry.extensions:
            if ext.critical and ext.oid not in _KNOWN_ENTRY_EXTENSIONS:
                yield _f("crl.unknown_critical", f"entry {shown}: extension {ext.oid} is critical and unknown")
        issuer_ext = entry.extensions_for(_CERT_ISSUER)
        if issuer_ext:
            if not issuer_ext[0].critical:
                yield _f("crl.entry_issuer_not_critical", f"entry {shown}: certificateIssuer must be critical (RFC 5280 5.3.3)")
            try:
                names = entry.certificate_issuer_names() or []
            except DerError:
                names = []
            if len(names) != 1:
                yield _f("crl.entry_issuer_shape", f"entry {shown}: certificateIssuer must hold exactly one directoryName")
            current_issuer = names[0] if names else b""
        elif indirect:
            yield _f(
                "crl.entry_issuer_missing",
                f"entry {shown} of an indirect CRL has no certificateIssuer: the SDK credits it to every CA using this CRL",
            )
        seen[(current_issuer, entry.serial_magnitude)] += 1
        reason = reasons[index] if index < len(reasons) else None
        if reason in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl):
            yield _f("crl.entry_hold", f"entry {shown} is {reason.value}: attestation revocation is permanent")
    for (_issuer, serial), n in seen.items():
        if n > 1:
            yield _f("crl.entry_duplicate", f"serial {serial.hex().upper()} is listed {n} times for one issuer")


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


def signer_findings(v: CrlView, signer: x509.Certificate) -> Iterator[Finding]:
    """The CRL against its signer: issuer bytes, AKID, signature, cRLSign (RFC 5280 6.3.3 b, f, g)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.certparse import parse_certificate

    raw_signer = parse_certificate(signer.public_bytes(Encoding.DER))
    if v.raw.issuer != raw_signer.subject.der:
        yield _f("crl.signer_name_mismatch", "the CRL issuer is not byte-for-byte the signer's subject")
    try:
        skid = signer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        skid = None
    akid = v.raw.akid()
    if akid is not None and akid != skid:
        yield _f("crl.signer_akid_mismatch", f"CRL AKID {akid.hex().upper()} is not the signer SKID {(skid or b'').hex().upper() or '(none)'}")
    key = signer.public_key()
    ok = False
    if isinstance(key, ec.EllipticCurvePublicKey) and v.raw.signature_algorithm_oid == ECDSA_SHA256:
        try:
            key.verify(v.raw.signature, v.raw.tbs, ec.ECDSA(hashes.SHA256()))
            ok = True
        except InvalidSignature:
            ok = False
    if not ok:
        yield _f("crl.signer_signature_invalid", "the CRL signature does not verify with the signer's key")
    try:
        ku = signer.extensions.get_extension_for_class(x509.KeyUsage).value
        crl_sign = ku.crl_sign
    except x509.ExtensionNotFound:
        crl_sign = False
    if not crl_sign:
        yield _f("crl.signer_not_crl_sign", "the signer's keyUsage lacks cRLSign (RFC 5280 6.3.3 f)")


def time_findings(v: CrlView, at: datetime) -> Iterator[Finding]:
    """Is the CRL current at ``at``: thisUpdate not in the future, nextUpdate not passed."""
    if v.crl is None:
        return
    if v.crl.last_update_utc > at:
        yield _f("crl.not_yet_valid", f"thisUpdate {v.crl.last_update_utc:%Y-%m-%dT%H:%M:%SZ} is in the future")
    next_update = v.crl.next_update_utc
    if next_update is not None and next_update < at:
        yield _f("crl.expired", f"nextUpdate {next_update:%Y-%m-%dT%H:%M:%SZ} has passed: publish a new CRL")


def lint_crl(data: bytes, *, signer: x509.Certificate | None = None, at: datetime | None = None) -> list[Finding]:
    """Every finding for one CRL (DER or PEM); with its signer and a time, the linkage and freshness too."""
    try:
        view = load_crl_view(data)
    except DerError as e:
        return [_f("crl.der_malformed", str(e))]
    results: list[Finding] = []
    checks: list[tuple[str, Callable[[], Iterator[Finding]]]] = [(fn.__name__, lambda fn=fn: fn(view)) for fn in _RULES]  # type: ignore[misc]
    if signer is not None:
        checks.append(("signer_findings", lambda: signer_findings(view, signer)))
    if at is not None:
        checks.append(("time_findings", lambda: time_findings(view, at)))
    for name, check in checks:
        try:
            results.extend(check())
        except Exception as e:  # noqa: BLE001 - one broken rule never hides the others
            results.append(_f("internal.unhandled_exception", f"{name}: {type(e).__name__}: {e}"))
    return sorted(results, key=lambda f: (-f.severity, f.code))


# -- crl-signer --------------------------------------------------------------------------------
def lint_crl_signer(data: bytes, issuer: bytes | None = None) -> list[Finding]:
    """Every finding for a delegated CRL signer certificate (DER), optionally against its issuer (DER)."""
    from matter_pki import lint as cert_lint
    from matter_pki.profiles import Role

    try:
        view = cert_lint.load_view(data, Role.DAC)
    except DerError as e:
        return [_f("cert.der_malformed", str(e), SIGNER_ROLE)]
    # Rules every Matter certificate shares, judged as an end-entity (CA:FALSE, AKID required).
    shared = (
        cert_lint.encoding_rules, cert_lint.version_serial_rules, cert_lint.signature_algorithm_rules,
        cert_lint.public_key_rules, cert_lint.validity_rules, cert_lint.extension_set_rules,
        cert_lint.basic_constraints_rules, cert_lint.key_identifier_rules,
    )  # fmt: skip
    results: list[Finding] = []
    for fn in (*shared, _signer_key_usage_rule, _signer_subject_rule):
        try:
            results.extend(Finding(f.severity, f.code, f.message, SIGNER_ROLE) for f in fn(view))
        except Exception as e:  # noqa: BLE001
            results.append(_f("internal.unhandled_exception", f"{fn.__name__}: {type(e).__name__}: {e}", SIGNER_ROLE))
    if issuer is not None:
        try:
            issuer_view = cert_lint.load_view(issuer, Role.PAI)
            mine = extract_vid_pid(view.raw.subject)
            for f in cert_lint.issuer_findings(view, issuer_view):
                # A delegate carries no VID/PID unless its PAI is product-scoped.
                if (f.code == "issuer.vid_mismatch" and mine.vid is None) or (f.code == "issuer.pid_mismatch" and mine.pid is None):
                    continue
                results.append(Finding(f.severity, f.code, f.message, SIGNER_ROLE))
        except Exception as e:  # noqa: BLE001
            results.append(_f("internal.unhandled_exception", f"issuer rules: {type(e).__name__}: {e}", SIGNER_ROLE))
    return sorted(results, key=lambda f: (-f.severity, f.code))


def _signer_key_usage_rule(v: object) -> Iterator[Finding]:
    from matter_pki import lint as cert_lint

    assert isinstance(v, cert_lint.CertView)
    found = v.raw.extensions_for(cert_lint._KU)
    if not found:
        yield _f("ext.key_usage_missing", "keyUsage is missing", SIGNER_ROLE)
        return
    if not found[0].critical:
        yield _f("ext.key_usage_not_critical", "keyUsage is not critical", SIGNER_ROLE)
    try:
        ku = cert_lint.decode_key_usage(found[0].value)
    except DerError as e:
        yield _f("ext.malformed", f"keyUsage: {e}", SIGNER_ROLE)
        return
    if not ku.minimal:
        yield _f("ext.key_usage_not_minimal", f"keyUsage encoded as {found[0].value.hex()}", SIGNER_ROLE)
    if _KU_CRL_SIGN not in ku.bits or not ku.bits <= {_KU_CRL_SIGN, _KU_DIGITAL_SIGNATURE}:
        yield _f(
            "signer.key_usage_bits",
            f"keyUsage is {'+'.join(ku.names()) or 'empty'}, must be cRLSign (digitalSignature optional)",
            SIGNER_ROLE,
        )


def _signer_subject_rule(v: object) -> Iterator[Finding]:
    from matter_pki import lint as cert_lint

    assert isinstance(v, cert_lint.CertView)
    if not v.raw.subject.attributes:
        yield _f("cert.subject_empty", "subject name is empty", SIGNER_ROLE)
    try:
        ids = extract_vid_pid(v.raw.subject)
    except VidPidError as e:
        yield _f("subject.vidpid_malformed", str(e), SIGNER_ROLE)
        return
    if ids.pid is not None and ids.vid is None:
        yield _f("signer.pid_without_vid", "the signer carries a PID but no VID", SIGNER_ROLE)


def lint_revocation_role(data: bytes, role: str, issuer: bytes | None = None) -> list[Finding]:
    """``lint(data, "crl" | "crl-signer", issuer)``: for a CRL, ``issuer`` is the signer certificate (DER)."""
    if role == SIGNER_ROLE:
        return lint_crl_signer(data, issuer)
    signer = None
    if issuer is not None:
        try:
            signer = x509.load_der_x509_certificate(issuer)
        except ValueError as e:
            return [_f("cert.der_malformed", f"signer: {e}")]
    return lint_crl(data, signer=signer)


__all__ = [
    "CRL_ROLE",
    "SIGNER_ROLE",
    "CrlView",
    "lint_crl",
    "lint_crl_signer",
    "lint_revocation_role",
    "load_crl_view",
]
