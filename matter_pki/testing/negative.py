"""Generator of negative (and boundary) attestation chains: each Matter MUST rule broken once per role.

Certificates are encoded here field by field (not with cryptography's builder) so that any rule
can be broken: duplicated extensions, v2, SHA-1, compressed points, wrong lengths. Each case
carries the verdict chip gives (``chip-cert validate-att-cert`` order) and, where it differs,
the commissioner's.

``python -m matter_pki.testing.negative --out DIR`` writes every case as PEM files plus a
``cases.tsv`` (name, rule, role, expected codes).
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from matter_pki import der
from matter_pki.attestation import AttestationResult as R

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

VID_OID, PID_OID, CN_OID = "1.3.6.1.4.1.37244.2.1", "1.3.6.1.4.1.37244.2.2", "2.5.4.3"
BC, KU, SKID, AKID, CDP = "2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35", "2.5.29.31"
ECDSA_SHA256, ECDSA_SHA1, ECDSA_SHA384 = "1.2.840.10045.4.3.2", "1.2.840.10045.4.1", "1.2.840.10045.4.3.3"
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_HASHES: dict[str, hashes.HashAlgorithm] = {ECDSA_SHA256: hashes.SHA256(), ECDSA_SHA1: hashes.SHA1(), ECDSA_SHA384: hashes.SHA384()}


def _bc(ca: bool | None, path: int | None = None) -> bytes:
    body = (der.encode_tlv(der.BOOLEAN, b"\xff" if ca else b"\x00") if ca is not None else b"") + (
        der.encode_integer(path) if path is not None else b""
    )
    return der.encode_tlv(der.SEQUENCE, body)


def _ku(*bits: int) -> bytes:
    value = 0
    for b in bits:
        value |= 1 << (15 - b)
    raw = value.to_bytes(2, "big").rstrip(b"\x00") or b"\x00"
    unused = 8 * len(raw) - (max(bits) + 1) if bits else 0
    return der.encode_tlv(der.BIT_STRING, bytes([unused]) + raw)


def _octets(data: bytes) -> bytes:
    return der.encode_tlv(der.OCTET_STRING, data)


def _akid(keyid: bytes) -> bytes:
    return der.encode_tlv(der.SEQUENCE, der.encode_tlv(0x80, keyid))


def _cdp(url: str) -> bytes:
    uri = der.encode_tlv(0x86, url.encode())
    dp = der.encode_tlv(0xA0, der.encode_tlv(0xA0, uri))
    return der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.SEQUENCE, dp))


@dataclass(frozen=True)
class CertSpec:
    """Everything that goes into one certificate, each field overridable by a mutation."""

    role: str
    key: ec.EllipticCurvePrivateKey
    signer: ec.EllipticCurvePrivateKey
    subject: tuple[tuple[str, str], ...]
    issuer: tuple[tuple[str, str], ...]
    not_before: datetime
    not_after: datetime
    extensions: tuple[tuple[str, bool, bytes], ...]
    serial: int = 0x1A2B3C4D5E6F
    version: int = 2
    tbs_sig_alg: str = ECDSA_SHA256
    sig_alg: str = ECDSA_SHA256
    compressed_point: bool = False
    value_tag: int = der.UTF8_STRING
    tamper_signature: bool = False
    spki_override: bytes | None = None


def _name(attrs: tuple[tuple[str, str], ...], tag: int) -> bytes:
    rdns = b"".join(
        der.encode_tlv(der.SET, der.encode_tlv(der.SEQUENCE, der.encode_oid(o) + der.encode_tlv(tag if o != CN_OID else der.UTF8_STRING, v.encode())))
        for o, v in attrs
    )
    return der.encode_tlv(der.SEQUENCE, rdns)


def _time(t: datetime) -> bytes:
    if t.year < 2050:
        return der.encode_tlv(der.UTC_TIME, t.strftime("%y%m%d%H%M%SZ").encode())
    return der.encode_tlv(der.GENERALIZED_TIME, t.strftime("%Y%m%d%H%M%SZ").encode())


def _spki(key: ec.EllipticCurvePrivateKey, compressed: bool) -> bytes:
    pub = key.public_key()
    if not compressed:
        return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    point = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    curve = {"secp256r1": "1.2.840.10045.3.1.7", "secp256k1": "1.3.132.0.10"}[pub.curve.name]
    alg = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.2.1") + der.encode_oid(curve))
    return der.encode_tlv(der.SEQUENCE, alg + der.encode_tlv(der.BIT_STRING, b"\x00" + point))


def skid_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 5280 method-1 key identifier."""
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha1(point).digest()  # noqa: S324 - the key identifier, not a security hash


