"""Named attestation chains: every Matter MUST rule broken once per role, boundary cases, and the cases
where the Matter SDK on OpenSSL 3 and on BoringSSL decide differently.

Each case is a ``ChainModel`` (``matter_pki.testing.mutate``) with one recipe applied, built with keys
derived from the case name and deterministic (RFC 6979) signatures, so the bytes are the same on every
run. Each carries the verdict chip gives in ``chip-cert validate-att-cert`` order and in the
commissioner's order on Linux (OpenSSL 3), the lint code the broken certificate must show, and the
source line that decides it.

``python -m matter_pki.testing.negative --write tests/vectors/attestation`` (re)writes every case as
DER files with a ``cases.json`` manifest and a README; the test suite checks the files are current.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.attestation import AttestationResult as R
from matter_pki.testing import mutate as m

VECTOR_TIME = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
NO_EXPIRY = m.NO_EXPIRY
VID_OID, PID_OID, CN_OID = m.VID, m.PID, m.CN
BC, KU, SKID, AKID, CDP = m.BC, m.KU, m.SKID, m.AKID, m.CDP
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def derived_key(label: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 key derived from a label (test vectors only: deterministic, not secret)."""
    value = int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % (_ORDER - 1) + 1
    return ec.derive_private_key(value, ec.SECP256R1())


def good_chain(now: datetime, *, pai_pid: bool = True, seed: str = "baseline") -> m.ChainModel:
    """A valid chip-cert style chain (PAA VID-scoped, pathLen 1, AKID; PAI pathLen 0; DAC with VID and PID)."""
    start = (now - timedelta(days=30)).replace(microsecond=0)
    paa_subj = m.name(m.Attr(CN_OID, b"Gen PAA"), m.Attr(VID_OID, b"FFF1"))
    pai_subj = m.name(m.Attr(CN_OID, b"Gen PAI"), m.Attr(VID_OID, b"FFF1"), *([m.Attr(PID_OID, b"8000")] if pai_pid else []))
    dac_subj = m.name(m.Attr(CN_OID, b"Gen DAC"), m.Attr(VID_OID, b"FFF1"), m.Attr(PID_OID, b"8000"))
    keys = [derived_key(f"{seed}/{role}") for role in ("paa", "pai", "dac")]
    paa = m.CertModel("paa", keys[0], paa_subj, start, NO_EXPIRY, m.standard_extensions("paa"), serial=1)
    pai = m.CertModel("pai", keys[1], pai_subj, start, NO_EXPIRY, m.standard_extensions("pai"), serial=2)
    dac = m.CertModel("dac", keys[2], dac_subj, start + timedelta(days=1), NO_EXPIRY, m.standard_extensions("dac"))
    return m.ChainModel(paa, pai, dac)


@dataclass(frozen=True)
class NegativeCase:
    """One generated case and the verdicts chip gives for it."""

    name: str
    role: str
    rule: str
    paa: bytes
    pai: bytes
    dac: bytes
    chip_cert: R
    commissioner: R
    finding: str | None = None
    source: str = ""
    boringssl: bool = False  # a BoringSSL-based commissioner decides differently


Recipe = Callable[[m.ChainModel], None]


@dataclass(frozen=True)
class _Spec:
    name: str
    role: str
    rule: str
    recipe: Recipe
    chip_cert: R
    commissioner: R
    finding: str | None
    source: str
    boringssl: bool = False
    pai_pid: bool = True


def _ext(cert: m.CertModel, oid: str, **changes: object) -> None:
    """Change (or, with drop=True, remove) one extension of a certificate."""
    for i, e in enumerate(cert.extensions):
        if e.oid == oid:
            if changes.get("drop"):
                del cert.extensions[i]
                return
            for key, value in changes.items():
                setattr(e, key, value)
            return
    raise KeyError(oid)


def _set_subject(cert: m.CertModel, **values: bytes | None) -> None:
    oids = {"vid": VID_OID, "pid": PID_OID, "cn": CN_OID}
    attrs = [a for rdn in cert.subject for a in rdn if a.oid not in {oids[k] for k in values}]
    attrs += [m.Attr(oids[k], v) for k, v in values.items() if v is not None]
    cert.subject = m.name(*attrs)


def _set(role: str, **fields: object) -> Recipe:
    """A recipe setting fields of one certificate model."""

    def recipe(ch: m.ChainModel) -> None:
        for key, value in fields.items():
            setattr(ch.cert(role), key, value)

    return recipe


def _steps(*recipes: Recipe) -> Recipe:
    """A recipe running others in turn."""

    def recipe(ch: m.ChainModel) -> None:
        for step in recipes:
            step(ch)

    return recipe


def _subject(role: str, **values: bytes | None) -> Recipe:
    """A recipe replacing VID/PID/CN attributes of one subject."""
    return lambda ch: _set_subject(ch.cert(role), **values)


def _change(role: str, oid: str, **changes: object) -> Recipe:
    """A recipe changing one extension of one certificate."""
    return lambda ch: _ext(ch.cert(role), oid, **changes)


def _add(role: str, make: Callable[[], m.Ext], times: int = 1) -> Recipe:
    """A recipe appending fresh extensions to one certificate."""

    def recipe(ch: m.ChainModel) -> None:
        ch.cert(role).extensions.extend(make() for _ in range(times))

    return recipe


def _format_code(role: str) -> R:
    return {"paa": R.kPaaFormatInvalid, "pai": R.kPaiFormatInvalid, "dac": R.kDacFormatInvalid}[role]


_FMT = "src/crypto/CHIPCryptoPALOpenSSL.cpp VerifyAttestationCertificateFormat"
_CHAIN = "src/crypto/CHIPCryptoPALOpenSSL.cpp ValidateCertificateChain; crypto/x509/x509_vfy.c X509_verify_cert"


