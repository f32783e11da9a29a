"""Where a commissioner built on BoringSSL reads a chain differently from chip on OpenSSL 3.

chip-cert and chip-tool on Linux link OpenSSL 3, and their verdict is this project's verdict. The SDK's
Python wheel (Home Assistant), and Android builds, link BoringSSL. The differences that decide a
verdict, each checked against the wheel by the differential harness (tests/conformance):

* BoringSSL parses certificates, and the extensions it caches, as DER only: a long-form or indefinite
  length, a constructed string, trailing bytes in an extension value, non-zero BIT STRING padding, a
  public key BIT STRING with unused bits, a hybrid point, or a validity time OpenSSL's X509_cmp_time
  would not read makes it refuse the certificate (the certificate's format code).
* OpenSSL writes a compressed point back in 33 bytes, so chip on OpenSSL refuses it; BoringSSL writes
  65 and accepts it. Explicit curve parameters fail OpenSSL's strict chain check but BoringSSL's key
  parsing.
* BoringSSL does not check the trust anchor's extensions or signature algorithms, does not know a
  critical cRLDistributionPoints or netscape cert type, makes none of OpenSSL's X509_V_FLAG_X509_STRICT
  checks (an empty subjectAltName, an empty subject), and always evaluates certificate policies
  (RFC 5280 6.1; BoringSSL crypto/x509/policy.c X509_policy_check), which OpenSSL only does when asked.
"""

from __future__ import annotations

from dataclasses import dataclass

from matter_pki import der
from matter_pki.certparse import (
    OPENSSL_SUPPORTED_EXTENSIONS,
    RawCertificate,
    boringssl_refuses,
    integer_value,
    oid_value,
)
from matter_pki.der import DerError

ANY_POLICY = "2.5.29.32.0"
OID_CERT_POLICIES, OID_POLICY_MAPPINGS = "2.5.29.32", "2.5.29.33"
OID_POLICY_CONSTRAINTS, OID_INHIBIT_ANY = "2.5.29.36", "2.5.29.54"
_BORINGSSL_SUPPORTED = frozenset(
    {"2.5.29.15", "2.5.29.17", "2.5.29.19", OID_CERT_POLICIES, "2.5.29.37", OID_POLICY_CONSTRAINTS, "2.5.29.30", OID_POLICY_MAPPINGS, OID_INHIBIT_ANY}
)


@dataclass(frozen=True, slots=True)
class Divergence:
    """One difference between the OpenSSL and BoringSSL readings of a certificate."""

    code: str
    role: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"code": self.code, "role": self.role, "message": self.message}


def _utc_offset_form(tag: int, text: str) -> bool:
    """UTCTime with a +hhmm/-hhmm offset: BoringSSL parses it (and, like OpenSSL, never finds it valid)."""
    if tag != der.UTC_TIME or len(text) != 17 or text[12] not in "+-" or not (text[:12] + text[13:]).isdigit():
        return False
    return int(text[13:15]) < 24 and int(text[15:17]) < 60


def _time_refused(tag: int, text: str, readable: bool) -> bool:
    return not readable and not _utc_offset_form(tag, text)


def boringssl_parse_problem(raw: RawCertificate) -> str | None:
    """Why BoringSSL's d2i_X509 (or its key parser) refuses what OpenSSL read, or None."""
    refused = [n for n in raw.ber if boringssl_refuses(n)]
    if refused:
        return f"BoringSSL refuses {refused[0]}"
    for label, t in (("notBefore", raw.not_before), ("notAfter", raw.not_after)):
        if _time_refused(t.tag, t.text, t.openssl is not None):
            return f"BoringSSL refuses the {label} time {t.text!r}"
    if not raw.signature_padding_clean:
        return "BoringSSL refuses a signature BIT STRING with padding bits set"
    return None


