"""Structure-aware mutation of PAA → PAI → DAC chains, re-signed by the right issuer.

A chain is held as three ``CertModel`` values. Every field of a certificate can be replaced, either
by a value the encoder renders as DER (a name, a time, an extension) or by raw bytes that need not
be DER (a long-form length, a BER BOOLEAN, an unsorted SET). ``ChainModel.build`` encodes the PAA,
then the PAI, then the DAC, each signed by its issuer's key (the PAA by its own), so a mutated field
is never hidden behind a signature failure unless a mutation asks for one.

``MUTATIONS`` is the catalogue the differential harness draws from; ``random_chain(rng, now)``
returns a base chain with one to three mutations and their labels.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der

VID, PID, CN = "1.3.6.1.4.1.37244.2.1", "1.3.6.1.4.1.37244.2.2", "2.5.4.3"
ORG, OU, SERIAL_NUMBER, C = "2.5.4.10", "2.5.4.11", "2.5.4.5", "2.5.4.6"
BC, KU, SKID, AKID = "2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35"
CDP, EKU, SAN, AIA = "2.5.29.31", "2.5.29.37", "2.5.29.17", "1.3.6.1.5.5.7.1.1"
CERT_POLICIES, POLICY_CONSTRAINTS, NAME_CONSTRAINTS = "2.5.29.32", "2.5.29.36", "2.5.29.30"
INHIBIT_ANY, POLICY_MAPPINGS, FRESHEST_CRL, CRL_REASON = "2.5.29.54", "2.5.29.33", "2.5.29.46", "2.5.29.21"
NS_CERT_TYPE, PRIVATE_EXT = "2.16.840.1.113730.1.1", "1.3.6.1.4.1.37244.99.1"
ECDSA_SHA256, ECDSA_SHA1, ECDSA_SHA384 = "1.2.840.10045.4.3.2", "1.2.840.10045.4.1", "1.2.840.10045.4.3.3"
EC_PUBLIC_KEY, PRIME256V1, SECP256K1, SECP384R1 = "1.2.840.10045.2.1", "1.2.840.10045.3.1.7", "1.3.132.0.10", "1.3.132.0.34"
NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
UTF8, PRINTABLE, T61, IA5, VISIBLE, UNIVERSAL, BMP, NUMERIC = 0x0C, 0x13, 0x14, 0x16, 0x1A, 0x1C, 0x1E, 0x12
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    ECDSA_SHA256: hashes.SHA256,
    ECDSA_SHA1: hashes.SHA1,
    ECDSA_SHA384: hashes.SHA384,
}


# -- encoding helpers ---------------------------------------------------------------------------
def tlv(tag: int, content: bytes) -> bytes:
    """A DER element."""
    return der.encode_tlv(tag, content)


def split(element: bytes) -> tuple[int, bytes]:
    """Tag and content of one element whose length may be long-form (not checked for DER)."""
    first = element[1]
    if first < 0x80:
        return element[0], element[2 : 2 + first]
    count = first & 0x7F
    length = int.from_bytes(element[2 : 2 + count], "big")
    return element[0], element[2 + count : 2 + count + length]


def long_form(element: bytes, extra: int = 1) -> bytes:
    """The same element with a non-minimal (long-form, zero-padded) length: valid BER, not DER."""
    tag, content = split(element)
    body = len(content).to_bytes(max(1, (len(content).bit_length() + 7) // 8), "big")
    body = b"\x00" * (extra - 1) + body if len(content) >= 0x80 or extra > 1 else body
    return bytes([tag, 0x80 | len(body)]) + body + content


def indefinite(element: bytes) -> bytes:
    """The same constructed element with an indefinite length and end-of-contents octets: BER only."""
    tag, content = split(element)
    return bytes([tag, 0x80]) + content + b"\x00\x00"


def alg(oid: str, params: bytes | None = None) -> bytes:
    """AlgorithmIdentifier."""
    return tlv(der.SEQUENCE, der.encode_oid(oid) + (params or b""))


def integer_bytes(value: int) -> bytes:
    """Two's-complement minimal INTEGER content for any int."""
    length = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(length, "big", signed=True)


def boolean(flag: bool) -> bytes:
    """DER BOOLEAN."""
    return tlv(der.BOOLEAN, b"\xff" if flag else b"\x00")


@dataclass(frozen=True)
class Attr:
    """One AttributeTypeAndValue: type OID, string tag and value octets."""

    oid: str
    value: bytes
    tag: int = UTF8


def name(*rdns: tuple[Attr, ...] | Attr) -> tuple[tuple[Attr, ...], ...]:
    """A Name from RDNs (an Attr on its own is a single-valued RDN)."""
    return tuple(r if isinstance(r, tuple) else (r,) for r in rdns)


def encode_name(rdns: tuple[tuple[Attr, ...], ...], sort_sets: bool = True) -> bytes:
    """Name as a SEQUENCE of SETs; multi-valued SETs sorted as DER requires unless told otherwise."""
    out = b""
    for rdn in rdns:
        members = [tlv(der.SEQUENCE, der.encode_oid(a.oid) + tlv(a.tag, a.value)) for a in rdn]
        if sort_sets:
            members.sort()
        out += tlv(der.SET, b"".join(members))
    return tlv(der.SEQUENCE, out)


def encode_time(moment: datetime, tag: int | None = None) -> bytes:
    """UTCTime before 2050, GeneralizedTime from 2050 (or the given tag)."""
    if tag is None:
        tag = der.UTC_TIME if 1950 <= moment.year < 2050 else der.GENERALIZED_TIME
    text = moment.strftime("%y%m%d%H%M%SZ" if tag == der.UTC_TIME else "%Y%m%d%H%M%SZ")
    if tag == der.GENERALIZED_TIME and moment.year < 1000:
        text = f"{moment.year:04d}" + moment.strftime("%m%d%H%M%SZ")
    return tlv(tag, text.encode())


def point_of(key: ec.EllipticCurvePrivateKey, form: str = "uncompressed") -> bytes:
    """X9.62 point: uncompressed 04, compressed 02/03, or hybrid 06/07."""
    pub = key.public_key()
    if form == "compressed":
        return pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    raw = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if form == "hybrid":
        return bytes([0x06 | (raw[-1] & 1)]) + raw[1:]
    return raw


_CURVE_OIDS = {"secp256r1": PRIME256V1, "secp256k1": SECP256K1, "secp384r1": SECP384R1}


def spki_of(key: ec.EllipticCurvePrivateKey, form: str = "uncompressed", unused_bits: int = 0) -> bytes:
    """SubjectPublicKeyInfo for an EC key on its named curve."""
    params = der.encode_oid(_CURVE_OIDS[key.curve.name])
    bits = tlv(der.BIT_STRING, bytes([unused_bits]) + point_of(key, form))
    return tlv(der.SEQUENCE, alg(EC_PUBLIC_KEY, params) + bits)


def explicit_p256_params() -> bytes:
    """ECParameters (RFC 3279) spelling out P-256 instead of naming it."""
    p = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
    a = p - 3
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    g = bytes.fromhex(
        "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
        "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"
    )
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    field_id = tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.1.1") + der.encode_integer(p))
    curve = tlv(der.SEQUENCE, tlv(der.OCTET_STRING, a.to_bytes(32, "big")) + tlv(der.OCTET_STRING, b.to_bytes(32, "big")))
    body = der.encode_integer(1) + field_id + curve + tlv(der.OCTET_STRING, g) + der.encode_integer(n) + der.encode_integer(1)
    return tlv(der.SEQUENCE, body)