def _role_specs() -> Iterator[_Spec]:
    """Each format rule broken once per role."""
    secp256k1 = ec.derive_private_key(12345, ec.SECP256K1())
    for role in ("paa", "pai", "dac"):
        ca = role != "dac"
        fmt = _format_code(role)
        comm = R.kPaaNotFound if role == "paa" else fmt  # FileAttestationTrustStore drops a PAA failing the format check

        def cert(ch: m.ChainModel, r: str = role) -> m.CertModel:
            return ch.cert(r)

        path_bad = {"paa": 2, "pai": 1, "dac": 0}[role]
        rows: list[tuple[str, str, Recipe, str]] = [
            ("version_v1", "version 3", lambda ch: setattr(cert(ch), "version", None), "cert.version_not_v3"),
            ("version_v2", "version 3", lambda ch: setattr(cert(ch), "version", 1), "cert.version_not_v3"),
            ("sig_algo_sha1", "ecdsa-with-SHA256", _set(role, tbs_sig_alg=m.alg(m.ECDSA_SHA1), sig_alg=m.alg(m.ECDSA_SHA1)), "cert.signature_algorithm"),
            ("key_secp256k1", "P-256 key", lambda ch: setattr(cert(ch), "key", secp256k1), "cert.key_curve"),
            ("key_rsa", "EC key", lambda ch: setattr(cert(ch), "spki_raw", _RSA_SPKI), "cert.key_not_ec"),
            ("key_compressed", "uncompressed point (BoringSSL-based chip accepts a compressed one)", lambda ch: setattr(cert(ch), "point_form", "compressed"), "cert.key_point"),
            ("bc_missing", "basicConstraints present", lambda ch: _ext(cert(ch), BC, drop=True), "ext.basic_constraints_missing"),
            ("bc_not_critical", "basicConstraints critical", lambda ch: _ext(cert(ch), BC, critical=False), "ext.basic_constraints_not_critical"),
            ("bc_ca_wrong", "cA flag", _change(role, BC, value=m.bc_value(None if ca else True, None)), "ext.basic_constraints_ca"),
            ("bc_pathlen_wrong", f"pathLenConstraint ({path_bad})", _change(role, BC, value=m.bc_value(True if ca else None, path_bad)), "ext.basic_constraints_pathlen"),
            ("ku_missing", "keyUsage present", lambda ch: _ext(cert(ch), KU, drop=True), "ext.key_usage_missing"),
            ("ku_not_critical", "keyUsage critical", lambda ch: _ext(cert(ch), KU, critical=False), "ext.key_usage_not_critical"),
            ("ku_bits_wrong", "keyUsage bits", _change(role, KU, value=m.ku_value(5) if ca else m.ku_value(0, 4)), "ext.key_usage_bits"),
            ("skid_missing", "SKID present", lambda ch: _ext(cert(ch), SKID, drop=True), "ext.skid_missing"),
            ("skid_critical", "SKID non-critical", lambda ch: _ext(cert(ch), SKID, critical=True), "ext.skid_critical"),
            ("skid_length", "SKID 20 bytes", lambda ch: _ext(cert(ch), SKID, value=m.tlv(der.OCTET_STRING, b"\x01" * 8)), "ext.skid_length"),
            ("akid_critical", "AKID non-critical", lambda ch: _ext(cert(ch), AKID, critical=True), "ext.akid_critical"),
            ("akid_length", "AKID keyIdentifier 20 bytes", lambda ch: _ext(cert(ch), AKID, value=m.akid_value(b"\x02" * 8)), "ext.akid_length"),
            ("ext_duplicate", "no duplicate extension (two CDP extensions)", lambda ch: cert(ch).extensions.extend([m.Ext(CDP, m.cdp_value("http://crl.example.com/a.crl"))] * 2), "ext.duplicate"),
            ("der_too_large", "DER at most 600 bytes", lambda ch: cert(ch).extensions.append(m.Ext("1.3.6.1.4.1.37244.99.3", m.tlv(der.OCTET_STRING, b"x" * 200))), "cert.der_too_large"),
        ]
        if role != "paa":
            rows.append(("akid_missing", "AKID present", lambda ch: _ext(cert(ch), AKID, drop=True), "ext.akid_missing"))
        for name, rule, recipe, code in rows:
            source = _FMT if code != "cert.der_too_large" else "src/credentials/CHIPCert.h kMaxDERCertLength"
            yield _Spec(f"{role}_{name}", role, rule, recipe, fmt, comm, code, source, boringssl=name == "key_compressed")
        vid_comm = R.kPaaFormatInvalid if role == "paa" else fmt
        yield _Spec(f"{role}_vid_lowercase", role, "VID upper-case hex", _subject(role, vid=b"fff1"), fmt, vid_comm, "subject.vidpid_malformed", "src/crypto/CHIPCryptoPAL.cpp ExtractVIDPIDFromAttributeString")


_RSA_SPKI = m.rsa_spki()


