"""chip's certificate checks on Linux (OpenSSL 3), modelled on parsed certificates.

Each function here mirrors one function of the Matter SDK's OpenSSL crypto layer
(src/crypto/CHIPCryptoPALOpenSSL.cpp) and decides with ``certparse``'s model of the OpenSSL calls it
makes: ``VerifyAttestationCertificateFormat`` (``format_check``), ``ExtractVIDPIDFromX509Cert``
(``matter_pki.vidpid``), ``IsCertificateValidAtCurrentTime`` (``valid_at``) and
``ValidateCertificateChain`` (``verify_chain``, whose OpenSSL part is X509_verify_cert with
X509_V_FLAG_X509_STRICT at the DAC's notBefore: crypto/x509/x509_vfy.c build_chain,
check_extensions, internal_verify; v3_purp.c check_ca, X509_check_akid, ossl_x509_likely_issued).

Two flavours are modelled: ``openssl`` (chip-cert and chip-tool on Linux; the verdict) and
``boringssl`` (the SDK wheel, Android and Home Assistant commissioners), where the libraries are
known to differ (see ``boringssl_view``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.certparse import (
    EC_PUBLIC_KEY,
    ECDSA_HASHES,
    ECDSA_SHA256,
    KU_CRL_SIGN,
    KU_DIGITAL_SIGNATURE,
    KU_KEY_CERT_SIGN,
    OID_AKID,
    OID_BC,
    OID_CDP,
    OID_KU,
    OID_SKID,
    AuthorityKeyIdValue,
    GeneralName,
    NameConstraintsValue,
    RawCertificate,
    RawName,
    V3Cache,
    to_utf8,
)
from matter_pki.der import DerError

Flavour = Literal["openssl", "boringssl"]
MAX_DER = 600  # kMaxDERCertLength (src/credentials/CHIPCert.h)
# BoringSSL's X509_supported_extension: no cRLDistributionPoints, netscape cert type, OCSP noCheck, RFC 3779.
BORINGSSL_SUPPORTED_EXTENSIONS = frozenset(
    {"2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.32", "2.5.29.37", "2.5.29.36", "2.5.29.30", "2.5.29.33", "2.5.29.54"}
)

_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a check fails: a catalogue code and a one-line message."""

    code: str
    message: str


CRASH = "crash"