def certificate_divergences(raw: RawCertificate, role: str) -> tuple[Divergence, ...]:
    """The divergences one certificate shows on its own."""
    out: list[Divergence] = []

    def add(code: str, message: str) -> None:
        out.append(Divergence(code, role, message))

    lengths = [n for n in raw.ber if boringssl_refuses(n) and not n.startswith(("public key BIT STRING", "hybrid"))]
    ext_notes = [n for n in raw.v3.ext_notes if boringssl_refuses(n) and "netscape" not in n]
    if lengths or [n for n in ext_notes if not n.startswith("BIT STRING padding")]:
        shown = "; ".join((lengths + ext_notes)[:3])
        add("divergence.ber_encoding", f"{shown}: chip on OpenSSL reads it, BoringSSL-based commissioners refuse the certificate")
    padding = [n for n in (*raw.ber, *ext_notes) if n.startswith(("BIT STRING padding", "public key BIT STRING"))]
    if not raw.signature_padding_clean:
        padding.append("signature BIT STRING padding bits set")
    if padding:
        add("divergence.bit_string_padding", f"{'; '.join(padding)}: OpenSSL ignores it, BoringSSL refuses the certificate")
    key = raw.public_key
    if key is not None and key.form == "hybrid":
        add("divergence.hybrid_point", "hybrid EC point: chip on OpenSSL reads it, BoringSSL refuses it")
    if key is not None and key.form == "compressed" and key.p256:
        add("divergence.compressed_point", "compressed EC point: chip on OpenSSL refuses it (33-byte key), BoringSSL-based chip accepts it")
    if key is not None and key.explicit:
        add("divergence.explicit_curve", "explicit curve parameters: OpenSSL's strict chain check refuses them (301), BoringSSL cannot read the key (format code)")
    for label, t in (("notBefore", raw.not_before), ("notAfter", raw.not_after)):
        if _time_refused(t.tag, t.text, t.openssl is not None):
            add("divergence.time_format", f"{label} {t.text!r}: OpenSSL fails only when comparing it (300/301), BoringSSL refuses the certificate (format code)")
    if role != "paa":
        for ext in raw.extensions:
            if ext.critical and (ext.oid in OPENSSL_SUPPORTED_EXTENSIONS) != (ext.oid in _BORINGSSL_SUPPORTED):
                add("divergence.critical_extension", f"critical {ext.oid}: OpenSSL processes it, BoringSSL rejects it as unhandled")
        if raw.v3.altname == []:
            add("divergence.trust_anchor_checks", "empty subjectAltName: OpenSSL's strict check refuses it, BoringSSL does not")
    else:
        anchor = _anchor_checks(raw)
        if anchor:
            add("divergence.trust_anchor_checks", f"{anchor}: OpenSSL refuses it on the trust anchor, BoringSSL does not check the anchor")
    if any("netscape" in r for r in raw.v3.invalid):
        add("divergence.extension_decoding", "netscape cert type duplicated or malformed: OpenSSL marks the certificate invalid, BoringSSL ignores the extension")
    outer = raw.outer_algorithm
    if role != "paa" and outer is not None and outer.params is not None and outer.params != (0x05, b""):
        add("divergence.algorithm_parameters", "signature AlgorithmIdentifier with parameters: OpenSSL ignores them for ECDSA, BoringSSL refuses the signature")
    if role != "dac" and raw.extensions_for("2.5.29.30"):
        add("divergence.name_constraints", "nameConstraints: OpenSSL checks a host-like DAC Common Name against them, BoringSSL refuses such a DAC when it has no subjectAltName")
    if role != "paa" and any(raw.extensions_for(o) for o in (OID_CERT_POLICIES, OID_POLICY_MAPPINGS, OID_POLICY_CONSTRAINTS, OID_INHIBIT_ANY)):
        add("divergence.policy_processing", "certificate policy extensions: BoringSSL evaluates them (RFC 5280 6.1), chip's OpenSSL check does not")
    return tuple(out)


def _anchor_checks(raw: RawCertificate) -> str | None:
    """OpenSSL checks on the trust anchor that BoringSSL skips."""
    v3 = raw.v3
    if v3.unsupported_critical and v3.unsupported_critical not in ("2.5.29.14", "2.5.29.35"):
        # (a critical SKID or AKID fails chip's PAA format check on either library)
        return f"critical extension {v3.unsupported_critical} unknown to OpenSSL"
    tbs, outer = raw.tbs_algorithm, raw.outer_algorithm
    if tbs is not None and outer is not None and (tbs.oid, tbs.params) != (outer.oid, outer.params):
        return "TBS and outer signature algorithms differ"
    if not raw.subject.attributes or not raw.issuer.attributes:
        return "empty subject or issuer name"
    if v3.altname == []:
        return "empty subjectAltName"
    return None


# -- BoringSSL's certificate policy evaluation (crypto/x509/policy.c X509_policy_check) -------------------
def _single(raw: RawCertificate, oid: str) -> tuple[bool, bytes | None]:
    """(present, value); a duplicated extension raises DerError (X509_get_ext_d2i returns NULL)."""
    found = raw.extensions_for(oid)
    if len(found) > 1:
        raise DerError(f"extension {oid} appears more than once")
    return (True, found[0].value) if found else (False, None)


def _strict(value: bytes) -> tuple[der.Element, bytes]:
    el = der.read_element(value, 0)
    if not el.der_header or el.end != len(value):
        raise DerError("not DER")
    return el, value


