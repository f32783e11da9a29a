"""The validator gives chip's verdict (Linux, OpenSSL 3, chip's order) on the inputs where others get it wrong.

One test per class of input where a validator that lets Python ``cryptography`` (or BoringSSL) decide
disagrees with chip. Each expectation names the SDK or OpenSSL 3.0 source that decides it; the same
chains are checked against the system OpenSSL 3 in tests/conformance/test_openssl_reference.py.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from matter_pki.attestation import AttestationResult as R
from matter_pki.validate import ValidationResult, validate_att_cert
from tests.unit.test_vectors import AT, load_vector


def judge(name: str, mode: str = "chip-cert") -> ValidationResult:
    """Validate one generated vector at the vectors' validation time."""
    paa, pai, dac = (load_vector(name, f"{r}.der") for r in ("paa", "pai", "dac"))
    return validate_att_cert(paa=paa, pai=pai, dac=dac, at=AT, mode=mode)  # type: ignore[arg-type]


def both(name: str) -> tuple[R, R]:
    """(chip-cert, commissioner) results."""
    return judge(name).result, judge(name, "commissioner").result


# -- AKID authorityCertIssuer / authorityCertSerialNumber --------------------------------------------
def test_akid_serial_not_naming_the_issuer_is_301() -> None:
    # crypto/x509/v3_purp.c X509_check_akid: akid->serial must equal the issuer's serial
    # (X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH); ossl_x509_likely_issued then refuses the PAA as issuer.
    assert both("pai_akid_serial_wrong") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)
    assert judge("pai_akid_serial_wrong").code == "chain.invalid"


def test_akid_issuer_not_naming_the_issuers_issuer_is_301() -> None:
    # X509_check_akid compares the first directoryName of authorityCertIssuer with X509_get_issuer_name(issuer).
    assert both("dac_akid_issuer_wrong") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)


def test_akid_with_the_right_issuer_and_serial_is_valid() -> None:
    assert both("dac_akid_issuer_serial_right") == (R.kSuccess, R.kSuccess)


# -- issuer DN comparison: OpenSSL's canonical form -------------------------------------------------------
def test_non_ascii_case_difference_is_301() -> None:
    # crypto/x509/x_name.c asn1_string_canon lower-cases ASCII only (ossl_tolower on bytes < 0x80):
    # "É" and "é" stay different, X509_NAME_cmp (x509_cmp.c) finds no issuer.
    assert both("dac_issuer_non_ascii_case") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)


def test_nbsp_is_not_whitespace_301() -> None:
    # asn1_string_canon collapses ossl_isspace characters (ASCII) only; U+00A0 is copied as two octets.
    assert both("dac_issuer_nbsp") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)


def test_ascii_case_and_spaces_are_folded_valid() -> None:
    assert both("dac_issuer_ascii_case_spaces") == (R.kSuccess, R.kSuccess)


@pytest.mark.parametrize("name", ["dac_issuer_universal_string", "dac_issuer_bmp_string"])
def test_issuer_in_another_string_type_is_valid(name: str) -> None:
    # asn1_string_canon converts UniversalString/BMPString to UTF-8 (ASN1_STRING_to_UTF8) before comparing.
    assert both(name) == (R.kSuccess, R.kSuccess)


# -- validity instants ------------------------------------------------------------------------------------
def test_issuer_not_after_equal_to_dac_not_before_is_301() -> None:
    # x509_vfy.c ossl_x509_check_cert_time: X509_cmp_time(notAfter, t) <= 0 is X509_V_ERR_CERT_HAS_EXPIRED,
    # and t is the DAC notBefore (CHIPCryptoPALOpenSSL.cpp ValidateCertificateChain, X509_VERIFY_PARAM_set_time).
    assert both("pai_not_after_eq_dac_not_before") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)


def test_issuer_not_before_equal_to_dac_not_before_is_valid() -> None:
    # X509_cmp_time(notBefore, t) == -1 when equal: not "not yet valid".
    assert both("pai_not_before_eq_dac_not_before") == (R.kSuccess, R.kSuccess)