def format_check(raw: RawCertificate, role: str, flavour: Flavour = "openssl") -> Problem | None:
    """VerifyAttestationCertificateFormat for ``role`` (paa, pai, dac); None when chip accepts it.

    The extensions are walked in their order, as chip walks them; BC and KU values are OpenSSL's
    cached ones (X509_get_extension_flags, X509_get_pathlen, X509_get_key_usage), which read 0 / -1
    for a certificate OpenSSL marked invalid. A SKID or AKID that OpenSSL cannot return is a NULL
    dereference in chip; it is reported here as a missing key identifier.
    """
    if raw.version != 2:
        return Problem("cert.version_not_v3", f"version field is {raw.version}, must be 2 (v3)")
    if raw.signature_algorithm_oid != ECDSA_SHA256:
        return Problem("cert.signature_algorithm", f"signature algorithm {raw.signature_algorithm_oid}")
    key_problem = public_key_problem(raw, flavour)
    if key_problem is not None:
        return key_problem
    v3 = raw.v3_for(flavour)
    seen: set[str] = set()
    for ext in raw.extensions:
        if ext.oid == OID_BC:
            if not ext.critical:
                return Problem("ext.basic_constraints_not_critical", "basicConstraints is not critical")
            if ext.oid in seen:
                return Problem("ext.duplicate", "basicConstraints appears more than once")
            is_ca, path = v3.ca, v3.path_length
            allowed = {"dac": (False, (-1,)), "pai": (True, (0,))}.get(role, (True, (-1, 1)))
            if is_ca != allowed[0]:
                return Problem("ext.basic_constraints_ca", f"cA is {is_ca}, must be {allowed[0]} for a {role.upper()}")
            if path not in allowed[1]:
                shown = "absent" if path == -1 else str(path)
                return Problem("ext.basic_constraints_pathlen", f"pathLenConstraint {shown} not allowed for a {role.upper()}")
        elif ext.oid == OID_KU:
            if not ext.critical:
                return Problem("ext.key_usage_not_critical", "keyUsage is not critical")
            if ext.oid in seen:
                return Problem("ext.duplicate", "keyUsage appears more than once")
            ku = v3.key_usage
            if role == "dac":
                ok = ku == KU_DIGITAL_SIGNATURE
            else:
                ca_bits = KU_KEY_CERT_SIGN | KU_CRL_SIGN
                ok = ku & ca_bits == ca_bits and not ku & ~(ca_bits | KU_DIGITAL_SIGNATURE)
            if not ok:
                if not v3.ok:
                    return Problem("ext.malformed", f"OpenSSL marks the certificate invalid ({v3.invalid[0]}), so keyUsage reads 0")
                return Problem("ext.key_usage_bits", f"keyUsage value 0x{ku:04x} is wrong for a {role.upper()}")
        elif ext.oid in (OID_SKID, OID_AKID):
            label = "subjectKeyIdentifier" if ext.oid == OID_SKID else "authorityKeyIdentifier"
            short = "skid" if ext.oid == OID_SKID else "akid"
            if ext.critical:
                return Problem(f"ext.{short}_critical", f"{label} is critical")
            if ext.oid in seen:
                return Problem("ext.duplicate", f"{label} appears more than once")
            kid = v3.skid if ext.oid == OID_SKID else (v3.akid.keyid if v3.akid else None)
            if kid is None:
                # chip dereferences the NULL OpenSSL returns here (a crash); the certificate is unusable.
                return Problem(f"ext.{short}_length", f"{label} keyIdentifier cannot be read")
            if len(kid) != 20:
                return Problem(f"ext.{short}_length", f"{label} is {len(kid)} bytes, must be 20")
        seen.add(ext.oid)
    for oid, code, label in ((OID_BC, "ext.basic_constraints_missing", "basicConstraints"), (OID_KU, "ext.key_usage_missing", "keyUsage"), (OID_SKID, "ext.skid_missing", "subjectKeyIdentifier")):
        if oid not in seen:
            return Problem(code, f"{label} is missing")
    if role != "paa" and OID_AKID not in seen:
        return Problem("ext.akid_missing", "authorityKeyIdentifier is missing")
    return None


def public_key_problem(raw: RawCertificate, flavour: Flavour = "openssl") -> Problem | None:
    """ExtractPubkeyFromX509Cert: an EC key, 256 bits, prime256v1, written by i2d_PublicKey in 65 bytes.

    OpenSSL writes the point in the form it was read (a compressed point gives 33 bytes); BoringSSL always
    writes it uncompressed, and cannot read explicit curve parameters.
    """
    key = raw.public_key
    if key is None or key.algorithm != EC_PUBLIC_KEY:
        return Problem("cert.key_not_ec", f"key algorithm {raw.key_algorithm_oid}")
    if key.curve != "1.2.840.10045.3.1.7" or (flavour == "boringssl" and key.explicit):
        return Problem("cert.key_curve", f"curve {key.parameters}, must be the named curve prime256v1")
    if key.key is None:
        return Problem("cert.key_point", "the public key point does not decode on P-256")
    if flavour == "boringssl":
        return None
    if key.i2d_length != 65:
        return Problem("cert.key_point", f"{key.form} point: i2d_PublicKey writes {key.i2d_length} bytes, not 65")
    return None


def valid_at(raw: RawCertificate, at: int) -> bool:
    """IsCertificateValidAtCurrentTime with ``at`` as now: X509_cmp_time(notBefore) <= at < notAfter."""
    nb, na = raw.not_before.openssl, raw.not_after.openssl
    return nb is not None and na is not None and nb <= at < na


def akid_problem(issuer: RawCertificate, akid: AuthorityKeyIdValue | None) -> str | None:
    """X509_check_akid (v3_purp.c): keyid vs issuer SKID, serial vs issuer serial, directoryName vs issuer's issuer."""
    if akid is None:
        return None
    skid = issuer.v3.skid
    if akid.keyid is not None and skid is not None and akid.keyid != skid:
        return "authority key identifier does not match the issuer's subject key identifier"
    if akid.serial is not None and akid.serial != issuer.serial_value:
        return "authorityCertSerialNumber does not match the issuer's serial number"
    directory = akid.issuer_directory
    if directory is not None and not directory.matches(issuer.issuer):
        return "authorityCertIssuer does not name the issuer's issuer"
    return None


