"""Strict intake of device CSRs: the only thing a CSR contributes to a DAC is its public key.

Accepted: exactly one PKCS#10 request, PEM or DER, at most 4 KiB, EC P-256 with an uncompressed
point, ecdsa-with-SHA256 self-signature that verifies (proof of possession). The subject,
attributes and requested extensions are ignored: the DAC profile decides them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.certparse import decode_pem_blocks
from matter_pki.der import DerError
from matter_pki.errors import CsrError
from matter_pki.oid import EC_PUBLIC_KEY, PRIME256V1, SignatureAlgorithmOID

MAX_CSR_BYTES = 4096
_PEM_LABELS = ("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
_TEXT = bytes(range(0x20, 0x7F)) + b"\t\n\r\x0b\x0c"


@dataclass(frozen=True, slots=True)
class DeviceCsr:
    """An accepted CSR: its DER, its SHA-256 (ledger/idempotency key) and its P-256 public key."""

    der: bytes
    sha256: str
    public_key: ec.EllipticCurvePublicKey
    public_point: bytes

    @property
    def key_id(self) -> str:
        """The device key id (``key_id_of_point``): the same for every CSR that carries this key."""
        return key_id_of_point(self.public_point)


def key_id_of_point(point: bytes) -> str:
    """The device key id, the unit of issuance: SHA-256 (hex) of the uncompressed P-256 point."""
    return hashlib.sha256(point).hexdigest()


def _csr_der(data: bytes) -> bytes:
    if not data or not data.strip():
        raise CsrError("csr.empty", "CSR file is empty")
    if len(data) > MAX_CSR_BYTES:
        raise CsrError("csr.too_large", f"CSR is {len(data)} bytes, over the {MAX_CSR_BYTES}-byte limit")
    if b"-----BEGIN" in data:
        try:
            blocks: list[bytes] = []
            for label in _PEM_LABELS:
                blocks.extend(decode_pem_blocks(data, label) or [])
        except DerError as e:
            raise CsrError("csr.pem_invalid", str(e)) from e
        if data.count(b"-----BEGIN") > 1 or len(blocks) > 1:
            raise CsrError("csr.multiple", "the file must hold exactly one CSR")
        if not blocks:
            raise CsrError("csr.pem_invalid", "no CERTIFICATE REQUEST PEM block found")
        if data.translate(None, _TEXT):
            # Text around the block is tolerated (openssl req -text); binary bytes are another CSR in DER.
            raise CsrError("csr.multiple", "the file holds bytes outside its PEM block that are not text (a DER CSR?)")
        return blocks[0]
    return data


def _envelope(data: bytes) -> bytes:
    """The CSR's DER after the checks that need no cryptography (empty, size, PEM/DER, exactly one)."""
    body = _csr_der(data)
    try:
        top = der.read_tlv(body)
    except DerError as e:
        raise CsrError("csr.malformed", f"not a DER CSR: {e}") from e
    if top.tag != der.SEQUENCE:
        raise CsrError("csr.malformed", "not a DER CSR: does not start with a SEQUENCE")
    if top.end != len(body):
        # A second DER object (or garbage) after the first one.
        raise CsrError("csr.multiple", f"{len(body) - top.end} byte(s) follow the CSR")
    return body


def csr_digest(data: bytes) -> str:
    """SHA-256 (hex) of the CSR's DER, as ``load_device_csr(data).sha256``, without verifying anything cryptographic.

    Raises CsrError for what the envelope alone shows (``csr.empty``, ``csr.too_large``,
    ``csr.pem_invalid``, ``csr.multiple``, ``csr.malformed``); a CSR that passes may still be refused
    by ``load_device_csr`` (key, curve, point, signature).
    """
    return hashlib.sha256(_envelope(data)).hexdigest()


def load_device_csr(data: bytes) -> DeviceCsr:
    """Parse and check one device CSR; raises CsrError with a ``csr.*`` code."""
    body = _envelope(data)
    try:
        csr = x509.load_der_x509_csr(body)
        signature_oid = csr.signature_algorithm_oid
        public_key = csr.public_key()
    except Exception as e:  # cryptography reports malformed input as ValueError and friends
        raise CsrError("csr.malformed", f"CSR cannot be parsed: {e}") from e
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise CsrError("csr.key_not_ec", f"CSR key is {type(public_key).__name__.replace('_', '')}, must be EC P-256")
    if not isinstance(public_key.curve, ec.SECP256R1):
        raise CsrError("csr.key_curve", f"CSR key is on {public_key.curve.name}, must be P-256 (secp256r1)")
    point = _raw_point(body)
    if len(point) != 65 or point[0] != 0x04:
        raise CsrError("csr.key_point", "CSR key must be an uncompressed P-256 point (65 bytes, 0x04...)")
    if signature_oid != SignatureAlgorithmOID.ECDSA_WITH_SHA256:
        raise CsrError("csr.signature_algorithm", f"CSR signature algorithm {signature_oid.dotted_string}, must be ecdsa-with-SHA256")
    try:
        valid = csr.is_signature_valid
    except Exception as e:
        raise CsrError("csr.malformed", f"CSR signature cannot be checked: {e}") from e
    if not valid:
        raise CsrError("csr.signature_invalid", "CSR self-signature does not verify (no proof of key possession)")
    return DeviceCsr(body, hashlib.sha256(body).hexdigest(), public_key, point)


def _raw_point(body: bytes) -> bytes:
    """subjectPublicKey bits as encoded (cryptography would silently decompress a point)."""
    try:
        info = der.children(body, der.children(body, der.read_tlv(body))[0])
        spki = der.children(body, info[2])
        alg = der.children(body, spki[0])
        if der.decode_oid(alg[0].value(body)) != EC_PUBLIC_KEY.dotted_string:
            return b""
        if len(alg) < 2 or alg[1].tag != der.OID or der.decode_oid(alg[1].value(body)) != PRIME256V1.dotted_string:
            return b""
        bits = spki[1].value(body)
        return bits[1:] if bits and bits[0] == 0 else b""
    except (DerError, IndexError):
        return b""
