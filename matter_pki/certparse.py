"""X.509 certificates read the way chip's OpenSSL 3 reads them, byte for byte.

``parse_certificate`` follows ``d2i_X509`` (crypto/x509/x_x509.c, x_name.c, x_pubkey.c and the
template decoder crypto/asn1/tasn_dec.c): it accepts what OpenSSL accepts (long-form lengths, BER
booleans, explicit DEFAULT values, unsorted SETs, trailing bytes after the certificate, an
undecodable public key) and refuses what OpenSSL refuses (non-minimal INTEGERs, a Name value of a
type outside ASN1_PRINTABLE, invalid UTF-8 in a Name, a SEQUENCE with extra fields). Every such
leniency is recorded in ``RawCertificate.ber`` so a stricter library's verdict can be predicted.

``v3_cache`` models ``ossl_x509v3_cache_extensions`` (crypto/x509/v3_purp.c): which extensions
OpenSSL decodes and caches, when a duplicate or an undecodable one marks the certificate invalid,
the cached key usage bits and path length. The extension decoders live here too, so lint and the
validator read extensions one way. ``RawName.canon`` is the canonical encoding ``X509_NAME_cmp``
compares (crypto/x509/x_name.c, x509_name_canon / asn1_string_canon).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.der import DerError, Element

if TYPE_CHECKING:
    from collections.abc import Callable

_T = TypeVar("_T")
MAX_INPUT_BYTES = 64 * 1024
# UTF8String, PrintableString, T61String, IA5String, UniversalString, BMPString
_STRING_TAGS = frozenset({0x0C, 0x13, 0x14, 0x16, 0x1C, 0x1E})

_PEM_RE = re.compile(
    rb"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\s*(?P<body>[A-Za-z0-9+/=\s]*?)\s*-----END (?P=label)-----"
)

# Universal tags a Name value may carry: ASN1_tag2bit(tag) & B_ASN1_PRINTABLE (tasn_dec.c, asn1.h).
# NumericString, PrintableString, T61String, IA5String, BIT STRING, UniversalString, BMPString,
# UTF8String, SEQUENCE, and the "unknown" tags 7, 8, 9, 11, 13, 14, 15, 29.
_NAME_VALUE_TAGS = frozenset({3, 7, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 28, 29, 30})
# Converted to UTF-8 and folded before comparison (x_name.c ASN1_MASK_CANON); VisibleString is in the
# mask too but cannot occur, since it is not a valid Name value type.
_CANON_TAGS = frozenset({0x0C, 0x1E, 0x1C, 0x13, 0x14, 0x16, 0x1A})
_ISSPACE = frozenset(b" \t\n\v\f\r")

OID_BC, OID_KU, OID_SKID, OID_AKID = "2.5.29.19", "2.5.29.15", "2.5.29.14", "2.5.29.35"
OID_SAN, OID_EKU, OID_CDP, OID_NC = "2.5.29.17", "2.5.29.37", "2.5.29.31", "2.5.29.30"
OID_NS_CERT_TYPE, OID_PROXY = "2.16.840.1.113730.1.1", "1.3.6.1.5.5.7.1.14"
OID_AIA, OID_FRESHEST_CRL = "1.3.6.1.5.5.7.1.1", "2.5.29.46"
EC_PUBLIC_KEY, PRIME256V1 = "1.2.840.10045.2.1", "1.2.840.10045.3.1.7"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"

# X509_supported_extension (v3_purp.c): a critical extension outside this list fails verification.
OPENSSL_SUPPORTED_EXTENSIONS = frozenset(
    {
        "2.16.840.1.113730.1.1",  # netscape cert type
        OID_KU,
        OID_SAN,
        OID_BC,
        "2.5.29.32",  # certificatePolicies
        OID_CDP,
        OID_EKU,
        "1.3.6.1.5.5.7.1.7",  # sbgp-ipAddrBlock
        "1.3.6.1.5.5.7.1.8",  # sbgp-autonomousSysNum
        "1.3.6.1.5.5.7.48.1.5",  # OCSP noCheck
        "2.5.29.36",  # policyConstraints
        OID_PROXY,
        OID_NC,
        "2.5.29.33",  # policyMappings
        "2.5.29.54",  # inhibitAnyPolicy
    }
)

# OpenSSL KU bit values (x509v3.h): data[0] | data[1] << 8 of the decoded BIT STRING.
KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, KU_CRL_SIGN = 0x0080, 0x0004, 0x0002
KU_NAMES = (
    "digitalSignature",
    "nonRepudiation",
    "keyEncipherment",
    "dataEncipherment",
    "keyAgreement",
    "keyCertSign",
    "cRLSign",
    "encipherOnly",
    "decipherOnly",
)

# ECDSA signature algorithms OpenSSL can verify (OBJ_find_sigid_algs with an EC key).
ECDSA_HASHES = {
    "1.2.840.10045.4.1": "sha1",
    "1.2.840.10045.4.3.1": "sha224",
    ECDSA_SHA256: "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
    "2.16.840.1.101.3.4.3.9": "sha3_224",
    "2.16.840.1.101.3.4.3.10": "sha3_256",
    "2.16.840.1.101.3.4.3.11": "sha3_384",
    "2.16.840.1.101.3.4.3.12": "sha3_512",
}
_CURVES: dict[str, ec.EllipticCurve] = {
    PRIME256V1: ec.SECP256R1(),
    "1.3.132.0.10": ec.SECP256K1(),
    "1.3.132.0.34": ec.SECP384R1(),
    "1.3.132.0.35": ec.SECP521R1(),
}
_P256 = (
    0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
    0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
    0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
)


# Leniencies BoringSSL does not share: it parses certificates and the extensions it caches as DER
# only. BER BOOLEANs, explicit DEFAULT values and unsorted SETs it accepts like OpenSSL.
BORINGSSL_REFUSES = (
    "non-minimal length",
    "constructed",
    "public key BIT STRING",
    "hybrid EC point",
    "trailing bytes",
    "BIT STRING padding",
)


def boringssl_refuses(note: str) -> bool:
    """Whether a recorded leniency makes BoringSSL refuse the certificate or extension."""
    return note.startswith(BORINGSSL_REFUSES)


class Notes:
    """Where the encoding is BER rather than DER (what OpenSSL tolerates and stricter parsers refuse)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, what: str) -> None:
        """Record one leniency (each kind once)."""
        if what not in self.items:
            self.items.append(what)

    def header(self, el: Element, where: str) -> None:
        """Record a non-DER length or tag form."""
        if not el.der_header:
            self.add(f"non-minimal length ({where})")


