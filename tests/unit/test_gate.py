"""The release gate: exactly the profile for this issuer and key, plus the validator; and the fast gate agrees with it."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from matter_pki import der
from matter_pki.errors import IssuanceError, ProfileError
from matter_pki.fastpath import FastDacIssuer
from matter_pki.gate import ECDSA_SHA256_ALGID, DacTemplate, ReleaseGate, ReleaseRefused, gate_for
from matter_pki.issuance import issue_dac
from matter_pki.oid import MatterOID
from matter_pki.profiles import DacProfile, Validity
from tests.unit.test_fastpath import NOW, csr_for, make_chain, p256

ECDSA = ec.ECDSA(hashes.SHA256())
VALIDITY = Validity.no_expiry(NOW)
AT = NOW + timedelta(seconds=1)


def point_of(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    return make_chain(0x8000)


@pytest.fixture(scope="module")
def gate(chain: dict[str, Any]) -> ReleaseGate:
    profile = DacProfile.for_issuer(chain["pai"], pid=0x8000, validity=VALIDITY)
    return gate_for(profile, pai=chain["pai"], paa_der=chain["paa"].public_bytes(Encoding.DER))


def dac_for(chain: dict[str, Any], device: ec.EllipticCurvePrivateKey, serial: int = 0x1234) -> bytes:
    return issue_dac(
        csr_for(device), pai=chain["pai"], paa=chain["paa"], signer=chain["key"], pid=0x8000, validity=VALIDITY, serial=serial
    ).der


# -- DER surgery on a DAC: edit TBS fields, then re-sign with the PAI key --------------------------
def tbs_fields(dac: bytes) -> list[bytes]:
    cert = der.read_tlv(dac)
    tbs = der.children(dac, cert)[0]
    return [f.encoded(dac) for f in der.children(dac, tbs)]


def extensions_of(fields: list[bytes]) -> list[bytes]:
    field = fields[7]
    (seq,) = der.children(field, der.read_tlv(field))
    return [e.encoded(field) for e in der.children(field, seq)]


def with_extensions(fields: list[bytes], exts: list[bytes]) -> list[bytes]:
    return [*fields[:7], der.encode_tlv(0xA3, der.encode_tlv(der.SEQUENCE, b"".join(exts))), *fields[8:]]


def extension(oid: str, value: bytes, critical: bool = False) -> bytes:
    body = der.encode_oid(oid) + (der.encode_tlv(der.BOOLEAN, b"\xff") if critical else b"")
    return der.encode_tlv(der.SEQUENCE, body + der.encode_tlv(der.OCTET_STRING, value))


def assemble(fields: list[bytes], key: ec.EllipticCurvePrivateKey, *, outer_alg: bytes = ECDSA_SHA256_ALGID) -> bytes:
    tbs = der.encode_tlv(der.SEQUENCE, b"".join(fields))
    signature = key.sign(tbs, ECDSA)
    return der.encode_tlv(der.SEQUENCE, tbs + outer_alg + der.encode_tlv(der.BIT_STRING, b"\0" + signature))


def name(*attrs: tuple[x509.ObjectIdentifier, str]) -> bytes:
    return x509.Name([x509.NameAttribute(o, v) for o, v in attrs]).public_bytes()


def printable_name(subject: x509.Name) -> bytes:
    """The same Name with every value re-encoded as PrintableString (chains in OpenSSL, not byte-equal)."""
    rdns = b"".join(
        der.encode_tlv(
            der.SET,
            der.encode_tlv(der.SEQUENCE, der.encode_oid(a.oid.dotted_string) + der.encode_tlv(der.PRINTABLE_STRING, str(a.value).encode())),
        )
        for a in subject
    )
    return der.encode_tlv(der.SEQUENCE, rdns)


def code_of(gate: ReleaseGate, dac: bytes, point: bytes) -> str | None:
    try:
        gate.check(dac, public_point=point, at=AT)
    except ReleaseRefused as e:
        return e.code
    return None


# -- the full gate ----------------------------------------------------------------------------------
def test_a_profile_dac_is_released_with_its_serial(chain: dict[str, Any], gate: ReleaseGate) -> None:
    # GIVEN a DAC the reference path issued
    device = p256()
    dac = dac_for(chain, device, serial=0xABCDEF)
    # WHEN gated THEN released, and the gate names its serial
    assert gate.check(dac, public_point=point_of(device), at=AT) == 0xABCDEF


def test_a_subject_alt_name_is_an_unexpected_extension(chain: dict[str, Any], gate: ReleaseGate) -> None:
    # GIVEN a DAC that also carries the CSR's subjectAltName (what Private CA copies when the API gives none)
    device = p256()
    fields = tbs_fields(dac_for(chain, device))
    san = x509.SubjectAlternativeName([x509.DNSName("device.example")]).public_bytes()
    dac = assemble(with_extensions(fields, [*extensions_of(fields), extension("2.5.29.17", san)]), chain["key"])
    # WHEN gated THEN refused with a code naming the cause, and the serial is reported
    with pytest.raises(ReleaseRefused) as err:
        gate.check(dac, public_point=point_of(device), at=AT)
    assert err.value.code == "issue.unexpected_extension" and err.value.context["oid"] == "2.5.29.17"
    assert err.value.serial == 0x1234 and err.value.context["serial"] == "1234"


def test_a_dac_over_600_bytes_is_never_released(chain: dict[str, Any], gate: ReleaseGate) -> None:
    # GIVEN a 903-byte DAC (a long subjectAltName the validator only warns about)
    device = p256()
    fields = tbs_fields(dac_for(chain, device))
    san = x509.SubjectAlternativeName([x509.DNSName("d" * 60 + f".{i}.example") for i in range(7)]).public_bytes()
    dac = assemble(with_extensions(fields, [*extensions_of(fields), extension("2.5.29.17", san)]), chain["key"])
    assert len(dac) > 600
    # WHEN gated THEN refused for its size before anything else
    assert code_of(gate, dac, point_of(device)) == "issue.der_too_large"


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        ("other_key", "issue.not_as_requested"),
        ("issuer_printable", "issue.not_as_requested"),
        ("subject_pid", "issue.not_as_requested"),
        ("validity_shift", "issue.not_as_requested"),
        ("ku_nine_bits", "issue.extension_mismatch"),
        ("drop_akid", "issue.extension_mismatch"),
        ("twice_bc", "issue.extension_mismatch"),
        ("eku", "issue.unexpected_extension"),
        ("serial_21_octets", "issue.not_as_requested"),
        ("wrong_signer", "issue.validation_failed"),
    ],
)
def test_each_departure_from_the_profile_has_its_code(chain: dict[str, Any], gate: ReleaseGate, edit: str, code: str) -> None:
    # GIVEN a profile DAC changed in one way and re-signed
    device = p256()
    dac = MUTATIONS[edit](tbs_fields(dac_for(chain, device)), chain, random.Random(1))
    # WHEN gated THEN refused with that code
    assert code_of(gate, dac, point_of(device)) == code


def test_extension_order_is_not_part_of_the_profile(chain: dict[str, Any], gate: ReleaseGate) -> None:
    # GIVEN the profile's extensions in another order (Private CA does not document its order)
    device = p256()
    fields = tbs_fields(dac_for(chain, device))
    dac = assemble(with_extensions(fields, extensions_of(fields)[::-1]), chain["key"])
    # WHEN gated THEN released
    assert code_of(gate, dac, point_of(device)) is None


def test_no_gate_exists_for_a_dac_the_pai_cannot_have_issued(chain: dict[str, Any]) -> None:
    # GIVEN a profile whose notBefore precedes the PAI's validity (chip checks the chain at notBefore)
    profile = DacProfile(vid=0xFFF1, pid=0x8000, validity=Validity.no_expiry(NOW - timedelta(days=1)))
    # WHEN a gate is asked for THEN the profile refuses to render under this PAI
    with pytest.raises(ProfileError) as err:
        gate_for(profile, pai=chain["pai"], paa_der=chain["paa"].public_bytes(Encoding.DER))
    assert err.value.code == "profile.validity_outside_issuer"


def test_garbage_is_refused_without_a_serial(gate: ReleaseGate) -> None:
    for data in (b"", b"\x30\x00", b"\x30\x82\x01", bytes(700)):
        with pytest.raises(ReleaseRefused) as err:
            gate.check(data, public_point=point_of(p256()), at=AT)
        assert err.value.code in ("issue.malformed", "issue.der_too_large") and err.value.serial is None


def test_the_reference_path_withholds_what_the_gate_refuses(chain: dict[str, Any]) -> None:
    # GIVEN a signer that is not the PAI's key
    # WHEN issue_dac signs THEN the gate refuses and reports the withheld serial
    with pytest.raises(ReleaseRefused) as err:
        issue_dac(csr_for(), pai=chain["pai"], paa=chain["paa"], signer=p256(), pid=0x8000, validity=VALIDITY, serial=77)
    assert isinstance(err.value, IssuanceError) and err.value.serial == 77


# -- mutations ------------------------------------------------------------------------------------
def _resign(fields: list[bytes], chain: dict[str, Any]) -> bytes:
    return assemble(fields, chain["key"])


def _ext_replace(fields: list[bytes], oid: str, new: bytes | None) -> list[bytes]:
    out = []
    for ext in extensions_of(fields):
        parts = der.children(ext, der.read_tlv(ext))
        if der.decode_oid(parts[0].value(ext)) == oid:
            if new is not None:
                out.append(new)
            continue
        out.append(ext)
    return with_extensions(fields, out)


def _serial(rng: random.Random, octets: int) -> bytes:
    value = rng.getrandbits(8 * octets - 1) | (1 << (8 * octets - 2)) if octets > 0 else 0
    return der.encode_integer(value)


def _validity(nb: str, na: bytes = b"\x18\x0f99991231235959Z") -> bytes:
    return der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.UTC_TIME, nb.encode()) + na)


MUTATIONS: dict[str, Any] = {
    "none": lambda f, c, r: _resign(f, c),
    "serial_valid": lambda f, c, r: _resign([f[0], _serial(r, r.randint(1, 20)), *f[2:]], c),
    "serial_zero": lambda f, c, r: _resign([f[0], der.encode_integer(0), *f[2:]], c),
    "serial_negative": lambda f, c, r: _resign([f[0], der.encode_tlv(der.INTEGER, b"\xff\x01"), *f[2:]], c),
    "serial_21_octets": lambda f, c, r: _resign([f[0], _serial(r, 21), *f[2:]], c),
    "serial_non_minimal": lambda f, c, r: _resign([f[0], der.encode_tlv(der.INTEGER, b"\x00\x12"), *f[2:]], c),
    "version_v2": lambda f, c, r: _resign([der.encode_tlv(0xA0, der.encode_integer(1)), *f[1:]], c),
    "version_v1": lambda f, c, r: _resign(f[1:], c),
    "tbs_sha384": lambda f, c, r: _resign([f[0], f[1], der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.3")), *f[3:]], c),
    "outer_sha384": lambda f, c, r: assemble(f, c["key"], outer_alg=der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.3"))),
    "issuer_printable": lambda f, c, r: _resign([*f[:3], printable_name(c["pai"].subject), *f[4:]], c),
    "issuer_other": lambda f, c, r: _resign([*f[:3], name((x509.NameOID.COMMON_NAME, "Other PAI"), (MatterOID.VENDOR_ID, "FFF1")), *f[4:]], c),
    "validity_shift": lambda f, c, r: _resign([*f[:4], _validity("260101000001Z"), *f[5:]], c),
    "validity_generalized": lambda f, c, r: _resign(
        [*f[:4], der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.GENERALIZED_TIME, b"20260101000000Z") + b"\x18\x0f99991231235959Z"), *f[5:]], c
    ),
    "validity_expires": lambda f, c, r: _resign([*f[:4], _validity("260101000000Z", der.encode_tlv(der.UTC_TIME, b"360101000000Z")), *f[5:]], c),
    "subject_pid": lambda f, c, r: _resign(
        [*f[:5], name((x509.NameOID.COMMON_NAME, "Matter DAC"), (MatterOID.VENDOR_ID, "FFF1"), (MatterOID.PRODUCT_ID, "8001")), *f[6:]], c
    ),
    "subject_cn": lambda f, c, r: _resign(
        [*f[:5], name((x509.NameOID.COMMON_NAME, "Matter DAD"), (MatterOID.VENDOR_ID, "FFF1"), (MatterOID.PRODUCT_ID, "8000")), *f[6:]], c
    ),
    "subject_extra_o": lambda f, c, r: _resign(
        [*f[:5], name((x509.NameOID.COMMON_NAME, "Matter DAC"), (x509.NameOID.ORGANIZATION_NAME, "X"), (MatterOID.VENDOR_ID, "FFF1"), (MatterOID.PRODUCT_ID, "8000")), *f[6:]], c
    ),
    "other_key": lambda f, c, r: _resign(
        [*f[:6], p256().public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo), *f[7:]], c
    ),
    "compressed_key": lambda f, c, r: _resign(
        [*f[:6], bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200") + point_of(p256()).replace(b"\x04", b"\x02", 1)[:33], *f[7:]], c
    ),
    "ku_nine_bits": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.15", extension("2.5.29.15", bytes.fromhex("0303078000"), True)), c),
    "ku_key_agreement": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.15", extension("2.5.29.15", bytes.fromhex("03020388"), True)), c),
    "ku_not_critical": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.15", extension("2.5.29.15", bytes.fromhex("03020780"))), c),
    "bc_not_critical": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.19", extension("2.5.29.19", bytes.fromhex("3000"))), c),
    "bc_ca": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.19", extension("2.5.29.19", bytes.fromhex("30030101ff"), True)), c),
    "skid_other": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.14", extension("2.5.29.14", der.encode_tlv(der.OCTET_STRING, bytes(20)))), c),
    "akid_other": lambda f, c, r: _resign(
        _ext_replace(f, "2.5.29.35", extension("2.5.29.35", der.encode_tlv(der.SEQUENCE, der.encode_tlv(0x80, bytes(20))))), c
    ),
    "drop_akid": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.35", None), c),
    "drop_skid": lambda f, c, r: _resign(_ext_replace(f, "2.5.29.14", None), c),
    "twice_bc": lambda f, c, r: _resign(with_extensions(f, [extensions_of(f)[0], *extensions_of(f)]), c),
    "eku": lambda f, c, r: _resign(
        with_extensions(f, [*extensions_of(f), extension("2.5.29.37", x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]).public_bytes())]), c
    ),
    "unknown_noncritical": lambda f, c, r: _resign(with_extensions(f, [*extensions_of(f), extension("1.2.3.4", b"\x05\x00")]), c),
    "unknown_critical": lambda f, c, r: _resign(with_extensions(f, [*extensions_of(f), extension("1.2.3.4", b"\x05\x00", True)]), c),
    "reorder": lambda f, c, r: _resign(with_extensions(f, r.sample(extensions_of(f), len(extensions_of(f)))), c),
    "unique_id": lambda f, c, r: _resign([*f[:7], der.encode_tlv(0x81, b"\x00\x01"), f[7]], c),
    "wrong_signer": lambda f, c, r: assemble(f, p256()),
}


def flip(dac: bytes, position: int) -> bytes:
    changed = bytearray(dac)
    changed[position] ^= 0x01
    return bytes(changed)


def verdicts(gate: ReleaseGate, template: DacTemplate, pai_key: ec.EllipticCurvePublicKey, dac: bytes, point: bytes) -> tuple[bool, bool]:
    """(full gate releases, fast gate releases): the fast gate is the template plus the signature check."""
    full = code_of(gate, dac, point) is None
    fast = template.matches(dac, point) is not None
    if fast:
        cert = x509.load_der_x509_certificate(dac)
        try:
            pai_key.verify(cert.signature, template.tbs_of(dac), ECDSA)
        except Exception:  # noqa: BLE001 - InvalidSignature or a malformed signature
            fast = False
    return full, fast


@pytest.fixture(scope="module")
def fast_gate(chain: dict[str, Any], gate: ReleaseGate) -> DacTemplate:
    issuer = FastDacIssuer(paa=chain["paa"], pai=chain["pai"], signer=chain["key"], pid=0x8000, validity=VALIDITY, check_at=AT)
    assert issuer.template is not None
    assert issuer.template == DacTemplate.from_parts(gate.parts)
    return issuer.template


def test_every_byte_flip_gets_the_same_verdict_from_both_gates(chain: dict[str, Any], gate: ReleaseGate, fast_gate: DacTemplate) -> None:
    # GIVEN a DAC the fast path issued
    device = p256()
    issuer = FastDacIssuer(paa=chain["paa"], pai=chain["pai"], signer=chain["key"], pid=0x8000, validity=VALIDITY, check_at=AT)
    dac = issuer.issue(csr_for(device)).der
    point = point_of(device)
    assert issuer.stats.fast == 1 and verdicts(gate, fast_gate, chain["pai"].public_key(), dac, point) == (True, True)
    # WHEN any one bit of any byte is flipped (no re-signing)
    # THEN both gates refuse it
    for position in range(len(dac)):
        assert verdicts(gate, fast_gate, chain["pai"].public_key(), flip(dac, position), point) == (False, False), position


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3), seed=st.integers(0, 2**32))
@example(steps=["drop_akid", "reorder"], seed=0)  # a reorder after a dropped extension
def test_mutated_and_resigned_dacs_get_the_same_verdict_from_both_gates(
    chain: dict[str, Any], gate: ReleaseGate, fast_gate: DacTemplate, steps: list[str], seed: int
) -> None:
    # GIVEN a profile DAC changed by one to three mutations, each re-signed with the PAI key
    rng = random.Random(seed)
    device = p256()
    dac = dac_for(chain, device, serial=rng.getrandbits(100) | 1)
    for step in steps:
        fields = tbs_fields(dac)
        if len(fields) == 8 and fields[7][0] == 0xA3:  # the surgery needs the eight DAC fields
            dac = MUTATIONS[step](fields, chain, rng)
    # WHEN both gates judge it
    full, fast = verdicts(gate, fast_gate, chain["pai"].public_key(), dac, point_of(device))
    # THEN they agree, except that extensions in another order pass the full gate only (the fast
    # path then re-issues through the reference path); the fast gate never releases more
    assert fast <= full
    reordered = full and not fast and extensions_of(tbs_fields(dac)) != gate.extensions_for(point_of(device))
    assert full == fast or reordered, steps


RELEASED_BY_BOTH = {"none", "serial_valid"}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_alone_gets_the_expected_verdicts(
    chain: dict[str, Any], gate: ReleaseGate, fast_gate: DacTemplate, mutation: str
) -> None:
    # GIVEN a profile DAC changed by one mutation and re-signed (the reorder reverses the extensions)
    device = p256()
    fields = tbs_fields(dac_for(chain, device))
    dac = (
        _resign(with_extensions(fields, extensions_of(fields)[::-1]), chain)
        if mutation == "reorder"
        else MUTATIONS[mutation](fields, chain, random.Random(5))
    )
    # WHEN judged THEN both gates release the profile and a new valid serial, both refuse every
    # other change, and only the reordered extensions split them (full gate: same content)
    expected = (True, True) if mutation in RELEASED_BY_BOTH else (True, False) if mutation == "reorder" else (False, False)
    assert verdicts(gate, fast_gate, chain["pai"].public_key(), dac, point_of(device)) == expected
