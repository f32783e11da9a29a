"""Lint roles ``crl`` and ``crl-signer``: each code has a CRL or certificate that raises it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki import der
from matter_pki.findings import catalogue
from matter_pki.lint import lint
from matter_pki.profiles import Validity, sign
from matter_pki.revocation.lint import lint_crl, lint_crl_signer
from matter_pki.revocation.rawcrl import parse_crl
from matter_pki.revocation.signer import CrlSignerProfile
from tests.unit.revocation_fixtures import NOW, START, make_chain, new_key
from tests.unit.revocation_fixtures import der as cert_der

if TYPE_CHECKING:
    from collections.abc import Callable

CHAIN = make_chain(dacs=1)
SIGNER, SIGNER_KEY = CHAIN.signer()


def _skid(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def build(
    *,
    signer: x509.Certificate = CHAIN.pai,
    key: ec.EllipticCurvePrivateKey = CHAIN.pai_key,
    akid: bool | bytes = True,
    akid_critical: bool = False,
    number: bool = True,
    extra: list[tuple[x509.ExtensionType, bool]] | None = None,
    entries: list[x509.RevokedCertificate] | None = None,
    issuer: x509.Name | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
    this_update: Any = None,
    next_update: Any = None,
) -> bytes:
    """A CRL from cryptography's builder with the defaults of a good direct PAI CRL."""
    b = (
        x509.CertificateRevocationListBuilder().issuer_name(issuer or signer.subject)
        .last_update(this_update or NOW - timedelta(minutes=1)).next_update(next_update or NOW + timedelta(days=1))
    )  # fmt: skip
    if akid:
        b = b.add_extension(x509.AuthorityKeyIdentifier(_skid(signer) if akid is True else akid, None, None), critical=akid_critical)
    if number:
        b = b.add_extension(x509.CRLNumber(3), critical=False)
    for ext, critical in extra or []:
        b = b.add_extension(ext, critical=critical)
    for entry in entries or []:
        b = b.add_revoked_certificate(entry)
    return b.sign(key, algorithm or hashes.SHA256()).public_bytes(Encoding.DER)


def entry(serial: int = 0x1234, *exts: tuple[x509.ExtensionType, bool]) -> x509.RevokedCertificate:
    e = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - timedelta(minutes=2))
    for ext, critical in exts:
        e = e.add_extension(ext, critical=critical)
    return e.build()


def idp(*uris: str, indirect: bool = False, reasons: frozenset[x509.ReasonFlags] | None = None) -> x509.IssuingDistributionPoint:
    return x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(u) for u in uris], relative_name=None, only_contains_user_certs=False,
        only_contains_ca_certs=False, only_some_reasons=reasons, indirect_crl=indirect, only_contains_attribute_certs=False,
    )  # fmt: skip


def resign(crl_der: bytes, edit: Callable[[list[bytes]], list[bytes]], key: ec.EllipticCurvePrivateKey = CHAIN.pai_key) -> bytes:
    """Edit the TBS fields as DER elements, then sign again (so only the edited rule fires)."""
    raw = parse_crl(crl_der)
    tbs_tlv = der.read_tlv(raw.tbs)
    fields = edit([t.encoded(raw.tbs) for t in der.children(raw.tbs, tbs_tlv)])
    tbs = der.encode_tlv(der.SEQUENCE, b"".join(fields))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return der.encode_tlv(der.SEQUENCE, tbs + raw.signature_algorithm + der.encode_tlv(der.BIT_STRING, b"\x00" + signature))


def _time(tag: int, text: str) -> bytes:
    return der.encode_tlv(tag, text.encode())


def _with_entry_serial(content: bytes) -> Callable[[list[bytes]], list[bytes]]:
    def edit(fields: list[bytes]) -> list[bytes]:
        entry_seq = der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.INTEGER, content) + _time(der.UTC_TIME, "260101000000Z"))
        return [*fields[:5], der.encode_tlv(der.SEQUENCE, entry_seq), *fields[5:]]

    return edit


def _duplicate_akid(fields: list[bytes]) -> list[bytes]:
    exts_wrapper = fields[-1]
    inner = der.children(exts_wrapper, der.read_tlv(exts_wrapper))[0]
    items = [t.encoded(exts_wrapper) for t in der.children(exts_wrapper, inner)]
    return [*fields[:-1], der.encode_tlv(0xA0, der.encode_tlv(der.SEQUENCE, b"".join([items[0], *items])))]


OTHER = make_chain(dacs=0)
ISSUER_EXT = (x509.CertificateIssuer([x509.DirectoryName(CHAIN.pai.subject)]), True)