def _sig_alg_match(issuer: RawCertificate, subject: RawCertificate) -> bool:
    """check_sig_alg_match: the subject's TBS signature algorithm is an EC one and the issuer key is EC."""
    key = issuer.public_key
    alg = subject.tbs_algorithm
    return key is not None and key.key is not None and alg is not None and alg.oid in ECDSA_HASHES


def likely_issued(issuer: RawCertificate, subject: RawCertificate, flavour: Flavour = "openssl") -> str | None:
    """ossl_x509_likely_issued: names chain, both extension caches valid, AKID, algorithm family."""
    if not subject.issuer.matches(issuer.subject):
        return "issuer name does not match the issuer's subject"
    caches = (issuer.v3_for(flavour), subject.v3_for(flavour))
    for cache in caches:
        if not cache.ok:
            return f"an extension the library caches is invalid ({cache.invalid[0]})"
    problem = akid_problem(issuer, subject.v3.akid)
    if problem:
        return problem
    if not _sig_alg_match(issuer, subject):
        return "signature algorithm does not match the issuer's key"
    return None


def _check_ca(v3: V3Cache, raw: RawCertificate) -> int:
    """X509_check_ca (v3_purp.c check_ca); 0 for a certificate whose cache is invalid."""
    if not v3.ok:
        return 0
    if v3.kusage is not None and not v3.kusage & KU_KEY_CERT_SIGN:
        return 0
    if v3.bcons:
        return 1 if v3.ca else 0
    if raw.version == 0 and v3.self_issued:
        return 3
    if v3.kusage is not None:
        return 4
    return 0


def signature_problem(issuer: RawCertificate, subject: RawCertificate, flavour: Flavour = "openssl") -> str | None:
    """X509_verify: identical algorithms, no unused bits, an ECDSA hash OpenSSL knows, a valid signature.

    BoringSSL also refuses ECDSA AlgorithmIdentifier parameters other than absent or NULL.
    """
    tbs, outer = subject.tbs_algorithm, subject.outer_algorithm
    if tbs is None or outer is None or (tbs.oid, tbs.params) != (outer.oid, outer.params):
        return "TBS and outer signature algorithms differ"
    if flavour == "boringssl" and outer.params is not None and outer.params != (0x05, b""):
        return "ECDSA signature algorithm with parameters"
    if subject.signature_unused_bits:
        return "signature BIT STRING has unused bits"
    key = issuer.public_key.key if issuer.public_key else None
    if key is None:
        return "issuer public key does not decode"
    name = ECDSA_HASHES.get(outer.oid)
    if name is None:
        return f"signature algorithm {outer.oid} is not one OpenSSL verifies"
    try:
        key.verify(subject.signature, subject.tbs, ec.ECDSA(_HASH_CLASSES[name]()))
    except (InvalidSignature, ValueError):
        return "signature does not verify with the issuer's key"
    return None


def _time_ok(raw: RawCertificate, at: int) -> str | None:
    nb, na = raw.not_before.openssl, raw.not_after.openssl
    if nb is None:
        return "notBefore is not a time OpenSSL reads"
    if na is None:
        return "notAfter is not a time OpenSSL reads"
    if nb > at:
        return "not yet valid at the DAC's notBefore"
    if na <= at:
        return "expired at the DAC's notBefore"
    return None