# -- primitive decoders (tasn_dec.c asn1_ex_c2i, a_int.c, a_bitstr.c, a_object.c) ------------------
def _need(el: Element, number: int, what: str, constructed: bool = False, cls: int = 0) -> None:
    if el.cls != cls or el.number != number:
        raise DerError(f"{what}: unexpected tag")
    if el.constructed != constructed:
        raise DerError(f"{what}: wrong constructed form")


def integer_value(content: bytes) -> int:
    """c2i_ASN1_INTEGER: two's complement, refusing empty content and redundant padding."""
    if not content:
        raise DerError("empty INTEGER")
    if len(content) > 1 and (
        (content[0] == 0 and not content[1] & 0x80) or (content[0] == 0xFF and content[1] & 0x80)
    ):
        raise DerError("INTEGER is not minimally encoded")
    return int.from_bytes(content, "big", signed=True)


def asn1_integer_get(value: int) -> int:
    """ASN1_INTEGER_get: the value when it fits a 64-bit long, else -1."""
    return value if -(1 << 63) <= value < (1 << 63) else -1


@lru_cache(maxsize=512)
def oid_value(content: bytes) -> str:
    """c2i_ASN1_OBJECT: no empty content, no trailing continuation, no 0x80 arc padding."""
    if not content or content[-1] & 0x80:
        raise DerError("malformed OBJECT IDENTIFIER")
    for i, octet in enumerate(content):
        if octet == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            raise DerError("OBJECT IDENTIFIER arc is padded")
    return der.decode_oid(content)


@dataclass(frozen=True, slots=True)
class BitString:
    """A decoded BIT STRING: bytes with the unused bits cleared, as c2i_ASN1_BIT_STRING keeps them."""

    data: bytes
    unused: int
    padding_clean: bool  # the unused bits were zero in the encoding


def bit_string(content: bytes) -> BitString:
    """c2i_ASN1_BIT_STRING: first octet 0..7; the unused bits of the last octet are cleared."""
    if not content:
        raise DerError("empty BIT STRING")
    unused = content[0]
    if unused > 7:
        raise DerError("BIT STRING unused-bit count over 7")
    data = content[1:]
    clean = True
    if data:
        mask = (0xFF << unused) & 0xFF
        clean = data[-1] & ~mask & 0xFF == 0
        data = data[:-1] + bytes([data[-1] & mask])
    return BitString(data, unused, clean)


def _collect(buf: bytes, el: Element, depth: int) -> bytes:
    """asn1_collect: the concatenated content of a constructed (BER) string."""
    if not el.constructed:
        return el.content(buf)
    out = b""
    for child in der.elements(buf, el, depth):
        if child.cls != 0:
            raise DerError("constructed string part is not universal")
        out += _collect(buf, child, depth + 1)
    return out


def _string_content(buf: bytes, el: Element, notes: Notes, where: str) -> bytes:
    notes.header(el, where)
    if el.constructed:
        notes.add(f"constructed string ({where})")
        return _collect(buf, el, 0)
    return el.content(buf)


# -- names (x_name.c) -------------------------------------------------------------------------------
def _utf8_getc_valid(data: bytes) -> bool:
    """UTF8_getc over the whole string (a_utf8.c): no bad continuation, overlong form or surrogate."""
    i = 0
    n = len(data)
    while i < n:
        c = data[i]
        if c < 0x80:
            i += 1
            continue
        if c & 0xE0 == 0xC0:
            size, value, minimum = 2, c & 0x1F, 0x80
        elif c & 0xF0 == 0xE0:
            size, value, minimum = 3, c & 0x0F, 0x800
        elif c & 0xF8 == 0xF0:
            size, value, minimum = 4, c & 0x07, 0x10000
        else:
            return False
        if i + size > n:
            return False
        for cont in data[i + 1 : i + size]:
            if cont & 0xC0 != 0x80:
                return False
            value = (value << 6) | (cont & 0x3F)
        if value < minimum or 0xD800 <= value <= 0xDFFF:
            return False
        i += size
    return True


def to_utf8(tag: int, data: bytes) -> bytes:
    """ASN1_STRING_to_UTF8; raises DerError where OpenSSL fails (types with no character form included)."""
    if tag == 0x12:  # NumericString: one octet per character, like IA5String
        return data.decode("latin-1").encode()
    if tag not in _CANON_TAGS:
        raise DerError(f"string type {tag} has no UTF-8 form")
    return _to_utf8(tag, data)


def _to_utf8(tag: int, data: bytes) -> bytes:
    """ASN1_STRING_to_UTF8 for the canonical string types; raises DerError where OpenSSL fails."""
    if tag == 0x0C:
        try:
            data.decode("utf-8")  # what Python accepts UTF8_getc accepts too
        except UnicodeDecodeError:
            if not _utf8_getc_valid(data):
                raise DerError("invalid UTF-8 in a Name") from None
        return data
    if tag == 0x1E:
        points = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    elif tag == 0x1C:
        points = [int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4)]
    else:
        return data.decode("latin-1").encode()
    if any(0xD800 <= p <= 0xDFFF or p > 0x10FFFF for p in points):
        raise DerError("string value has no UTF-8 form")
    return "".join(map(chr, points)).encode()


def _canon_text(text: bytes) -> bytes:
    """asn1_string_canon: trim and collapse ASCII whitespace, lower-case ASCII letters only."""
    start, end = 0, len(text)
    while start < end and text[start] in _ISSPACE:
        start += 1
    while end > start and text[end - 1] in _ISSPACE:
        end -= 1
    out = bytearray()
    i = start
    while i < end:
        c = text[i]
        if c >= 0x80:
            out.append(c)
            i += 1
        elif c in _ISSPACE:
            out.append(0x20)
            while i < end and text[i] in _ISSPACE:
                i += 1
        else:
            out.append(c + 32 if 0x41 <= c <= 0x5A else c)
            i += 1
    return bytes(out)


@dataclass(frozen=True)
class RawName:
    """A Name as encoded: attributes in order as (oid, value tag, value as OpenSSL stores it)."""

    der: bytes
    attributes: tuple[tuple[str, int, bytes], ...]
    rdn_sizes: tuple[int, ...] = ()
    rdns: tuple[tuple[tuple[bytes, int, bytes], ...], ...] = ()

    @cached_property
    def canon(self) -> bytes:
        """The canonical encoding X509_NAME_cmp compares (x_name.c x509_name_canon)."""
        return _canonical_name(self.rdns)

    def matches(self, other: RawName) -> bool:
        """X509_NAME_cmp(self, other) == 0: equal canonical encodings (equal bytes need no canon)."""
        return self.der == other.der or self.canon == other.canon


