"""Minimal strict DER reader and writer for the few raw views cryptography does not give.

Used to see extension bytes exactly as encoded (criticality, duplicates, 9-bit KeyUsage), the
TBS signature algorithm, the raw subjectPublicKeyInfo point, and to assemble certificates from
pre-encoded parts on the batch path.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
BOOLEAN = 0x01


class DerError(ValueError):
    """Bytes that are not strict DER."""


@dataclass(frozen=True, slots=True)
class Tlv:
    """One DER element inside a buffer: tag octet, header and content offsets."""

    tag: int
    start: int
    header_len: int
    length: int

    @property
    def value_start(self) -> int:
        """Offset of the first content octet."""
        return self.start + self.header_len

    @property
    def end(self) -> int:
        """Offset just past the element."""
        return self.start + self.header_len + self.length

    def value(self, buf: bytes) -> bytes:
        """The content octets."""
        return buf[self.value_start : self.end]

    def encoded(self, buf: bytes) -> bytes:
        """The whole element, header included."""
        return buf[self.start : self.end]


def read_tlv(buf: bytes, offset: int = 0, limit: int | None = None) -> Tlv:
    """Read one element at ``offset``; definite minimal lengths only, low tag numbers only."""
    end_limit = len(buf) if limit is None else limit
    if offset + 2 > end_limit:
        raise DerError("truncated element header")
    tag = buf[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used in certificates")
    first = buf[offset + 1]
    if first < 0x80:
        length, header = first, 2
    else:
        count = first & 0x7F
        if count == 0:
            raise DerError("indefinite length is not DER")
        if count > 4 or offset + 2 + count > end_limit:
            raise DerError("length field too long or truncated")
        length = int.from_bytes(buf[offset + 2 : offset + 2 + count], "big")
        if buf[offset + 2] == 0 or length < 0x80:
            raise DerError("length is not minimally encoded")
        header = 2 + count
    if offset + header + length > end_limit:
        raise DerError("element runs past the end of its container")
    return Tlv(tag, offset, header, length)


def children(buf: bytes, parent: Tlv) -> list[Tlv]:
    """The elements directly inside a constructed element."""
    items: list[Tlv] = []
    pos = parent.value_start
    while pos < parent.end:
        item = read_tlv(buf, pos, parent.end)
        items.append(item)
        pos = item.end
    return items


def expect(tlv: Tlv, tag: int, what: str) -> Tlv:
    """Check an element's tag, naming the field on failure."""
    if tlv.tag != tag:
        raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{tlv.tag:02x}")
    return tlv