def test_dac_not_before_1969_is_303() -> None:
    # ValidateCertificateChain imports the DAC notBefore (src/lib/asn1/ASN1Time.cpp) and converts it with
    # CalendarTimeToSecondsSinceUnixEpoch (src/lib/support/TimeUtils.cpp, years 1970..2105): failure is
    # kLeafFormatInvalid, mapped to kDacFormatInvalid.
    result = judge("dac_not_before_1969")
    assert (result.result, result.code) == (R.kDacFormatInvalid, "chain.dac_time_unsupported")
    assert judge("dac_not_before_1969", "commissioner").result is R.kDacFormatInvalid


def test_dac_not_before_1970_is_in_range() -> None:
    assert both("dac_not_before_1970") == (R.kSuccess, R.kSuccess)


# -- what OpenSSL accepts and cryptography refuses ------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "dac_critical_ber_true",  # tasn_dec.c asn1_ex_c2i: BOOLEAN is one octet of any value; x_exten.c FBOOLEAN
        "pai_ca_ber_true",  # v3_bcons.c BASIC_CONSTRAINTS cA ASN1_FBOOLEAN: 0x01 is TRUE
        "dac_critical_explicit_false",  # FBOOLEAN accepts an explicit DEFAULT FALSE
        "dac_ca_explicit_false",
        "dac_sig_alg_null_params",  # X509_ALGOR parameter ANY; ECDSA ignores it; TBS and outer still equal
        "dac_unsorted_multi_valued_rdn",  # x_name.c x509_name_ex_d2i does not check SET OF order
    ],
)
def test_ber_openssl_accepts_is_valid(name: str) -> None:
    result = judge(name)
    assert result.ok, result.reason
    assert judge(name, "commissioner").ok


@pytest.mark.parametrize("mode", ["chip-cert", "commissioner"])
def test_dac_basic_constraints_with_a_long_form_empty_length_is_valid(mode: str) -> None:
    # GIVEN a DAC whose basicConstraints value is 30 81 00 (an empty SEQUENCE, non-minimal length), re-signed
    # by its PAI. OpenSSL 3 asn1_get_length ("if (max < i) return 0", crypto/asn1/asn1_lib.c) reads it and
    # ossl_x509v3_cache_extensions caches it, so chip's VerifyAttestationCertificateFormat
    # (X509V3_EXT_d2i of basicConstraints, CHIPCryptoPALOpenSSL.cpp) passes: valid (found by a fresh-seed run).
    import random

    from matter_pki.testing import mutate

    chain = mutate.base_chain(random.Random(7), AT)
    bc = mutate.Ext(mutate.BC, mutate.long_form(mutate.bc_value(None)), critical=True)
    chain.dac.extensions = [bc if e.oid == mutate.BC else e for e in chain.dac.extensions]
    paa, pai, dac = chain.build()
    assert b"\x30\x81\x00" in dac
    result = validate_att_cert(paa=paa, pai=pai, dac=dac, at=AT, mode=mode)
    assert result.result is R.kSuccess, result.reason


def test_non_minimal_integer_serial_is_the_format_code() -> None:
    # crypto/asn1/a_int.c c2i_ibuf: ASN1_R_ILLEGAL_PADDING, so d2i_X509 fails inside the DAC format check.
    result = judge("dac_serial_not_minimal")
    assert (result.result, result.code) == (R.kDacFormatInvalid, "cert.der_malformed")


def test_issuer_as_visible_string_is_the_format_code() -> None:
    # x_name.c X509_NAME_ENTRY value is ASN1_PRINTABLE; ASN1_tag2bit(VisibleString) is not in
    # B_ASN1_PRINTABLE (tasn_dec.c ASN1_R_MSTRING_WRONG_TAG): the certificate does not parse.
    assert both("dac_issuer_visible_string") == (R.kDacFormatInvalid, R.kDacFormatInvalid)


@pytest.mark.parametrize("name", ["dac_aia_twice", "dac_private_ext_twice", "dac_certificate_policies_twice"])
def test_uncached_extension_twice_is_valid(name: str) -> None:
    # v3_purp.c ossl_x509v3_cache_extensions looks up only the extensions it caches (X509_get_ext_d2i
    # returns NULL with -2 for a duplicate); AIA, private ones and certificatePolicies are not among them.
    assert both(name) == (R.kSuccess, R.kSuccess)


