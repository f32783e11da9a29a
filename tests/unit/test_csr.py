"""CSR intake: exactly one P-256 CSR with a valid self-signature; everything else refused with a code."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import der
from matter_pki.csr import MAX_CSR_BYTES, csr_digest, load_device_csr
from matter_pki.errors import CsrError


def make_csr(k=None, *, subject: str = "device", algo=None, encoding=Encoding.PEM, extensions: bool = False) -> bytes:
    k = k or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, subject)]))
    if extensions:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(k, algo or hashes.SHA256()).public_bytes(encoding)


def refused(data: bytes) -> str:
    with pytest.raises(CsrError) as err:
        load_device_csr(data)
    return err.value.code


def test_accepts_pem_and_der_and_returns_only_the_key() -> None:
    k = ec.generate_private_key(ec.SECP256R1())
    for enc in (Encoding.PEM, Encoding.DER):
        csr = load_device_csr(make_csr(k, encoding=enc, extensions=True))
        assert csr.public_point == k.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        assert len(csr.sha256) == 64


def test_rsa_is_refused() -> None:
    assert refused(make_csr(rsa.generate_private_key(65537, 2048))) == "csr.key_not_ec"


def test_p384_is_refused() -> None:
    assert refused(make_csr(ec.generate_private_key(ec.SECP384R1()))) == "csr.key_curve"


def test_secp256k1_is_refused() -> None:
    assert refused(make_csr(ec.generate_private_key(ec.SECP256K1()))) == "csr.key_curve"


def test_sha384_signature_is_refused() -> None:
    assert refused(make_csr(algo=hashes.SHA384())) == "csr.signature_algorithm"


def test_bad_signature_is_refused() -> None:
    data = bytearray(make_csr(encoding=Encoding.DER))
    data[-5] ^= 0x01
    assert refused(bytes(data)) in ("csr.signature_invalid", "csr.malformed")


def test_signature_by_another_key_is_refused() -> None:
    good = make_csr(encoding=Encoding.DER)
    top = der.read_tlv(good)
    info, alg, sig = der.children(good, top)
    other = ec.generate_private_key(ec.SECP256R1()).sign(info.encoded(good), ec.ECDSA(hashes.SHA256()))
    forged = der.encode_tlv(der.SEQUENCE, info.encoded(good) + alg.encoded(good) + der.encode_tlv(der.BIT_STRING, b"\0" + other))
    assert refused(forged) == "csr.signature_invalid"


def test_compressed_point_is_refused() -> None:
    k = ec.generate_private_key(ec.SECP256R1())
    point = k.public_key().public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    spki = der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.2.1") + der.encode_oid("1.2.840.10045.3.1.7")) + der.encode_tlv(der.BIT_STRING, b"\0" + point))
    name = der.encode_tlv(der.SEQUENCE, b"")
    info = der.encode_tlv(der.SEQUENCE, der.encode_integer(0) + name + spki + der.encode_tlv(0xA0, b""))
    sig = k.sign(info, ec.ECDSA(hashes.SHA256()))
    csr = der.encode_tlv(der.SEQUENCE, info + der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.2")) + der.encode_tlv(der.BIT_STRING, b"\0" + sig))
    assert refused(csr) == "csr.key_point"


@pytest.mark.parametrize("cut", [1, 10, 50])
def test_truncated_is_refused(cut: int) -> None:
    assert refused(make_csr(encoding=Encoding.DER)[:-cut]) == "csr.malformed"


def test_truncated_pem_is_refused() -> None:
    assert refused(make_csr()[:-40]) == "csr.pem_invalid"


def test_oversized_is_refused() -> None:
    assert refused(make_csr() + b"\n" * MAX_CSR_BYTES) == "csr.too_large"


def test_two_csrs_are_refused() -> None:
    assert refused(make_csr() + make_csr()) == "csr.multiple"
    assert refused(make_csr(encoding=Encoding.DER) + make_csr(encoding=Encoding.DER)) == "csr.multiple"


@pytest.mark.parametrize("data", [b"", b"   \n", b"garbage", b"\x30\x80\x00\x00", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_garbage_is_refused(data: bytes) -> None:
    assert refused(data).startswith("csr.")


def test_csr_digest_matches_load_device_csr_without_checking_the_signature() -> None:
    # GIVEN a PEM CSR, its DER, and a CSR whose key is refused only by the cryptographic checks
    pem = make_csr()
    der_form = load_device_csr(pem).der
    p384 = make_csr(ec.generate_private_key(ec.SECP384R1()))
    # WHEN digested cheaply THEN the digest is load_device_csr's sha256 for PEM and DER alike
    assert csr_digest(pem) == csr_digest(der_form) == load_device_csr(pem).sha256
    assert len(csr_digest(p384)) == 64
    # AND the envelope refusals carry the same codes as load_device_csr
    for bad in (b"", b"  \n", b"\x30\x03\x02\x01", pem + pem, b"x" * (MAX_CSR_BYTES + 1), der_form + b"\x00"):
        with pytest.raises(CsrError) as err:
            csr_digest(bad)
        assert err.value.code == refused(bad)