def _strict_extensions(raw: RawCertificate, index: int, num: int, flavour: Flavour = "openssl") -> str | None:
    """check_extensions (x509_vfy.c) with X509_V_FLAG_X509_STRICT, for the certificate at ``index``.

    BoringSSL checks only the untrusted certificates (not the trust anchor), knows a smaller set of
    critical extensions, and makes none of OpenSSL's X509_V_FLAG_X509_STRICT checks.
    """
    v3 = raw.v3_for(flavour)
    if flavour == "boringssl":
        if index == num - 1:
            return None
        critical = next((e.oid for e in raw.extensions if e.critical and e.oid not in BORINGSSL_SUPPORTED_EXTENSIONS), None)
        if critical:
            return f"unhandled critical extension {critical}"
        ret = _check_ca(v3, raw)
        if index > 0 and ret != 1:
            return "invalid CA certificate"
        return None
    if v3.unsupported_critical:
        return f"unhandled critical extension {v3.unsupported_critical}"
    if v3.proxy:
        return "proxy certificates not allowed"
    ret = _check_ca(v3, raw)
    if index == 0:
        if ret not in (0, 1):
            return "invalid CA certificate (leaf without basicConstraints but with keyCertSign)"
    elif ret != 1:
        return "invalid CA certificate"
    key = raw.public_key
    if key is None or (key.algorithm == EC_PUBLIC_KEY and key.key is None):
        return "public key does not decode"
    if key.algorithm == EC_PUBLIC_KEY and key.explicit:
        return "EC key with explicit parameters"
    kusage = v3.kusage or 0
    if v3.pathlen != -1:
        if not v3.ca:
            return "pathLenConstraint on a non-CA"
        if not kusage & KU_KEY_CERT_SIGN:
            return "pathLenConstraint without keyCertSign"
    if v3.ca and v3.bcons and not v3.bcons_critical:
        return "CA basicConstraints not critical"
    if v3.ca and v3.kusage is None:
        return "CA certificate without keyUsage"
    if not v3.ca and kusage & KU_KEY_CERT_SIGN:
        return "keyCertSign on a non-CA"
    if not raw.issuer.attributes:
        return "empty issuer name"
    if not raw.subject.attributes and (v3.ca or kusage & KU_CRL_SIGN or v3.altname is None):
        return "empty subject name"
    if v3.altname is not None and not v3.altname:
        return "empty subjectAltName"
    tbs, outer = raw.tbs_algorithm, raw.outer_algorithm
    if tbs is None or outer is None or (tbs.oid, tbs.params) != (outer.oid, outer.params):
        return "signature algorithm inconsistency"
    if raw.version >= 2:
        if index + 1 < num and v3.akid is None:
            return "missing authorityKeyIdentifier"
        if v3.ca and v3.skid is None:
            return "missing subjectKeyIdentifier on a CA"
    elif raw.extensions:
        return "extensions require version 3"
    return None


# -- name constraints (crypto/x509/v3_ncons.c NAME_CONSTRAINTS_check, NAME_CONSTRAINTS_check_CN) ----------
_PERMITTED, _EXCLUDED = "permitted subtree violation", "excluded subtree violation"
_NAME_CHECK_MAX = 1 << 20  # NAME_CHECK_MAX: OpenSSL refuses more name x constraint comparisons


def _nc_dns(name: bytes, base: bytes) -> bool:
    """nc_dns: an empty base matches all; else a case-insensitive suffix on a label boundary."""
    if not base:
        return True
    if len(name) < len(base):
        return False
    if len(name) > len(base) and base[:1] != b"." and name[len(name) - len(base) - 1 : len(name) - len(base)] != b".":
        return False
    return name[len(name) - len(base) :].lower() == base.lower()


def _nc_email(email: bytes, base: bytes) -> bool:
    """nc_email: local part exact when the base has one, domain case-insensitive (suffix for '.domain')."""
    at = email.rfind(b"@")
    if at < 0:
        return False
    local, domain = email[:at], email[at + 1 :]
    if b"@" in base:
        b_at = base.rfind(b"@")
        return base[:b_at] == local and base[b_at + 1 :].lower() == domain.lower()
    if base[:1] == b".":
        return domain.lower().endswith(base.lower())
    return domain.lower() == base.lower()


def _nc_uri(uri: bytes, base: bytes) -> bool:
    """nc_uri: the host of scheme://host[:port][/...] against the base (suffix for '.domain')."""
    start = uri.find(b"://")
    if start < 0:
        return False
    host = uri[start + 3 :]
    for stop in (b":", b"/"):
        host = host.split(stop, 1)[0]
    if not host:
        return False
    if base[:1] == b".":
        return host.lower().endswith(base.lower())
    return host.lower() == base.lower()


def _nc_ip(ip: bytes, base: bytes) -> bool:
    """nc_ip: address and mask of the base (8 or 32 octets) against a 4 or 16 octet address."""
    if len(base) not in (8, 32) or len(ip) * 2 != len(base):
        return False
    half = len(ip)
    return all((ip[i] & base[half + i]) == (base[i] & base[half + i]) for i in range(half))


def _nc_single(kind: int, value: bytes, directory: RawName | None, base: GeneralName) -> bool | None:
    """nc_match_single: True on match, False on a mismatch, None for a type OpenSSL does not support."""
    if kind == 4:
        if base.directory is None or directory is None:
            return False
        return len(base.directory.canon) <= len(directory.canon) and directory.canon.startswith(base.directory.canon)
    match = {2: _nc_dns, 1: _nc_email, 6: _nc_uri, 7: _nc_ip}.get(kind)
    return None if match is None else match(value, base.value)


