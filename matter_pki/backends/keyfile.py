"""Private keys in encrypted PKCS#8 PEM files (the default key store).

Keys are written only encrypted (``BestAvailableEncryption``), with mode 0600, through an
atomic exclusive write so an existing key is never overwritten. Loading refuses unencrypted
files and files readable by group or others, and maps a wrong passphrase to ``key.passphrase_wrong``.
Passphrases never appear in messages, reprs or logs.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.errors import KeyStoreError
from matter_pki.storage.local import atomic_write

KEY_MODE = 0o600
MAX_KEY_FILE_BYTES = 64 * 1024
ENCRYPTED_PEM_LABEL = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def check_passphrase(passphrase: bytes) -> bytes:
    """Refuse an empty passphrase (it would leave the key effectively unprotected)."""
    if not passphrase:
        raise KeyStoreError("key.passphrase_empty", "the key passphrase must not be empty")
    return passphrase


def encrypt_key(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best algorithm the library offers."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(check_passphrase(passphrase)),
    )


def write_key(path: str | Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    """Write an encrypted key file, mode 0600; refuses to replace an existing file (``storage.exists``)."""
    atomic_write(path, encrypt_key(key, passphrase), mode=KEY_MODE, exclusive=True)


def generate_key_file(path: str | Path, passphrase: bytes) -> ec.EllipticCurvePublicKey:
    """Generate a P-256 key, store it encrypted, and return its public key."""
    key = ec.generate_private_key(ec.SECP256R1())
    write_key(path, key, passphrase)
    return key.public_key()


def read_key_file(path: str | Path) -> bytes:
    """The bytes of a private-key file; raises ``key.missing``, ``key.permissions``, ``key.malformed``, ``key.unreadable``."""
    p = Path(path)
    try:
        info = p.stat()
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreError("key.missing", f"key file {str(p)!r} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyStoreError(
                "key.permissions",
                f"key file {str(p)!r} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600 (chmod 600)",
            )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise KeyStoreError("key.malformed", f"key file {str(p)!r} is too large to be a key")
        return p.read_bytes()
    except FileNotFoundError as e:
        raise KeyStoreError("key.missing", f"key file {str(p)!r} does not exist") from e
    except OSError as e:
        raise KeyStoreError("key.unreadable", f"cannot read key file {str(p)!r}: {e.strerror}") from e


def load_key(path: str | Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Decrypt a key file; raises ``key.missing``, ``key.permissions``, ``key.not_encrypted``, ``key.passphrase_wrong``."""
    p = Path(path)
    data = read_key_file(p)
    if ENCRYPTED_PEM_LABEL not in data:
        raise KeyStoreError("key.not_encrypted", f"key file {str(p)!r} is not an encrypted PKCS#8 key; refused")
    try:
        key = serialization.load_pem_private_key(data, password=check_passphrase(passphrase))
    except ValueError as e:
        # cryptography reports a wrong passphrase and a corrupted file alike; the passphrase is the usual cause.
        raise KeyStoreError("key.passphrase_wrong", f"cannot decrypt {str(p)!r}: wrong passphrase or corrupted key") from e
    except TypeError as e:
        raise KeyStoreError("key.not_encrypted", f"key file {str(p)!r} is not encrypted; refused") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError("key.not_p256", f"key file {str(p)!r} does not hold an EC P-256 key")
    return key


@dataclass(frozen=True, slots=True)
class FileKeySigner:
    """Picklable signer factory: each batch worker decrypts the key file once."""

    path: str
    passphrase: bytes = field(repr=False)

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """Open the key."""
        return load_key(self.path, self.passphrase)


def passphrase_from_env(env: str = "MATTER_PKI_PASSPHRASE") -> bytes | None:
    """The passphrase from the environment, or None when unset."""
    value = os.environ.get(env)
    return value.encode() if value is not None else None
