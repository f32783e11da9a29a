"""Hostile CSR bytes, built by hand: signature flips, re-encodings, extension requests, odd keys."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def tlv(tag: int, value: bytes) -> bytes:
    """Minimal DER TLV."""
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(body)]) + body + value


def read(data: bytes, at: int = 0) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at ``at``."""
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        return tag, at + 2, at + 2 + first
    k = first & 0x7F
    n = int.from_bytes(data[at + 2:at + 2 + k], "big")
    return tag, at + 2 + k, at + 2 + k + n


def parts(csr_der: bytes) -> tuple[bytes, bytes, bytes]:
    """(certificationRequestInfo TLV, signatureAlgorithm TLV, signature BIT STRING TLV) of a CSR."""
    _, start, end = read(csr_der)
    out = []
    at = start
    while at < end:
        _, _, stop = read(csr_der, at)
        out.append(csr_der[at:stop])
        at = stop
    assert len(out) == 3
    return out[0], out[1], out[2]


def key() -> ec.EllipticCurvePrivateKey:
    """A fresh device key."""
    return ec.generate_private_key(ec.SECP256R1())


def csr(k: ec.EllipticCurvePrivateKey, cn: str = "device", extensions: list[x509.ExtensionType] | None = None,
        subject: x509.Name | None = None, attributes: list[tuple[x509.ObjectIdentifier, bytes]] | None = None) -> bytes:
    """A CSR signed by ``k`` (DER)."""
    b = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
    for ext in extensions or []:
        b = b.add_extension(ext, critical=False)
    for oid, value in attributes or []:
        b = b.add_attribute(oid, value)
    return b.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def flip_s(csr_der: bytes) -> bytes:
    """The same CSR with its ECDSA signature's s replaced by n - s: still a valid signature, other bytes."""
    info, alg, bits = parts(csr_der)
    _, vs, ve = read(bits)
    r, s = decode_dss_signature(bits[vs + 1:ve])
    sig = encode_dss_signature(r, P256_N - s)
    return tlv(0x30, info + alg + tlv(0x03, b"\x00" + sig))


def long_form_length(csr_der: bytes) -> bytes:
    """The same CSR with its outer SEQUENCE length in a non-minimal long form (BER, not DER)."""
    _, vs, ve = read(csr_der)
    body = csr_der[vs:ve]
    return bytes([0x30, 0x84]) + len(body).to_bytes(4, "big") + body


def resign(k: ec.EllipticCurvePrivateKey, info: bytes) -> bytes:
    """A CSR whose certificationRequestInfo is ``info`` exactly, signed by ``k``."""
    sig = k.sign(info, ec.ECDSA(hashes.SHA256()))
    alg = tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d040302")))
    return tlv(0x30, info + alg + tlv(0x03, b"\x00" + sig))


def compressed_point_csr(k: ec.EllipticCurvePrivateKey) -> bytes:
    """A CSR whose key is the compressed form of ``k``'s point, correctly self-signed."""
    point = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    spki = tlv(0x30, tlv(0x30, tlv(0x06, bytes.fromhex("2a8648ce3d0201")) + tlv(0x06, bytes.fromhex("2a8648ce3d030107")))
               + tlv(0x03, b"\x00" + point))
    name = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, bytes.fromhex("550403")) + tlv(0x0C, b"device"))))
    info = tlv(0x30, tlv(0x02, b"\x00") + name + spki + bytes([0xA0, 0x00]))
    return resign(k, info)


def nested(depth: int) -> bytes:
    """``depth`` SEQUENCEs inside each other (definite lengths), under 4 KiB for depth <= ~1000."""
    inner = b"\x05\x00"
    for _ in range(depth):
        inner = tlv(0x30, inner)
    return inner


def pem(der_bytes: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    """PEM armour."""
    import base64
    b64 = base64.encodebytes(der_bytes).decode().replace("\n", "")
    lines = "\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()