def _canonical_name(rdns: tuple[tuple[tuple[bytes, int, bytes], ...], ...]) -> bytes:
    """x509_name_canon: each RDN a DER SET OF (sorted) of SEQUENCE { OID, canonical value }."""
    out = b""
    for rdn in rdns:
        members = []
        for oid_der, tag, value in rdn:
            if tag in _CANON_TAGS:
                encoded = der.encode_tlv(0x0C, _canon_text(_to_utf8(tag, value)))
            elif tag == 0x10:
                encoded = value  # a SEQUENCE value is kept in encoded form
            else:
                encoded = der.encode_tlv(tag, value)
            members.append(der.encode_tlv(der.SEQUENCE, oid_der + encoded))
        if members:
            out += der.encode_tlv(der.SET, b"".join(sorted(members)))
    return out


def parse_name(buf: bytes, el: Element, notes: Notes, where: str) -> RawName:
    """x509_name_ex_d2i: SEQUENCE OF SET OF AttributeTypeAndValue, then the canonical form."""
    _need(el, 16, where, constructed=True)
    notes.header(el, where)
    attributes: list[tuple[str, int, bytes]] = []
    sizes: list[int] = []
    rdns: list[tuple[tuple[bytes, int, bytes], ...]] = []
    for rdn in der.elements(buf, el):
        _need(rdn, 17, f"{where} RDN", constructed=True)
        notes.header(rdn, where)
        members = der.elements(buf, rdn)
        sizes.append(len(members))
        canon_rdn: list[tuple[bytes, int, bytes]] = []
        previous = b""
        for atv in members:
            _need(atv, 16, f"{where} attribute", constructed=True)
            notes.header(atv, where)
            encoded = atv.encoded(buf)
            if previous and encoded < previous:
                notes.add(f"unsorted SET ({where})")
            previous = encoded
            parts = der.elements(buf, atv)
            if len(parts) != 2:
                raise DerError(f"{where}: AttributeTypeAndValue must hold a type and a value")
            _need(parts[0], 6, f"{where} attribute type")
            oid_content = parts[0].content(buf)
            oid = oid_value(oid_content)
            value_el = parts[1]
            if value_el.cls != 0:
                raise DerError(f"{where}: attribute value is not a universal type")
            tag = value_el.number
            if tag not in _NAME_VALUE_TAGS:
                raise DerError(f"{where}: attribute value type {tag} is not accepted by OpenSSL")
            if tag == 16:
                if not value_el.constructed:
                    raise DerError(f"{where}: SEQUENCE value must be constructed")
                value = value_el.encoded(buf)
            else:
                value = _string_content(buf, value_el, notes, where)
                if tag == 3:
                    value = bit_string(value).data
                if tag == 0x1E and len(value) % 2:
                    raise DerError(f"{where}: BMPString of odd length")
                if tag == 0x1C and len(value) % 4:
                    raise DerError(f"{where}: UniversalString length not a multiple of 4")
            if tag in _CANON_TAGS:
                _to_utf8(tag, value)  # ASN1_STRING_to_UTF8 failing fails x509_name_canon, so d2i_X509
            attributes.append((oid, tag, value))
            canon_rdn.append((parts[0].encoded(buf) if parts[0].der_header else der.encode_tlv(der.OID, oid_content), tag, value))
        rdns.append(tuple(canon_rdn))
    return RawName(el.encoded(buf), tuple(attributes), tuple(sizes), tuple(rdns))


# -- times (x509_vfy.c X509_cmp_time, a_time.c ossl_asn1_time_to_tm) ---------------------------------
_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    y = year - (month <= 2)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@dataclass(frozen=True)
class RawTime:
    """A validity time as encoded: tag (UTCTime/GeneralizedTime) and its characters."""

    tag: int
    text: str
    content: bytes = b""

    @cached_property
    def openssl(self) -> int | None:
        """Seconds since the epoch as X509_cmp_time reads it, or None where it reports an error."""
        data = self.content or self.text.encode("latin-1")
        size = 13 if self.tag == der.UTC_TIME else 15
        if self.tag not in (der.UTC_TIME, der.GENERALIZED_TIME) or len(data) != size:
            return None
        if data[-1:] != b"Z" or not data[:-1].isdigit() or not data[:-1].isascii():
            return None
        digits = data[:-1].decode()
        if size == 13:
            year = int(digits[:2])
            year += 2000 if year < 50 else 1900
            rest = digits[2:]
        else:
            year, rest = int(digits[:4]), digits[4:]
        month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
        if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
            return None
        limit = _MDAYS[month - 1] + (1 if month == 2 and _leap(year) else 0)
        if not 1 <= day <= limit:
            return None
        return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second

    @cached_property
    def chip_unix(self) -> int | None:
        """chip's ASN1UniversalTime import then ExportTo_UnixTime (1970..2105), or None on failure.

        src/lib/asn1/ASN1Time.cpp ImportFrom_ASN1_TIME_string (13 or 15 characters, digits, 'Z', day
        1..31 whatever the month) and src/lib/support/TimeUtils.cpp CalendarTimeToSecondsSinceUnixEpoch.
        chip reads the string with strlen, so an embedded NUL ends it.
        """
        data = (self.content or self.text.encode("latin-1")).split(b"\x00", 1)[0]
        if len(data) not in (13, 15) or data[-1:] != b"Z" or not data[:-1].isdigit() or not data[:-1].isascii():
            return None
        digits = data[:-1].decode()
        if len(data) == 15:
            year, rest = int(digits[:4]), digits[4:]
        else:
            year = int(digits[:2])
            year += 1900 if year >= 50 else 2000
            rest = digits[2:]
        month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
        if not (0 < month <= 12 and 0 < day <= 31 and hour < 24 and minute < 60 and second < 60):
            return None
        if not 1970 <= year <= 2105:
            return None
        return (_days_from_civil(year, month, 1) + day - 1) * 86400 + hour * 3600 + minute * 60 + second


