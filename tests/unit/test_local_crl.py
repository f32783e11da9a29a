"""CRL building and revocation sets (matter_pki.local.crl), matter-rules.md §8."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki import der
from matter_pki.certparse import parse_certificate
from matter_pki.errors import InputError
from matter_pki.local.crl import build_crl, parse_reason, revocation_set
from matter_pki.local.ledger import LedgerEntry
from matter_pki.profiles import PaaProfile, PaiProfile, Validity, sign
from tests.unit.test_local_fixtures import NOW


def _pai() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    paa_key, pai_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    validity = Validity.no_expiry(NOW - timedelta(days=1))
    paa = sign(PaaProfile(vid=0xFFF1, validity=validity).builder(paa_key.public_key(), serial=1), paa_key)
    pai = sign(
        PaiProfile(vid=0xFFF1, pid=0x8000, validity=validity).builder(pai_key.public_key(), serial=2, issuer=paa), paa_key
    )
    return pai, pai_key


def _revoked(serial: str, reason: str) -> LedgerEntry:
    return LedgerEntry(
        kind="dac", ca="pai-1", serial=serial, subject="", pid=0x8000, csr_sha256=None, not_before="", not_after="",
        issued_at="", operator="", status="revoked", revocation_reason=reason, revoked_at="2026-06-01T10:00:00Z",
        der=b"", audit_seq=None,
    )


def test_crl_is_v2_signed_by_the_ca_with_matter_fields() -> None:
    # GIVEN a PAI and two revoked DACs
    pai, key = _pai()
    entries = [_revoked("0ABC", "keyCompromise"), _revoked("7F" + "11" * 19, "unspecified")]
    # WHEN the CRL is built
    crl = build_crl(pai, key, entries, crl_number=7, now=NOW)
    crl_der = crl.public_bytes(Encoding.DER)
    # THEN it is v2 with ecdsa-with-SHA256, issuer bytes == PAI subject bytes, AKID == PAI SKID, CRL Number 7
    tbs = der.children(crl_der, der.children(crl_der, der.read_tlv(crl_der))[0])
    assert tbs[0].tag == der.INTEGER and tbs[0].value(crl_der) == b"\x01"
    assert crl.signature_algorithm_oid == x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
    assert tbs[2].encoded(crl_der) == parse_certificate(pai.public_bytes(Encoding.DER)).subject.der
    skid = pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    akid = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert akid.value.key_identifier == skid and not akid.critical
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    # AND the signature verifies with the PAI key
    assert crl.is_signature_valid(pai.public_key())  # type: ignore[arg-type]
    key.public_key().verify(crl.signature, crl.tbs_certlist_bytes, ec.ECDSA(hashes.SHA256()))
    # AND each revoked serial is listed; keyCompromise carries a reasonCode, unspecified none (RFC 5280 5.3.1)
    first = crl.get_revoked_certificate_by_serial_number(0xABC)
    second = crl.get_revoked_certificate_by_serial_number(int("7F" + "11" * 19, 16))
    assert first is not None and second is not None
    assert first.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    assert len(second.extensions) == 0


def test_revocation_set_entry_is_the_dcl_shape() -> None:
    pai, _key = _pai()
    pai_der = pai.public_bytes(Encoding.DER)
    [entry] = revocation_set(pai, [_revoked("0ABC", "keyCompromise")])
    assert entry == {
        "type": "revocation_set",
        "issuer_subject_key_id": pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex().upper(),
        "issuer_name": base64.b64encode(parse_certificate(pai_der).subject.der).decode(),
        "revoked_serial_numbers": ["0ABC"],
        "crl_signer_cert": base64.b64encode(pai_der).decode(),
    }


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("keyCompromise", x509.ReasonFlags.key_compromise),
        ("key-compromise", x509.ReasonFlags.key_compromise),
        ("CA_COMPROMISE", x509.ReasonFlags.ca_compromise),
        ("superseded", x509.ReasonFlags.superseded),
        ("cessation-of-operation", x509.ReasonFlags.cessation_of_operation),
    ],
)
def test_reason_names(text: str, flag: x509.ReasonFlags) -> None:
    assert parse_reason(text) is flag


@pytest.mark.parametrize("text", ["certificateHold", "removeFromCRL", "lost"])
def test_reasons_that_do_not_fit_a_dac_are_refused(text: str) -> None:
    with pytest.raises(InputError) as err:
        parse_reason(text)
    assert err.value.code == "input.revocation_reason"