def rsa_spki() -> bytes:
    """A fixed RSA SubjectPublicKeyInfo (no check looks at the modulus beyond its type)."""
    modulus = int.from_bytes(hashlib.sha512(b"matter-pki rsa").digest() * 2, "big") | (1 << 1023) | 1
    body = tlv(der.SEQUENCE, der.encode_integer(modulus) + der.encode_integer(65537))
    return tlv(der.SEQUENCE, alg("1.2.840.113549.1.1.1", tlv(der.NULL, b"")) + tlv(der.BIT_STRING, b"\x00" + body))


def skid_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    """RFC 5280 method 1 over the uncompressed point (what chip-cert writes)."""
    return hashlib.sha1(point_of(key)).digest()  # noqa: S324 - a key identifier, not a security hash


def bc_value(ca: bool | None, path: int | None = None) -> bytes:
    """BasicConstraints; cA FALSE is left out (DEFAULT) unless ca is False explicitly... None omits it."""
    body = (boolean(ca) if ca is not None else b"") + (tlv(der.INTEGER, integer_bytes(path)) if path is not None else b"")
    return tlv(der.SEQUENCE, body)


def ku_value(*bits: int, nine_bit: bool = False) -> bytes:
    """KeyUsage BIT STRING, minimal unless nine_bit (a trailing zero octet)."""
    value = 0
    for b in bits:
        value |= 1 << (15 - b)
    raw = value.to_bytes(2, "big").rstrip(b"\x00") or b"\x00"
    unused = 8 * len(raw) - (max(bits) + 1) if bits else 0
    if nine_bit:
        raw, unused = raw + b"\x00", 7
    return tlv(der.BIT_STRING, bytes([unused]) + raw)


def akid_value(keyid: bytes | None, issuer: bytes | None = None, serial: bytes | None = None) -> bytes:
    """AuthorityKeyIdentifier [0] keyIdentifier, [1] authorityCertIssuer (a directoryName), [2] serial."""
    body = tlv(0x80, keyid) if keyid is not None else b""
    if issuer is not None:
        body += tlv(0xA1, tlv(0xA4, issuer))
    if serial is not None:
        body += tlv(0x82, serial)
    return tlv(der.SEQUENCE, body)


def cdp_value(*urls: str, critical_issuer: bytes | None = None) -> bytes:
    """CRLDistributionPoints with one DistributionPoint per URL (fullName URI)."""
    points = b""
    for url in urls:
        dp = tlv(0xA0, tlv(0xA0, tlv(0x86, url.encode())))
        if critical_issuer is not None:
            dp += tlv(0xA2, tlv(0xA4, critical_issuer))
        points += tlv(der.SEQUENCE, dp)
    return tlv(der.SEQUENCE, points)


# -- the model ------------------------------------------------------------------------------------
@dataclass
class BuildContext:
    """What a certificate's encoder may read about its issuer (already built)."""

    issuer_subject: bytes
    issuer_issuer: bytes
    issuer_serial: bytes
    issuer_skid: bytes
    own_skid: bytes


ExtValue = bytes | Callable[[BuildContext], bytes]


@dataclass
class Ext:
    """One extension; ``critical_raw`` replaces the BOOLEAN element (e.g. 01 01 01, or an explicit FALSE)."""

    oid: str
    value: ExtValue
    critical: bool = False
    critical_raw: bytes | None = None
    octets_transform: Callable[[bytes], bytes] | None = None


@dataclass
class CertModel:
    """Every field of one certificate; the ``*_raw`` fields, when set, are used as they are."""

    role: str
    key: ec.EllipticCurvePrivateKey
    subject: tuple[tuple[Attr, ...], ...]
    not_before: datetime
    not_after: datetime
    extensions: list[Ext]
    serial: int = 0x1A2B3C4D5E6F
    issuer: tuple[tuple[Attr, ...], ...] | None = None  # None: the issuer's subject bytes, copied
    version_raw: bytes | None = None
    version: int | None = 2
    serial_raw: bytes | None = None
    tbs_sig_alg: bytes = field(default_factory=lambda: alg(ECDSA_SHA256))
    sig_alg: bytes = field(default_factory=lambda: alg(ECDSA_SHA256))
    issuer_raw: bytes | None = None
    subject_raw: bytes | None = None
    subject_unsorted: bool = False
    not_before_raw: bytes | None = None
    not_after_raw: bytes | None = None
    point_form: str = "uncompressed"
    spki_unused_bits: int = 0
    spki_raw: bytes | None = None
    skid: bytes | None = None  # None: SHA-1 of the point; children's AKID follows it
    extensions_raw: bytes | None = None
    extensions_transform: Callable[[bytes], bytes] | None = None
    unique_ids: bytes = b""
    signer: ec.EllipticCurvePrivateKey | None = None  # None: the issuer's key
    tamper_signature: bool = False
    signature_unused_bits: int = 0
    signature_transform: Callable[[bytes], bytes] | None = None
    tbs_transform: Callable[[bytes], bytes] | None = None
    outer_transform: Callable[[bytes], bytes] | None = None
    trailing: bytes = b""

    def key_id(self) -> bytes:
        """This certificate's subject key identifier as its children will reference it."""
        return self.skid if self.skid is not None else skid_of(self.key)

    def subject_der(self) -> bytes:
        """The encoded subject."""
        return self.subject_raw if self.subject_raw is not None else encode_name(self.subject, not self.subject_unsorted)

    def serial_der(self) -> bytes:
        """The encoded serialNumber."""
        return self.serial_raw if self.serial_raw is not None else tlv(der.INTEGER, integer_bytes(self.serial))


def _ext_der(ext: Ext, ctx: BuildContext) -> bytes:
    value = ext.value(ctx) if callable(ext.value) else ext.value
    octets = tlv(der.OCTET_STRING, value)
    if ext.octets_transform is not None:
        octets = ext.octets_transform(octets)
    crit = ext.critical_raw if ext.critical_raw is not None else (boolean(True) if ext.critical else b"")
    return tlv(der.SEQUENCE, der.encode_oid(ext.oid) + crit + octets)


def issuer_der(cert: CertModel, parent: CertModel) -> bytes:
    """The issuer Name a certificate carries: its override, else its issuer's subject bytes."""
    if cert.issuer_raw is not None:
        return cert.issuer_raw
    return encode_name(cert.issuer) if cert.issuer is not None else parent.subject_der()