def _chain_specs() -> Iterator[_Spec]:
    """Chain rules (OpenSSL strict verification, 301), times and VID/PID relations."""
    other = derived_key("other")
    S301 = R.kDacSignatureInvalid

    def unknown() -> m.Ext:
        return m.Ext("1.3.6.1.4.1.37244.99.1", m.tlv(der.OCTET_STRING, b"\x00"), critical=True)

    yield _Spec("dac_signature_invalid", "dac", "signature by the PAI key", lambda ch: setattr(ch.dac, "tamper_signature", True), S301, S301, "issuer.signature_invalid", _CHAIN)
    yield _Spec("pai_signature_invalid", "pai", "signature by the PAA key", lambda ch: setattr(ch.pai, "tamper_signature", True), S301, S301, "issuer.signature_invalid", _CHAIN)
    yield _Spec("dac_signed_by_other_key", "dac", "signature by the PAI key", lambda ch: setattr(ch.dac, "signer", other), S301, S301, "issuer.signature_invalid", _CHAIN)
    yield _Spec("dac_akid_mismatch", "dac", "AKID == issuer SKID", lambda ch: _ext(ch.dac, AKID, value=m.akid_value(b"\x03" * 20)), S301, S301, "issuer.akid_mismatch", "crypto/x509/v3_purp.c X509_check_akid")
    yield _Spec("pai_akid_mismatch", "pai", "AKID == issuer SKID", lambda ch: _ext(ch.pai, AKID, value=m.akid_value(b"\x04" * 20)), S301, R.kPaaNotFound, "issuer.akid_mismatch", "crypto/x509/v3_purp.c X509_check_akid; FileAttestationTrustStore GetProductAttestationAuthorityCert")
    yield _Spec("paa_akid_not_skid", "paa", "PAA AKID == own SKID", lambda ch: _ext(ch.paa, AKID, value=m.akid_value(b"\x05" * 20)), S301, S301, "ext.paa_akid_not_skid", "crypto/x509/v3_purp.c ossl_x509v3_cache_extensions (EXFLAG_SS)")
    for role in ("paa", "pai", "dac"):
        yield _Spec(f"{role}_unknown_critical_ext", role, "no unknown critical extension", _add(role, unknown), S301, S301, "ext.unknown_critical", "crypto/x509/x509_vfy.c check_extensions (X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION)", boringssl=role == "paa")
    yield _Spec("pai_issuer_name_mismatch", "pai", "issuer DN == PAA subject", lambda ch: setattr(ch.pai, "issuer", m.name(m.Attr(CN_OID, b"Other PAA"), m.Attr(VID_OID, b"FFF1"))), S301, S301, "issuer.name_mismatch", "crypto/x509/x509_cmp.c X509_NAME_cmp")
    yield _Spec("dac_issuer_name_mismatch", "dac", "issuer DN == PAI subject", lambda ch: setattr(ch.dac, "issuer", m.name(m.Attr(CN_OID, b"Other PAI"), m.Attr(VID_OID, b"FFF1"))), S301, S301, "issuer.name_mismatch", "crypto/x509/x509_cmp.c X509_NAME_cmp")
    yield _Spec("dac_tbs_sig_alg_mismatch", "dac", "TBS signature algorithm == outer", lambda ch: setattr(ch.dac, "tbs_sig_alg", m.alg(m.ECDSA_SHA384)), S301, S301, "cert.signature_algorithm_mismatch", "crypto/x509/x_all.c X509_verify (X509_ALGOR_cmp)")
    yield _Spec("paa_pathlen_zero", "paa", "PAA pathLen absent or 1", lambda ch: _ext(ch.paa, BC, value=m.bc_value(True, 0)), R.kPaaFormatInvalid, R.kPaaNotFound, "ext.basic_constraints_pathlen", _FMT)


def _time_specs(now: datetime) -> Iterator[_Spec]:
    S301 = R.kDacSignatureInvalid

    def dac_nb(ch: m.ChainModel) -> datetime:
        return ch.dac.not_before

    yield _Spec("dac_expired", "dac", "DAC valid now", lambda ch: setattr(ch.dac, "not_after", now - timedelta(days=1)), R.kDacExpired, R.kDacExpired, None, "CHIPCryptoPALOpenSSL.cpp IsCertificateValidAtCurrentTime")
    yield _Spec("dac_not_yet_valid", "dac", "DAC valid now", lambda ch: setattr(ch.dac, "not_before", now + timedelta(days=1)), R.kDacExpired, R.kDacExpired, None, "CHIPCryptoPALOpenSSL.cpp IsCertificateValidAtCurrentTime")
    yield _Spec("dac_before_pai", "dac", "DAC notBefore inside PAI validity", lambda ch: setattr(ch.pai, "not_before", dac_nb(ch) + timedelta(seconds=1)), S301, S301, "issuer.validity", "x509_vfy.c ossl_x509_check_cert_time at the DAC notBefore")
    yield _Spec("dac_after_pai", "dac", "DAC notBefore inside PAI validity", lambda ch: setattr(ch.pai, "not_after", dac_nb(ch) - timedelta(seconds=1)), S301, S301, "issuer.validity", "x509_vfy.c ossl_x509_check_cert_time at the DAC notBefore")
    yield _Spec("paa_expired_at_issuance", "paa", "DAC notBefore inside PAA validity", lambda ch: setattr(ch.paa, "not_after", dac_nb(ch) - timedelta(seconds=1)), S301, S301, None, "x509_vfy.c ossl_x509_check_cert_time at the DAC notBefore")
    yield _Spec("dac_outlives_pai", "dac", "DAC may outlive its PAI", lambda ch: setattr(ch.pai, "not_after", now + timedelta(days=10)), R.kSuccess, R.kSuccess, None, "x509_vfy.c: only the DAC is checked against now")


def _relation_specs() -> Iterator[_Spec]:
    S = "src/tools/chip-cert/Cmd_ValidateAttCert.cpp; DefaultDeviceAttestationVerifier.cpp VerifyAttestationInformation"
    yield _Spec("dac_vid_mismatch", "dac", "DAC VID == PAI VID", lambda ch: _set_subject(ch.dac, vid=b"FFF2"), R.kDacVendorIdMismatch, R.kDacVendorIdMismatch, "issuer.vid_mismatch", S)
    yield _Spec("dac_vid_missing", "dac", "DAC VID present", lambda ch: _set_subject(ch.dac, vid=None), R.kDacVendorIdMismatch, R.kDacVendorIdMismatch, "subject.vid_missing", S)
    yield _Spec("pai_vid_missing", "pai", "PAI VID present", lambda ch: _set_subject(ch.pai, vid=None), R.kDacVendorIdMismatch, R.kDacVendorIdMismatch, "subject.vid_missing", S)
    yield _Spec("pai_vid_not_paa_vid", "pai", "PAI VID == PAA VID", _steps(_subject("pai", vid=b"FFF2"), _subject("dac", vid=b"FFF2")), R.kPaiVendorIdMismatch, R.kPaiVendorIdMismatch, "issuer.vid_mismatch", S)
    yield _Spec("dac_pid_mismatch", "dac", "DAC PID == PAI PID", lambda ch: _set_subject(ch.dac, pid=b"8001"), R.kDacProductIdMismatch, R.kDacProductIdMismatch, "issuer.pid_mismatch", S)
    yield _Spec("dac_pid_missing", "dac", "DAC PID == product-scoped PAI PID", lambda ch: _set_subject(ch.dac, pid=None), R.kDacProductIdMismatch, R.kDacProductIdMismatch, "subject.pid_missing", S)
    yield _Spec("dac_pid_missing_shared_pai", "dac", "DAC PID present (commissioner only)", lambda ch: _set_subject(ch.dac, pid=None), R.kSuccess, R.kDacProductIdMismatch, "subject.pid_missing", S, pai_pid=False)
    yield _Spec("paa_has_pid", "paa", "PAA without PID", lambda ch: _set_subject(ch.paa, pid=b"8000"), R.kPaaFormatInvalid, R.kPaaFormatInvalid, "subject.pid_present", S)
    yield _Spec("dac_pid_printable_string", "dac", "PrintableString VID/PID is accepted", lambda ch: setattr(ch.dac, "subject", m.name(m.Attr(CN_OID, b"Gen DAC"), m.Attr(VID_OID, b"FFF1", m.PRINTABLE), m.Attr(PID_OID, b"8000", m.PRINTABLE))), R.kSuccess, R.kSuccess, "subject.vidpid_not_utf8", S)
    yield _Spec("paa_self_signature_invalid", "paa", "PAA self-signature (not checked by chip)", lambda ch: setattr(ch.paa, "tamper_signature", True), R.kSuccess, R.kSuccess, "paa.self_signature_invalid", "x509_vfy.c internal_verify: a trust anchor's own signature is checked only with X509_V_FLAG_CHECK_SS_SIGNATURE")