def _policies(value: bytes) -> list[str]:
    el, buf = _strict(value)
    if el.tag != 0x30:
        raise DerError("certificatePolicies is not a SEQUENCE")
    out = []
    for info in der.elements(buf, el):
        if info.tag != 0x30:
            raise DerError("PolicyInformation is not a SEQUENCE")
        parts = der.elements(buf, info)
        if not parts or parts[0].tag != 0x06 or len(parts) > 2 or (len(parts) == 2 and parts[1].tag != 0x30):
            raise DerError("malformed PolicyInformation")
        out.append(oid_value(parts[0].content(buf)))
    if not out:
        raise DerError("empty certificatePolicies")
    if len(set(out)) != len(out):
        raise DerError("duplicate policy")
    return out


def _mappings(value: bytes) -> list[tuple[str, str]]:
    el, buf = _strict(value)
    if el.tag != 0x30:
        raise DerError("policyMappings is not a SEQUENCE")
    out = []
    for item in der.elements(buf, el):
        parts = der.elements(buf, item) if item.tag == 0x30 else []
        if len(parts) != 2 or any(p.tag != 0x06 for p in parts):
            raise DerError("malformed PolicyMapping")
        out.append((oid_value(parts[0].content(buf)), oid_value(parts[1].content(buf))))
    if not out:
        raise DerError("empty policyMappings")
    return out


def _skip_certs(content: bytes) -> int | None:
    value = integer_value(content)
    if value < 0:
        raise DerError("negative skipCerts")
    return value if value < 1 << 64 else None


def _constraints(value: bytes) -> tuple[int | None, int | None]:
    el, buf = _strict(value)
    if el.tag != 0x30:
        raise DerError("policyConstraints is not a SEQUENCE")
    rep = ipm = None
    present = False
    for item in der.elements(buf, el):
        if item.tag == 0x80:
            rep, present = _skip_certs(item.content(buf)), True
        elif item.tag == 0x81:
            ipm, present = _skip_certs(item.content(buf)), True
        else:
            raise DerError("unexpected field in policyConstraints")
    if not present:
        raise DerError("policyConstraints with neither field")
    return rep, ipm


def boringssl_policy_problem(pai: RawCertificate, dac: RawCertificate) -> str | None:
    """RFC 5280 6.1 policy processing over PAI then DAC, as BoringSSL always runs it, or None when it passes."""
    explicit = inhibit_any = mapping = 4  # num_certs + 1
    has_any, nodes = True, set[str]()
    final_empty = False
    try:
        for index, cert in ((1, pai), (0, dac)):
            self_issued = cert.v3.self_issued
            any_allowed = inhibit_any > 0 or (index > 0 and self_issued)
            present, value = _single(cert, OID_CERT_POLICIES)
            if not present or value is None:
                has_any, nodes = False, set()
            else:
                policies = _policies(value)
                cert_any = ANY_POLICY in policies
                previous_any = has_any
                if not cert_any or not any_allowed:
                    nodes = {n for n in nodes if n in policies}
                    has_any = False
                if previous_any:
                    nodes |= {p for p in policies if p != ANY_POLICY}
            if explicit == 0 and not has_any and not nodes:
                return "no explicit policy"
            final_empty = not has_any and not nodes
            if index != 0:
                present, value = _single(cert, OID_POLICY_MAPPINGS)
                if present and value is not None:
                    pairs = _mappings(value)
                    if any(ANY_POLICY in pair for pair in pairs):
                        return "policyMappings maps anyPolicy"
                    if mapping > 0:
                        mapped = {i for i, _ in pairs}
                        nodes = {s for i, s in pairs if i in nodes or has_any} | {n for n in nodes if n not in mapped}
                    else:
                        nodes = {n for n in nodes if n not in {i for i, _ in pairs}}
            if index == 0 or not self_issued:
                explicit, mapping, inhibit_any = max(explicit - 1, 0), max(mapping - 1, 0), max(inhibit_any - 1, 0)
            present, value = _single(cert, OID_POLICY_CONSTRAINTS)
            if present and value is not None:
                rep, ipm = _constraints(value)
                if rep is not None and rep < explicit:
                    explicit = rep
                if ipm is not None and ipm < mapping:
                    mapping = ipm
            present, value = _single(cert, OID_INHIBIT_ANY)
            if present and value is not None:
                el, buf = _strict(value)
                if el.tag != 0x02:
                    raise DerError("inhibitAnyPolicy is not an INTEGER")
                skip = _skip_certs(el.content(buf))
                if skip is not None and skip < inhibit_any:
                    inhibit_any = skip
    except (DerError, IndexError) as e:
        return f"invalid policy extension ({e})"
    if explicit == 0 and final_empty:
        return "no explicit policy"
    return None