def encode_cert(
    cert: CertModel, issuer: CertModel | None, deterministic: bool = False, issuer_issuer: bytes | None = None
) -> bytes:
    """DER (or deliberately not) of one certificate, signed by its issuer's key (or ``cert.signer``).

    ``issuer_issuer`` is the issuer's own issuer Name (what an AKID authorityCertIssuer must name).
    """
    parent = issuer or cert
    own_issuer = issuer_der(cert, parent)
    ctx = BuildContext(
        issuer_subject=parent.subject_der(),
        issuer_issuer=issuer_issuer if issuer_issuer is not None else own_issuer,
        issuer_serial=parent.serial_der()[2:],
        issuer_skid=parent.key_id(),
        own_skid=cert.key_id(),
    )
    if cert.version_raw is not None:
        version = cert.version_raw
    else:
        version = tlv(0xA0, tlv(der.INTEGER, integer_bytes(cert.version))) if cert.version is not None else b""
    validity = tlv(
        der.SEQUENCE,
        (cert.not_before_raw or encode_time(cert.not_before)) + (cert.not_after_raw or encode_time(cert.not_after)),
    )
    spki = cert.spki_raw if cert.spki_raw is not None else spki_of(cert.key, cert.point_form, cert.spki_unused_bits)
    if cert.extensions_raw is not None:
        exts = cert.extensions_raw
    else:
        exts = tlv(0xA3, tlv(der.SEQUENCE, b"".join(_ext_der(e, ctx) for e in cert.extensions))) if cert.extensions else b""
        if exts and cert.extensions_transform is not None:
            exts = cert.extensions_transform(exts)
    tbs = tlv(
        der.SEQUENCE,
        version + cert.serial_der() + cert.tbs_sig_alg + own_issuer + validity + cert.subject_der() + spki + cert.unique_ids + exts,
    )
    if cert.tbs_transform is not None:
        tbs = cert.tbs_transform(tbs)
    signer = cert.signer or parent.key
    oid = der.decode_oid(split(split(cert.sig_alg)[1])[1]) if cert.sig_alg[2:3] == b"\x06" else ECDSA_SHA256
    algorithm = _HASHES.get(oid, hashes.SHA256)()
    signature = signer.sign(tbs + (b"x" if cert.tamper_signature else b""), ec.ECDSA(algorithm, deterministic_signing=deterministic))
    if cert.signature_transform is not None:
        signature = cert.signature_transform(signature)
    body = tbs + cert.sig_alg + tlv(der.BIT_STRING, bytes([cert.signature_unused_bits]) + signature)
    out = tlv(der.SEQUENCE, body)
    if cert.outer_transform is not None:
        out = cert.outer_transform(out)
    return out + cert.trailing


@dataclass
class ChainModel:
    """A PAA → PAI → DAC chain."""

    paa: CertModel
    pai: CertModel
    dac: CertModel

    def cert(self, role: str) -> CertModel:
        """The model for ``paa``, ``pai`` or ``dac``."""
        model: CertModel = getattr(self, role)
        return model

    def issuer_of(self, role: str) -> CertModel:
        """The certificate whose key signs ``role`` (the PAA signs itself)."""
        return {"paa": self.paa, "pai": self.paa, "dac": self.pai}[role]

    def build(self, deterministic: bool = False) -> tuple[bytes, bytes, bytes]:
        """(PAA, PAI, DAC) bytes."""
        paa_issuer = issuer_der(self.paa, self.paa)
        return (
            encode_cert(self.paa, None, deterministic, paa_issuer),
            encode_cert(self.pai, self.paa, deterministic, paa_issuer),
            encode_cert(self.dac, self.pai, deterministic, issuer_der(self.pai, self.paa)),
        )


def standard_extensions(role: str) -> list[Ext]:
    """basicConstraints, keyUsage, SKID, AKID as chip-cert writes them."""
    if role == "dac":
        bc, ku = bc_value(None), ku_value(0)
    else:
        bc, ku = bc_value(True, 1 if role == "paa" else 0), ku_value(5, 6)
    return [
        Ext(BC, bc, critical=True),
        Ext(KU, ku, critical=True),
        Ext(SKID, lambda c: tlv(der.OCTET_STRING, c.own_skid)),
        Ext(AKID, lambda c: akid_value(c.issuer_skid)),
    ]