# -- public keys (x_pubkey.c, ec_ameth.c eckey_pub_decode, ec_oct.c) -----------------------------------
@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    """What X509_get_pubkey would give: an EC key on a curve, its encoding form, or nothing."""

    algorithm: str
    parameters: str | None  # a curve OID, "explicit", "null" or None (absent)
    curve: str | None  # named or recognised curve OID
    explicit: bool  # curve given as explicit ECParameters (fails X509_V_FLAG_X509_STRICT)
    point: bytes  # BIT STRING content with the unused bits cleared
    unused_bits: int
    padding_clean: bool
    key: ec.EllipticCurvePublicKey | None
    form: str | None  # uncompressed, compressed, hybrid

    @property
    def p256(self) -> bool:
        """An EC key on prime256v1 that decodes."""
        return self.key is not None and self.curve == PRIME256V1

    @property
    def i2d_length(self) -> int | None:
        """Length i2d_PublicKey writes: the point in the form it was read in."""
        if self.key is None:
            return None
        size = (self.key.curve.key_size + 7) // 8
        return 1 + size if self.form == "compressed" else 1 + 2 * size


def _explicit_curve(buf: bytes, el: Element) -> str | None:
    """ECParameters naming P-256 field, coefficients, generator and order (ec_group_explicit_to_named)."""
    try:
        parts = der.elements(buf, el)
        field_id = der.elements(buf, parts[1])
        prime = integer_value(field_id[1].content(buf))
        curve = der.elements(buf, parts[2])
        a, b = (int.from_bytes(c.content(buf), "big") for c in curve[:2])
        g = parts[3].content(buf)
        order = integer_value(parts[4].content(buf))
    except (DerError, IndexError):
        return None
    gx, gy = _P256[3], _P256[4]
    generator_ok = g == b"\x04" + gx.to_bytes(32, "big") + gy.to_bytes(32, "big") or g == bytes([2 | (gy & 1)]) + gx.to_bytes(32, "big")
    if (prime, a, b, order) == (_P256[0], _P256[1], _P256[2], _P256[5]) and generator_ok:
        return PRIME256V1
    return None


def _decode_point(curve: ec.EllipticCurve, point: bytes) -> tuple[ec.EllipticCurvePublicKey | None, str | None]:
    """EC_POINT_oct2point: uncompressed, compressed and hybrid forms, on-curve points only."""
    if not point:
        return None, None
    form = {0x04: "uncompressed", 0x02: "compressed", 0x03: "compressed", 0x06: "hybrid", 0x07: "hybrid"}.get(point[0])
    if form is None:
        return None, None
    data = point
    if form == "hybrid":
        size = (curve.key_size + 7) // 8
        if len(point) != 1 + 2 * size or (point[-1] & 1) != (point[0] & 1):
            return None, None
        data = b"\x04" + point[1:]
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve, data), form
    except ValueError:
        return None, None


def parse_public_key(buf: bytes, el: Element, notes: Notes) -> PublicKeyInfo:
    """X509_PUBKEY: the structure must decode; the key itself may not (then X509_get_pubkey is NULL)."""
    _need(el, 16, "subjectPublicKeyInfo", constructed=True)
    notes.header(el, "subjectPublicKeyInfo")
    parts = der.elements(buf, el)
    if len(parts) != 2:
        raise DerError("subjectPublicKeyInfo must hold algorithm and key")
    alg_oid, params_el = parse_algorithm(buf, parts[0], notes, "subjectPublicKeyInfo algorithm")
    _need(parts[1], 3, "subjectPublicKey")
    bits = bit_string(_string_content(buf, parts[1], notes, "subjectPublicKey"))
    if bits.unused:
        notes.add("public key BIT STRING with unused bits")
    params: str | None = None
    curve: str | None = None
    explicit = False
    if params_el is not None:
        if params_el.cls == 0 and params_el.number == 6 and not params_el.constructed:
            try:
                params = curve = oid_value(params_el.content(buf))
            except DerError:
                params = "malformed"
        elif params_el.cls == 0 and params_el.number == 5:
            params = "null"
        elif params_el.cls == 0 and params_el.number == 16:
            params, explicit = "explicit", True
            curve = _explicit_curve(buf, params_el)
        else:
            params = "other"
    key = form = None
    if alg_oid == EC_PUBLIC_KEY and curve in _CURVES:
        key, form = _decode_point(_CURVES[curve], bits.data)
        if form == "hybrid":
            notes.add("hybrid EC point")
    return PublicKeyInfo(alg_oid, params, curve, explicit, bits.data, bits.unused, bits.padding_clean, key, form)


def parse_algorithm(buf: bytes, el: Element, notes: Notes, where: str) -> tuple[str, Element | None]:
    """X509_ALGOR: SEQUENCE { OBJECT, ANY OPTIONAL }."""
    _need(el, 16, where, constructed=True)
    notes.header(el, where)
    parts = der.elements(buf, el)
    if not parts or len(parts) > 2:
        raise DerError(f"{where}: AlgorithmIdentifier must hold an OID and optional parameters")
    _need(parts[0], 6, f"{where} OID")
    return oid_value(parts[0].content(buf)), (parts[1] if len(parts) == 2 else None)


@dataclass(frozen=True, slots=True)
class AlgorithmId:
    """An AlgorithmIdentifier as X509_ALGOR_cmp compares it: OID and parameters (tag and content)."""

    oid: str
    params: tuple[int, bytes] | None
    der: bytes


def _algorithm(buf: bytes, el: Element, notes: Notes, where: str) -> AlgorithmId:
    oid, params = parse_algorithm(buf, el, notes, where)
    value = None
    if params is not None:
        if params.cls == 0 and params.number == 5 and (params.content_end != params.content_start):
            raise DerError(f"{where}: NULL parameters with content")
        value = (params.tag, params.encoded(buf) if params.constructed else params.content(buf))
    return AlgorithmId(oid, value, el.encoded(buf))


# -- extensions (x_exten.c, v3_*.c) -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RawExtension:
    """One extension exactly as encoded; ``critical`` is what X509_EXTENSION_get_critical returns."""

    oid: str
    critical: bool
    value: bytes
    critical_explicit_false: bool = False


def _first(value: bytes, notes: Notes | None, where: str) -> tuple[Element, bytes]:
    """ASN1_item_d2i over an extension value: one element; bytes after it are ignored."""
    el = der.read_element(value, 0)
    if el.end != len(value) and notes is not None:
        notes.add(f"trailing bytes in {where}")
    return el, value


@dataclass(frozen=True, slots=True)
class BasicConstraintsValue:
    """Decoded basicConstraints: cA and the path length INTEGER (None when absent)."""

    ca: bool
    path_length: int | None