def _replace_issuer_cn(ch: m.ChainModel, role: str, text: str, tag: int = m.UTF8) -> None:
    """The certificate's issuer spells the issuer's subject with another CN value or string type."""
    parent = ch.issuer_of(role)
    value = text.encode("utf-16-be") if tag == m.BMP else text.encode("utf-32-be") if tag == m.UNIVERSAL else text.encode()
    ch.cert(role).issuer = tuple(tuple(m.Attr(a.oid, value, tag) if a.oid == CN_OID else a for a in rdn) for rdn in parent.subject)


def _table_specs(now: datetime) -> Iterator[_Spec]:
    """The classes where a validator trusting Python ``cryptography`` or BoringSSL gets chip's verdict wrong."""
    S301, OK = R.kDacSignatureInvalid, R.kSuccess
    akid = "crypto/x509/v3_purp.c X509_check_akid"
    yield _Spec("pai_akid_serial_wrong", "pai", "AKID authorityCertSerialNumber names the issuer", lambda ch: _ext(ch.pai, AKID, value=lambda c: m.akid_value(c.issuer_skid, issuer=c.issuer_issuer, serial=b"\x7f\x01")), S301, S301, "issuer.akid_issuer_serial_mismatch", akid)
    yield _Spec("dac_akid_issuer_wrong", "dac", "AKID authorityCertIssuer names the issuer's issuer", lambda ch: _ext(ch.dac, AKID, value=lambda c: m.akid_value(c.issuer_skid, issuer=m.encode_name(m.name(m.Attr(CN_OID, b"Someone Else"))), serial=c.issuer_serial)), S301, S301, "issuer.akid_issuer_serial_mismatch", akid)
    yield _Spec("dac_akid_issuer_serial_right", "dac", "AKID with the right issuer and serial", lambda ch: _ext(ch.dac, AKID, value=lambda c: m.akid_value(c.issuer_skid, issuer=c.issuer_issuer, serial=c.issuer_serial)), OK, OK, "ext.akid_issuer_serial", akid)
    cmp = "crypto/x509/x_name.c asn1_string_canon (folds ASCII case and ASCII whitespace only); x509_cmp.c X509_NAME_cmp"
    accent = _subject("pai", cn="Gen PAI \u00e9t\u00e9".encode())
    yield _Spec("dac_issuer_non_ascii_case", "dac", "issuer DN differs only in the case of a non-ASCII letter", _steps(accent, lambda ch: _replace_issuer_cn(ch, "dac", "Gen PAI \u00c9t\u00c9")), S301, S301, "issuer.name_mismatch", cmp)
    yield _Spec("dac_issuer_nbsp", "dac", "issuer DN with U+00A0 instead of a space", lambda ch: _replace_issuer_cn(ch, "dac", "Gen\u00a0PAI"), S301, S301, "issuer.name_mismatch", cmp)
    yield _Spec("dac_issuer_ascii_case_spaces", "dac", "issuer DN in other ASCII case with extra spaces", lambda ch: _replace_issuer_cn(ch, "dac", "  gEN   pai "), OK, OK, "issuer.name_not_byte_equal", cmp)
    yield _Spec("dac_issuer_universal_string", "dac", "issuer DN as UniversalString of the same text", lambda ch: _replace_issuer_cn(ch, "dac", "Gen PAI", m.UNIVERSAL), OK, OK, "issuer.name_not_byte_equal", cmp + " (canonicalised through UTF-8)")
    yield _Spec("dac_issuer_bmp_string", "dac", "issuer DN as BMPString of the same text", lambda ch: _replace_issuer_cn(ch, "dac", "Gen PAI", m.BMP), OK, OK, "issuer.name_not_byte_equal", cmp)
    yield _Spec("dac_issuer_visible_string", "dac", "issuer DN as VisibleString (not an ASN1_PRINTABLE type)", lambda ch: _replace_issuer_cn(ch, "dac", "Gen PAI", m.VISIBLE), R.kDacFormatInvalid, R.kDacFormatInvalid, None, "crypto/x509/x_name.c X509_NAME_ENTRY value ASN1_PRINTABLE; tasn_dec.c ASN1_tag2bit: d2i_X509 fails")
    t = "crypto/x509/x509_vfy.c ossl_x509_check_cert_time / X509_cmp_time (notAfter <= time is expired)"
    yield _Spec("pai_not_after_eq_dac_not_before", "dac", "issuer notAfter equal to the DAC notBefore", lambda ch: setattr(ch.pai, "not_after", ch.dac.not_before), S301, S301, "issuer.validity", t)
    yield _Spec("pai_not_before_eq_dac_not_before", "dac", "issuer notBefore equal to the DAC notBefore", lambda ch: setattr(ch.pai, "not_before", ch.dac.not_before), OK, OK, None, t + " (notBefore <= time is valid)")
    yield _Spec("dac_not_before_1969", "dac", "DAC notBefore before 1970", lambda ch: setattr(ch.dac, "not_before", datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)), R.kDacFormatInvalid, R.kDacFormatInvalid, "cert.time_outside_chip_range", "src/lib/support/TimeUtils.cpp CalendarTimeToSecondsSinceUnixEpoch (1970..2105); ValidateCertificateChain kLeafFormatInvalid")

    def epoch_chain(ch: m.ChainModel) -> None:
        for cert in (ch.paa, ch.pai):
            cert.not_before = datetime(1960, 1, 1, tzinfo=UTC)
        ch.dac.not_before = datetime(1970, 1, 1, tzinfo=UTC)

    yield _Spec("dac_not_before_1970", "dac", "DAC notBefore at the start of chip's time range", epoch_chain, OK, OK, None, "src/lib/support/TimeUtils.cpp (1970 is in range)")
    ber = "crypto/asn1/tasn_dec.c asn1_ex_c2i (BOOLEAN: one octet, any value); x_exten.c critical ASN1_FBOOLEAN"
    yield _Spec("dac_critical_ber_true", "dac", "BER BOOLEAN 0x01 as basicConstraints critical flag", lambda ch: _ext(ch.dac, BC, critical_raw=m.tlv(der.BOOLEAN, b"\x01")), OK, OK, "cert.not_der", ber)
    yield _Spec("pai_ca_ber_true", "pai", "BER BOOLEAN 0x01 as cA", lambda ch: _ext(ch.pai, BC, value=m.tlv(der.SEQUENCE, m.tlv(der.BOOLEAN, b"\x01") + der.encode_integer(0))), OK, OK, "cert.not_der", ber)
    yield _Spec("dac_critical_explicit_false", "dac", "explicit DEFAULT FALSE critical flag", lambda ch: _ext(ch.dac, SKID, critical_raw=m.boolean(False)), OK, OK, "cert.not_der", ber)
    yield _Spec("dac_ca_explicit_false", "dac", "explicit DEFAULT FALSE cA", lambda ch: _ext(ch.dac, BC, value=m.tlv(der.SEQUENCE, m.boolean(False))), OK, OK, "cert.not_der", ber)
    null = m.tlv(der.NULL, b"")
    yield _Spec("dac_sig_alg_null_params", "dac", "ecdsa-with-SHA256 with NULL parameters (TBS and outer)", _set("dac", tbs_sig_alg=m.alg(m.ECDSA_SHA256, null), sig_alg=m.alg(m.ECDSA_SHA256, null)), OK, OK, None, "crypto/x509/x_algor.c; ECDSA ignores the parameters")
    yield _Spec("dac_unsorted_multi_valued_rdn", "dac", "unsorted multi-valued RDN SET", _set("dac", subject=m.name((m.Attr(PID_OID, b"8000"), m.Attr(VID_OID, b"FFF1"), m.Attr(CN_OID, b"Gen DAC"))), subject_unsorted=True), OK, OK, "cert.not_der", "crypto/x509/x_name.c x509_name_ex_d2i (SET OF order is not checked)")
    yield _Spec("dac_serial_not_minimal", "dac", "non-minimal INTEGER serial", lambda ch: setattr(ch.dac, "serial_raw", m.tlv(der.INTEGER, b"\x00\x1a\x2b")), R.kDacFormatInvalid, R.kDacFormatInvalid, None, "crypto/asn1/a_int.c c2i_ibuf (ASN1_R_ILLEGAL_PADDING): d2i_X509 fails")
    dup = "crypto/x509/v3_purp.c ossl_x509v3_cache_extensions (only cached extensions are looked up with X509_get_ext_d2i)"

    def aia() -> m.Ext:
        return m.Ext(m.AIA, m.tlv(der.SEQUENCE, m.tlv(der.SEQUENCE, der.encode_oid("1.3.6.1.5.5.7.48.2") + m.tlv(0x86, b"http://ca.example/pai.der"))))

    yield _Spec("dac_aia_twice", "dac", "authorityInfoAccess present twice", _add("dac", aia, 2), OK, OK, "ext.duplicate_uncached", dup)

    def private() -> m.Ext:
        return m.Ext("1.3.6.1.4.1.37244.99.2", m.tlv(der.OCTET_STRING, b"\x01"))

    yield _Spec("dac_private_ext_twice", "dac", "a private extension present twice", _add("dac", private, 2), OK, OK, "ext.duplicate_uncached", dup)

    def policies() -> m.Ext:
        return m.Ext(m.CERT_POLICIES, m.tlv(der.SEQUENCE, m.tlv(der.SEQUENCE, der.encode_oid("2.5.29.32.0"))))

    yield _Spec("dac_certificate_policies_twice", "dac", "certificatePolicies present twice", _add("dac", policies, 2), OK, OK, "ext.duplicate_uncached", dup, boringssl=True)
    name_value = "crypto/x509/x_name.c (ASN1_PRINTABLE has no VisibleString or OCTET STRING): d2i_X509 fails"
    yield _Spec("dac_vid_visible_string", "dac", "VendorID as VisibleString", lambda ch: setattr(ch.dac, "subject", m.name(m.Attr(CN_OID, b"Gen DAC"), m.Attr(VID_OID, b"FFF1", m.VISIBLE), m.Attr(PID_OID, b"8000"))), R.kDacFormatInvalid, R.kDacFormatInvalid, None, name_value)
    yield _Spec("dac_pid_octet_string", "dac", "ProductID as OCTET STRING", lambda ch: setattr(ch.dac, "subject", m.name(m.Attr(CN_OID, b"Gen DAC"), m.Attr(VID_OID, b"FFF1"), m.Attr(PID_OID, b"8000", der.OCTET_STRING))), R.kDacFormatInvalid, R.kDacFormatInvalid, None, name_value)
    yield _Spec("paa_critical_cdp", "paa", "critical cRLDistributionPoints on the PAA", lambda ch: ch.paa.extensions.append(m.Ext(CDP, m.cdp_value("http://crl.example.com/paa.crl"), critical=True)), OK, OK, "ext.crl_distribution_points_on_paa", "crypto/x509/v3_purp.c X509_supported_extension lists NID_crl_distribution_points")
    yield _Spec("dac_der_too_large_chip_cert", "dac", "DER over 600 bytes (chip-cert reads into 600-byte buffers)", lambda ch: _set_subject(ch.dac, cn=b"D" * 180), R.kDacFormatInvalid, R.kDacFormatInvalid, "cert.der_too_large", "src/tools/chip-cert/CertUtils.cpp ReadCertDER; src/credentials/CHIPCert.h kMaxDERCertLength")
    sig = "crypto/x509/x_all.c X509_verify; crypto/asn1/a_verify.c ASN1_item_verify_ex (ASN1_R_INVALID_BIT_STRING_BITS_LEFT)"
    yield _Spec("paa_signature_unused_bits", "paa", "signature BIT STRING with unused bits on the PAA", lambda ch: _odd_padding(ch.paa), OK, OK, "cert.signature_unused_bits", sig + "; the anchor's self-signature is not checked", boringssl=True)
    yield _Spec("pai_signature_unused_bits", "pai", "signature BIT STRING with unused bits on the PAI", lambda ch: _odd_padding(ch.pai), S301, S301, "cert.signature_unused_bits", sig, boringssl=True)
    yield _Spec("dac_signature_unused_bits", "dac", "signature BIT STRING with unused bits on the DAC", lambda ch: _odd_padding(ch.dac), S301, S301, "cert.signature_unused_bits", sig, boringssl=True)

    def paa_v2_pai_unreadable(ch: m.ChainModel) -> None:
        ch.paa.version = 1
        ch.pai.serial_raw = m.tlv(der.INTEGER, b"\x00\x02")

    yield _Spec("paa_v2_pai_unreadable", "paa", "format of PAA, PAI, DAC in turn (the read is part of each format check)", paa_v2_pai_unreadable, R.kPaaFormatInvalid, R.kPaiFormatInvalid, "cert.version_not_v3", "src/tools/chip-cert/Cmd_ValidateAttCert.cpp (PAA, PAI, DAC format checks in that order)")


