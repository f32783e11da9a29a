"""The audit key and what it signs: seals (``audit.sealed`` records) and the ``audit/head`` file.

The audit key is an ECDSA P-256 key in ``<home>/audit/audit-key.pem`` (PKCS#8, encrypted with
``MATTER_PKI_PASSPHRASE`` when that is set, mode 0600), created on first use; its public key is kept
beside it in ``audit-key.pub.pem`` so verification never needs the passphrase.

Signed messages are fixed-format ASCII so any tool can rebuild them::

    matter-pki-audit-seal/1\\nfirst=<seq>\\nlast=<seq>\\ncount=<n>\\nhead=<sha256 hex of line 'last'>\\n
    matter-pki-audit-head/1\\nseq=<seq>\\nhash=<sha256 hex of line 'seq'>\\nsealed=<seq of last seal or -1>\\n

Signatures are DER ECDSA-with-SHA256, base64 in the JSON. The key fingerprint is the SHA-256 of the
public key's SubjectPublicKeyInfo DER, in hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.backends.keyfile import ENCRYPTED_PEM_LABEL
from matter_pki.errors import AuditError, KeyStoreError

if TYPE_CHECKING:
    from pathlib import Path

KEY_NAME = "audit-key.pem"
PUB_NAME = "audit-key.pub.pem"
HEAD_NAME = "head"
SEAL_EVENT = "audit.sealed"
PASSPHRASE_ENV = "MATTER_PKI_PASSPHRASE"
_HEX64 = frozenset("0123456789abcdef")


def seal_message(first: int, last: int, count: int, head: str) -> bytes:
    """The bytes a seal signs: the sealed seq range, its record count and the hash of its last line."""
    return f"matter-pki-audit-seal/1\nfirst={first}\nlast={last}\ncount={count}\nhead={head}\n".encode()


def head_message(seq: int, hash_hex: str, sealed: int) -> bytes:
    """The bytes the head file signs: the last record's seq and hash, and the seq of the last seal."""
    return f"matter-pki-audit-head/1\nseq={seq}\nhash={hash_hex}\nsealed={sealed}\n".encode()


def fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of the public key's SubjectPublicKeyInfo DER."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def is_sha256_hex(value: object) -> bool:
    """True for a 64-character lower-case hex string."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def verify_signature(public_key: ec.EllipticCurvePublicKey, message: bytes, signature_b64: object) -> bool:
    """True when ``signature_b64`` is a valid base64 DER ECDSA-SHA256 signature of ``message``."""
    if not isinstance(signature_b64, str):
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def load_public_key(data: bytes, where: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM or DER SubjectPublicKeyInfo bytes."""
    try:
        key = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(data)
        )
    except ValueError as e:
        raise AuditError("audit.key_invalid", f"{where} is not a public key: {e}") from e
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AuditError("audit.key_invalid", f"{where} is not an EC P-256 public key")
    return key


@dataclass(frozen=True, slots=True)
class Head:
    """The signed ``audit/head`` file: the last signed record and the last seal."""

    seq: int
    hash: str
    sealed: int
    key: str
    sig: str

    def message(self) -> bytes:
        """The signed bytes."""
        return head_message(self.seq, self.hash, self.sealed)

    def to_json(self) -> bytes:
        """File contents."""
        body = {"seq": self.seq, "hash": self.hash, "sealed": self.sealed, "key": self.key, "sig": self.sig}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Head:
        """Parse the file; raises ``audit.head_invalid`` on anything malformed."""
        try:
            body = json.loads(data)
            head = cls(int(body["seq"]), str(body["hash"]), int(body["sealed"]), str(body["key"]), str(body["sig"]))
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError("audit.head_invalid", f"audit/head is malformed: {e}") from e
        if not is_sha256_hex(head.hash) or head.seq < 0 or head.sealed < -1 or head.sealed > head.seq:
            raise AuditError("audit.head_invalid", "audit/head is malformed: bad seq, hash or sealed value")
        return head


class AuditKey:
    """The audit key pair of one audit folder; the private half is opened only to sign."""

    def __init__(self, audit_dir: Path, passphrase: bytes | None) -> None:
        self.key_path = audit_dir / KEY_NAME
        self.pub_path = audit_dir / PUB_NAME
        self._passphrase = passphrase

    def exists(self) -> bool:
        """True when the private or the public key file is present."""
        return self.key_path.exists() or self.pub_path.exists()

    def create(self) -> ec.EllipticCurvePrivateKey:
        """Generate the key pair (exclusive create, 0600), always encrypted: keys are never written in clear."""
        if not self._passphrase:
            raise KeyStoreError(
                "key.passphrase_missing", f"set {PASSPHRASE_ENV} to create the audit key (it is stored encrypted)"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        encryption = serialization.BestAvailableEncryption(self._passphrase)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
        _write_exclusive(self.key_path, pem, 0o600)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        _write_exclusive(self.pub_path, pub, 0o644)
        return key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key from ``audit-key.pub.pem`` (``audit.key_missing`` when absent)."""
        try:
            data = self.pub_path.read_bytes()
        except FileNotFoundError as e:
            raise AuditError("audit.key_missing", f"audit public key {str(self.pub_path)!r} is missing") from e
        return load_public_key(data, str(self.pub_path))

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """Open the private key; raises ``key.passphrase_missing``/``key.passphrase_wrong``/``audit.key_missing``."""
        try:
            data = self.key_path.read_bytes()
        except FileNotFoundError as e:
            raise AuditError("audit.key_missing", f"audit key {str(self.key_path)!r} is missing") from e
        encrypted = ENCRYPTED_PEM_LABEL in data
        if encrypted and not self._passphrase:
            raise KeyStoreError(
                "key.passphrase_missing", f"the audit key is encrypted: set {PASSPHRASE_ENV} to sign the audit log"
            )
        try:
            key = serialization.load_pem_private_key(data, password=self._passphrase if encrypted else None)
        except ValueError as e:
            raise KeyStoreError("key.passphrase_wrong", "cannot decrypt the audit key: wrong passphrase") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise AuditError("audit.key_invalid", f"{str(self.key_path)!r} is not an EC key")
        return key

    def signer(self) -> ec.EllipticCurvePrivateKey | None:
        """The private key, or None when it cannot be opened now (no or wrong passphrase)."""
        try:
            return self.private_key()
        except KeyStoreError:
            return None


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    """Base64 DER ECDSA-SHA256 signature."""
    return base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