def decode_basic_constraints(value: bytes, notes: Notes | None = None) -> BasicConstraintsValue:
    """BASIC_CONSTRAINTS ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }."""
    el, buf = _first(value, notes, "basicConstraints")
    _need(el, 16, "basicConstraints", constructed=True)
    if notes is not None:
        notes.header(el, "basicConstraints")
    parts = der.elements(buf, el)
    ca, path = False, None
    i = 0
    if i < len(parts) and parts[i].cls == 0 and parts[i].number == 1:
        flag = parts[i].content(buf)
        if len(flag) != 1 or parts[i].constructed:
            raise DerError("basicConstraints: BOOLEAN of wrong length")
        ca = flag[0] != 0
        if notes is not None and flag[0] not in (0x00, 0xFF):
            notes.add("BER BOOLEAN (cA)")
        if notes is not None and flag[0] == 0:
            notes.add("explicit DEFAULT FALSE (cA)")
        i += 1
    if i < len(parts) and parts[i].cls == 0 and parts[i].number == 2:
        if parts[i].constructed:
            raise DerError("basicConstraints: constructed INTEGER")
        path = integer_value(parts[i].content(buf))
        i += 1
    if i != len(parts):
        raise DerError("basicConstraints: unexpected field")
    return BasicConstraintsValue(ca, path)


@dataclass(frozen=True, slots=True)
class KeyUsageValue:
    """Decoded keyUsage: the named bits, OpenSSL's 16-bit value, and whether the encoding is minimal."""

    bits: frozenset[int]
    minimal: bool
    openssl: int = 0
    padding_clean: bool = True

    def names(self) -> list[str]:
        """Bit names, in bit order."""
        return [KU_NAMES[b] if b < len(KU_NAMES) else f"bit{b}" for b in sorted(self.bits)]