def _nc_match(kind: int, value: bytes, nc: NameConstraintsValue, directory: RawName | None = None) -> str | None:
    """nc_match: one name against permitted (one of its type must match) and excluded subtrees."""
    match = 0
    for subtree in nc.permitted:
        if subtree.base.kind != kind:
            continue
        if subtree.minimum != 0 or subtree.maximum is not None:
            return "subtree minimum/maximum not supported"
        if match == 2:
            continue
        match = max(match, 1)
        found = _nc_single(kind, value, directory, subtree.base)
        if found is None:
            return "unsupported constraint type"
        if found:
            match = 2
    if match == 1:
        return _PERMITTED
    for subtree in nc.excluded:
        if subtree.base.kind != kind:
            continue
        if subtree.minimum != 0 or subtree.maximum is not None:
            return "subtree minimum/maximum not supported"
        found = _nc_single(kind, value, directory, subtree.base)
        if found is None:
            return "unsupported constraint type"
        if found:
            return _EXCLUDED
    return None


def _cn_dns_ids(raw: RawCertificate) -> list[bytes] | str:
    """cn2dnsid: each CN that looks like a host name (two labels or more, letters, digits, '-', '_').

    Returns an error string where OpenSSL fails the check (no UTF-8 form, an embedded NUL).
    """
    out = []
    for oid, tag, value in raw.subject.attributes:
        if oid != "2.5.4.3":
            continue
        try:
            text = to_utf8(tag, value)
        except DerError:
            return "CN has no UTF-8 form"
        text = text.rstrip(b"\x00")
        if b"\x00" in text:
            return "unsupported name syntax (NUL in a CN)"
        is_dns = False
        for i, c in enumerate(text):
            if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 or c == 0x5F:
                continue
            if 0 < i < len(text) - 1:
                if c == 0x2D:
                    continue
                if c == 0x2E and text[i + 1] != 0x2E and text[i - 1] != 0x2D and text[i + 1] != 0x2D:
                    is_dns = True
                    continue
            is_dns = False
            break
        if is_dns:
            out.append(text)
    return out


def _looks_like_dns_name(text: bytes) -> bool:
    """BoringSSL's x509v3_looks_like_dns_name: letters, digits, '-', '_', ':' in non-empty labels."""
    if text.endswith(b"."):
        text = text[:-1]
    if text.startswith(b"*."):
        text = text[2:]
    if not text:
        return False
    label_start = 0
    for i, c in enumerate(text):
        if (c < 0x80 and chr(c).isalnum()) or (c == 0x2D and i > label_start) or c in (0x5F, 0x3A):
            continue
        if c == 0x2E and label_start < i < len(text) - 1:
            label_start = i + 1
            continue
        return False
    return True


def _boringssl_cn_rejected(leaf: RawCertificate) -> bool:
    """BoringSSL refuses a leaf without subjectAltName whose CN looks like a host name under name constraints."""
    if leaf.v3.altname is not None:
        return False
    for oid, tag, value in leaf.subject.attributes:
        if oid == "2.5.4.3":
            try:
                if _looks_like_dns_name(to_utf8(tag, value)):
                    return True
            except DerError:
                return True
    return False