def _odd_padding(cert: m.CertModel) -> None:
    """Declare one unused signature bit and set it (BoringSSL refuses the padding, OpenSSL the signature)."""
    cert.signature_unused_bits = 1
    cert.signature_transform = lambda sig: sig[:-1] + bytes([sig[-1] | 1])


def _divergence_specs(now: datetime) -> Iterator[_Spec]:
    """Where chip on OpenSSL 3 (the verdict) and a BoringSSL-based commissioner differ."""
    OK, S301 = R.kSuccess, R.kDacSignatureInvalid
    yield _Spec("paa_tbs_sig_alg_mismatch", "paa", "TBS signature algorithm == outer on the PAA", lambda ch: setattr(ch.paa, "tbs_sig_alg", m.alg(m.ECDSA_SHA384)), S301, S301, "cert.signature_algorithm_mismatch", "crypto/x509/x509_vfy.c check_extensions (strict, every certificate including the anchor)", boringssl=True)
    yield _Spec("dac_not_after_no_seconds", "dac", "notAfter without seconds", lambda ch: setattr(ch.dac, "not_after_raw", m.tlv(der.UTC_TIME, b"3001010000Z")), R.kDacExpired, R.kDacExpired, "cert.time_format", "crypto/x509/x509_vfy.c X509_cmp_time returns 0 (error)", boringssl=True)
    yield _Spec("pai_not_before_feb_30", "pai", "notBefore on 30 February", lambda ch: setattr(ch.pai, "not_before_raw", m.tlv(der.UTC_TIME, b"260230120000Z")), S301, S301, "cert.time_format", "crypto/asn1/a_time.c ossl_asn1_time_to_tm (day of month)", boringssl=True)
    pc = m.tlv(der.SEQUENCE, m.tlv(0x80, b"\x00"))
    yield _Spec("dac_policy_constraints", "dac", "policyConstraints requireExplicitPolicy 0", lambda ch: ch.dac.extensions.append(m.Ext(m.POLICY_CONSTRAINTS, pc)), OK, OK, None, "OpenSSL evaluates policies only with X509_V_FLAG_POLICY_CHECK", boringssl=True)
    yield _Spec("dac_subject_long_form_length", "dac", "non-minimal DER length (subject)", lambda ch: setattr(ch.dac, "subject_raw", m.long_form(ch.dac.subject_der())), OK, OK, "cert.not_der", "crypto/asn1/asn1_lib.c asn1_get_length (long form accepted)", boringssl=True)
    yield _Spec("pai_skid_trailing_bytes", "pai", "trailing bytes inside the SKID extension value", lambda ch: _ext(ch.pai, SKID, value=lambda c: m.tlv(der.OCTET_STRING, c.own_skid) + b"\x00"), OK, OK, None, "crypto/x509/v3_lib.c X509V3_EXT_d2i (ASN1_item_d2i ignores trailing bytes)", boringssl=True)
    yield _Spec("dac_key_hybrid", "dac", "hybrid EC point (0x06/0x07)", lambda ch: setattr(ch.dac, "point_form", "hybrid"), OK, OK, "cert.key_point_form", "crypto/ec/ec_oct.c EC_POINT_oct2point; i2d_PublicKey writes 65 bytes", boringssl=True)

    yield _Spec("dac_spki_unused_bits", "dac", "public key BIT STRING declaring unused bits (already zero)", _clean_spki_unused, OK, OK, "cert.not_der", "crypto/asn1/a_bitstr.c c2i_ASN1_BIT_STRING (clears the unused bits)", boringssl=True)
    yield _Spec("pai_ku_padding_bit", "pai", "keyUsage with a padding bit set", lambda ch: _ext(ch.pai, KU, value=m.tlv(der.BIT_STRING, b"\x01\x07")), OK, OK, "ext.key_usage_not_minimal", "crypto/asn1/a_bitstr.c c2i_ASN1_BIT_STRING (clears the unused bits)", boringssl=True)
    yield _Spec("dac_critical_cdp", "dac", "critical cRLDistributionPoints on the DAC", lambda ch: ch.dac.extensions.append(m.Ext(CDP, m.cdp_value("http://crl.example.com/pai.crl"), critical=True)), OK, OK, "ext.crl_distribution_points_shape", "crypto/x509/v3_purp.c X509_supported_extension", boringssl=True)
    yield _Spec("dac_empty_san", "dac", "empty subjectAltName", lambda ch: ch.dac.extensions.append(m.Ext(m.SAN, m.tlv(der.SEQUENCE, b""))), S301, S301, "ext.subject_alt_name_present", "crypto/x509/x509_vfy.c check_extensions (X509_V_ERR_EMPTY_SUBJECT_ALT_NAME)", boringssl=True)

    def small_explicit_paa(ch: m.ChainModel) -> None:
        ch.paa.subject = m.name(m.Attr(CN_OID, b"A"))
        ch.paa.extensions = ch.paa.extensions[:3]
        bits = m.tlv(der.BIT_STRING, b"\x00" + m.point_of(ch.paa.key))
        ch.paa.spki_raw = m.tlv(der.SEQUENCE, m.alg(m.EC_PUBLIC_KEY, m.explicit_p256_params()) + bits)

    yield _Spec("paa_explicit_curve", "paa", "explicit EC parameters on the PAA", small_explicit_paa, S301, S301, "cert.key_explicit_params", "crypto/x509/x509_vfy.c check_curve (X509_V_ERR_EC_KEY_EXPLICIT_PARAMS)", boringssl=True)


