"""Lint one Matter attestation certificate: every finding, not only the first.

Rules read the raw encoding (``certparse``) so that what chip's OpenSSL sees is what is judged.
Each rule is a function; a rule that crashes becomes one FATAL ``internal.unhandled_exception``
finding and never hides the others. Codes, severities and the chip check each one maps to are in
``codes.csv``.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.certparse import RawCertificate, RawExtension, parse_certificate
from matter_pki.der import DerError
from matter_pki.findings import Finding, catalogue, finding
from matter_pki.oid import (
    EC_PUBLIC_KEY,
    PRIME256V1,
    ExtensionOID,
    OpenSSLKnownExtensions,
    SignatureAlgorithmOID,
)
from matter_pki.profiles import Role
from matter_pki.vidpid import VidPid, VidPidError, extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MAX_DER = 600
ECDSA_SHA256 = SignatureAlgorithmOID.ECDSA_WITH_SHA256.dotted_string
_BC = ExtensionOID.BASIC_CONSTRAINTS.dotted_string
_KU = ExtensionOID.KEY_USAGE.dotted_string
_SKID = ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string
_AKID = ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string
_EKU = ExtensionOID.EXTENDED_KEY_USAGE.dotted_string
_SAN = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
_AIA = ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string
_CDP = ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string
_KNOWN = frozenset(o.dotted_string for o in OpenSSLKnownExtensions)
KU_NAMES = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)
KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, KU_CRL_SIGN = 0, 5, 6


# -- extension value decoders (strict DER, on raw bytes) ----------------------------------------
@dataclass(frozen=True, slots=True)
class BasicConstraintsValue:
    """Decoded basicConstraints."""

    ca: bool
    path_length: int | None


def decode_basic_constraints(value: bytes) -> BasicConstraintsValue:
    """basicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }."""
    seq = der.expect(der.read_tlv(value), der.SEQUENCE, "BasicConstraints")
    if seq.end != len(value):
        raise DerError("trailing bytes in BasicConstraints")
    ca, path = False, None
    for item in der.children(value, seq):
        if item.tag == der.BOOLEAN and path is None:
            flag = item.value(value)
            if len(flag) != 1 or flag[0] not in (0, 0xFF):
                raise DerError("bad BOOLEAN")
            ca = flag[0] == 0xFF
        elif item.tag == der.INTEGER and path is None:
            path = int.from_bytes(item.value(value), "big", signed=True)
            if path < 0:
                raise DerError("negative pathLenConstraint")
        else:
            raise DerError("unexpected field in BasicConstraints")
    return BasicConstraintsValue(ca, path)


@dataclass(frozen=True, slots=True)
class KeyUsageValue:
    """Decoded keyUsage bits (index 0 = digitalSignature) and whether the encoding is minimal."""

    bits: frozenset[int]
    minimal: bool

    def names(self) -> list[str]:
        """Bit names, in bit order."""
        return [KU_NAMES[b] if b < len(KU_NAMES) else f"bit{b}" for b in sorted(self.bits)]


def decode_key_usage(value: bytes) -> KeyUsageValue:
    """keyUsage ::= BIT STRING; reports the 9-bit padded form as non-minimal."""
    tlv = der.expect(der.read_tlv(value), der.BIT_STRING, "KeyUsage")
    if tlv.end != len(value):
        raise DerError("trailing bytes in KeyUsage")
    content = tlv.value(value)
    if not content or content[0] > 7 or (len(content) == 1 and content[0] != 0):
        raise DerError("malformed BIT STRING")
    unused, data = content[0], content[1:]
    bits = frozenset(i for i in range(len(data) * 8 - unused) if data[i // 8] & (0x80 >> (i % 8)))
    if data:
        last = data[-1]
        trailing_zeros = 8 if last == 0 else (last & -last).bit_length() - 1
        minimal = last != 0 and unused == trailing_zeros
    else:
        minimal = True
    return KeyUsageValue(bits, minimal)


def decode_skid(value: bytes) -> bytes:
    """subjectKeyIdentifier ::= OCTET STRING."""
    tlv = der.expect(der.read_tlv(value), der.OCTET_STRING, "SubjectKeyIdentifier")
    if tlv.end != len(value):
        raise DerError("trailing bytes in SubjectKeyIdentifier")
    return tlv.value(value)


def decode_akid(value: bytes) -> bytes | None:
    """authorityKeyIdentifier keyIdentifier [0], or None when only issuer/serial are given."""
    seq = der.expect(der.read_tlv(value), der.SEQUENCE, "AuthorityKeyIdentifier")
    if seq.end != len(value):
        raise DerError("trailing bytes in AuthorityKeyIdentifier")
    keyid: bytes | None = None
    for item in der.children(value, seq):
        if item.tag == 0x80:
            keyid = item.value(value)
        elif item.tag not in (0xA1, 0x82):
            raise DerError("unexpected field in AuthorityKeyIdentifier")
    return keyid


# -- the certificate as the rules see it --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CertView:
    """A parsed certificate: the raw view always, the strict cryptography object when it loads."""

    role: Role
    raw: RawCertificate
    cert: x509.Certificate | None
    strict_error: str | None

    def single(self, oid: str) -> RawExtension | None:
        """The extension when it appears exactly once."""
        found = self.raw.extensions_for(oid)
        return found[0] if len(found) == 1 else None

    def skid(self) -> bytes | None:
        """SKID bytes, or None if absent or undecodable."""
        ext = self.single(_SKID)
        try:
            return decode_skid(ext.value) if ext else None
        except DerError:
            return None

    def akid(self) -> bytes | None:
        """AKID keyIdentifier, or None if absent or undecodable."""
        ext = self.single(_AKID)
        try:
            return decode_akid(ext.value) if ext else None
        except DerError:
            return None

    def public_key(self) -> ec.EllipticCurvePublicKey | None:
        """The P-256 public key, or None when it is not one."""
        if self.raw.key_algorithm_oid != EC_PUBLIC_KEY.dotted_string:
            return None
        if self.raw.key_parameters != PRIME256V1.dotted_string:
            return None
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.raw.public_key_bits)
        except ValueError:
            return None


def load_view(data: bytes, role: Role | str) -> CertView:
    """Parse DER leniently (as OpenSSL) and strictly (as cryptography); raises DerError if neither can."""
    raw = parse_certificate(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cert: x509.Certificate | None = x509.load_der_x509_certificate(raw.der)
        error = None
    except Exception as e:  # cryptography raises ValueError and its own InvalidVersion
        cert, error = None, str(e) or type(e).__name__
    return CertView(Role(role), raw, cert, error)


RULES: list[Callable[[CertView], Iterator[Finding]]] = []


def rule(fn: Callable[[CertView], Iterator[Finding]]) -> Callable[[CertView], Iterator[Finding]]:
    """Register a rule."""
    RULES.append(fn)
    return fn


def _f(view: CertView, code: str, message: str) -> Finding:
    return finding(code, message, view.role.value)


@rule
def encoding_rules(v: CertView) -> Iterator[Finding]:
    """Size, trailing bytes, strict parseability."""
    if v.raw.trailing:
        yield _f(v, "cert.trailing_data", f"{v.raw.trailing} byte(s) follow the certificate")
    if len(v.raw.der) > MAX_DER:
        yield _f(v, "cert.der_too_large", f"DER is {len(v.raw.der)} bytes, over {MAX_DER}")
    if v.cert is None and v.raw.version == 2:
        yield _f(v, "cert.unparseable", f"strict parser refuses it: {v.strict_error}")


@rule
def version_serial_rules(v: CertView) -> Iterator[Finding]:
    """Version 3; serial positive and at most 20 octets."""
    if v.raw.version != 2:
        yield _f(v, "cert.version_not_v3", f"version field is {v.raw.version} (v{v.raw.version + 1}), must be 2 (v3)")
    serial = v.raw.serial
    if serial[0] & 0x80 or not any(serial):
        yield _f(v, "cert.serial_not_positive", f"serial 0x{serial.hex()} is not positive")
    if len(serial) > 20:
        yield _f(v, "cert.serial_too_long", f"serial is {len(serial)} octets, over 20")


@rule
def signature_algorithm_rules(v: CertView) -> Iterator[Finding]:
    """ecdsa-with-SHA256, identical in TBS and outer structure."""
    if v.raw.signature_algorithm_oid != ECDSA_SHA256:
        yield _f(v, "cert.signature_algorithm", f"signature algorithm {v.raw.signature_algorithm_oid}")
    if v.raw.tbs_signature_algorithm != v.raw.signature_algorithm:
        yield _f(v, "cert.signature_algorithm_mismatch", "TBS and outer signature algorithms differ")


@rule
def public_key_rules(v: CertView) -> Iterator[Finding]:
    """id-ecPublicKey on named curve prime256v1, uncompressed 65-byte point."""
    raw = v.raw
    if raw.key_algorithm_oid != EC_PUBLIC_KEY.dotted_string:
        yield _f(v, "cert.key_not_ec", f"key algorithm {raw.key_algorithm_oid}")
        return
    if raw.key_parameters != PRIME256V1.dotted_string:
        yield _f(v, "cert.key_curve", f"curve {raw.key_parameters}, must be prime256v1")
        return
    point = raw.public_key_bits
    if len(point) != 65 or point[0] != 0x04 or v.public_key() is None:
        yield _f(v, "cert.key_point", f"{len(point)}-byte point starting 0x{point[:1].hex()}")


@rule
def name_rules(v: CertView) -> Iterator[Finding]:
    """Non-empty names; subject VID/PID encoding and presence by role."""
    if not v.raw.issuer.attributes:
        yield _f(v, "cert.issuer_empty", "issuer name is empty")
    if not v.raw.subject.attributes:
        yield _f(v, "cert.subject_empty", "subject name is empty")
    if not any(oid == "2.5.4.3" for oid, _, _ in v.raw.subject.attributes):
        yield _f(v, "subject.common_name_missing", "subject has no CN")
    try:
        ids = extract_vid_pid(v.raw.subject)
    except VidPidError as e:
        yield _f(v, "subject.vidpid_malformed", str(e))
        return
    yield from _vid_pid_presence(v, ids)


def _vid_pid_presence(v: CertView, ids: VidPid) -> Iterator[Finding]:
    if ids.source == "cn":
        yield _f(v, "subject.vidpid_legacy_cn", "VID/PID taken from the Common Name (Mvid:/Mpid:)")
    if any(tag != der.UTF8_STRING for tag in ids.string_tags):
        yield _f(v, "subject.vidpid_not_utf8", "VendorID/ProductID is not a UTF8String")
    if v.role in (Role.PAI, Role.DAC) and ids.vid is None:
        yield _f(v, "subject.vid_missing", f"a {v.role.upper()} must carry a VendorID")
    if v.role is Role.DAC and ids.pid is None:
        yield _f(v, "subject.pid_missing", "a DAC must carry a ProductID")
    if v.role is Role.PAA and ids.pid is not None:
        yield _f(v, "subject.pid_present", f"PAA carries ProductID {ids.pid:04X}")


@rule
def validity_rules(v: CertView) -> Iterator[Finding]:
    """13/15-character Z times; UTCTime before 2050; notAfter after notBefore."""
    parsed = []
    for label, t in (("notBefore", v.raw.not_before), ("notAfter", v.raw.not_after)):
        size = 13 if t.tag == der.UTC_TIME else 15
        if len(t.text) != size or not t.text.endswith("Z") or not t.text[:-1].isdigit():
            yield _f(v, "cert.time_format", f"{label} {t.text!r} is not {size - 1} digits + Z")
            continue
        year = int(t.text[:2]) if size == 13 else int(t.text[:4])
        if size == 13:
            year += 2000 if year < 50 else 1900
        if (year < 2050) != (t.tag == der.UTC_TIME):
            yield _f(v, "cert.time_encoding", f"{label} year {year} encoded as {'UTC' if size == 13 else 'Generalized'}Time")
        parsed.append(str(year) + t.text[size - 11 : -1])
    if len(parsed) == 2 and parsed[1] < parsed[0]:
        yield _f(v, "cert.validity_inverted", "notAfter is before notBefore")


@rule
def extension_set_rules(v: CertView) -> Iterator[Finding]:
    """No duplicates, no undecodable known extension, no unknown critical extension; omit EKU/SAN/AIA."""
    seen: set[str] = set()
    for ext in v.raw.extensions:
        if ext.oid in seen:
            yield _f(v, "ext.duplicate", f"extension {ext.oid} appears more than once")
        seen.add(ext.oid)
        if ext.critical and ext.oid not in _KNOWN:
            yield _f(v, "ext.unknown_critical", f"extension {ext.oid} is critical but not processed by OpenSSL")
    if v.cert is not None and len(seen) == len(v.raw.extensions):
        try:
            v.cert.extensions  # noqa: B018 - decodes every extension cryptography knows
        except Exception as e:
            # Only DER-level failures; cryptography also refuses well-formed but odd values
            # (CA:FALSE with pathLen) that OpenSSL decodes and the role rules judge.
            if "ParseError" in str(e) and not _own_decoders_fail(v):
                yield _f(v, "ext.malformed", f"an extension cannot be decoded: {e}")
    for oid, code in ((_EKU, "ext.extended_key_usage_present"), (_SAN, "ext.subject_alt_name_present"), (_AIA, "ext.authority_info_access_present")):
        if oid in seen:
            yield _f(v, code, f"{oid} is present")


def _own_decoders_fail(v: CertView) -> bool:
    for oid, decode in ((_BC, decode_basic_constraints), (_KU, decode_key_usage), (_SKID, decode_skid), (_AKID, decode_akid)):
        for ext in v.raw.extensions_for(oid):
            try:
                decode(ext.value)
            except DerError:
                return True
    return False


@rule
def basic_constraints_rules(v: CertView) -> Iterator[Finding]:
    """Critical; PAA CA pathLen absent/1, PAI CA pathLen 0, DAC not CA without pathLen."""
    found = v.raw.extensions_for(_BC)
    if not found:
        yield _f(v, "ext.basic_constraints_missing", "basicConstraints is missing")
        return
    ext = found[0]
    if not ext.critical:
        yield _f(v, "ext.basic_constraints_not_critical", "basicConstraints is not critical")
    try:
        bc = decode_basic_constraints(ext.value)
    except DerError as e:
        yield _f(v, "ext.malformed", f"basicConstraints: {e}")
        return
    want_ca = v.role is not Role.DAC
    if bc.ca != want_ca:
        yield _f(v, "ext.basic_constraints_ca", f"cA is {bc.ca}, must be {want_ca} for a {v.role.upper()}")
    allowed = {Role.PAA: (None, 1), Role.PAI: (0,), Role.DAC: (None,)}[v.role]
    if bc.path_length not in allowed:
        yield _f(v, "ext.basic_constraints_pathlen", f"pathLenConstraint is {bc.path_length}, allowed: {allowed}")


@rule
def key_usage_rules(v: CertView) -> Iterator[Finding]:
    """Critical; DAC digitalSignature only; CA keyCertSign+cRLSign, digitalSignature optional."""
    found = v.raw.extensions_for(_KU)
    if not found:
        yield _f(v, "ext.key_usage_missing", "keyUsage is missing")
        return
    ext = found[0]
    if not ext.critical:
        yield _f(v, "ext.key_usage_not_critical", "keyUsage is not critical")
    try:
        ku = decode_key_usage(ext.value)
    except DerError as e:
        yield _f(v, "ext.malformed", f"keyUsage: {e}")
        return
    if not ku.minimal:
        yield _f(v, "ext.key_usage_not_minimal", f"keyUsage encoded as {ext.value.hex()}")
    if v.role is Role.DAC:
        ok = ku.bits == {KU_DIGITAL_SIGNATURE}
        want = "digitalSignature only"
    else:
        required = {KU_KEY_CERT_SIGN, KU_CRL_SIGN}
        ok = required <= ku.bits <= required | {KU_DIGITAL_SIGNATURE}
        want = "keyCertSign+cRLSign (digitalSignature optional)"
    if not ok:
        yield _f(v, "ext.key_usage_bits", f"keyUsage is {'+'.join(ku.names()) or 'empty'}, must be {want}")


@rule
def key_identifier_rules(v: CertView) -> Iterator[Finding]:
    """SKID non-critical 20 bytes; AKID non-critical keyid 20 bytes (required on PAI/DAC)."""
    found = v.raw.extensions_for(_SKID)
    if not found:
        yield _f(v, "ext.skid_missing", "subjectKeyIdentifier is missing")
    else:
        if found[0].critical:
            yield _f(v, "ext.skid_critical", "subjectKeyIdentifier is critical")
        try:
            skid = decode_skid(found[0].value)
        except DerError as e:
            yield _f(v, "ext.malformed", f"subjectKeyIdentifier: {e}")
        else:
            if len(skid) != 20:
                yield _f(v, "ext.skid_length", f"subjectKeyIdentifier is {len(skid)} bytes")
            elif skid != hashlib.sha1(v.raw.public_key_bits).digest():  # noqa: S324 - RFC 5280 method 1
                yield _f(v, "ext.skid_method", "SKID is not SHA-1(subjectPublicKey)")
    found = v.raw.extensions_for(_AKID)
    if not found:
        if v.role is not Role.PAA:
            yield _f(v, "ext.akid_missing", "authorityKeyIdentifier is missing")
        return
    if found[0].critical:
        yield _f(v, "ext.akid_critical", "authorityKeyIdentifier is critical")
    try:
        keyid = decode_akid(found[0].value)
    except DerError as e:
        yield _f(v, "ext.malformed", f"authorityKeyIdentifier: {e}")
        return
    if keyid is None or len(keyid) != 20:
        yield _f(v, "ext.akid_length", f"keyIdentifier is {'absent' if keyid is None else f'{len(keyid)} bytes'}")
    elif v.role is Role.PAA and v.skid() is not None and keyid != v.skid():
        yield _f(v, "ext.paa_akid_not_skid", "PAA AKID differs from its SKID")


@rule
def crl_distribution_point_rules(v: CertView) -> Iterator[Finding]:
    """At most one DP with one http(s) URI of at most 100 characters; none on a PAA."""
    found = v.raw.extensions_for(_CDP)
    if not found or v.cert is None:
        return
    if v.role is Role.PAA:
        yield _f(v, "ext.crl_distribution_points_on_paa", "a root should not carry a CRL distribution point")
    try:
        cdp = v.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    except Exception:
        return
    problem = _cdp_problem(cdp)
    if problem:
        yield _f(v, "ext.crl_distribution_points_shape", problem)


def _cdp_problem(cdp: x509.Extension[x509.CRLDistributionPoints]) -> str | None:
    if cdp.critical:
        return "cRLDistributionPoints is critical"
    points = list(cdp.value)
    if len(points) != 1:
        return f"{len(points)} distribution points, must be 1"
    dp = points[0]
    if dp.reasons is not None or dp.relative_name is not None or not dp.full_name or len(dp.full_name) != 1:
        return "the distribution point must be one fullName URI without reasons"
    uri = dp.full_name[0]
    if not isinstance(uri, x509.UniformResourceIdentifier):
        return "fullName is not a URI"
    url = uri.value
    if not (url.startswith(("http://", "https://")) and len(url) > len("https://")) or len(url) > 100:
        return f"URI {url!r} must be http(s) and at most 100 characters"
    if dp.crl_issuer is not None and (len(dp.crl_issuer) != 1 or not isinstance(dp.crl_issuer[0], x509.DirectoryName)):
        return "cRLIssuer must be one directoryName"
    return None


@rule
def paa_self_rules(v: CertView) -> Iterator[Finding]:
    """A PAA is self-issued and (SHOULD) self-signed."""
    if v.role is not Role.PAA:
        return
    if v.raw.issuer.canonical() != v.raw.subject.canonical():
        yield _f(v, "paa.not_self_issued", "issuer name differs from subject")
        return
    key = v.public_key()
    if key is not None and not verify_signature(v.raw, key):
        yield _f(v, "paa.self_signature_invalid", "self-signature does not verify")


def verify_signature(raw: RawCertificate, key: ec.EllipticCurvePublicKey) -> bool:
    """ECDSA-with-SHA256 signature over the TBS bytes."""
    if raw.signature_algorithm_oid != ECDSA_SHA256:
        return False
    try:
        key.verify(raw.signature, raw.tbs, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def issuer_findings(v: CertView, issuer: CertView) -> Iterator[Finding]:
    """Rules between a certificate and its issuer: names, key ids, signature, validity, VID/PID."""
    if v.raw.issuer.canonical() != issuer.raw.subject.canonical():
        yield _f(v, "issuer.name_mismatch", "issuer name does not match the issuer's subject")
    elif v.raw.issuer.der != issuer.raw.subject.der:
        yield _f(v, "issuer.name_not_byte_equal", "issuer name is not byte-for-byte the issuer's subject")
    akid, skid = v.akid(), issuer.skid()
    if akid is not None and skid is not None and akid != skid:
        yield _f(v, "issuer.akid_mismatch", f"AKID {akid.hex()} differs from issuer SKID {skid.hex()}")
    key = issuer.public_key()
    if key is None or not verify_signature(v.raw, key):
        yield _f(v, "issuer.signature_invalid", "signature does not verify with the issuer's key")
    if v.cert is not None and issuer.cert is not None:
        nb = v.cert.not_valid_before_utc
        if not issuer.cert.not_valid_before_utc <= nb <= issuer.cert.not_valid_after_utc:
            yield _f(v, "issuer.validity", "notBefore is outside the issuer's validity")
    try:
        mine, theirs = extract_vid_pid(v.raw.subject), extract_vid_pid(issuer.raw.subject)
    except VidPidError:
        return
    if theirs.vid is not None and mine.vid != theirs.vid:
        yield _f(v, "issuer.vid_mismatch", f"VID {mine.vid} differs from issuer VID {theirs.vid}")
    if issuer.role is Role.PAI and theirs.pid is not None and mine.pid != theirs.pid:
        yield _f(v, "issuer.pid_mismatch", f"PID {mine.pid} differs from issuer PID {theirs.pid}")


def run_rules(view: CertView) -> list[Finding]:
    """Every registered rule; a crashing rule becomes one FATAL finding."""
    results: list[Finding] = []
    for fn in RULES:
        try:
            results.extend(fn(view))
        except Exception as e:
            results.append(_f(view, "internal.unhandled_exception", f"{fn.__name__}: {type(e).__name__}: {e}"))
    return results


def lint(data: bytes, role: Role | str, issuer: bytes | None = None) -> list[Finding]:
    """All findings for one certificate (DER), optionally with its issuer's certificate (DER)."""
    if str(role) in ("crl", "crl-signer"):  # revocation roles live in their own module
        from matter_pki.revocation.lint import lint_revocation_role

        return lint_revocation_role(data, str(role), issuer)
    role = Role(role)
    try:
        view = load_view(data, role)
    except DerError as e:
        return [finding("cert.der_malformed", str(e), role.value)]
    results = run_rules(view)
    if issuer is not None:
        issuer_role = Role.PAA if role is Role.PAI else Role.PAI
        try:
            issuer_view = load_view(issuer, issuer_role)
        except DerError as e:
            results.append(finding("cert.der_malformed", f"issuer: {e}", issuer_role.value))
        else:
            try:
                results.extend(issuer_findings(view, issuer_view))
            except Exception as e:
                results.append(_f(view, "internal.unhandled_exception", f"issuer rules: {type(e).__name__}: {e}"))
    return sorted(results, key=lambda f: (-f.severity, f.code))


def format_failures(findings: list[Finding]) -> list[Finding]:
    """Findings chip's VerifyAttestationCertificateFormat rejects (plus unreadable input)."""
    table = catalogue()
    return [f for f in findings if table[f.code].chip == "format" or f.code == "internal.unhandled_exception"]