def decode_oid(content: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER content octets."""
    if not content or content[-1] & 0x80:
        raise DerError("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for i, octet in enumerate(content):
        if value == 0 and octet == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            raise DerError("OBJECT IDENTIFIER arc not minimally encoded")
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def encode_length(length: int) -> bytes:
    """DER length octets."""
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_tlv(tag: int, content: bytes) -> bytes:
    """A whole DER element."""
    return bytes([tag]) + encode_length(len(content)) + content


def encode_integer(value: int) -> bytes:
    """DER INTEGER for a non-negative value (leading 00 added when the top bit is set)."""
    if value < 0:
        raise ValueError("negative INTEGER not supported")
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        body = body[1:]
    return encode_tlv(INTEGER, body)


def outer_length(buf: bytes) -> int:
    """Length of the first element in ``buf`` (to detect trailing bytes after a certificate)."""
    return read_tlv(buf, 0).end


def encode_oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER from dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError("an OID has at least two arcs")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return encode_tlv(OID, bytes(body))


# -- BER as OpenSSL reads it ----------------------------------------------------------------------
# OpenSSL's decoder (crypto/asn1/asn1_lib.c ASN1_get_object, asn1_get_length; crypto/asn1/tasn_dec.c)
# accepts more than DER: long-form and zero-padded lengths, indefinite lengths on constructed
# elements, high tag numbers. chip decides with that decoder, so the checks that must match chip
# read certificates with ``read_element`` below; the strict readers above stay for our own output.
MAX_NESTING = 30  # ASN1_MAX_CONSTRUCTED_NEST


@dataclass(frozen=True, slots=True)
class Element:
    """One BER element: identifier, where its contents are, and whether its header is DER."""

    cls: int  # 0 universal, 1 application, 2 context-specific, 3 private
    constructed: bool
    number: int
    start: int
    content_start: int
    content_end: int
    end: int
    der_header: bool  # definite, minimal length, low-tag form

    @property
    def tag(self) -> int:
        """The identifier octet for tag numbers below 31, else -1."""
        if self.number >= 31:
            return -1
        return (self.cls << 6) | (0x20 if self.constructed else 0) | self.number

    def content(self, buf: bytes) -> bytes:
        """The content octets (an indefinite element's end-of-contents octets excluded)."""
        return buf[self.content_start : self.content_end]

    def encoded(self, buf: bytes) -> bytes:
        """The whole element as it appears in ``buf``."""
        return buf[self.start : self.end]


def pem_encode(label: str, der: bytes) -> bytes:
    """An RFC 7468 PEM block: ``-----BEGIN <label>-----``, base64 in 64-character lines, ``-----END <label>-----``."""
    body = base64.b64encode(der)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    tag = label.encode("ascii")
    return b"-----BEGIN " + tag + b"-----\n" + lines + b"\n-----END " + tag + b"-----\n"


def read_element(buf: bytes, offset: int = 0, limit: int | None = None, depth: int = 0) -> Element:
    """Read one element the way ASN1_get_object does; raises DerError where OpenSSL fails."""
    end_limit = len(buf) if limit is None else limit
    if depth > MAX_NESTING:
        raise DerError("nested too deep")
    # Fast path: low tag number, short-form length (almost every element of a certificate).
    if offset + 2 <= end_limit:
        first, octet = buf[offset], buf[offset + 1]
        if first & 0x1F != 0x1F and octet < 0x80:
            end = offset + 2 + octet
            if end > end_limit:
                raise DerError("element runs past the end of its container")
            return Element(first >> 6, bool(first & 0x20), first & 0x1F, offset, offset + 2, end, end, True)
    p = offset
    if p >= end_limit:
        raise DerError("truncated element header")
    first = buf[p]
    cls, constructed, number = first >> 6, bool(first & 0x20), first & 0x1F
    der_header = True
    p += 1
    if number == 0x1F:
        number = 0
        der_header = False
        while True:
            if p >= end_limit:
                raise DerError("truncated high tag number")
            octet = buf[p]
            p += 1
            number = (number << 7) | (octet & 0x7F)
            if number > 0x7FFFFFFF >> 7 and octet & 0x80:
                raise DerError("tag number too large")
            if not octet & 0x80:
                break
    if p >= end_limit:
        raise DerError("truncated length")
    octet = buf[p]
    p += 1
    indefinite = False
    if octet < 0x80:
        length = octet
    elif octet == 0x80:
        if not constructed:
            raise DerError("indefinite length on a primitive element")
        indefinite, length, der_header = True, 0, False
    else:
        count = octet & 0x7F
        # asn1_get_length (OpenSSL 3, crypto/asn1/asn1_lib.c): "if (max < i) return 0": the length
        # octets must fit in the window; a long-form header with empty content at its very end is read.
        if end_limit - p < count:
            raise DerError("truncated length")
        digits = buf[p : p + count]
        p += count
        stripped = digits.lstrip(b"\x00")
        if len(stripped) > 8:
            raise DerError("length too large")
        length = int.from_bytes(stripped, "big")
        if length >= 1 << 63:
            raise DerError("length too large")
        if digits[0] == 0 or length < 0x80:
            der_header = False
    if indefinite:
        pos = p
        while True:
            if pos + 2 <= end_limit and buf[pos] == 0 and buf[pos + 1] == 0:
                return Element(cls, constructed, number, offset, p, pos, pos + 2, False)
            child = read_element(buf, pos, end_limit, depth + 1)
            pos = child.end
    if length > end_limit - p:
        raise DerError("element runs past the end of its container")
    return Element(cls, constructed, number, offset, p, p + length, p + length, der_header)


def elements(buf: bytes, parent: Element, depth: int = 0) -> list[Element]:
    """The elements directly inside a constructed element."""
    items: list[Element] = []
    pos = parent.content_start
    while pos < parent.content_end:
        item = read_element(buf, pos, parent.content_end, depth + 1)
        items.append(item)
        pos = item.end
    return items