@pytest.mark.parametrize("name", ["dac_vid_visible_string", "dac_pid_octet_string"])
def test_vid_pid_in_a_type_openssl_refuses_is_the_format_code(name: str) -> None:
    # The Name does not decode (ASN1_PRINTABLE), so d2i_X509 fails in VerifyAttestationCertificateFormat.
    assert both(name) == (R.kDacFormatInvalid, R.kDacFormatInvalid)


def test_critical_cdp_on_the_paa_is_valid() -> None:
    # v3_purp.c X509_supported_extension lists NID_crl_distribution_points: not an unhandled critical
    # extension; chip's PAA format check ignores extensions other than BC/KU/SKID/AKID.
    assert both("paa_critical_cdp") == (R.kSuccess, R.kSuccess)


def test_der_over_600_bytes_is_invalid_in_every_mode() -> None:
    # src/tools/chip-cert/CertUtils.cpp ReadCertDER: i2d_X509 into a kMaxDERCertLength (600) buffer;
    # a device's certificate chain response carries at most 600 bytes. Format code + finer reason.
    for mode in ("chip-cert", "commissioner"):
        result = judge("dac_der_too_large_chip_cert", mode)
        assert (result.result, result.code) == (R.kDacFormatInvalid, "cert.der_too_large")
    assert judge("paa_der_too_large", "commissioner").result is R.kPaaNotFound  # FileAttestationTrustStore skips it
    assert judge("dac_der_600_bytes").ok and not judge("dac_der_601_bytes").ok


def test_signature_with_unused_bits() -> None:
    # crypto/asn1/a_verify.c ASN1_item_verify_ex refuses a signature BIT STRING with unused bits
    # (ASN1_R_INVALID_BIT_STRING_BITS_LEFT); x509_vfy.c internal_verify never checks the anchor's own signature.
    assert both("paa_signature_unused_bits") == (R.kSuccess, R.kSuccess)
    assert both("pai_signature_unused_bits") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)
    assert both("dac_signature_unused_bits") == (R.kDacSignatureInvalid, R.kDacSignatureInvalid)


def test_each_certificate_is_read_in_its_own_format_check() -> None:
    # src/tools/chip-cert/Cmd_ValidateAttCert.cpp: format of PAA, then PAI, then DAC. A v2 PAA is
    # reported before a PAI that does not parse; the commissioner never format-checks the PAA.
    assert both("paa_v2_pai_unreadable") == (R.kPaaFormatInvalid, R.kPaiFormatInvalid)


# -- name constraints ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "verdict"),
    [
        ("dac_cn_host_excluded_by_pai", R.kDacSignatureInvalid),  # NAME_CONSTRAINTS_check_CN: host-like CN, no DNS SAN
        ("dac_cn_host_outside_permitted", R.kDacSignatureInvalid),
        ("dac_cn_host_permitted_by_pai", R.kSuccess),
        ("dac_subject_in_excluded_dirname", R.kDacSignatureInvalid),  # nc_dn: canonical-encoding prefix
    ],
)
def test_name_constraints(name: str, verdict: R) -> None:
    # crypto/x509/x509_vfy.c check_name_constraints; crypto/x509/v3_ncons.c NAME_CONSTRAINTS_check(_CN).
    assert both(name) == (verdict, verdict)


def test_host_like_cn_under_name_constraints_diverges() -> None:
    # BoringSSL refuses a leaf without subjectAltName whose CN looks like a host name once name
    # constraints apply (X509_V_ERR_NAME_CONSTRAINTS_WITHOUT_SANS); OpenSSL checks the CN instead.
    result = judge("dac_cn_host_permitted_by_pai")
    assert result.ok and result.boringssl_result is R.kDacSignatureInvalid
    assert "divergence.name_constraints" in {d.code for d in result.divergences}


