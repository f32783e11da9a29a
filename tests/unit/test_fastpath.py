"""Fast DAC path: byte-for-byte the profile builder's DAC, and the reference path's refusals."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki import der
from matter_pki.csr import MAX_CSR_BYTES
from matter_pki.errors import MatterPkiError
from matter_pki.fastpath import (
    SAMPLE_EVERY,
    FastDacIssuer,
    csr_der,
    parse_csr_skeleton,
    random_dac_serial,
    serial_octets,
)
from matter_pki.gate import DacTemplate, ecdsa_signature_well_formed
from matter_pki.issuance import issue_dac
from matter_pki.profiles import DacProfile, PaaProfile, PaiProfile, Validity, sign
from matter_pki.validate import validate_att_cert

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
SERIALS = [1, 0x7F, 0x80, 0xFF, 0x100, 0x8000, 2**63, 2**152, 2**159 - 1, 0x0123456789ABCDEF0123456789ABCDEF01234567]


class DeterministicKey(ec.EllipticCurvePrivateKey):
    """A P-256 key signing with RFC 6979 nonces (an adapter, like the PKCS#11 one), so DERs compare."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        assert isinstance(signature_algorithm, ec.ECDSA) and isinstance(signature_algorithm.algorithm, hashes.SHA256)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._key.curve

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise NotImplementedError

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        return self._key.private_numbers()

    def private_bytes(self, *args: Any) -> bytes:
        return self._key.private_bytes(*args)

    def __copy__(self) -> DeterministicKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> DeterministicKey:
        return self


class WrongKey(DeterministicKey):
    """A faulty token: well-formed signatures made with another key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        super().__init__(ec.generate_private_key(ec.SECP256R1()))
        self._public = key.public_key()

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_chain(pai_pid: int | None) -> dict[str, Any]:
    k_paa, k_pai = p256(), p256()
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(NOW)).builder(k_paa.public_key(), serial=1), k_paa)
    pai_profile = PaiProfile(vid=0xFFF1, pid=pai_pid, validity=Validity.no_expiry(NOW))
    pai = sign(pai_profile.builder(k_pai.public_key(), serial=2, issuer=paa), k_paa)
    return {"paa": paa, "pai": pai, "key": k_pai, "det": DeterministicKey(k_pai)}


@pytest.fixture(scope="module")
def product_pai() -> dict[str, Any]:
    return make_chain(0x8000)


@pytest.fixture(scope="module")
def vendor_pai() -> dict[str, Any]:
    return make_chain(None)


def csr_for(key: Any = None, *, subject: str | None = "CSR", encoding: Encoding = Encoding.PEM, extensions: bool = False) -> bytes:
    key = key or p256()
    attrs = [] if subject is None else [x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, subject)]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    if extensions:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(encoding)


def raw_csr(key: ec.EllipticCurvePrivateKey, info_body: bytes | None = None, *, alg: bytes | None = None) -> bytes:
    """A CSR assembled field by field from CertificationRequestInfo content, signed by ``key``."""
    if info_body is None:
        info_body = der.encode_integer(0) + der.encode_tlv(der.SEQUENCE, b"") + spki(key) + der.encode_tlv(0xA0, b"")
    info = der.encode_tlv(der.SEQUENCE, info_body)
    sig = key.sign(info, ec.ECDSA(hashes.SHA256()))
    alg = alg if alg is not None else der.encode_tlv(der.SEQUENCE, der.encode_oid(ECDSA_SHA256))
    return der.encode_tlv(der.SEQUENCE, info + alg + der.encode_tlv(der.BIT_STRING, b"\0" + sig))


def spki(key: ec.EllipticCurvePrivateKey, form: PublicFormat = PublicFormat.UncompressedPoint) -> bytes:
    point = key.public_key().public_bytes(Encoding.X962, form)
    alg = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.2.1") + der.encode_oid("1.2.840.10045.3.1.7"))
    return der.encode_tlv(der.SEQUENCE, alg + der.encode_tlv(der.BIT_STRING, b"\0" + point))


def validity_of(kind: str) -> Validity:
    if kind == "days":
        return Validity.for_days(NOW + timedelta(hours=1), 365)
    return Validity.no_expiry(NOW + timedelta(hours=1))


def issuer(chain: dict[str, Any], *, signer: Any = None, pid: int = 0x8000, **kwargs: Any) -> FastDacIssuer:
    kwargs.setdefault("validity", validity_of("days"))
    return FastDacIssuer(paa=chain["paa"], pai=chain["pai"], signer=signer or chain["det"], pid=pid, **kwargs)


def reference(chain: dict[str, Any], csr: bytes, serial: int, *, signer: Any = None, pid: int = 0x8000, **kwargs: Any) -> bytes | str:
    kwargs.setdefault("validity", validity_of("days"))
    try:
        return issue_dac(csr, pai=chain["pai"], paa=chain["paa"], signer=signer or chain["det"], pid=pid, serial=serial, **kwargs).der
    except MatterPkiError as e:
        return e.code


def fast(fast_issuer: FastDacIssuer, csr: bytes, serial: int) -> bytes | str:
    try:
        return fast_issuer.issue(csr, serial).der
    except MatterPkiError as e:
        return e.code


# -- byte-for-byte equality with the profile builder -------------------------------------------------
@pytest.mark.parametrize("pai_kind", ["product_pai", "vendor_pai"])
@pytest.mark.parametrize(("validity", "cn"), [("days", "Matter DAC"), ("no_expiry", None), ("days", "Acme Thermostat 0001")])
def test_tbs_is_the_profile_builders_for_every_serial(pai_kind: str, validity: str, cn: str | None, request: pytest.FixtureRequest) -> None:
    # GIVEN a PAI (product-scoped or vendor-wide), a validity, a CN and a native (OpenSSL) PAI key
    chain = request.getfixturevalue(pai_kind)
    fast_issuer = issuer(chain, signer=chain["key"], validity=validity_of(validity), common_name=cn)
    profile = DacProfile.for_issuer(chain["pai"], pid=0x8000, validity=validity_of(validity), common_name=cn)
    for serial in [*SERIALS, random_dac_serial()]:
        device = p256()
        # WHEN the fast path issues a DAC
        issued = fast_issuer.issue(csr_for(device), serial)
        # THEN its TBS is byte for byte the profile builder's for the same key and serial,
        cert = x509.load_der_x509_certificate(issued.der)
        expected = sign(profile.builder(device.public_key(), serial=serial, issuer=chain["pai"]), p256())
        assert cert.tbs_certificate_bytes == expected.tbs_certificate_bytes
        # its signature verifies with the PAI key, and the chip-parity validator accepts it
        chain["pai"].public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
        verdict = validate_att_cert(
            paa=chain["paa"].public_bytes(Encoding.DER), pai=chain["pai"].public_bytes(Encoding.DER), dac=issued.der,
            at=NOW + timedelta(days=2), mode="commissioner",
        )
        assert verdict.ok, verdict.reason
        assert issued.serial == serial == cert.serial_number
    assert fast_issuer.stats.fast == len(SERIALS) + 1 and fast_issuer.stats.reference == 0


@pytest.mark.parametrize("pai_kind", ["product_pai", "vendor_pai"])
@pytest.mark.parametrize("encoding", [Encoding.PEM, Encoding.DER])
def test_certificate_equals_issue_dac_byte_for_byte(pai_kind: str, encoding: Encoding, request: pytest.FixtureRequest) -> None:
    # GIVEN a deterministic signer, so that equal TBS bytes give equal certificates
    chain = request.getfixturevalue(pai_kind)
    fast_issuer = issuer(chain)
    for serial in SERIALS:
        csr = csr_for(encoding=encoding)
        # WHEN both paths issue a DAC for the same CSR and serial
        # THEN the certificates are identical, and so are serial, CSR digest and validity
        issued = fast_issuer.issue(csr, serial)
        ref = issue_dac(csr, pai=chain["pai"], paa=chain["paa"], signer=chain["det"], pid=0x8000, validity=validity_of("days"), serial=serial)
        assert issued == ref
    assert fast_issuer.stats.fast == len(SERIALS)


def test_template_reassembles_the_probe_and_has_a_head_per_serial_length(product_pai: dict[str, Any]) -> None:
    # GIVEN the template of a fast issuer
    template = issuer(product_pai).template
    assert template is not None
    # WHEN a TBS is made for serials of every length 1..20
    for octets in (serial_octets(2 ** (8 * n - 2)) for n in range(1, 21)):
        assert octets is not None
        point = p256().public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        tbs = template.tbs(octets, point, bytes(20))
        # THEN the TBS is one strict DER SEQUENCE holding that serial as its INTEGER
        top = der.read_tlv(tbs)
        assert top.end == len(tbs)
        assert der.children(tbs, top)[1].value(tbs) == octets


# -- serial numbers -------------------------------------------------------------------------------
def test_random_serials_are_20_octet_positive_and_distinct() -> None:
    serials = [random_dac_serial() for _ in range(2000)]
    assert len(set(serials)) == len(serials)
    for s in serials:
        octets = serial_octets(s)
        assert octets is not None and len(octets) == 20 and 0 < octets[0] < 0x80


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF, 0x100, 2**159 - 1])
def test_serial_octets_are_the_der_integer_content(serial: int) -> None:
    assert b"\x02" + bytes([len(serial_octets(serial) or b"")]) + (serial_octets(serial) or b"") == der.encode_integer(serial)


@pytest.mark.parametrize("serial", [0, -1, 2**159, 2**160])
def test_serials_outside_rfc5280_get_the_reference_codes(product_pai: dict[str, Any], serial: int) -> None:
    csr = csr_for()
    assert serial_octets(serial) is None
    assert fast(issuer(product_pai), csr, serial) == reference(product_pai, csr, serial)
    assert str(reference(product_pai, csr, serial)).startswith("profile.serial_")


def test_serials_are_drawn_only_for_accepted_csrs(product_pai: dict[str, Any]) -> None:
    # GIVEN a counter as serial source
    drawn: list[int] = []

    def counter() -> int:
        drawn.append(len(drawn) + 1)
        return drawn[-1]

    fast_issuer = issuer(product_pai, serials=counter)
    # WHEN a refused CSR comes between two good ones
    first = fast_issuer.issue(csr_for())
    with pytest.raises(MatterPkiError):
        fast_issuer.issue(b"garbage")
    second = fast_issuer.issue(csr_for())
    # THEN, as with issue_dac, the refused one consumed no serial
    assert (first.serial, second.serial) == (1, 2)


# -- refusals: the reference path's codes -------------------------------------------------------------
def _variants() -> dict[str, bytes]:
    k = p256()
    good_der = csr_for(k, encoding=Encoding.DER)
    good_pem = csr_for(k)
    body = good_pem.split(b"-----")[2]
    info, alg, sig = (t.encoded(good_der) for t in der.children(good_der, der.read_tlv(good_der)))
    other_sig = p256().sign(info, ec.ECDSA(hashes.SHA256()))
    null_params = der.encode_tlv(der.SEQUENCE, der.encode_oid(ECDSA_SHA256) + b"\x05\x00")
    printable = der.encode_tlv(der.SET, der.encode_tlv(der.SEQUENCE, der.encode_oid("2.5.4.10") + der.encode_tlv(0x13, b"a@b")))
    bmp_odd = der.encode_tlv(der.SET, der.encode_tlv(der.SEQUENCE, der.encode_oid("2.5.4.10") + der.encode_tlv(0x1E, b"abc")))
    ext_req = der.encode_tlv(
        0xA0,
        der.encode_tlv(
            der.SEQUENCE,
            der.encode_oid("1.2.840.113549.1.9.14") + der.encode_tlv(der.SET, der.encode_tlv(der.SEQUENCE, b"")),
        ),
    )
    v0 = der.encode_integer(0)
    empty_name = der.encode_tlv(der.SEQUENCE, b"")
    return {
        "good DER": good_der,
        "good PEM": good_pem,
        "PEM with CRLF": good_pem.replace(b"\n", b"\r\n"),
        "PEM without final newline": good_pem.rstrip(),
        "PEM with text before": b"subject=O=CSR\n" + good_pem,
        "PEM with text after": good_pem + b"bye\n",
        "NEW CERTIFICATE REQUEST": good_pem.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"),
        "PEM invalid base64": good_pem.replace(body[10:11], b"*", 1),
        "PEM bad padding": good_pem.replace(b"\n-----END", b"=\n-----END"),
        "two PEM blocks": good_pem + good_pem,
        "two DER": good_der + good_der,
        "DER with trailing byte": good_der + b"\0",
        "DER containing a PEM marker": raw_csr(k, v0 + der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.SET, der.encode_tlv(der.SEQUENCE, der.encode_oid("2.5.4.3") + der.encode_tlv(0x0C, b"-----BEGIN x")))) + spki(k) + der.encode_tlv(0xA0, b"")),
        "empty": b"",
        "blank": b"  \n",
        "garbage": b"garbage",
        "oversized": good_pem + b"\n" * MAX_CSR_BYTES,
        "truncated": good_der[:-10],
        "indefinite length": b"\x30\x80" + good_der[2:],
        "RSA": csr_for(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "P-384": csr_for(ec.generate_private_key(ec.SECP384R1())),
        "secp256k1": csr_for(ec.generate_private_key(ec.SECP256K1())),
        "SHA-384": x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(k, hashes.SHA384()).public_bytes(Encoding.DER),
        "signature by another key": der.encode_tlv(der.SEQUENCE, info + alg + der.encode_tlv(der.BIT_STRING, b"\0" + other_sig)),
        "signature bit flipped": good_der[:-3] + bytes([good_der[-3] ^ 1]) + good_der[-2:],
        "signature r = 0": der.encode_tlv(der.SEQUENCE, info + alg + der.encode_tlv(der.BIT_STRING, b"\0" + encode_dss_signature(0, 1))),
        "signature unused bits": der.encode_tlv(der.SEQUENCE, info + alg + der.encode_tlv(der.BIT_STRING, b"\1" + sig[3:])),
        "algorithm with NULL parameters": raw_csr(k, alg=null_params),
        "compressed point": raw_csr(k, v0 + empty_name + spki(k, PublicFormat.CompressedPoint) + der.encode_tlv(0xA0, b"")),
        "point not on the curve": raw_csr(k, v0 + empty_name + spki(k)[:-1] + bytes([spki(k)[-1] ^ 1]) + der.encode_tlv(0xA0, b"")),
        "version 1": raw_csr(k, der.encode_integer(1) + empty_name + spki(k) + der.encode_tlv(0xA0, b"")),
        "no attributes field": raw_csr(k, v0 + empty_name + spki(k)),
        "extension request": raw_csr(k, v0 + empty_name + spki(k) + ext_req),
        "cryptography extensions": csr_for(k, extensions=True),
        "empty subject": csr_for(k, subject=None),
        "PrintableString with @": raw_csr(k, v0 + der.encode_tlv(der.SEQUENCE, printable) + spki(k) + der.encode_tlv(0xA0, b"")),
        "BMPString of odd length": raw_csr(k, v0 + der.encode_tlv(der.SEQUENCE, bmp_odd) + spki(k) + der.encode_tlv(0xA0, b"")),
        "extra field in info": raw_csr(k, v0 + empty_name + spki(k) + der.encode_tlv(0xA0, b"") + b"\x05\x00"),
    }


VARIANTS = _variants()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_input_gets_the_reference_answer(product_pai: dict[str, Any], name: str) -> None:
    # GIVEN a CSR variant
    csr = VARIANTS[name]
    # WHEN the fast issuer and issue_dac answer it with the same serial and deterministic key
    # THEN the answers are equal: the same DER, or the same error code
    assert fast(issuer(product_pai), csr, 0x1234) == reference(product_pai, csr, 0x1234)


def test_fast_path_takes_only_plain_csrs(product_pai: dict[str, Any]) -> None:
    # GIVEN the variants the reference path accepts
    fast_issuer = issuer(product_pai)
    accepted = [n for n, csr in VARIANTS.items() if isinstance(reference(product_pai, csr, 7), bytes)]
    # WHEN the fast issuer answers them
    for name in accepted:
        before = fast_issuer.stats.fast
        fast_issuer.issue(VARIANTS[name], 7)
        # THEN the plain ones were spliced, the unusual ones went through issue_dac
        spliced = fast_issuer.stats.fast > before
        unusual = name in {
            "PEM with text before", "PEM with text after", "NEW CERTIFICATE REQUEST", "signature unused bits",
            "algorithm with NULL parameters",
        }
        assert spliced != unusual, name
    assert "extension request" in accepted and "PEM with CRLF" in accepted


def test_mutated_csrs_get_the_reference_answer(product_pai: dict[str, Any]) -> None:
    # GIVEN CertificationRequestInfo bytes mutated at random and re-signed by the device key,
    # so that only the structure (not the signature) decides
    rng = random.Random(20260101)
    k = p256()
    good = csr_for(k, encoding=Encoding.DER, extensions=True)
    info = der.children(good, der.read_tlv(good))[0].encoded(good)
    fast_issuer = issuer(product_pai)
    agreed = spliced = 0
    for _ in range(300):
        mutated = bytearray(info)
        for _ in range(rng.choice((1, 1, 2))):
            pos = rng.randrange(len(mutated))
            op = rng.random()
            if op < 0.6:
                mutated[pos] = rng.randrange(256)
            elif op < 0.8:
                del mutated[pos]
            else:
                mutated.insert(pos, rng.randrange(256))
        body = bytes(mutated)
        sig = k.sign(body, ec.ECDSA(hashes.SHA256()))
        csr = der.encode_tlv(
            der.SEQUENCE, body + der.encode_tlv(der.SEQUENCE, der.encode_oid(ECDSA_SHA256)) + der.encode_tlv(der.BIT_STRING, b"\0" + sig)
        )
        before = fast_issuer.stats.fast
        # WHEN both paths answer
        got, want = fast(fast_issuer, csr, 99), reference(product_pai, csr, 99)
        # THEN the answers are equal (a DAC only where issue_dac gives the same DAC)
        assert got == want, (body.hex(), got, want)
        agreed += 1
        spliced += fast_issuer.stats.fast > before
    assert agreed == 300 and spliced > 0


@pytest.mark.parametrize(
    ("pai_kind", "pid", "validity", "code"),
    [
        ("product_pai", 0x8001, validity_of("days"), "profile.pid_not_allowed"),
        ("vendor_pai", 0x10000, validity_of("days"), "profile.pid_range"),
        ("product_pai", 0x8000, Validity.for_days(NOW - timedelta(days=1), 30), "profile.validity_outside_issuer"),
    ],
)
def test_profile_refusals_come_per_csr_after_csr_checks(
    pai_kind: str, pid: int, validity: Validity, code: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN a profile the PAI cannot issue
    chain = request.getfixturevalue(pai_kind)
    fast_issuer = issuer(chain, pid=pid, validity=validity)
    # THEN there is no template, a good CSR gets the profile code and a bad one its csr.* code, as issue_dac
    assert fast_issuer.template is None
    good, bad = csr_for(), b"garbage"
    assert fast(fast_issuer, good, 5) == reference(chain, good, 5, pid=pid, validity=validity) == code
    assert fast(fast_issuer, bad, 5) == reference(chain, bad, 5, pid=pid, validity=validity) == "csr.malformed"


# -- release checks ---------------------------------------------------------------------------------
def test_release_check_refuses_any_changed_byte(product_pai: dict[str, Any]) -> None:
    # GIVEN a fast DAC and its template
    fast_issuer = issuer(product_pai)
    device = p256()
    point = device.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    octets = serial_octets(0x0102030405)
    assert octets is not None
    cert = fast_issuer.issue(csr_for(device), 0x0102030405).der
    template = fast_issuer.template
    assert template is not None and template.matches(cert, point) == octets
    # WHEN any single byte outside the r and s values changes, or bytes are added or removed
    # (changed r or s values are what signature verification is for)
    # THEN the certificate is not released
    sig = x509.load_der_x509_certificate(cert).signature
    r_len = sig[3]
    values = {*range(len(cert) - len(sig) + 4, len(cert) - len(sig) + 4 + r_len), *range(len(cert) - sig[5 + r_len], len(cert))}
    for pos in sorted(set(range(len(cert))) - values):
        changed = bytearray(cert)
        changed[pos] ^= 0x01
        assert template.matches(bytes(changed), point) != octets, pos
    assert template.matches(cert + b"\0", point) is None
    assert template.matches(cert[:-1], point) is None
    assert template.matches(cert, point) != serial_octets(0x0102030406)


@pytest.mark.parametrize(
    "sig",
    [
        encode_dss_signature(5, 7),
        encode_dss_signature(2**255, 2**255 + 1),
        bytes.fromhex("3006020105020107"),
    ],
)
def test_well_formed_ecdsa_signatures(sig: bytes) -> None:
    assert ecdsa_signature_well_formed(sig)


@pytest.mark.parametrize(
    "sig",
    ["", "3000", "3006020100020107", "30060201ff020107", "300702020005020107", "3007020105020107", "3006020105020107ff", "3106020105020107"],
)
def test_malformed_ecdsa_signatures(sig: str) -> None:
    assert not ecdsa_signature_well_formed(bytes.fromhex(sig))


def test_faulty_token_signatures_are_never_released(product_pai: dict[str, Any]) -> None:
    # GIVEN a signer adapter whose signatures are well formed but made with another key
    fast_issuer = issuer(product_pai, signer=WrongKey(product_pai["key"]))
    # WHEN it issues
    # THEN the template probe already fails validation, and every CSR gets issue_dac's refusal
    assert fast_issuer.template is None
    assert fast(fast_issuer, csr_for(), 5) == "issue.validation_failed"


def test_adapter_keys_verify_every_signature_and_openssl_keys_a_sample(product_pai: dict[str, Any]) -> None:
    # GIVEN an adapter key (auto: verify all) and an OpenSSL key (auto: sampled)
    adapter, native = issuer(product_pai), issuer(product_pai, signer=product_pai["key"])
    csrs = [csr_for() for _ in range(SAMPLE_EVERY + 2)]
    for csr in csrs:
        adapter.issue(csr)
        native.issue(csr)
    # THEN the adapter's DACs were all verified, the OpenSSL key's first and every 128th
    assert adapter.stats.verified == len(csrs)
    assert native.stats.verified == 2


def test_a_signature_failing_verification_goes_to_the_reference_path(product_pai: dict[str, Any]) -> None:
    # GIVEN a token that turns faulty after the template was made
    fast_issuer = issuer(product_pai)
    good = fast_issuer.signer
    fast_issuer.signer = WrongKey(product_pai["key"])
    # WHEN it issues
    # THEN the DAC is not released: issue_dac with the same key refuses it with its code
    assert fast(fast_issuer, csr_for(), 5) == "issue.validation_failed"
    assert fast_issuer.stats.fast == 0
    fast_issuer.signer = good
    assert isinstance(fast(fast_issuer, csr_for(), 6), bytes)


def test_a_wrong_template_is_caught_by_the_first_full_validation(product_pai: dict[str, Any]) -> None:
    # GIVEN a template whose keyUsage was corrupted (digitalSignature -> keyCertSign) after rendering
    fast_issuer = issuer(product_pai)
    template = fast_issuer.template
    assert template is not None and b"\x03\x02\x07\x80" in template.after_point
    fast_issuer.template = replace(template, after_point=template.after_point.replace(b"\x03\x02\x07\x80", b"\x03\x02\x02\x04"))
    # WHEN the first DAC is issued
    csr = csr_for()
    got = fast(fast_issuer, csr, 11)
    # THEN the full validator refuses the spliced DAC, the template is dropped, and issue_dac answers
    assert got == reference(product_pai, csr, 11)
    assert fast_issuer.template is None and fast_issuer.stats.fast == 0


def test_parse_csr_skeleton_returns_the_signed_parts() -> None:
    # GIVEN a plain CSR
    k = p256()
    csr = csr_for(k, encoding=Encoding.DER)
    # WHEN its skeleton is read
    parsed = parse_csr_skeleton(csr)
    # THEN it holds the DER, the signed info, the uncompressed point and the signature
    assert parsed is not None
    loaded = x509.load_der_x509_csr(csr)
    assert parsed.der == csr and parsed.info == loaded.tbs_certrequest_bytes and parsed.signature == loaded.signature
    assert parsed.point == k.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_template_is_cut_from_a_builder_tbs_only() -> None:
    # GIVEN a TBS that does not carry the stated probe serial
    chain = make_chain(None)
    device = p256()
    profile = DacProfile.for_issuer(chain["pai"], pid=1, validity=validity_of("days"))
    tbs = sign(profile.builder(device.public_key(), serial=5, issuer=chain["pai"]), chain["key"]).tbs_certificate_bytes
    point = device.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    # THEN no template is made from it
    with pytest.raises(MatterPkiError) as err:
        DacTemplate.from_tbs(tbs, serial=b"\x06", point=point)
    assert err.value.code == "issue.template"
    skid = x509.SubjectKeyIdentifier.from_public_key(device.public_key()).digest
    assert DacTemplate.from_tbs(tbs, serial=b"\x05", point=point).tbs(b"\x05", point, skid) == tbs


def test_pem_mutations_decode_as_the_reference_path_decodes() -> None:
    # GIVEN PEM text mutated at random with the characters that matter to PEM parsing
    from matter_pki.csr import _csr_der

    rng = random.Random(7)
    good = csr_for()
    alphabet = b"-=+/ \t\r\n\x0b\x0cAZaz09*BEGINEND"
    taken = 0
    for _ in range(3000):
        mutated = bytearray(good)
        for _ in range(rng.choice((1, 2, 3))):
            pos = rng.randrange(len(mutated) + 1)
            if rng.random() < 0.5 and pos < len(mutated):
                del mutated[pos]
            else:
                mutated.insert(pos, rng.choice(alphabet))
        data = bytes(mutated)
        # WHEN the fast path takes the DER out of it
        body = csr_der(data)
        if body is None:
            continue
        # THEN the reference path reads the same DER out of it
        taken += 1
        assert _csr_der(data) == body, data
    assert taken > 100