def decode_key_usage(value: bytes, notes: Notes | None = None) -> KeyUsageValue:
    """keyUsage ::= BIT STRING; OpenSSL keeps data[0] | data[1] << 8 (v3_purp.c)."""
    el, buf = _first(value, notes, "keyUsage")
    _need(el, 3, "keyUsage")
    bits = bit_string(el.content(buf))
    if notes is not None:
        notes.header(el, "keyUsage")
        if not bits.padding_clean:
            notes.add("BIT STRING padding bits set (keyUsage)")
    data = bits.data
    named = frozenset(i for i in range(len(data) * 8 - (bits.unused if data else 0)) if data[i // 8] & (0x80 >> (i % 8)))
    if data:
        last = data[-1]
        trailing_zeros = 8 if last == 0 else (last & -last).bit_length() - 1
        minimal = last != 0 and bits.unused == trailing_zeros
    else:
        minimal = bits.unused == 0
    openssl = (data[0] if data else 0) | ((data[1] << 8) if len(data) > 1 else 0)
    return KeyUsageValue(named, minimal, openssl, bits.padding_clean)


def decode_skid(value: bytes, notes: Notes | None = None) -> bytes:
    """subjectKeyIdentifier ::= OCTET STRING."""
    el, buf = _first(value, notes, "subjectKeyIdentifier")
    _need(el, 4, "subjectKeyIdentifier", constructed=el.constructed)
    return _string_content(buf, el, notes or Notes(), "subjectKeyIdentifier")


@dataclass(frozen=True, slots=True)
class GeneralName:
    """One GeneralName: its choice number and content (a directoryName as a RawName)."""

    kind: int
    value: bytes
    directory: RawName | None = None


def decode_general_names(buf: bytes, el: Element, notes: Notes | None, where: str) -> list[GeneralName]:
    """GENERAL_NAMES (v3_genn.c): context tags [0]..[8] with their own inner types."""
    names: list[GeneralName] = []
    for item in der.elements(buf, el):
        if item.cls != 2 or item.number > 8:
            raise DerError(f"{where}: not a GeneralName")
        kind = item.number
        if kind in (0, 3, 5):
            if not item.constructed:
                raise DerError(f"{where}: GeneralName [{kind}] must be constructed")
            if kind == 0:
                parts = der.elements(buf, item)
                if len(parts) != 2 or parts[0].number != 6 or parts[1].cls != 2 or parts[1].number != 0:
                    raise DerError(f"{where}: malformed otherName")
                oid_value(parts[0].content(buf))
            names.append(GeneralName(kind, item.encoded(buf)))
        elif kind == 4:
            inner = der.elements(buf, item)
            if not item.constructed or len(inner) != 1:
                raise DerError(f"{where}: directoryName must hold one Name")
            directory = parse_name(buf, inner[0], notes or Notes(), where)
            names.append(GeneralName(kind, directory.der, directory))
        elif kind == 8:
            if item.constructed:
                raise DerError(f"{where}: registeredID must be primitive")
            names.append(GeneralName(kind, oid_value(item.content(buf)).encode()))
        else:
            names.append(GeneralName(kind, _string_content(buf, item, notes or Notes(), where)))
    return names


@dataclass(frozen=True, slots=True)
class AuthorityKeyIdValue:
    """Decoded authorityKeyIdentifier: key identifier, first directoryName issuer and serial (if any)."""

    keyid: bytes | None
    issuer: tuple[GeneralName, ...] | None
    serial: int | None

    @property
    def issuer_directory(self) -> RawName | None:
        """The first directoryName of authorityCertIssuer, which X509_check_akid compares."""
        for gn in self.issuer or ():
            if gn.directory is not None:
                return gn.directory
        return None


def decode_akid_full(value: bytes, notes: Notes | None = None) -> AuthorityKeyIdValue:
    """AUTHORITY_KEYID ::= SEQUENCE { [0] keyIdentifier, [1] authorityCertIssuer, [2] serial } (v3_akid.c)."""
    el, buf = _first(value, notes, "authorityKeyIdentifier")
    _need(el, 16, "authorityKeyIdentifier", constructed=True)
    if notes is not None:
        notes.header(el, "authorityKeyIdentifier")
    keyid: bytes | None = None
    issuer: tuple[GeneralName, ...] | None = None
    serial: int | None = None
    expected = 0
    for item in der.elements(buf, el):
        if item.cls != 2 or item.number < expected or item.number > 2:
            raise DerError("authorityKeyIdentifier: unexpected field")
        expected = item.number + 1
        if item.number == 0:
            keyid = _string_content(buf, item, notes or Notes(), "authorityKeyIdentifier")
        elif item.number == 1:
            if not item.constructed:
                raise DerError("authorityKeyIdentifier: authorityCertIssuer must be constructed")
            issuer = tuple(decode_general_names(buf, item, notes, "authorityCertIssuer"))
        else:
            if item.constructed:
                raise DerError("authorityKeyIdentifier: constructed serial")
            serial = integer_value(item.content(buf))
    return AuthorityKeyIdValue(keyid, issuer, serial)


def decode_akid(value: bytes) -> bytes | None:
    """The keyIdentifier of an authorityKeyIdentifier, or None when only issuer/serial are given."""
    return decode_akid_full(value).keyid


@dataclass(frozen=True, slots=True)
class DistributionPoint:
    """One DistributionPoint: fullName (or None), reasons, cRLIssuer, and whether a name-relative form was used."""

    full_name: tuple[GeneralName, ...] | None
    relative: bool
    reasons: bool
    crl_issuer: tuple[GeneralName, ...] | None


def decode_crl_distribution_points(value: bytes, notes: Notes | None = None) -> list[DistributionPoint]:
    """CRL_DIST_POINTS plus setup_dp's rule: each point needs a distributionPoint or a cRLIssuer."""
    el, buf = _first(value, notes, "cRLDistributionPoints")
    _need(el, 16, "cRLDistributionPoints", constructed=True)
    points: list[DistributionPoint] = []
    for dp in der.elements(buf, el):
        _need(dp, 16, "DistributionPoint", constructed=True)
        full: tuple[GeneralName, ...] | None = None
        relative = reasons = False
        issuer: tuple[GeneralName, ...] | None = None
        expected = 0
        for item in der.elements(buf, dp):
            if item.cls != 2 or item.number < expected or item.number > 2:
                raise DerError("DistributionPoint: unexpected field")
            expected = item.number + 1
            if item.number == 0:
                inner = der.elements(buf, item)
                if not item.constructed or len(inner) != 1 or inner[0].cls != 2 or inner[0].number > 1:
                    raise DerError("DistributionPointName: malformed")
                if inner[0].number == 0:
                    full = tuple(decode_general_names(buf, inner[0], notes, "fullName"))
                else:
                    relative = True
            elif item.number == 1:
                bit_string(item.content(buf))
                reasons = True
            else:
                issuer = tuple(decode_general_names(buf, item, notes, "cRLIssuer"))
        if full is None and not relative and not issuer:
            raise DerError("DistributionPoint without distributionPoint or cRLIssuer")
        points.append(DistributionPoint(full, relative, reasons, issuer))
    return points


@dataclass(frozen=True, slots=True)
class GeneralSubtree:
    """One GeneralSubtree: its base name, minimum (0 when absent) and maximum (None when absent)."""

    base: GeneralName
    minimum: int
    maximum: int | None


@dataclass(frozen=True, slots=True)
class NameConstraintsValue:
    """Decoded nameConstraints: permitted and excluded subtrees."""

    permitted: tuple[GeneralSubtree, ...]
    excluded: tuple[GeneralSubtree, ...]


def decode_name_constraints(value: bytes, notes: Notes | None = None) -> NameConstraintsValue:
    """NAME_CONSTRAINTS ::= SEQUENCE { [0] permitted GeneralSubtrees, [1] excluded } (v3_ncons.c)."""
    el, buf = _first(value, notes, "nameConstraints")
    _need(el, 16, "nameConstraints", constructed=True)
    expected = 0
    trees: dict[int, list[GeneralSubtree]] = {0: [], 1: []}
    for item in der.elements(buf, el):
        if item.cls != 2 or item.number < expected or item.number > 1 or not item.constructed:
            raise DerError("nameConstraints: unexpected field")
        expected = item.number + 1
        for subtree in der.elements(buf, item):
            _need(subtree, 16, "GeneralSubtree", constructed=True)
            parts = der.elements(buf, subtree)
            if not parts:
                raise DerError("GeneralSubtree without base")
            base = Element(subtree.cls, True, 16, subtree.start, parts[0].start, parts[0].end, parts[0].end, True)
            (name,) = decode_general_names(buf, base, notes, "GeneralSubtree")
            minimum, maximum = 0, None
            following = 0
            for extra in parts[1:]:
                if extra.cls != 2 or extra.number < following or extra.number > 1:
                    raise DerError("GeneralSubtree: unexpected field")
                following = extra.number + 1
                number = integer_value(extra.content(buf))
                if extra.number == 0:
                    minimum = number
                else:
                    maximum = number
            trees[item.number].append(GeneralSubtree(name, minimum, maximum))
    return NameConstraintsValue(tuple(trees[0]), tuple(trees[1]))


def decode_extended_key_usage(value: bytes, notes: Notes | None = None) -> list[str]:
    """EXTENDED_KEY_USAGE ::= SEQUENCE OF OBJECT IDENTIFIER."""
    el, buf = _first(value, notes, "extendedKeyUsage")
    _need(el, 16, "extendedKeyUsage", constructed=True)
    out = []
    for item in der.elements(buf, el):
        _need(item, 6, "KeyPurposeId")
        out.append(oid_value(item.content(buf)))
    return out


def _decode_bit_string_ext(value: bytes, notes: Notes | None = None) -> BitString:
    el, buf = _first(value, notes, "netscape cert type")
    _need(el, 3, "BIT STRING extension")
    return bit_string(el.content(buf))


def _decode_san(value: bytes, notes: Notes | None = None) -> list[GeneralName]:
    el, buf = _first(value, notes, "subjectAltName")
    _need(el, 16, "subjectAltName", constructed=True)
    return decode_general_names(buf, el, notes, "subjectAltName")


# -- the certificate --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawCertificate:
    """The fields of a certificate as OpenSSL reads them (d2i_X509)."""

    der: bytes
    trailing: int
    tbs: bytes
    version: int  # X509_get_version: 0 when absent, ASN1_INTEGER_get otherwise
    serial: bytes
    tbs_signature_algorithm: bytes
    signature_algorithm: bytes
    signature_algorithm_oid: str
    issuer: RawName
    subject: RawName
    not_before: RawTime
    not_after: RawTime
    spki: bytes
    key_algorithm_oid: str
    key_parameters: str | None
    public_key_bits: bytes
    extensions: tuple[RawExtension, ...]
    signature: bytes
    tbs_algorithm: AlgorithmId | None = None
    outer_algorithm: AlgorithmId | None = None
    public_key: PublicKeyInfo | None = None
    signature_unused_bits: int = 0
    signature_padding_clean: bool = True
    serial_value: int = 0
    extensions_present: bool = False
    reencoded_length: int = 0  # i2d_X509 of the parsed certificate (chip-cert's ReadCertDER)
    ber: tuple[str, ...] = ()

    def extensions_for(self, oid: str) -> list[RawExtension]:
        """Every occurrence of an extension (duplicates are kept)."""
        return [e for e in self.extensions if e.oid == oid]

    @cached_property
    def v3(self) -> V3Cache:
        """ossl_x509v3_cache_extensions for this certificate."""
        return v3_cache(self)

    @cached_property
    def v3_boringssl(self) -> V3Cache:
        """The same cache as BoringSSL builds it: DER-only extension values, no netscape cert type."""
        base = self.v3
        invalid = [r for r in base.invalid if not r.startswith("netscape")]
        invalid += [f"BoringSSL refuses {n}" for n in base.ext_notes if boringssl_refuses(n) and "netscape" not in n]
        return replace(base, invalid=invalid, nscert=False)

    def v3_for(self, flavour: str) -> V3Cache:
        """The extension cache of OpenSSL (``openssl``) or BoringSSL (``boringssl``)."""
        return self.v3_boringssl if flavour == "boringssl" else self.v3


def _parse_extensions(buf: bytes, el: Element, notes: Notes) -> tuple[RawExtension, ...]:
    notes.header(el, "[3]")
    outer = der.elements(buf, el)
    if len(outer) != 1:
        raise DerError("[3] must hold exactly one Extensions SEQUENCE")
    seq = outer[0]
    _need(seq, 16, "Extensions", constructed=True)
    notes.header(seq, "Extensions")
    result: list[RawExtension] = []
    for ext in der.elements(buf, seq):
        _need(ext, 16, "Extension", constructed=True)
        notes.header(ext, "Extension")
        parts = der.elements(buf, ext)
        if len(parts) not in (2, 3):
            raise DerError("Extension must hold 2 or 3 fields")
        _need(parts[0], 6, "extnID")
        oid = oid_value(parts[0].content(buf))
        critical = explicit_false = False
        if len(parts) == 3:
            _need(parts[1], 1, "critical")
            flag = parts[1].content(buf)
            if len(flag) != 1:
                raise DerError("BOOLEAN of wrong length")
            critical = flag[0] != 0
            explicit_false = not critical
            if flag[0] not in (0, 0xFF):
                notes.add("BER BOOLEAN (critical)")
            if explicit_false:
                notes.add("explicit DEFAULT FALSE (critical)")
        if parts[-1].cls != 0 or parts[-1].number != 4:
            raise DerError("extnValue: unexpected tag")
        value = _string_content(buf, parts[-1], notes, f"extension {oid}")
        result.append(RawExtension(oid, critical, value, explicit_false))
    return tuple(result)


def _time(buf: bytes, el: Element, notes: Notes) -> RawTime:
    if el.cls != 0 or el.number not in (der.UTC_TIME, der.GENERALIZED_TIME):
        raise DerError("validity time must be UTCTime or GeneralizedTime")
    content = _string_content(buf, el, notes, "validity")
    return RawTime(el.number, content.decode("latin-1"), content)


def _reencoded_length(tbs: bytes, alg: AlgorithmId, signature_len: int) -> int:
    """Length of i2d_X509: the TBS kept as read (its cached encoding), the rest re-encoded as DER."""
    params = b""
    if alg.params is not None:
        tag, content = alg.params
        params = content if tag & 0x20 else der.encode_tlv(tag, content)
    alg_der = der.encode_tlv(der.SEQUENCE, der.encode_oid(alg.oid) + params)
    body = len(tbs) + len(alg_der) + len(der.encode_tlv(der.BIT_STRING, b"\x00" * signature_len))
    return 1 + len(der.encode_length(body)) + body


def parse_certificate(data: bytes) -> RawCertificate:
    """Parse the way OpenSSL's d2i_X509 does; trailing bytes after the certificate are ignored."""
    notes = Notes()
    top = der.read_element(data, 0)
    _need(top, 16, "Certificate", constructed=True)
    notes.header(top, "Certificate")
    body = der.elements(data, top)
    if len(body) != 3:
        raise DerError("Certificate must hold tbsCertificate, signatureAlgorithm, signatureValue")
    tbs_el = body[0]
    _need(tbs_el, 16, "tbsCertificate", constructed=True)
    notes.header(tbs_el, "tbsCertificate")
    outer_alg = _algorithm(data, body[1], notes, "signatureAlgorithm")
    _need(body[2], 3, "signatureValue")
    sig_bits = bit_string(_string_content(data, body[2], notes, "signatureValue"))
    fields = der.elements(data, tbs_el)
    idx = 0
    version = 0
    if fields and fields[0].cls == 2 and fields[0].number == 0:
        inner = der.elements(data, fields[0])
        if not fields[0].constructed or len(inner) != 1:
            raise DerError("version must be one INTEGER")
        _need(inner[0], 2, "version")
        notes.header(fields[0], "version")
        version = asn1_integer_get(integer_value(inner[0].content(data)))
        if version == 0:
            notes.add("explicit DEFAULT version")
        idx = 1
    if len(fields) < idx + 6:
        raise DerError("tbsCertificate is missing fields")
    _need(fields[idx], 2, "serialNumber")
    serial = fields[idx].content(data)
    serial_value = integer_value(serial)
    tbs_alg = _algorithm(data, fields[idx + 1], notes, "signature")
    issuer = parse_name(data, fields[idx + 2], notes, "issuer")
    _need(fields[idx + 3], 16, "validity", constructed=True)
    validity = der.elements(data, fields[idx + 3])
    if len(validity) != 2:
        raise DerError("validity must hold notBefore and notAfter")
    not_before, not_after = _time(data, validity[0], notes), _time(data, validity[1], notes)
    subject = parse_name(data, fields[idx + 4], notes, "subject")
    key = parse_public_key(data, fields[idx + 5], notes)
    extensions: tuple[RawExtension, ...] = ()
    present = False
    expected = 1
    for extra in fields[idx + 6 :]:
        if extra.cls != 2 or extra.number < expected or extra.number > 3:
            raise DerError("unexpected field in tbsCertificate")
        expected = extra.number + 1
        if extra.number == 3:
            if not extra.constructed:
                raise DerError("[3] must be constructed")
            extensions = _parse_extensions(data, extra, notes)
            present = True
        else:
            if extra.constructed:
                notes.add("constructed unique identifier")
            bit_string(_collect(data, extra, 0))
    return RawCertificate(
        der=data[: top.end],
        trailing=len(data) - top.end,
        tbs=tbs_el.encoded(data),
        version=version,
        serial=serial,
        tbs_signature_algorithm=tbs_alg.der,
        signature_algorithm=outer_alg.der,
        signature_algorithm_oid=outer_alg.oid,
        issuer=issuer,
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        spki=fields[idx + 5].encoded(data),
        key_algorithm_oid=key.algorithm,
        key_parameters=key.parameters,
        public_key_bits=key.point,
        extensions=extensions,
        signature=sig_bits.data,
        tbs_algorithm=tbs_alg,
        outer_algorithm=outer_alg,
        public_key=key,
        signature_unused_bits=sig_bits.unused,
        signature_padding_clean=sig_bits.padding_clean,
        serial_value=serial_value,
        extensions_present=present,
        reencoded_length=top.end if not notes.items else _reencoded_length(tbs_el.encoded(data), outer_alg, len(sig_bits.data) + 1),
        ber=tuple(notes.items),
    )


# -- the X509v3 cache (v3_purp.c ossl_x509v3_cache_extensions) -----------------------------------------
@dataclass
class V3Cache:
    """What OpenSSL caches about a certificate's extensions, and whether it marks the certificate invalid."""

    invalid: list[str] = field(default_factory=list)  # reasons for EXFLAG_INVALID
    ca: bool = False
    bcons: bool = False
    bcons_critical: bool = False
    pathlen: int = -1
    kusage: int | None = None  # None when no (decodable, single) keyUsage
    skid: bytes | None = None
    akid: AuthorityKeyIdValue | None = None
    altname: list[GeneralName] | None = None
    name_constraints: NameConstraintsValue | None = None
    unsupported_critical: str | None = None
    proxy: bool = False
    nscert: bool = False
    self_issued: bool = False
    ext_notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """ossl_x509v3_cache_extensions returned 1 (no EXFLAG_INVALID)."""
        return not self.invalid

    @property
    def key_usage(self) -> int:
        """X509_get_key_usage: 0 for an invalid certificate, all ones without keyUsage."""
        if not self.ok:
            return 0
        return 0xFFFFFFFF if self.kusage is None else self.kusage

    @property
    def path_length(self) -> int:
        """X509_get_pathlen: -1 for an invalid certificate or one without basicConstraints."""
        return self.pathlen if self.ok and self.bcons else -1


def _get_ext(cert: RawCertificate, oid: str) -> tuple[str, RawExtension | None]:
    """X509_get_ext_d2i's view: "absent", "duplicate" or "one"."""
    found = cert.extensions_for(oid)
    if not found:
        return "absent", None
    if len(found) > 1:
        return "duplicate", None
    return "one", found[0]


def v3_cache(cert: RawCertificate) -> V3Cache:
    """Model of ossl_x509v3_cache_extensions: decode each cached extension once, as OpenSSL does."""
    cache = V3Cache()
    notes = Notes()

    def decoded(oid: str, label: str, decode: Callable[[bytes, Notes], _T]) -> _T | None:
        state, ext = _get_ext(cert, oid)
        if state == "absent":
            return None
        if ext is None:
            cache.invalid.append(f"{label} appears more than once")
            return None
        try:
            return decode(ext.value, notes)
        except (DerError, IndexError) as e:
            cache.invalid.append(f"{label} does not decode: {e}")
            return None

    bc = decoded(OID_BC, "basicConstraints", decode_basic_constraints)
    if bc is not None:
        cache.bcons, cache.ca = True, bc.ca
        if bc.path_length is not None:
            if bc.path_length < 0:
                cache.invalid.append("negative pathLenConstraint")
            else:
                cache.pathlen = asn1_integer_get(bc.path_length)
    cache.proxy = bool(cert.extensions_for(OID_PROXY))
    for oid in (OID_PROXY, "1.3.6.1.5.5.7.1.7", "1.3.6.1.5.5.7.1.8"):
        # proxyCertInfo and the RFC 3779 extensions are cached too; their values are not modelled.
        if len(cert.extensions_for(oid)) > 1:
            cache.invalid.append(f"extension {oid} appears more than once")
    ku = decoded(OID_KU, "keyUsage", decode_key_usage)
    if ku is not None:
        cache.kusage = ku.openssl
        if ku.openssl == 0:
            cache.invalid.append("keyUsage has no bit set in its first two octets")
    decoded(OID_EKU, "extendedKeyUsage", decode_extended_key_usage)
    cache.nscert = decoded(OID_NS_CERT_TYPE, "netscape cert type", _decode_bit_string_ext) is not None
    cache.skid = decoded(OID_SKID, "subjectKeyIdentifier", decode_skid)
    cache.akid = decoded(OID_AKID, "authorityKeyIdentifier", decode_akid_full)
    cache.self_issued = cert.subject.matches(cert.issuer)
    cache.altname = decoded(OID_SAN, "subjectAltName", _decode_san)
    cache.name_constraints = decoded(OID_NC, "nameConstraints", decode_name_constraints)
    decoded(OID_CDP, "cRLDistributionPoints", decode_crl_distribution_points)
    for ext in cert.extensions:
        if not ext.critical:
            continue
        if ext.oid not in OPENSSL_SUPPORTED_EXTENSIONS:
            cache.unsupported_critical = ext.oid
            break
        if ext.oid == OID_BC:
            cache.bcons_critical = True
    cache.ext_notes = tuple(notes.items)
    return cache


def cached_v3(cert: RawCertificate) -> V3Cache:
    """The certificate's X509v3 cache."""
    return cert.v3


def skid_method1(cert: RawCertificate) -> bytes:
    """RFC 5280 method 1: SHA-1 of the subjectPublicKey BIT STRING contents."""
    return hashlib.sha1(cert.public_key_bits).digest()  # noqa: S324 - a key identifier, not a security hash


def decode_pem_blocks(data: bytes, label: str) -> list[bytes] | None:
    """DER bodies of every PEM block with ``label``; None when the input holds no PEM armour."""
    if b"-----BEGIN" not in data:
        return None
    blocks: list[bytes] = []
    for match in _PEM_RE.finditer(data):
        if match.group("label").decode() != label:
            continue
        try:
            blocks.append(base64.b64decode(b"".join(match.group("body").split()), validate=True))
        except binascii.Error as e:
            raise DerError(f"PEM {label} block is not valid base64") from e
    return blocks


def certificate_der_from_bytes(data: bytes) -> bytes:
    """One certificate's DER from PEM, DER or hex input (chip-cert accepts all three)."""
    if len(data) > MAX_INPUT_BYTES:
        raise DerError(f"input is {len(data)} bytes, over the {MAX_INPUT_BYTES}-byte limit")
    blocks = decode_pem_blocks(data, "CERTIFICATE")
    if blocks is not None:
        if len(blocks) != 1:
            raise DerError(f"expected one CERTIFICATE PEM block, found {len(blocks)}")
        return blocks[0]
    stripped = data.strip()
    if stripped and re.fullmatch(rb"[0-9A-Fa-f]+", stripped) and len(stripped) % 2 == 0:
        return bytes.fromhex(stripped.decode())
    return data