# -- BoringSSL divergences: the OpenSSL verdict, plus a finding and a field -----------------------------------
@pytest.mark.parametrize(
    ("name", "verdict", "divergence"),
    [
        ("dac_key_compressed", R.kDacFormatInvalid, "divergence.compressed_point"),
        ("paa_unknown_critical_ext", R.kDacSignatureInvalid, "divergence.trust_anchor_checks"),
        ("paa_tbs_sig_alg_mismatch", R.kDacSignatureInvalid, "divergence.trust_anchor_checks"),
        ("dac_not_after_no_seconds", R.kDacExpired, "divergence.time_format"),
        ("dac_policy_constraints", R.kSuccess, "divergence.policy_processing"),
        ("dac_subject_long_form_length", R.kSuccess, "divergence.ber_encoding"),
        ("pai_skid_trailing_bytes", R.kSuccess, "divergence.ber_encoding"),
        ("dac_key_hybrid", R.kSuccess, "divergence.hybrid_point"),
        ("dac_spki_unused_bits", R.kSuccess, "divergence.bit_string_padding"),
        ("pai_ku_padding_bit", R.kSuccess, "divergence.bit_string_padding"),
        ("dac_critical_cdp", R.kSuccess, "divergence.critical_extension"),
        ("paa_explicit_curve", R.kDacSignatureInvalid, "divergence.explicit_curve"),
    ],
)
def test_boringssl_divergence_keeps_the_openssl_verdict(name: str, verdict: R, divergence: str) -> None:
    result = judge(name)
    assert result.result is verdict, result.reason
    assert divergence in {d.code for d in result.divergences}
    assert result.boringssl_result is not None and result.boringssl_result is not verdict
    data = result.to_dict()
    assert data["boringssl_result_code"] == int(result.boringssl_result)
    assert divergence in {d["code"] for d in data["divergences"]}  # type: ignore[union-attr]


# -- the public seam -------------------------------------------------------------------------------------------
def test_result_shape_is_stable() -> None:
    result = judge("baseline")
    assert result.ok and result.result is R.kSuccess and result.code is None and result.reason
    assert int(judge("dac_vid_mismatch").result) == 305
    keys = set(result.to_dict())
    assert {"valid", "result", "result_code", "reason_code", "reason", "findings"} <= keys


def test_naive_time_and_unknown_mode_are_refused() -> None:
    paa, pai, dac = (load_vector("baseline", f"{r}.der") for r in ("paa", "pai", "dac"))
    with pytest.raises(ValueError, match="timezone"):
        validate_att_cert(paa=paa, pai=pai, dac=dac, at=datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="unknown mode"):
        validate_att_cert(paa=paa, pai=pai, dac=dac, at=AT, mode="other")  # type: ignore[arg-type]


@pytest.mark.parametrize("garbage", [b"", b"\x30", b"\x30\x80", b"\x30\x84\x00\x00\x00\x01\x00", b"\x00" * 10])
def test_garbage_gets_the_format_code_never_an_exception(garbage: bytes) -> None:
    paa, pai = load_vector("baseline", "paa.der"), load_vector("baseline", "pai.der")
    for mode in ("chip-cert", "commissioner"):
        result = validate_att_cert(paa=paa, pai=pai, dac=garbage, at=AT, mode=mode)  # type: ignore[arg-type]
        assert result.result is R.kDacFormatInvalid


def test_cli_json_names_the_boringssl_divergence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a chain chip-tool accepts and a BoringSSL-based commissioner refuses (hybrid EC point)
    import json

    from click.testing import CliRunner

    from matter_pki.cli import main

    args = []
    for role in ("paa", "pai", "dac"):
        path = tmp_path / f"{role}.der"
        path.write_bytes(load_vector("dac_key_hybrid", f"{role}.der"))
        args += [f"--{role}", str(path)]
    # WHEN validated with --format json
    out = CliRunner().invoke(main, ["validate-att-cert", *args, "--at", "2026-06-01T12:00:00Z", "--format", "json"])
    data = json.loads(out.output)
    # THEN the verdict is chip's (valid, exit 0) and the JSON names the divergence and the other verdict
    assert out.exit_code == 0 and data["valid"] is True
    assert [d["code"] for d in data["divergences"]] == ["divergence.hybrid_point"]
    assert data["boringssl_result"] == "kDacFormatInvalid" and data["boringssl_result_code"] == 303
    assert "divergence.hybrid_point" in {f["code"] for f in data["findings"]}