def encode(spec: CertSpec) -> bytes:
    """DER of the certificate described by ``spec``."""
    alg = der.encode_tlv(der.SEQUENCE, der.encode_oid(spec.tbs_sig_alg))
    exts = b"".join(
        der.encode_tlv(der.SEQUENCE, der.encode_oid(o) + (der.encode_tlv(der.BOOLEAN, b"\xff") if c else b"") + _octets(v))
        for o, c, v in spec.extensions
    )
    tbs = der.encode_tlv(
        der.SEQUENCE,
        (der.encode_tlv(0xA0, der.encode_integer(spec.version)) if spec.version else b"")
        + der.encode_integer(spec.serial)
        + alg
        + _name(spec.issuer, spec.value_tag)
        + der.encode_tlv(der.SEQUENCE, _time(spec.not_before) + _time(spec.not_after))
        + _name(spec.subject, spec.value_tag)
        + (spec.spki_override or _spki(spec.key, spec.compressed_point))
        + (der.encode_tlv(0xA3, der.encode_tlv(der.SEQUENCE, exts)) if exts else b""),
    )
    signature = spec.signer.sign(tbs, ec.ECDSA(_HASHES[spec.sig_alg]))
    if spec.tamper_signature:
        signature = spec.signer.sign(tbs + b"x", ec.ECDSA(_HASHES[spec.sig_alg]))
    outer = der.encode_tlv(der.SEQUENCE, der.encode_oid(spec.sig_alg))
    return der.encode_tlv(der.SEQUENCE, tbs + outer + der.encode_tlv(der.BIT_STRING, b"\x00" + signature))


@dataclass(frozen=True)
class ChainSpec:
    """A PAA → PAI → DAC chain as three specs."""

    paa: CertSpec
    pai: CertSpec
    dac: CertSpec