def key_from(rng: random.Random, curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    """A private key drawn from ``rng`` (deterministic for a seed)."""
    curve = curve or ec.SECP256R1()
    order = {"secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}.get(curve.name, 2**250)
    return ec.derive_private_key(rng.randrange(1, order), curve)


def base_chain(rng: random.Random, now: datetime) -> ChainModel:
    """A valid chain in one of the shapes seen in the field (PAA with or without VID/AKID/pathLen...)."""
    now = now.replace(microsecond=0)
    k_paa, k_pai, k_dac = key_from(rng), key_from(rng), key_from(rng)
    vid = rng.choice([b"FFF1", b"FFF2", b"130D"])
    pid = rng.choice([b"8000", b"0001", b"ABCD"])
    accent = rng.random() < 0.3
    paa_cn = "Matter Test PAA \u00e9t\u00e9" if accent else "Matter Test PAA"
    paa_subj = [Attr(CN, paa_cn.encode())] + ([Attr(VID, vid)] if rng.random() < 0.7 else [])
    if rng.random() < 0.2:
        paa_subj.insert(0, Attr(ORG, b"Example Corp", PRINTABLE))
    pai_cn = "Matter Test PAI \u00e9t\u00e9" if accent else "Matter Test PAI"
    pai_subj = [Attr(CN, pai_cn.encode()), Attr(VID, vid)] + ([Attr(PID, pid)] if rng.random() < 0.5 else [])
    dac_subj = [Attr(CN, b"Matter Test DAC 0001"), Attr(VID, vid), Attr(PID, pid)]
    paa_exts = standard_extensions("paa")
    roll = rng.random()
    if roll < 0.15:
        paa_exts = paa_exts[:3]  # a PAA without AKID
    elif roll < 0.3:
        paa_exts[0] = Ext(BC, bc_value(True), critical=True)  # pathLen absent
    far = rng.choice([NO_EXPIRY, now + timedelta(days=365 * 20)])
    paa = CertModel("paa", k_paa, name(*paa_subj), now - timedelta(days=400), far, paa_exts, serial=rng.getrandbits(63) | 1)
    pai = CertModel(
        "pai", k_pai, name(*pai_subj), now - timedelta(days=300), rng.choice([NO_EXPIRY, now + timedelta(days=3650)]),
        standard_extensions("pai"), serial=rng.getrandbits(63) | 1,
    )
    dac = CertModel(
        "dac", k_dac, name(*dac_subj), now - timedelta(days=30, seconds=rng.randrange(86400)),
        rng.choice([NO_EXPIRY, now + timedelta(days=1000)]), standard_extensions("dac"), serial=rng.getrandbits(63) | 1,
    )
    return ChainModel(paa, pai, dac)


# -- mutations --------------------------------------------------------------------------------------
Mutation = Callable[[ChainModel, str, random.Random, datetime], str]


def _ext_index(cert: CertModel, oid: str) -> int | None:
    return next((i for i, e in enumerate(cert.extensions) if e.oid == oid), None)


def _replace_ext(cert: CertModel, oid: str, ext: Ext | None) -> None:
    i = _ext_index(cert, oid)
    if i is None:
        if ext is not None:
            cert.extensions.append(ext)
    elif ext is None:
        del cert.extensions[i]
    else:
        cert.extensions[i] = ext


def _attrs(cert: CertModel) -> list[Attr]:
    return [a for rdn in cert.subject for a in rdn]


def m_version(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(["absent", "v1-explicit", "v2", "v4", "negative", "v3-padded"])
    if choice == "absent":
        c.version = None
    elif choice == "v3-padded":
        c.version_raw = tlv(0xA0, tlv(der.INTEGER, b"\x00\x02"))
    else:
        c.version = {"v1-explicit": 0, "v2": 1, "v4": 3, "negative": -1}[choice]
    return f"version:{choice}"


def m_serial(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(["zero", "negative", "20-octets", "21-octets", "non-minimal", "one"])
    if choice == "non-minimal":
        c.serial_raw = tlv(der.INTEGER, b"\x00" + integer_bytes(c.serial))
    else:
        c.serial = {"zero": 0, "negative": -5, "20-octets": (1 << 159) - 7, "21-octets": 1 << 163, "one": 1}[choice]
    return f"serial:{choice}"


def m_signature_algorithm(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    null = tlv(der.NULL, b"")
    choice = rng.choice(
        ["sha1", "sha384", "tbs-mismatch", "outer-mismatch", "null-params", "null-outer-only", "unknown", "int-params", "sha512"]
    )
    if choice == "sha1":
        c.tbs_sig_alg = c.sig_alg = alg(ECDSA_SHA1)
    elif choice == "sha384":
        c.tbs_sig_alg = c.sig_alg = alg(ECDSA_SHA384)
    elif choice == "tbs-mismatch":
        c.tbs_sig_alg = alg(ECDSA_SHA384)
    elif choice == "outer-mismatch":
        c.sig_alg = alg(ECDSA_SHA384)
    elif choice == "null-params":
        c.tbs_sig_alg = c.sig_alg = alg(ECDSA_SHA256, null)
    elif choice == "null-outer-only":
        c.sig_alg = alg(ECDSA_SHA256, null)
    elif choice == "int-params":
        c.tbs_sig_alg = c.sig_alg = alg(ECDSA_SHA256, tlv(der.INTEGER, b"\x01"))
    elif choice == "sha512":
        c.tbs_sig_alg = c.sig_alg = alg("1.2.840.10045.4.3.4")
    else:
        c.tbs_sig_alg = c.sig_alg = alg("1.2.840.10045.4.3.9")
    return f"sigalg:{choice}"


def m_key(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(
        ["compressed", "hybrid", "secp256k1", "p384", "rsa", "explicit-params", "off-curve", "unused-bits",
         "unused-bits-clean", "no-params", "null-params"]
    )
    if choice in ("compressed", "hybrid"):
        c.point_form = choice
    elif choice == "secp256k1":
        c.key = key_from(rng, ec.SECP256K1())
    elif choice == "p384":
        c.key = key_from(rng, ec.SECP384R1())
    elif choice == "rsa":
        c.spki_raw = rsa_spki()
    elif choice == "explicit-params":
        bits = tlv(der.BIT_STRING, b"\x00" + point_of(c.key))
        c.spki_raw = tlv(der.SEQUENCE, alg(EC_PUBLIC_KEY, explicit_p256_params()) + bits)
    elif choice == "off-curve":
        point = bytearray(point_of(c.key))
        point[-1] ^= 0x01
        c.spki_raw = tlv(der.SEQUENCE, alg(EC_PUBLIC_KEY, der.encode_oid(PRIME256V1)) + tlv(der.BIT_STRING, b"\x00" + bytes(point)))
    elif choice == "unused-bits":
        c.spki_unused_bits = rng.randrange(1, 8)
    elif choice == "unused-bits-clean":
        # Unused bits that are zero in the point already: OpenSSL keeps the same key.
        last = point_of(c.key)[-1]
        zeros = (last & -last).bit_length() - 1 if last else 8
        if zeros == 0:
            return "key:unused-bits-clean(n/a)"
        c.spki_unused_bits = rng.randrange(1, min(zeros, 7) + 1)
    else:
        params = b"" if choice == "no-params" else tlv(der.NULL, b"")
        c.spki_raw = tlv(der.SEQUENCE, alg(EC_PUBLIC_KEY, params or None) + tlv(der.BIT_STRING, b"\x00" + point_of(c.key)))
    return f"key:{choice}"


_STRING_TAGS = {"utf8": UTF8, "printable": PRINTABLE, "ia5": IA5, "t61": T61, "bmp": BMP, "universal": UNIVERSAL,
                "visible": VISIBLE, "octet": der.OCTET_STRING, "numeric": NUMERIC, "integer": der.INTEGER,
                "objdesc": 0x07, "null": der.NULL}


def _encode_text(text: str, tag: int) -> bytes:
    if tag == BMP:
        return text.encode("utf-16-be")
    if tag == UNIVERSAL:
        return text.encode("utf-32-be")
    return text.encode()


def m_vidpid(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    attrs = _attrs(c)
    target = rng.choice([VID, PID])
    choice = rng.choice(
        ["lowercase", "short", "long", "prefix-0x", "space", "empty", "duplicate", "remove", "add", "type",
         "other-value", "zero"]
    )
    idx = next((i for i, a in enumerate(attrs) if a.oid == target), None)
    if choice == "remove":
        attrs = [a for a in attrs if a.oid != target]
    elif choice == "add" or idx is None:
        attrs.append(Attr(target, rng.choice([b"FFF1", b"8000", b"FFF2"])))
        choice = "add"
    elif choice == "duplicate":
        attrs.insert(idx + 1, attrs[idx])
    elif choice == "type":
        kind = rng.choice(sorted(_STRING_TAGS))
        a = attrs[idx]
        attrs[idx] = Attr(a.oid, _encode_text(a.value.decode(), _STRING_TAGS[kind]), _STRING_TAGS[kind])
        choice = f"type-{kind}"
    else:
        a = attrs[idx]
        value = {
            "lowercase": a.value.lower().replace(b"0", b"a") if a.value.isdigit() else a.value.lower(),
            "short": a.value[:3],
            "long": a.value + b"0",
            "prefix-0x": b"0x" + a.value,
            "space": a.value[:2] + b" " + a.value[2:],
            "empty": b"",
            "other-value": b"FFF3" if target == VID else b"8001",
            "zero": b"0000",
        }[choice]
        attrs[idx] = Attr(a.oid, value, a.tag)
    c.subject = name(*attrs)
    return f"{'vid' if target == VID else 'pid'}:{choice}"


def m_cn_fallback(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    ids = {a.oid: a.value for a in _attrs(c)}
    vid, pid = ids.get(VID, b"FFF1"), ids.get(PID, b"8000")
    text = rng.choice(
        [b"Dev Mvid:" + vid + b" Mpid:" + pid, b"Mpid:" + pid + b",Mvid:" + vid, b"Dev Mvid:" + vid.lower(),
         b"Mvid:" + vid[:3], b"MVID:" + vid + b" Mpid:" + pid, b"x" * 60 + b"Mvid:" + vid]
    )
    keep_oids = rng.random() < 0.3
    attrs = [a for a in _attrs(c) if a.oid != CN and (keep_oids or a.oid not in (VID, PID))]
    c.subject = name(Attr(CN, text), *attrs)
    return f"cn-fallback:{'with-oids' if keep_oids else 'only'}"


def m_subject_shape(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    attrs = _attrs(c)
    choice = rng.choice(
        ["multi-valued", "multi-valued-unsorted", "extra-rdns", "empty", "no-cn", "reorder", "long-cn", "empty-rdn", "two-cn",
         "email"]
    )
    if choice.startswith("multi-valued"):
        c.subject = name(tuple(attrs))
        c.subject_unsorted = choice.endswith("unsorted")
        if c.subject_unsorted:
            c.subject = name(tuple(sorted(attrs, key=lambda a: encode_name(name(a)), reverse=True)))
    elif choice == "extra-rdns":
        c.subject = name(Attr(C, b"US", PRINTABLE), Attr(ORG, b"Example"), *attrs, Attr(OU, b"Devices"))
    elif choice == "empty":
        c.subject = ()
    elif choice == "empty-rdn":
        c.subject_raw = tlv(der.SEQUENCE, encode_name(c.subject)[2:] + tlv(der.SET, b""))
    elif choice == "two-cn":
        c.subject = name(Attr(CN, b"Mvid:FFF9 first"), *attrs)
    elif choice == "email":
        c.subject = name(*attrs, Attr("1.2.840.113549.1.9.1", b"dev@example.com", IA5))
    elif choice == "no-cn":
        c.subject = name(*[a for a in attrs if a.oid != CN])
    elif choice == "reorder":
        c.subject = name(*reversed(attrs))
    else:
        c.subject = name(*[Attr(CN, b"D" * 400) if a.oid == CN else a for a in attrs])
    # Children keep naming this certificate by its new subject.
    return f"subject:{choice}"


def _variant_name(rdns: tuple[tuple[Attr, ...], ...], rng: random.Random) -> tuple[tuple[tuple[Attr, ...], ...], str]:
    """A re-encoded copy of a name that OpenSSL may or may not treat as equal."""
    choice = rng.choice(
        ["ascii-case", "ascii-spaces", "tab", "nbsp", "non-ascii-case", "printable", "bmp", "universal", "t61",
         "ia5", "visible", "reorder", "merge-rdn", "other-text", "leading-space", "newline"]
    )

    def change(a: Attr) -> Attr:
        if a.oid != CN:
            return a
        text = a.value.decode("utf-8", "replace")
        if choice == "ascii-case":
            return Attr(a.oid, text.upper().encode(), a.tag)
        if choice == "ascii-spaces":
            return Attr(a.oid, text.replace(" ", "   ").encode(), a.tag)
        if choice == "leading-space":
            return Attr(a.oid, (" " + text + "  ").encode(), a.tag)
        if choice == "tab":
            return Attr(a.oid, text.replace(" ", "\t").encode(), a.tag)
        if choice == "nbsp":
            return Attr(a.oid, text.replace(" ", "\u00a0").encode(), a.tag)
        if choice == "non-ascii-case":
            return Attr(a.oid, text.replace("\u00e9", "\u00c9").encode(), a.tag)
        if choice == "newline":
            return Attr(a.oid, text.replace(" ", " \n ").encode(), a.tag)
        if choice == "other-text":
            return Attr(a.oid, (text + "X").encode(), a.tag)
        tag = {"printable": PRINTABLE, "bmp": BMP, "universal": UNIVERSAL, "t61": T61, "ia5": IA5, "visible": VISIBLE}[choice]
        return Attr(a.oid, _encode_text(text, tag), tag)

    attrs = [a for rdn in rdns for a in rdn]
    if choice == "reorder":
        return name(*reversed(attrs)), choice
    if choice == "merge-rdn":
        return name(tuple(attrs)), choice
    return tuple(tuple(change(a) for a in rdn) for rdn in rdns), choice


def m_issuer_name(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    parent = ch.issuer_of(role)
    variant, choice = _variant_name(parent.subject, rng)
    if role == "paa" or (rng.random() < 0.4):
        # Re-encode the issuer's subject instead (the name as the child spells it stays the original).
        if role == "paa":
            c.issuer = variant
        else:
            original = parent.subject
            parent.subject = variant
            c.issuer = original
            return f"issuer-subject:{choice}"
    else:
        c.issuer = variant
    return f"issuer:{choice}"


def _time_text(moment: datetime, kind: str) -> bytes:
    if kind == "generalized":
        return encode_time(moment, der.GENERALIZED_TIME)
    if kind == "utc":
        return encode_time(moment, der.UTC_TIME)
    base = moment.strftime("%y%m%d%H%M%S")
    long = moment.strftime("%Y%m%d%H%M%S")
    text = {
        "no-seconds": base[:-2] + "Z",
        "fraction": long + ".5Z",
        "offset": base + "+0000",
        "lowercase-z": base + "z",
        "no-z": base,
        "month-13": base[:2] + "13" + base[4:] + "Z",
        "day-32": base[:4] + "32" + base[6:] + "Z",
        "feb-30": base[:2] + "0230" + base[6:] + "Z",
        "hour-24": base[:6] + "24" + base[8:] + "Z",
        "second-60": base[:10] + "60Z",
        "letters": base[:3] + "A" + base[4:] + "Z",
    }[kind]
    tag = der.GENERALIZED_TIME if kind == "fraction" else der.UTC_TIME
    return tlv(tag, text.encode())


def m_time_encoding(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    which = rng.choice(["not_before", "not_after"])
    kind = rng.choice(
        ["generalized", "generalized", "utc", "no-seconds", "fraction", "offset", "lowercase-z", "no-z", "month-13",
         "day-32", "feb-30", "hour-24", "second-60", "letters"]
    )
    moment = getattr(c, which)
    if kind == "utc" and not 1950 <= moment.year < 2050:
        moment = now + timedelta(days=3000)
        setattr(c, which, moment)
    if moment.year > 2049 and kind not in ("generalized", "fraction"):
        moment = now + timedelta(days=3000)
    setattr(c, f"{which}_raw", _time_text(moment, kind))
    return f"time:{which}:{kind}"


def m_time_value(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    parent = ch.issuer_of(role)
    dac_nb = ch.dac.not_before
    choice = rng.choice(
        ["expired", "future", "before-1970", "after-2105", "year-2050-utc", "inverted", "issuer-na-eq-dac-nb",
         "issuer-na-before-dac-nb", "issuer-nb-eq-dac-nb", "issuer-nb-after-dac-nb", "dac-outlives-pai",
         "year-1950", "year-2049", "year-2050", "year-1900", "year-2106-not-after"]
    )
    if choice == "expired":
        c.not_after = now - timedelta(days=1)
        if role == "dac":
            c.not_before = min(c.not_before, now - timedelta(days=5))
    elif choice == "future":
        c.not_before = now + timedelta(days=2)
    elif choice == "before-1970":
        c.not_before = datetime(1969, 7, 20, 20, 17, 40, tzinfo=UTC)
        c.not_before_raw = encode_time(c.not_before, rng.choice([der.UTC_TIME, der.GENERALIZED_TIME]))
    elif choice == "year-1950":
        c.not_before = datetime(1950, 1, 1, tzinfo=UTC)
    elif choice == "year-1900":
        c.not_before = datetime(1900, 1, 1, tzinfo=UTC)
    elif choice == "year-2106-not-after":
        c.not_after = datetime(2106, 6, 1, tzinfo=UTC)
    elif choice == "after-2105":
        c.not_before = datetime(2106, 3, 1, tzinfo=UTC)
    elif choice in ("year-2049", "year-2050"):
        year = 2049 if choice == "year-2049" else 2050
        c.not_after = datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC) if year == 2049 else datetime(2050, 1, 1, tzinfo=UTC)
    elif choice == "year-2050-utc":
        c.not_after_raw = tlv(der.UTC_TIME, b"500101000000Z")  # reads as 1950
    elif choice == "inverted":
        c.not_after = c.not_before - timedelta(seconds=1)
    elif choice == "dac-outlives-pai":
        ch.pai.not_after = now + timedelta(days=5)
        ch.dac.not_after = NO_EXPIRY
    else:
        target = parent if role == "dac" else ch.pai
        if role == "paa":
            target = ch.paa
        if choice == "issuer-na-eq-dac-nb":
            target.not_after = dac_nb
        elif choice == "issuer-na-before-dac-nb":
            target.not_after = dac_nb - timedelta(seconds=1)
        elif choice == "issuer-nb-eq-dac-nb":
            target.not_before = dac_nb
        else:
            target.not_before = dac_nb + timedelta(seconds=1)
    return f"validity:{choice}"


def _bool_variant(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["ber-true-01", "explicit-false", "ber-true-7f"])
    return {"ber-true-01": tlv(der.BOOLEAN, b"\x01"), "explicit-false": tlv(der.BOOLEAN, b"\x00"), "ber-true-7f": tlv(der.BOOLEAN, b"\x7f")}[kind], kind


def m_basic_constraints(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(
        ["missing", "not-critical", "critical-ber", "ca-flip", "ca-ber", "ca-explicit-false", "pathlen-0", "pathlen-1",
         "pathlen-2", "pathlen-absent", "pathlen-negative", "pathlen-big", "pathlen-without-ca", "empty-seq",
         "trailing-bytes", "bad-der", "non-minimal-length"]
    )
    i = _ext_index(c, BC)
    ca = role != "dac"
    path = {"paa": 1, "pai": 0, "dac": None}[role]
    if choice == "missing":
        _replace_ext(c, BC, None)
        return "bc:missing"
    ext = Ext(BC, bc_value(True if ca else None, path), critical=True)
    if choice == "not-critical":
        ext.critical = False
    elif choice == "critical-ber":
        ext.critical_raw, kind = _bool_variant(rng)
        choice = f"critical-{kind}"
    elif choice == "ca-flip":
        ext.value = bc_value(None if ca else True, path if not ca else None)
    elif choice == "ca-ber":
        ext.value = tlv(der.SEQUENCE, tlv(der.BOOLEAN, b"\x01") + (tlv(der.INTEGER, integer_bytes(path)) if path is not None else b""))
        if not ca:
            choice = "ca-ber(dac)"
    elif choice == "ca-explicit-false":
        ext.value = tlv(der.SEQUENCE, boolean(False))
    elif choice.startswith("pathlen-") and choice[8:].isdigit():
        ext.value = bc_value(True if ca else None, int(choice[8:])) if ca else bc_value(True, int(choice[8:]))
    elif choice == "pathlen-absent":
        ext.value = bc_value(True if ca else None)
    elif choice == "pathlen-negative":
        ext.value = bc_value(True, -1)
    elif choice == "pathlen-big":
        ext.value = bc_value(True, 1 << 70)
    elif choice == "pathlen-without-ca":
        ext.value = bc_value(None, 0)
    elif choice == "empty-seq":
        ext.value = tlv(der.SEQUENCE, b"")
    elif choice == "trailing-bytes":
        ext.value = bc_value(True if ca else None, path) + b"\x00\x00"
    elif choice == "bad-der":
        ext.value = b"\x30\x03\x01\x01"
    else:
        ext.value = long_form(bc_value(True if ca else None, path))
    if i is None:
        c.extensions.insert(0, ext)
    else:
        c.extensions[i] = ext
    return f"bc:{choice}"


def m_key_usage(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    ca = role != "dac"
    choice = rng.choice(
        ["missing", "not-critical", "critical-ber", "nine-bit", "padding-bit", "extra-bit", "dig-sig", "no-crl-sign",
         "key-agreement", "decipher-only", "empty", "zero", "three-octets", "trailing-bytes", "bad-unused", "long-form"]
    )
    default = ku_value(5, 6) if ca else ku_value(0)
    ext = Ext(KU, default, critical=True)
    if choice == "missing":
        _replace_ext(c, KU, None)
        return "ku:missing"
    if choice == "not-critical":
        ext.critical = False
    elif choice == "critical-ber":
        ext.critical_raw, kind = _bool_variant(rng)
        choice = f"critical-{kind}"
    elif choice == "nine-bit":
        ext.value = ku_value(5, 6, nine_bit=True) if ca else ku_value(0, nine_bit=True)
    elif choice == "padding-bit":
        tag, content = split(default)
        ext.value = tlv(tag, content[:-1] + bytes([content[-1] | 0x01]))
    elif choice == "extra-bit":
        ext.value = ku_value(0, 5, 6) if not ca else ku_value(2, 5, 6)
    elif choice == "dig-sig":
        ext.value = ku_value(0, 5, 6) if ca else ku_value(0)
    elif choice == "no-crl-sign":
        ext.value = ku_value(5) if ca else ku_value(6)
    elif choice == "key-agreement":
        ext.value = ku_value(0, 4)
    elif choice == "decipher-only":
        ext.value = ku_value(0, 8) if not ca else ku_value(5, 6, 8)
    elif choice == "empty":
        ext.value = tlv(der.BIT_STRING, b"\x00")
    elif choice == "zero":
        ext.value = tlv(der.BIT_STRING, b"\x00\x00")
    elif choice == "three-octets":
        tag, content = split(default)
        ext.value = tlv(tag, b"\x00" + content[1:] + b"\x00\x80")
    elif choice == "trailing-bytes":
        ext.value = default + b"\x05\x00"
    elif choice == "bad-unused":
        tag, content = split(default)
        ext.value = tlv(tag, b"\x08" + content[1:])
    else:
        ext.value = long_form(default)
    _replace_ext(c, KU, ext)
    return f"ku:{choice}"


def m_skid(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(
        ["missing", "critical", "critical-explicit-false", "length-8", "length-19", "length-21", "empty", "other-20",
         "wrong-tag", "trailing-bytes", "long-form", "consistent-8"]
    )
    ext = Ext(SKID, lambda ctx: tlv(der.OCTET_STRING, ctx.own_skid))
    if choice == "missing":
        _replace_ext(c, SKID, None)
        return "skid:missing"
    if choice == "critical":
        ext.critical = True
    elif choice == "critical-explicit-false":
        ext.critical_raw = boolean(False)
    elif choice.startswith("length-") or choice == "empty":
        n = 0 if choice == "empty" else int(choice[7:])
        ext.value = tlv(der.OCTET_STRING, bytes(range(1, n + 1)))
    elif choice == "consistent-8":
        c.skid = bytes(range(8))  # children's AKID follows
    elif choice == "other-20":
        ext.value = tlv(der.OCTET_STRING, b"\x42" * 20)
    elif choice == "wrong-tag":
        ext.value = lambda ctx: tlv(der.NULL, b"") + tlv(der.OCTET_STRING, ctx.own_skid)
        ext.value = lambda ctx: tlv(0x05, ctx.own_skid)
    elif choice == "trailing-bytes":
        ext.value = lambda ctx: tlv(der.OCTET_STRING, ctx.own_skid) + b"\x00"
    else:
        ext.value = lambda ctx: long_form(tlv(der.OCTET_STRING, ctx.own_skid))
    _replace_ext(c, SKID, ext)
    return f"skid:{choice}"


def m_akid(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(
        ["missing", "critical", "length-8", "mismatch", "serial-right", "serial-wrong", "issuer-right", "issuer-wrong",
         "issuer-and-serial-right", "no-keyid", "trailing-bytes", "long-form", "empty", "issuer-uri"]
    )
    ext = Ext(AKID, lambda ctx: akid_value(ctx.issuer_skid))
    if choice == "missing":
        _replace_ext(c, AKID, None)
        return "akid:missing"
    if choice == "critical":
        ext.critical = True
    elif choice == "length-8":
        ext.value = akid_value(b"\x07" * 8)
    elif choice == "mismatch":
        ext.value = akid_value(b"\x03" * 20)
    elif choice == "serial-right":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid, serial=ctx.issuer_serial)
    elif choice == "serial-wrong":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid, serial=b"\x01\x02\x03")
    elif choice == "issuer-right":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid, issuer=ctx.issuer_issuer)
    elif choice == "issuer-wrong":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid, issuer=encode_name(name(Attr(CN, b"Someone Else"))))
    elif choice == "issuer-and-serial-right":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid, issuer=ctx.issuer_issuer, serial=ctx.issuer_serial)
    elif choice == "no-keyid":
        ext.value = lambda ctx: akid_value(None, issuer=ctx.issuer_issuer, serial=ctx.issuer_serial)
    elif choice == "trailing-bytes":
        ext.value = lambda ctx: akid_value(ctx.issuer_skid) + b"\x00\x00"
    elif choice == "long-form":
        ext.value = lambda ctx: long_form(akid_value(ctx.issuer_skid))
    elif choice == "empty":
        ext.value = tlv(der.SEQUENCE, b"")
    else:
        ext.value = lambda ctx: tlv(der.SEQUENCE, tlv(0x80, ctx.issuer_skid) + tlv(0xA1, tlv(0x86, b"http://x.example")))
    _replace_ext(c, AKID, ext)
    return f"akid:{choice}"


def _other_extension(kind: str) -> Ext:
    url = "http://crl.example.com/pai.crl"
    values: dict[str, tuple[str, bytes]] = {
        "cdp": (CDP, cdp_value(url)),
        "cdp-two-points": (CDP, cdp_value(url, url + "2")),
        "cdp-malformed": (CDP, tlv(der.SEQUENCE, tlv(der.INTEGER, b"\x01"))),
        "eku": (EKU, tlv(der.SEQUENCE, der.encode_oid("1.3.6.1.5.5.7.3.2"))),
        "san": (SAN, tlv(der.SEQUENCE, tlv(0x82, b"device.example"))),
        "san-empty": (SAN, tlv(der.SEQUENCE, b"")),
        "aia": (AIA, tlv(der.SEQUENCE, tlv(der.SEQUENCE, der.encode_oid("1.3.6.1.5.5.7.48.2") + tlv(0x86, b"http://ca.example/pai.der")))),
        "policies": (CERT_POLICIES, tlv(der.SEQUENCE, tlv(der.SEQUENCE, der.encode_oid("2.5.29.32.0")))),
        "policies-malformed": (CERT_POLICIES, tlv(der.SEQUENCE, tlv(der.INTEGER, b"\x01"))),
        "policy-constraints": (POLICY_CONSTRAINTS, tlv(der.SEQUENCE, tlv(0x80, b"\x00"))),
        "policy-constraints-malformed": (POLICY_CONSTRAINTS, tlv(der.SEQUENCE, tlv(0x80, b"\x0a" * 20))),
        "name-constraints": (NAME_CONSTRAINTS, tlv(der.SEQUENCE, tlv(0xA0, tlv(der.SEQUENCE, tlv(0x82, b"example.com"))))),
        "inhibit-any": (INHIBIT_ANY, tlv(der.INTEGER, b"\x00")),
        "policy-mappings": (POLICY_MAPPINGS, tlv(der.SEQUENCE, tlv(der.SEQUENCE, der.encode_oid("2.5.29.32.0") + der.encode_oid("1.2.3.4")))),
        "freshest-crl": (FRESHEST_CRL, cdp_value(url)),
        "ns-cert-type": (NS_CERT_TYPE, tlv(der.BIT_STRING, b"\x07\x80")),
        "crl-reason": (CRL_REASON, tlv(0x0A, b"\x01")),
        "private": (PRIVATE_EXT, tlv(der.OCTET_STRING, b"\x00")),
        "private-garbage": (PRIVATE_EXT, b"\xff\xff"),
    }
    oid, value = values[kind]
    return Ext(oid, value)


_OTHER_KINDS = ("cdp", "cdp-two-points", "cdp-malformed", "eku", "san", "san-empty", "aia", "policies",
                "policies-malformed", "policy-constraints", "policy-constraints-malformed", "name-constraints",
                "inhibit-any", "policy-mappings", "freshest-crl", "ns-cert-type", "crl-reason", "private",
                "private-garbage")


def m_other_extension(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    kind = rng.choice(_OTHER_KINDS)
    ext = _other_extension(kind)
    how = rng.choice(["plain", "plain", "critical", "twice", "critical-twice"])
    ext.critical = how.startswith("critical")
    c.extensions.insert(rng.randrange(len(c.extensions) + 1), ext)
    if how.endswith("twice"):
        c.extensions.append(Ext(ext.oid, ext.value, ext.critical))
    return f"ext:{kind}:{how}"


def m_duplicate_extension(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    if not c.extensions:
        return "dup:none"
    ext = rng.choice(c.extensions)
    c.extensions.insert(rng.randrange(len(c.extensions) + 1), Ext(ext.oid, ext.value, ext.critical, ext.critical_raw))
    return f"dup:{ext.oid}"


def m_extension_order(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    rng.shuffle(c.extensions)
    return "ext-order:shuffled"


def m_extensions_container(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(["empty-sequence", "unique-ids", "extension-non-minimal-octets", "extension-in-v3-empty"])
    if choice == "empty-sequence":
        c.extensions_raw = tlv(0xA3, tlv(der.SEQUENCE, b""))
    elif choice == "unique-ids":
        c.unique_ids = tlv(0x81, b"\x00\x01\x02") + tlv(0x82, b"\x00\x03")
    elif choice == "extension-non-minimal-octets":
        ext = rng.choice(c.extensions) if c.extensions else None
        if ext is None:
            return "container:none"
        ext.octets_transform = long_form
        choice = f"long-form-octets-{ext.oid}"
    else:
        c.extensions = []
    return f"container:{choice}"


def m_signature(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(["tamper", "other-key", "unused-bits", "non-der-integer", "trailing-in-sig"])
    if choice == "tamper":
        c.tamper_signature = True
    elif choice == "other-key":
        c.signer = key_from(rng)
    elif choice == "unused-bits":
        c.signature_unused_bits = rng.randrange(1, 8)
    elif choice == "non-der-integer":
        def pad(sig: bytes) -> bytes:
            _, content = split(sig)
            first = content[: 2 + content[1]]
            rest = content[2 + content[1] :]
            return tlv(der.SEQUENCE, tlv(der.INTEGER, b"\x00" + first[2:]) + rest)

        c.signature_transform = pad
    else:
        c.signature_transform = lambda sig: sig + b"\x00"
    return f"signature:{choice}"


def m_outer_encoding(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    choice = rng.choice(
        ["trailing-bytes", "outer-long-form", "tbs-long-form", "name-long-form", "spki-long-form", "tbs-indefinite",
         "name-indefinite", "constructed-cn", "extensions-indefinite"]
    )
    if choice == "trailing-bytes":
        c.trailing = rng.choice([b"\x00", b"\x00\x00\x00", b"\x30\x00"])
    elif choice == "outer-long-form":
        c.outer_transform = lambda out: long_form(out, 2)
    elif choice == "tbs-long-form":
        c.tbs_transform = lambda tbs: long_form(tbs, 2)
    elif choice == "name-long-form":
        c.subject_raw = long_form(c.subject_der(), 1 + (len(c.subject_der()) < 0x80))
    elif choice == "spki-long-form":
        c.spki_raw = long_form(spki_of(c.key), 2)
    elif choice == "tbs-indefinite":
        c.tbs_transform = indefinite
    elif choice == "name-indefinite":
        c.subject_raw = indefinite(c.subject_der())
    elif choice == "constructed-cn":
        attrs = _attrs(c)
        parts = []
        for a in attrs:
            if a.oid == CN:
                chunks = tlv(a.tag, a.value[:4]) + tlv(a.tag, a.value[4:])
                parts.append(tlv(der.SET, tlv(der.SEQUENCE, der.encode_oid(a.oid) + tlv(0x20 | a.tag, chunks))))
            else:
                parts.append(tlv(der.SET, tlv(der.SEQUENCE, der.encode_oid(a.oid) + tlv(a.tag, a.value))))
        c.subject_raw = tlv(der.SEQUENCE, b"".join(parts))
    else:
        c.extensions_transform = lambda exts: tlv(0xA3, indefinite(split(exts)[1]))
    return f"encoding:{choice}"


def m_size(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    c = ch.cert(role)
    length = rng.choice([180, 230, 260, 300])
    c.subject = name(*_attrs(c), Attr(OU, b"u" * length))
    return f"size:+{length}"


def m_chain_relation(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    choice = rng.choice(
        ["paa-pathlen-0", "paa-not-self-issued", "paa-other-signer", "pai-signed-by-other", "dac-is-ca",
         "swap-pai-dac-keys", "paa-vid-other", "dac-vid-other", "dac-pid-other", "pai-pid-other", "paa-pid"]
    )
    if choice == "paa-pathlen-0":
        _replace_ext(ch.paa, BC, Ext(BC, bc_value(True, 0), critical=True))
    elif choice == "paa-not-self-issued":
        ch.paa.issuer = name(Attr(CN, b"Another Root"))
    elif choice == "paa-other-signer":
        ch.paa.signer = key_from(rng)
    elif choice == "pai-signed-by-other":
        ch.pai.signer = key_from(rng)
    elif choice == "dac-is-ca":
        _replace_ext(ch.dac, BC, Ext(BC, bc_value(True, 0), critical=True))
        _replace_ext(ch.dac, KU, Ext(KU, ku_value(0, 5, 6), critical=True))
    elif choice == "swap-pai-dac-keys":
        ch.dac.signer = ch.dac.key
    else:
        cert = {"paa": ch.paa, "dac": ch.dac, "pai": ch.pai}[choice[:3]]
        oid = VID if "vid" in choice else PID
        attrs = [a for a in _attrs(cert) if a.oid != oid] + [Attr(oid, b"FFF9" if oid == VID else b"9000")]
        old = cert.subject
        cert.subject = name(*attrs)
        if cert is not ch.dac:
            # the child copies the new subject as its issuer (byte for byte)
            del old
    return f"relation:{choice}"


def _subtree(name_der: bytes, minimum: int | None = None, maximum: int | None = None) -> bytes:
    extra = (tlv(0x80, integer_bytes(minimum)) if minimum is not None else b"") + (tlv(0x81, integer_bytes(maximum)) if maximum is not None else b"")
    return tlv(der.SEQUENCE, name_der + extra)


def m_name_constraints(ch: ChainModel, role: str, rng: random.Random, now: datetime) -> str:
    """Name constraints on the PAA or PAI, and a DAC (or PAI) named inside or outside them."""
    holder = rng.choice([ch.paa, ch.pai])
    dns = tlv(0x82, rng.choice([b"example.com", b".example.com", b"EXAMPLE.com", b""]))
    dirname = tlv(0xA4, encode_name(rng.choice([name(Attr(C, b"US", PRINTABLE)), name(ch.dac.subject[0]), ch.pai.subject[:1]])))
    kind = rng.choice(["permitted-dns", "excluded-dns", "permitted-dir", "excluded-dir", "minmax", "email", "ip"])
    base = {"permitted-dns": dns, "excluded-dns": dns, "permitted-dir": dirname, "excluded-dir": dirname,
            "minmax": dns, "email": tlv(0x81, b"example.com"), "ip": tlv(0x87, bytes([10, 0, 0, 0, 255, 0, 0, 0]))}[kind]
    subtree = _subtree(base, 1, None) if kind == "minmax" else _subtree(base)
    field = 0xA1 if kind.startswith("excluded") else 0xA0
    holder.extensions.append(Ext(NAME_CONSTRAINTS, tlv(der.SEQUENCE, tlv(field, subtree)), critical=rng.random() < 0.5))
    naming = rng.choice(["cn-host", "cn-other-host", "cn-plain", "san", "san-other", "cn-host-trailing-dot", "email"])
    target = ch.dac if rng.random() < 0.8 else ch.pai
    attrs = [a for rdn in target.subject for a in rdn]
    if naming.startswith("cn-"):
        host = {"cn-host": b"device.example.com", "cn-other-host": b"device.other.org", "cn-plain": b"Matter Device",
                "cn-host-trailing-dot": b"device.example.com."}[naming]
        target.subject = name(*[Attr(CN, host) if a.oid == CN else a for a in attrs])
    elif naming.startswith("san"):
        host = b"device.example.com" if naming == "san" else b"device.other.org"
        target.extensions.append(Ext(SAN, tlv(der.SEQUENCE, tlv(0x82, host))))
    else:
        target.subject = name(*attrs, Attr("1.2.840.113549.1.9.1", b"dev@example.com", IA5))
    return f"name-constraints:{'paa' if holder is ch.paa else 'pai'}:{kind}:{naming}"


MUTATIONS: list[tuple[str, tuple[str, ...], float, Mutation]] = [
    ("version", ("paa", "pai", "dac"), 1.0, m_version),
    ("serial", ("paa", "pai", "dac"), 1.0, m_serial),
    ("sigalg", ("paa", "pai", "dac"), 1.2, m_signature_algorithm),
    ("key", ("paa", "pai", "dac"), 2.0, m_key),
    ("vidpid", ("paa", "pai", "dac"), 2.0, m_vidpid),
    ("cn-fallback", ("paa", "pai", "dac"), 0.8, m_cn_fallback),
    ("subject", ("paa", "pai", "dac"), 1.2, m_subject_shape),
    ("issuer", ("paa", "pai", "dac"), 2.5, m_issuer_name),
    ("time-encoding", ("paa", "pai", "dac"), 2.0, m_time_encoding),
    ("time-value", ("paa", "pai", "dac"), 2.0, m_time_value),
    ("bc", ("paa", "pai", "dac"), 2.0, m_basic_constraints),
    ("ku", ("paa", "pai", "dac"), 2.0, m_key_usage),
    ("skid", ("paa", "pai", "dac"), 1.5, m_skid),
    ("akid", ("paa", "pai", "dac"), 2.0, m_akid),
    ("other-ext", ("paa", "pai", "dac"), 3.0, m_other_extension),
    ("dup-ext", ("paa", "pai", "dac"), 1.0, m_duplicate_extension),
    ("ext-order", ("paa", "pai", "dac"), 0.5, m_extension_order),
    ("container", ("paa", "pai", "dac"), 0.7, m_extensions_container),
    ("signature", ("paa", "pai", "dac"), 1.2, m_signature),
    ("encoding", ("paa", "pai", "dac"), 1.5, m_outer_encoding),
    ("size", ("paa", "pai", "dac"), 0.5, m_size),
    ("relation", ("paa",), 1.5, m_chain_relation),
    ("name-constraints", ("paa",), 1.0, m_name_constraints),
]


def random_chain(rng: random.Random, now: datetime) -> tuple[ChainModel, list[str]]:
    """A base chain with one to three random mutations, and their labels."""
    chain = base_chain(rng, now)
    count = rng.choices([1, 2, 3], weights=[5, 3, 2])[0]
    labels: list[str] = []
    weights = [w for _, _, w, _ in MUTATIONS]
    for _ in range(count):
        label, roles, _, fn = rng.choices(MUTATIONS, weights=weights)[0]
        role = rng.choice(roles)
        labels.append(f"{role}.{fn(chain, role, rng, now)}")
    return chain, labels