def name_constraints_problem(
    chain: tuple[RawCertificate, ...], flavour: Flavour = "openssl", leaf: bool = True
) -> str | None:
    """check_name_constraints (x509_vfy.c): each certificate against the constraints of those above it.

    OpenSSL also checks a leaf's host-like Common Names (when it has no DNS subjectAltName) as DNS
    names; BoringSSL instead refuses such a leaf outright once any name constraint applies
    (X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS).
    """
    if leaf and flavour == "boringssl" and any(c.v3.name_constraints is not None for c in chain[1:]) and _boringssl_cn_rejected(chain[0]):
        return "DAC: name constraints apply and the Common Name looks like a host name but there is no subjectAltName"
    for i in range(len(chain) - 1, -1, -1):
        x = chain[i]
        if i != 0 and x.v3.self_issued:
            continue
        for j in range(len(chain) - 1, i, -1):
            nc = chain[j].v3.name_constraints
            if nc is None:
                continue
            name_count = len(x.subject.attributes) + len(x.v3.altname or ())
            if name_count and len(nc.permitted) + len(nc.excluded) > _NAME_CHECK_MAX // name_count:
                return f"{('DAC', 'PAI', 'PAA')[i]}: name constraints: too many names and constraints to compare"
            problem = None
            if x.subject.attributes:
                problem = _nc_match(4, b"", nc, x.subject)
                for oid, tag, value in x.subject.attributes:
                    if problem is None and oid == "1.2.840.113549.1.9.1":
                        problem = _nc_match(1, value, nc) if tag == 0x16 else "unsupported name syntax"
            for gn in x.v3.altname or ():
                if problem is None:
                    problem = _nc_match(gn.kind, gn.value, nc, gn.directory)
            if problem is None and i == 0 and leaf and flavour == "openssl" and not any(gn.kind == 2 for gn in x.v3.altname or ()):
                hosts = _cn_dns_ids(x)
                if isinstance(hosts, str):
                    problem = hosts
                for dns in hosts if isinstance(hosts, list) else []:
                    problem = problem or _nc_match(2, dns, nc)
            if problem:
                return f"{('DAC', 'PAI', 'PAA')[i]}: name constraints: {problem}"
    return None


def openssl_verify(
    paa: RawCertificate, pai: RawCertificate, dac: RawCertificate, at: int, flavour: Flavour = "openssl"
) -> str | None:
    """X509_verify_cert(store={PAA}, untrusted=[PAI], leaf=DAC, time=at, X509_V_FLAG_X509_STRICT)."""
    problem = likely_issued(pai, dac, flavour)
    if problem:
        return f"DAC: unable to get local issuer certificate ({problem})"
    problem = likely_issued(paa, pai, flavour)
    if problem:
        return f"PAI: unable to get local issuer certificate ({problem})"
    problem = likely_issued(paa, paa, flavour)
    if problem:
        return f"PAA: not self-signed, unable to get issuer certificate ({problem})"
    chain = (dac, pai, paa)
    for index, cert in enumerate(chain):
        problem = _strict_extensions(cert, index, len(chain), flavour)
        if problem:
            return f"{('DAC', 'PAI', 'PAA')[index]}: {problem}"
    if flavour == "boringssl":
        from matter_pki.divergence import boringssl_policy_problem

        problem = boringssl_policy_problem(pai, dac)
        if problem:
            return f"certificate policies: {problem}"
    if paa.v3.pathlen != -1 and (0 if pai.v3.self_issued else 1) > paa.v3.pathlen:
        return "PAA: path length constraint exceeded"
    problem = _time_ok(paa, at)
    if problem:
        return f"PAA: {problem}"
    for issuer, subject, label in ((paa, pai, "PAI"), (pai, dac, "DAC")):
        if issuer.v3.kusage is not None and not issuer.v3.kusage & KU_KEY_CERT_SIGN:
            return f"{label}: issuer keyUsage lacks keyCertSign"
        problem = signature_problem(issuer, subject, flavour) or _time_ok(subject, at)
        if problem:
            return f"{label}: {problem}"
    return name_constraints_problem(chain, flavour)


def verify_chain(
    paa: RawCertificate, pai: RawCertificate, dac: RawCertificate, flavour: Flavour = "openssl"
) -> Problem | None:
    """ValidateCertificateChain: chip's time import of the DAC notBefore, then X509_verify_cert."""
    at = dac.not_before.chip_unix
    if at is None:
        return Problem(
            "chain.dac_time_unsupported",
            f"DAC notBefore {dac.not_before.text!r} is outside chip's 1970-2105 time conversion",
        )
    problem = openssl_verify(paa, pai, dac, at, flavour)
    library = "OpenSSL" if flavour == "openssl" else "BoringSSL"
    return Problem("chain.invalid", f"{library} chain verification: {problem}") if problem else None


def cdp_critical(raw: RawCertificate) -> bool:
    """A critical cRLDistributionPoints extension (OpenSSL processes it; BoringSSL does not)."""
    return any(e.critical for e in raw.extensions_for(OID_CDP))


def reencoded_length(raw: RawCertificate) -> int:
    """The size chip-cert's ReadCertDER stores: i2d_X509 of the parsed certificate."""
    return raw.reencoded_length