def _clean_spki_unused(ch: m.ChainModel) -> None:
    """One declared unused bit in a point whose last bit is already zero (a key chosen so)."""
    for i in range(64):
        key = derived_key(f"spki-unused/{i}")
        if m.point_of(key)[-1] & 1 == 0:
            ch.dac.key = key
            ch.dac.spki_unused_bits = 1
            return
    raise AssertionError("no key with an even last point octet")


def _name_constraint_specs() -> Iterator[_Spec]:
    """Name constraints on the PAI, and a DAC named inside or outside them."""
    S301, OK = R.kDacSignatureInvalid, R.kSuccess
    nc = "crypto/x509/v3_ncons.c NAME_CONSTRAINTS_check / NAME_CONSTRAINTS_check_CN; x509_vfy.c check_name_constraints"

    def constrain(field: int, base: bytes, host: bytes | None) -> Recipe:
        def recipe(ch: m.ChainModel) -> None:
            value = m.tlv(der.SEQUENCE, m.tlv(field, m.tlv(der.SEQUENCE, base)))
            ch.pai.extensions.append(m.Ext(m.NAME_CONSTRAINTS, value, critical=True))
            if host is not None:
                _set_subject(ch.dac, cn=host)

        return recipe

    dns = m.tlv(0x82, b"example.com")
    yield _Spec("dac_cn_host_excluded_by_pai", "dac", "host-like DAC CN inside an excluded dNSName subtree", constrain(0xA1, dns, b"device.example.com"), S301, S301, "issuer.name_constraints", nc)
    yield _Spec("dac_cn_host_permitted_by_pai", "dac", "host-like DAC CN inside a permitted dNSName subtree (no subjectAltName)", constrain(0xA0, dns, b"device.example.com"), OK, OK, None, nc + "; BoringSSL: X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS", boringssl=True)
    yield _Spec("dac_cn_host_outside_permitted", "dac", "host-like DAC CN outside the permitted dNSName subtree", constrain(0xA0, dns, b"device.other.org"), S301, S301, "issuer.name_constraints", nc)
    excluded_dn = m.tlv(0xA4, m.encode_name(m.name(m.Attr(CN_OID, b"Gen DAC"))))
    yield _Spec("dac_subject_in_excluded_dirname", "dac", "DAC subject under an excluded directoryName subtree", constrain(0xA1, excluded_dn, None), S301, S301, "issuer.name_constraints", nc + " (nc_dn: canonical prefix)")