# (code, CRL bytes factory, lint keyword arguments)
CRL_CASES: list[tuple[str, Callable[[], bytes], dict[str, Any]]] = [
    ("crl.der_malformed", lambda: b"\x30\x03\x02\x01\x01", {}),
    ("crl.pem_encoded", lambda: x509.load_der_x509_crl(build()).public_bytes(Encoding.PEM), {}),
    ("crl.unparseable", lambda: build() + b"\x00", {}),
    ("crl.version_not_v2", lambda: resign(build(), lambda f: f[1:]), {}),
    ("crl.signature_algorithm", lambda: build(algorithm=hashes.SHA384()), {}),
    ("crl.time_format", lambda: resign(build(), lambda f: [f[0], f[1], f[2], _time(der.UTC_TIME, "2601010000Z"), *f[4:]]), {}),
    ("crl.time_encoding", lambda: resign(build(), lambda f: [f[0], f[1], f[2], _time(der.GENERALIZED_TIME, "20260101000000Z"), *f[4:]]), {}),
    ("crl.next_update_missing", lambda: resign(build(), lambda f: [*f[:4], *f[5:]]), {}),
    ("crl.next_update_order", lambda: resign(build(), lambda f: [*f[:4], _time(der.UTC_TIME, "000101000000Z"), *f[5:]]), {}),
    ("crl.extension_duplicate", lambda: resign(build(), _duplicate_akid), {}),
    ("crl.unknown_critical", lambda: build(extra=[(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"), True)]), {}),
    ("crl.extension_criticality", lambda: build(akid_critical=True), {}),
    ("crl.akid_missing", lambda: build(akid=False), {}),
    ("crl.crl_number_missing", lambda: build(number=False), {}),
    ("crl.delta_crl", lambda: build(extra=[(x509.DeltaCRLIndicator(2), True)]), {}),
    ("crl.idp_not_critical", lambda: build(extra=[(idp("https://x.example/a"), False)]), {}),
    ("crl.idp_shape", lambda: build(extra=[(idp("https://x.example/a", "https://x.example/b"), True)]), {}),
    ("crl.idp_shape", lambda: build(extra=[(idp("https://x.example/a", reasons=frozenset({x509.ReasonFlags.key_compromise})), True)]), {}),
    ("crl.idp_url", lambda: build(extra=[(idp("ftp://x.example/a"), True)]), {}),
    ("crl.indirect_without_idp", lambda: build(entries=[entry(5, ISSUER_EXT)]), {}),
    ("crl.indirect_without_idp", lambda: build(extra=[(idp("https://x.example/a"), True)], entries=[entry(5, ISSUER_EXT)]), {}),
    ("crl.entry_serial_not_positive", lambda: resign(build(), _with_entry_serial(b"\x00")), {}),
    ("crl.entry_serial_too_long", lambda: resign(build(), _with_entry_serial(b"\x01" * 21)), {}),
    ("crl.entry_issuer_not_critical", lambda: build(extra=[(idp("https://x.example/a", indirect=True), True)], entries=[entry(5, (ISSUER_EXT[0], False))]), {}),
    ("crl.entry_issuer_shape", lambda: build(extra=[(idp("https://x.example/a", indirect=True), True)],
                                             entries=[entry(5, (x509.CertificateIssuer([x509.UniformResourceIdentifier("https://x")]), True))]), {}),
    ("crl.entry_issuer_missing", lambda: build(extra=[(idp("https://x.example/a", indirect=True), True)], entries=[entry(5)]), {}),
    ("crl.entry_hold", lambda: build(entries=[entry(5, (x509.CRLReason(x509.ReasonFlags.certificate_hold), False))]), {}),
    ("crl.entry_duplicate", lambda: build(entries=[entry(5), entry(5)]), {}),
    ("crl.signer_name_mismatch", lambda: build(issuer=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Someone else")])), {"signer": CHAIN.pai}),
    ("crl.signer_akid_mismatch", lambda: build(akid=b"\x01" * 20), {"signer": CHAIN.pai}),
    ("crl.signer_signature_invalid", lambda: build(key=OTHER.pai_key), {"signer": CHAIN.pai}),
    ("crl.signer_not_crl_sign", lambda: build(signer=CHAIN.dacs[0], key=CHAIN.pai_key), {"signer": CHAIN.dacs[0]}),
    ("crl.not_yet_valid", lambda: build(this_update=NOW + timedelta(hours=1), next_update=NOW + timedelta(days=2)), {"at": NOW}),
    ("crl.expired", lambda: build(this_update=NOW - timedelta(days=3), next_update=NOW - timedelta(days=1)), {"at": NOW}),
]


@pytest.mark.parametrize(("code", "make", "kwargs"), CRL_CASES, ids=[f"{c}-{i}" for i, (c, _m, _k) in enumerate(CRL_CASES)])
def test_crl_rule(code: str, make: Callable[[], bytes], kwargs: dict[str, Any]) -> None:
    # GIVEN a CRL broken in one way WHEN linted THEN that code is reported
    assert code in {f.code for f in lint_crl(make(), **kwargs)}


def test_good_crls_are_clean() -> None:
    assert lint_crl(build(), signer=CHAIN.pai, at=NOW) == []
    indirect = build(signer=SIGNER, key=SIGNER_KEY, extra=[(idp("https://x.example/a", indirect=True), True)], entries=[entry(5, ISSUER_EXT)])
    assert lint_crl(indirect, signer=SIGNER, at=NOW) == []


def _signer_with(ku: x509.KeyUsage | None = None, *, ca: bool = False, akid: bool = True, subject: x509.Name | None = None) -> bytes:
    key = new_key()
    b = (
        x509.CertificateBuilder().subject_name(subject or x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "s")]))
        .issuer_name(CHAIN.pai.subject).public_key(key.public_key()).serial_number(9)
        .not_valid_before(START).not_valid_after(START + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ku or x509.KeyUsage(False, False, False, False, False, False, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )  # fmt: skip
    if akid:
        b = b.add_extension(x509.AuthorityKeyIdentifier(_skid(CHAIN.pai), None, None), critical=False)
    return cert_der(sign(b, CHAIN.pai_key))


SIGNER_CASES: list[tuple[str, Callable[[], bytes]]] = [
    ("signer.key_usage_bits", lambda: _signer_with(x509.KeyUsage(True, False, False, False, False, False, False, False, False))),
    ("signer.key_usage_bits", lambda: _signer_with(x509.KeyUsage(False, False, True, False, False, False, True, False, False))),
    ("signer.pid_without_vid", lambda: _signer_with(subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "s"),
                                                                         x509.NameAttribute(x509.ObjectIdentifier("1.3.6.1.4.1.37244.2.2"), "8000")]))),
    ("ext.basic_constraints_ca", lambda: _signer_with(ca=True)),
    ("ext.akid_missing", lambda: _signer_with(akid=False)),
    ("cert.der_malformed", lambda: b"\x30\x00"),
]


@pytest.mark.parametrize(("code", "make"), SIGNER_CASES, ids=[f"{c}-{i}" for i, (c, _m) in enumerate(SIGNER_CASES)])
def test_crl_signer_rule(code: str, make: Callable[[], bytes]) -> None:
    findings = lint_crl_signer(make(), cert_der(CHAIN.pai))
    assert code in {f.code for f in findings} and {f.cert_role for f in findings} == {"crl-signer"}


def test_signer_with_digital_signature_and_scoped_signer_are_clean() -> None:
    ds = CrlSignerProfile(validity=Validity.for_days(START, 30), digital_signature=True)
    cert = sign(ds.builder(new_key().public_key(), serial=11, issuer=CHAIN.pai), CHAIN.pai_key)
    assert lint_crl_signer(cert_der(cert), cert_der(CHAIN.pai)) == []


def test_every_crl_and_signer_code_has_a_case() -> None:
    codes = {c for c in catalogue() if c.startswith(("crl.", "signer."))}
    assert codes == {c for c, _m, _k in CRL_CASES} | {c for c, _m in SIGNER_CASES if c.startswith("signer.")}


def test_lint_entry_point_takes_the_new_roles() -> None:
    # GIVEN the lint() seam every tool calls WHEN asked for roles crl and crl-signer THEN it dispatches
    assert [f.code for f in lint(build(akid=False), "crl")] == ["crl.akid_missing"]
    assert lint(cert_der(SIGNER), "crl-signer", cert_der(CHAIN.pai)) == []



def test_lint_entry_point_runs_the_crl_signer_linkage_from_the_registry() -> None:
    # GIVEN a CRL whose AKID names another key WHEN linted through lint() with its signer THEN the linkage rule reports it
    assert [f.code for f in lint(build(akid=b"\x01" * 20), "crl", cert_der(CHAIN.pai))] == ["crl.signer_akid_mismatch"]
    assert lint(build(), "crl", cert_der(CHAIN.pai)) == []
    # AND an unreadable signer is a coded finding next to the CRL's own findings, never a traceback
    found = {(f.code, f.cert_role) for f in lint(build(akid=False), "crl", b"\x30\x00")}
    assert found == {("cert.der_malformed", "crl-signer"), ("crl.akid_missing", "crl")}


def test_crl_signer_rules_are_the_shared_certificate_rules_judged_as_an_end_entity() -> None:
    # GIVEN a signer that is a CA WHEN linted THEN basicConstraints is judged as for an end entity, coded, role crl-signer
    findings = lint(_signer_with(ca=True), "crl-signer", cert_der(CHAIN.pai))
    assert [(f.code, f.cert_role) for f in findings if f.code.startswith("ext.basic")] == [("ext.basic_constraints_ca", "crl-signer")]
    assert not [f for f in findings if f.code == "internal.unhandled_exception"]