def good_chain(now: datetime, *, pai_pid: bool = True, keys: tuple[ec.EllipticCurvePrivateKey, ...] | None = None) -> ChainSpec:
    """A valid chip-cert style chain; every negative case mutates one thing of it."""
    k_paa, k_pai, k_dac = keys or tuple(ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    start = (now - timedelta(days=30)).replace(microsecond=0)
    paa_subj = ((CN_OID, "Gen PAA"), (VID_OID, "FFF1"))
    pai_subj = ((CN_OID, "Gen PAI"), (VID_OID, "FFF1")) + (((PID_OID, "8000"),) if pai_pid else ())
    dac_subj = ((CN_OID, "Gen DAC"), (VID_OID, "FFF1"), (PID_OID, "8000"))

    def exts(ca: bool, path: int | None, own: ec.EllipticCurvePrivateKey, issuer: ec.EllipticCurvePrivateKey) -> tuple[tuple[str, bool, bytes], ...]:
        ku = _ku(5, 6) if ca else _ku(0)
        return ((BC, True, _bc(True if ca else None, path)), (KU, True, ku), (SKID, False, _octets(skid_of(own))), (AKID, False, _akid(skid_of(issuer))))

    paa = CertSpec("paa", k_paa, k_paa, paa_subj, paa_subj, start, NO_EXPIRY, exts(True, 1, k_paa, k_paa), serial=1)
    pai = CertSpec("pai", k_pai, k_paa, pai_subj, paa_subj, start, NO_EXPIRY, exts(True, 0, k_pai, k_paa), serial=2)
    dac = CertSpec("dac", k_dac, k_pai, dac_subj, pai_subj, start + timedelta(days=1), NO_EXPIRY, exts(False, None, k_dac, k_pai))
    return ChainSpec(paa, pai, dac)


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
    lint_role_codes: tuple[str, ...] = field(default=())


def _set_ext(spec: CertSpec, oid: str, critical: bool | None = None, value: bytes | None = None, drop: bool = False) -> CertSpec:
    out = []
    for o, c, v in spec.extensions:
        if o == oid:
            if drop:
                continue
            out.append((o, c if critical is None else critical, v if value is None else value))
        else:
            out.append((o, c, v))
    return replace(spec, extensions=tuple(out))


def _format_code(role: str) -> R:
    return {"paa": R.kPaaFormatInvalid, "pai": R.kPaiFormatInvalid, "dac": R.kDacFormatInvalid}[role]


def _role_mutations(role: str) -> Iterator[tuple[str, str, Callable[[CertSpec], CertSpec], str]]:
    """(name, rule, mutation, lint code) for the per-certificate format rules."""
    k1 = ec.generate_private_key(ec.SECP256K1())
    ca = role != "dac"
    yield "version_v1", "version 3", lambda s: replace(s, version=0), "cert.version_not_v3"
    yield "version_v2", "version 3", lambda s: replace(s, version=1), "cert.version_not_v3"
    yield "sig_algo_sha1", "ecdsa-with-SHA256", lambda s: replace(s, tbs_sig_alg=ECDSA_SHA1, sig_alg=ECDSA_SHA1), "cert.signature_algorithm"
    yield "key_secp256k1", "P-256 key", lambda s: replace(s, key=k1), "cert.key_curve"
    rsa_spki = rsa.generate_private_key(65537, 1024).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    yield "key_rsa", "EC key", lambda s: replace(s, spki_override=rsa_spki), "cert.key_not_ec"
    yield "key_compressed", "uncompressed point", lambda s: replace(s, compressed_point=True), "cert.key_point"
    yield "bc_missing", "basicConstraints present", lambda s: _set_ext(s, BC, drop=True), "ext.basic_constraints_missing"
    yield "bc_not_critical", "basicConstraints critical", lambda s: _set_ext(s, BC, critical=False), "ext.basic_constraints_not_critical"
    yield "bc_ca_wrong", "cA flag", lambda s: _set_ext(s, BC, value=_bc(None if ca else True, None)), "ext.basic_constraints_ca"
    path_value = {"paa": 2, "pai": None, "dac": 0}[role]
    bad_bc = _bc(True, path_value) if ca else _bc(None, 0)
    yield "bc_pathlen_wrong", "pathLenConstraint", lambda s: _set_ext(s, BC, value=bad_bc), "ext.basic_constraints_pathlen"
    yield "ku_missing", "keyUsage present", lambda s: _set_ext(s, KU, drop=True), "ext.key_usage_missing"
    yield "ku_not_critical", "keyUsage critical", lambda s: _set_ext(s, KU, critical=False), "ext.key_usage_not_critical"
    yield "ku_bits_wrong", "keyUsage bits", lambda s: _set_ext(s, KU, value=_ku(5) if ca else _ku(0, 4)), "ext.key_usage_bits"
    yield "skid_missing", "SKID present", lambda s: _set_ext(s, SKID, drop=True), "ext.skid_missing"
    yield "skid_critical", "SKID non-critical", lambda s: _set_ext(s, SKID, critical=True), "ext.skid_critical"
    yield "skid_length", "SKID 20 bytes", lambda s: _set_ext(s, SKID, value=_octets(b"\x01" * 8)), "ext.skid_length"
    yield "akid_critical", "AKID non-critical", lambda s: _set_ext(s, AKID, critical=True), "ext.akid_critical"
    yield "akid_length", "AKID keyIdentifier 20 bytes", lambda s: _set_ext(s, AKID, value=_akid(b"\x02" * 8)), "ext.akid_length"
    if role != "paa":
        yield "akid_missing", "AKID present", lambda s: _set_ext(s, AKID, drop=True), "ext.akid_missing"
    dup = (CDP, False, _cdp("http://crl.example.com/a.crl"))
    yield "ext_duplicate", "no duplicate extension", lambda s: replace(s, extensions=(*s.extensions, dup, dup)), "ext.duplicate"
    yield "vid_lowercase", "VID upper-case hex", lambda s: replace(s, subject=tuple((o, v.lower() if o == VID_OID else v) for o, v in s.subject)) if any(o == VID_OID for o, _ in s.subject) else s, "subject.vidpid_malformed"


def generate(now: datetime) -> list[NegativeCase]:
    """Every generated case, verdicts computed for validation time ``now``."""
    base = good_chain(now)
    cases: list[NegativeCase] = []

    def emit(name: str, role: str, rule: str, chain: ChainSpec, chip: R, comm: R | None = None, finding: str | None = None) -> None:
        cases.append(NegativeCase(name, role, rule, encode(chain.paa), encode(chain.pai), encode(chain.dac), chip, comm if comm is not None else chip, finding))

    emit("baseline", "-", "valid chain", base, R.kSuccess)
    emit("baseline_pai_no_pid", "-", "valid chain, PAI without PID", good_chain(now, pai_pid=False), R.kSuccess)
    for role in ("paa", "pai", "dac"):
        for name, rule, mutate, code in _role_mutations(role):
            chain = replace(base, **{role: mutate(getattr(base, role))})
            chip = _format_code(role)
            comm = chip
            if role == "paa":
                # The commissioner never format-checks the PAA; its trust store drops a PAA that fails
                # the format check, so the PAI's issuer is "not found".
                comm = R.kPaaNotFound
            if name == "vid_lowercase" and role == "paa":
                comm = R.kPaaFormatInvalid  # VID encoding is not part of the trust store's format check
            emit(f"{role}_{name}", role, rule, chain, chip, comm, code)
    # Chain-level rules (OpenSSL strict verification → 301) and relations.
    other = ec.generate_private_key(ec.SECP256R1())
    emit("dac_signature_invalid", "dac", "signature by the PAI key", replace(base, dac=replace(base.dac, tamper_signature=True)), R.kDacSignatureInvalid)
    emit("pai_signature_invalid", "pai", "signature by the PAA key", replace(base, pai=replace(base.pai, tamper_signature=True)), R.kDacSignatureInvalid)
    emit("dac_signed_by_other_key", "dac", "signature by the PAI key", replace(base, dac=replace(base.dac, signer=other)), R.kDacSignatureInvalid)
    bad_akid = _set_ext(base.dac, AKID, value=_akid(b"\x03" * 20))
    emit("dac_akid_mismatch", "dac", "AKID == issuer SKID", replace(base, dac=bad_akid), R.kDacSignatureInvalid)
    emit("pai_akid_mismatch", "pai", "AKID == issuer SKID", replace(base, pai=_set_ext(base.pai, AKID, value=_akid(b"\x04" * 20))), R.kDacSignatureInvalid, R.kPaaNotFound)
    emit("paa_akid_not_skid", "paa", "PAA AKID == own SKID", replace(base, paa=_set_ext(base.paa, AKID, value=_akid(b"\x05" * 20))), R.kDacSignatureInvalid)
    unknown = ("1.3.6.1.4.1.37244.99.1", True, _octets(b"\x00"))
    for role in ("paa", "pai", "dac"):
        spec = getattr(base, role)
        emit(f"{role}_unknown_critical_ext", role, "no unknown critical extension", replace(base, **{role: replace(spec, extensions=(*spec.extensions, unknown))}), R.kDacSignatureInvalid)
    emit("pai_issuer_name_mismatch", "pai", "issuer DN == PAA subject", replace(base, pai=replace(base.pai, issuer=((CN_OID, "Other PAA"), (VID_OID, "FFF1")))), R.kDacSignatureInvalid)
    emit("dac_issuer_name_mismatch", "dac", "issuer DN == PAI subject", replace(base, dac=replace(base.dac, issuer=((CN_OID, "Other PAI"), (VID_OID, "FFF1")))), R.kDacSignatureInvalid)
    emit("dac_tbs_sig_alg_mismatch", "dac", "TBS signature algorithm == outer", replace(base, dac=replace(base.dac, tbs_sig_alg=ECDSA_SHA384)), R.kDacSignatureInvalid)
    emit("paa_pathlen_zero", "paa", "PAA pathLen absent or 1", replace(base, paa=_set_ext(base.paa, BC, value=_bc(True, 0))), R.kPaaFormatInvalid, R.kPaaNotFound)
    # Time rules.
    dac_nb = base.dac.not_before
    emit("dac_expired", "dac", "DAC valid now", replace(base, dac=replace(base.dac, not_after=now - timedelta(days=1))), R.kDacExpired)
    emit("dac_not_yet_valid", "dac", "DAC valid now", replace(base, dac=replace(base.dac, not_before=now + timedelta(days=1))), R.kDacExpired)
    emit("dac_before_pai", "dac", "DAC notBefore inside PAI validity", replace(base, pai=replace(base.pai, not_before=dac_nb + timedelta(seconds=1))), R.kDacSignatureInvalid)
    emit("dac_after_pai", "dac", "DAC notBefore inside PAI validity", replace(base, pai=replace(base.pai, not_after=dac_nb - timedelta(seconds=1))), R.kDacSignatureInvalid)
    emit("paa_expired_at_issuance", "paa", "DAC notBefore inside PAA validity", replace(base, paa=replace(base.paa, not_after=dac_nb - timedelta(seconds=1))), R.kDacSignatureInvalid)
    emit("dac_outlives_pai", "dac", "DAC may outlive its PAI", replace(base, pai=replace(base.pai, not_after=now + timedelta(days=10))), R.kSuccess)
    # VID/PID relations.
    def subj(spec: CertSpec, **values: str | None) -> CertSpec:
        mapping = {"vid": VID_OID, "pid": PID_OID}
        attrs = [(o, v) for o, v in spec.subject if o not in {mapping[k] for k in values}]
        attrs += [(mapping[k], v) for k, v in values.items() if v is not None]
        return replace(spec, subject=tuple(attrs))

    emit("dac_vid_mismatch", "dac", "DAC VID == PAI VID", replace(base, dac=subj(base.dac, vid="FFF2")), R.kDacVendorIdMismatch)
    emit("dac_vid_missing", "dac", "DAC VID present", replace(base, dac=subj(base.dac, vid=None)), R.kDacVendorIdMismatch)
    emit("pai_vid_missing", "pai", "PAI VID present", replace(base, pai=subj(base.pai, vid=None)), R.kDacVendorIdMismatch)
    both = replace(base, pai=subj(base.pai, vid="FFF2"), dac=subj(base.dac, vid="FFF2"))
    emit("pai_vid_not_paa_vid", "pai", "PAI VID == PAA VID", both, R.kPaiVendorIdMismatch)
    emit("dac_pid_mismatch", "dac", "DAC PID == PAI PID", replace(base, dac=subj(base.dac, pid="8001")), R.kDacProductIdMismatch)
    emit("dac_pid_missing", "dac", "DAC PID == product-scoped PAI PID", replace(base, dac=subj(base.dac, pid=None)), R.kDacProductIdMismatch)
    shared = good_chain(now, pai_pid=False)
    emit("dac_pid_missing_shared_pai", "dac", "DAC PID present (commissioner only)", replace(shared, dac=subj(shared.dac, pid=None)), R.kSuccess, R.kDacProductIdMismatch)
    emit("paa_has_pid", "paa", "PAA without PID", replace(base, paa=subj(base.paa, pid="8000")), R.kPaaFormatInvalid)
    emit("dac_pid_printable_string", "dac", "PrintableString VID/PID is accepted", replace(base, dac=replace(base.dac, value_tag=der.PRINTABLE_STRING)), R.kSuccess)
    emit("paa_self_signature_invalid", "paa", "PAA self-signature (not checked by chip)", replace(base, paa=replace(base.paa, tamper_signature=True)), R.kSuccess)
    return cases


def main() -> None:
    """Write every case as PEM files and a TSV index."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["name\trole\trule\tchip_cert\tcommissioner\tfinding"]
    for case in generate(now):
        folder = args.out / case.name
        folder.mkdir(exist_ok=True)
        for label, data in (("paa", case.paa), ("pai", case.pai), ("dac", case.dac)):
            (folder / f"{label}-Cert.der").write_bytes(data)
        lines.append(f"{case.name}\t{case.role}\t{case.rule}\t{case.chip_cert.label}\t{case.commissioner.label}\t{case.finding or ''}")
    (args.out / "cases.tsv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