def _boundary_specs(now: datetime) -> Iterator[_Spec]:
    """Edges of the rules no other case touches."""
    OK = R.kSuccess
    enc = "RFC 5280 4.1.2.5; x509_vfy.c X509_cmp_time"
    yield _Spec("pai_pathlen_1", "pai", "PAI pathLenConstraint must be 0 (1 is refused)", lambda ch: _ext(ch.pai, BC, value=m.bc_value(True, 1)), R.kPaiFormatInvalid, R.kPaiFormatInvalid, "ext.basic_constraints_pathlen", _FMT)
    yield _Spec("paa_pathlen_absent", "paa", "PAA pathLenConstraint absent", lambda ch: _ext(ch.paa, BC, value=m.bc_value(True)), OK, OK, None, _FMT)
    yield _Spec("dac_not_after_2049_utctime", "dac", "UTCTime for 2049-12-31T23:59:59Z", lambda ch: setattr(ch.dac, "not_after", datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)), OK, OK, None, enc)
    yield _Spec("dac_not_after_2050_generalized", "dac", "GeneralizedTime for 2050-01-01T00:00:00Z", lambda ch: setattr(ch.dac, "not_after", datetime(2050, 1, 1, tzinfo=UTC)), OK, OK, None, enc)
    yield _Spec("dac_not_after_2050_as_utctime", "dac", "UTCTime 500101000000Z reads as 1950", lambda ch: setattr(ch.dac, "not_after_raw", m.tlv(der.UTC_TIME, b"500101000000Z")), R.kDacExpired, R.kDacExpired, "cert.validity_inverted", enc + " (YY >= 50 is 19YY)")
    yield _Spec("dac_not_after_2049_generalized", "dac", "GeneralizedTime before 2050", lambda ch: setattr(ch.dac, "not_after_raw", m.encode_time(datetime(2049, 6, 1, tzinfo=UTC), der.GENERALIZED_TIME)), OK, OK, "cert.time_encoding", enc + " (chip does not enforce the RFC choice)")
    yield _Spec("dac_not_before_now", "dac", "DAC notBefore equal to the validation time", _steps(_set("dac", not_before=now), _set("pai", not_before=now - timedelta(days=1))), OK, OK, None, "X509_cmp_time(notBefore, now) == -1 when equal")
    yield _Spec("dac_not_after_now", "dac", "DAC notAfter equal to the validation time", lambda ch: setattr(ch.dac, "not_after", now), R.kDacExpired, R.kDacExpired, None, "X509_cmp_time(notAfter, now) must be 1 (later)")
    yield _Spec("dac_serial_20_octets", "dac", "serial of 20 octets", lambda ch: setattr(ch.dac, "serial", (1 << 159) - 7), OK, OK, None, "RFC 5280 4.1.2.2")
    yield _Spec("dac_serial_21_octets", "dac", "serial of 21 octets (chip accepts; revocation cannot match it)", lambda ch: setattr(ch.dac, "serial", 1 << 163), OK, OK, "cert.serial_too_long", "src/crypto/CHIPCryptoPAL.h kMaxCertificateSerialNumberLength")
    yield _Spec("dac_der_600_bytes", "dac", "DER of exactly 600 bytes", lambda ch: _pad_to(ch, "dac", 600), OK, OK, None, "src/credentials/CHIPCert.h kMaxDERCertLength")
    yield _Spec("dac_der_601_bytes", "dac", "DER of 601 bytes", lambda ch: _pad_to(ch, "dac", 601), R.kDacFormatInvalid, R.kDacFormatInvalid, "cert.der_too_large", "src/credentials/CHIPCert.h kMaxDERCertLength")


def _pad_to(ch: m.ChainModel, role: str, size: int) -> None:
    """Grow the certificate with an OU attribute until its DER is exactly ``size`` bytes.

    The ECDSA signature is 70 to 72 bytes, so a few serial numbers are tried to land on the size.
    """
    cert = ch.cert(role)
    base = [a for rdn in cert.subject for a in rdn]
    parent = ch.issuer_of(role) if role != "paa" else None

    def length(n: int) -> int:
        cert.subject = m.name(*base, m.Attr(m.OU, b"u" * n))
        grand = m.issuer_der(parent, ch.paa) if parent is not None else None
        return len(m.encode_cert(cert, parent, deterministic=True, issuer_issuer=grand))

    for serial in range(0x100, 0x140):
        cert.serial = serial
        n = max(1, size - length(1) + 1)
        for delta in range(-8, 3):
            if n + delta > 0 and length(n + delta) == size:
                return
    raise AssertionError(f"cannot reach {size} bytes")


def _specs(now: datetime) -> Iterator[_Spec]:
    yield _Spec("baseline", "-", "valid chain", lambda ch: None, R.kSuccess, R.kSuccess, None, "")
    yield _Spec("baseline_pai_no_pid", "-", "valid chain, PAI without PID", lambda ch: None, R.kSuccess, R.kSuccess, None, "", pai_pid=False)
    yield from _role_specs()
    yield from _chain_specs()
    yield from _time_specs(now)
    yield from _relation_specs()
    yield from _table_specs(now)
    yield from _divergence_specs(now)
    yield from _name_constraint_specs()
    yield from _boundary_specs(now)


def generate(now: datetime = VECTOR_TIME) -> list[NegativeCase]:
    """Every named case, its verdicts for validation time ``now`` (deterministic bytes)."""
    cases = []
    for spec in _specs(now):
        chain = good_chain(now, pai_pid=spec.pai_pid, seed=spec.name)
        spec.recipe(chain)
        paa, pai, dac = chain.build(deterministic=True)
        cases.append(
            NegativeCase(spec.name, spec.role, spec.rule, paa, pai, dac, spec.chip_cert, spec.commissioner, spec.finding, spec.source, spec.boringssl)
        )
    return cases


_README_HEAD = """# Generated attestation vectors

Written by `python -m matter_pki.testing.negative --write tests/vectors/attestation` (deterministic:
keys derived from each case name, RFC 6979 signatures, validation time {time}). Do not edit by hand;
`tests/unit/test_vectors.py` fails when the files differ from the generator's output.

Each directory holds `paa.der`, `pai.der` and `dac.der`. `cases.json` has, per case, the broken rule
(recipe), the verdict chip gives on Linux (OpenSSL 3) in `chip-cert validate-att-cert` order and in the
commissioner's order, the lint code the named certificate shows, whether a BoringSSL-based commissioner
decides differently, and the source that decides it.

| case | cert | recipe | chip-cert | commissioner | lint code | BoringSSL differs |
|---|---|---|---|---|---|---|
"""


def write(out: Path, now: datetime = VECTOR_TIME) -> list[NegativeCase]:
    """Write every case under ``out`` (DER files, cases.json, README.md)."""
    cases = generate(now)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"validation_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "cases": []}
    lines = [_README_HEAD.format(time=manifest["validation_time"])]
    for case in cases:
        folder = out / case.name
        folder.mkdir(exist_ok=True)
        for label in ("paa", "pai", "dac"):
            (folder / f"{label}.der").write_bytes(getattr(case, label))
        manifest["cases"].append(  # type: ignore[attr-defined]
            {
                "name": case.name,
                "role": case.role,
                "recipe": case.rule,
                "chip_cert": case.chip_cert.label,
                "commissioner": case.commissioner.label,
                "lint_code": case.finding,
                "boringssl_differs": case.boringssl,
                "source": case.source,
            }
        )
        lines.append(
            f"| `{case.name}` | {case.role} | {case.rule} | {case.chip_cert.label} | {case.commissioner.label} | "
            f"{case.finding or ''} | {'yes' if case.boringssl else ''} |\n"
        )
    (out / "cases.json").write_text(json.dumps(manifest, indent=1) + "\n")
    (out / "README.md").write_text("".join(lines))
    return cases


def main() -> None:
    """Write every case as DER files with a manifest and a README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", required=True, type=Path, help="output directory (e.g. tests/vectors/attestation)")
    args = parser.parse_args()
    cases = write(args.write)
    print(f"wrote {len(cases)} cases to {args.write}")


if __name__ == "__main__":
    main()
