"""Private keys in encrypted PKCS#8 PEM files (the default key store).

Keys are written only encrypted, with mode 0600, through an atomic exclusive write so an existing
key is never overwritten. Loading refuses unencrypted files and files readable by group or others,
and maps a wrong passphrase to ``key.passphrase_wrong``. Passphrases never appear in messages,
reprs or logs.

Encryption: a standard PKCS#8 ``EncryptedPrivateKeyInfo`` (RFC 5208) with PBES2 (RFC 8018):
PBKDF2-HMAC-SHA256 with ``PBKDF2_ITERATIONS`` (600,000, OWASP's 2023 figure for that PRF) over a
16-byte random salt, and AES-256-CBC. cryptography's ``BestAvailableEncryption`` writes the same
structure but with 2,048 iterations and offers no way to set the count, so the structure is built
here from cryptography's primitives and ``matter_pki.der``. OpenSSL (``openssl pkey -passin``),
cryptography's ``load_pem_private_key`` and every PKCS#8 reader that knows PBES2 read these files.
scrypt was not chosen: OpenSSL 3.0 caps scrypt at 32 MiB when it reads a key, below OWASP's
N=2^17, r=8; PBKDF2-HMAC-SHA256 is also the FIPS-approved choice.

Loading refuses a key file whose KDF is weaker than the floor (``key.kdf_weak``: PBKDF2 under
``PBKDF2_MIN_ITERATIONS`` or with HMAC-SHA1, scrypt under ``SCRYPT_MIN_COST``, PBES1, anything
unrecognised): ``matter-pki home rekey`` re-encrypts a home's key files (same passphrase,
audited). Each open costs one KDF run (about 0.2 s on one core); a batch opens a key once.
"""

from __future__ import annotations

import base64
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from matter_pki import der
from matter_pki.errors import KeyStoreError
from matter_pki.storage.local import atomic_write

KEY_MODE = 0o600
MAX_KEY_FILE_BYTES = 64 * 1024
_PEM_TYPE = b"ENCRYPTED PRIVATE KEY"
ENCRYPTED_PEM_LABEL = b"-----BEGIN " + _PEM_TYPE + b"-----"
_PEM_END = b"-----END " + _PEM_TYPE + b"-----"
#: PBKDF2-HMAC-SHA256 iterations for every key file written (OWASP Password Storage Cheat Sheet, 2023).
PBKDF2_ITERATIONS = 600_000
#: Key files with fewer PBKDF2 iterations (SHA-2 PRF) are refused on load (``key.kdf_weak``).
PBKDF2_MIN_ITERATIONS = 600_000
#: Key files asking for more PBKDF2 iterations are refused unread (``key.malformed``): a hostile count must not hang a load.
PBKDF2_MAX_ITERATIONS = 20_000_000
#: scrypt key files need N * r * p at least this (OWASP 2023's weakest listed setting, N=2^13 r=8 p=10).
SCRYPT_MIN_COST = 10 * 8 * 2**13
SALT_BYTES = 16

_OID_PBES2 = "1.2.840.113549.1.5.13"
_OID_PBKDF2 = "1.2.840.113549.1.5.12"
_OID_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_OID_HMAC_SHA256 = "1.2.840.113549.2.9"
_PRFS = {
    "1.2.840.113549.2.7": "hmacWithSHA1",
    "1.2.840.113549.2.8": "hmacWithSHA224",
    _OID_HMAC_SHA256: "hmacWithSHA256",
    "1.2.840.113549.2.10": "hmacWithSHA384",
    "1.2.840.113549.2.11": "hmacWithSHA512",
}
_STRONG_PRFS = frozenset({"hmacWithSHA256", "hmacWithSHA384", "hmacWithSHA512"})
_PEM_BLOCK = re.compile(re.escape(ENCRYPTED_PEM_LABEL) + rb"\s*(.*?)" + re.escape(_PEM_END), re.S)


@dataclass(frozen=True, slots=True)
class KeyFileKdf:
    """How an encrypted PKCS#8 key file derives its key: ``pbkdf2``, ``scrypt``, or another scheme (weak)."""

    scheme: str
    prf: str = ""
    iterations: int = 0
    scrypt_cost: int = 0

    @property
    def strong(self) -> bool:
        """True when at or above the floor (``PBKDF2_MIN_ITERATIONS`` / ``SCRYPT_MIN_COST``)."""
        if self.scheme == "pbkdf2":
            return self.prf in _STRONG_PRFS and self.iterations >= PBKDF2_MIN_ITERATIONS
        return self.scheme == "scrypt" and self.scrypt_cost >= SCRYPT_MIN_COST

    def describe(self) -> str:
        """``PBKDF2-hmacWithSHA256 x 2048``, ``scrypt N*r*p=...``, or the scheme."""
        if self.scheme == "pbkdf2":
            return f"PBKDF2-{self.prf} x {self.iterations}"
        if self.scheme == "scrypt":
            return f"scrypt N*r*p={self.scrypt_cost}"
        return self.scheme


def key_file_kdf(data: bytes) -> KeyFileKdf | None:
    """The KDF of an encrypted PKCS#8 PEM; None when the bytes are not a readable ``EncryptedPrivateKeyInfo``."""
    match = _PEM_BLOCK.search(data)
    if match is None:
        return None
    try:
        return _kdf_of(base64.b64decode(b"".join(match.group(1).split()), validate=True))
    except (ValueError, IndexError):  # binascii.Error and der.DerError are ValueErrors
        return None


def _kdf_of(blob: bytes) -> KeyFileKdf:
    top = der.expect(der.read_tlv(blob), der.SEQUENCE, "EncryptedPrivateKeyInfo")
    algorithm = der.expect(der.children(blob, top)[0], der.SEQUENCE, "encryptionAlgorithm")
    oid_tlv, *params = der.children(blob, algorithm)
    scheme = der.decode_oid(der.expect(oid_tlv, der.OID, "algorithm").value(blob))
    if scheme != _OID_PBES2:
        return KeyFileKdf(f"PBES1 or other ({scheme})")
    kdf_alg = der.children(blob, der.expect(params[0], der.SEQUENCE, "PBES2-params"))[0]
    kdf_oid, *kdf_params = der.children(blob, der.expect(kdf_alg, der.SEQUENCE, "keyDerivationFunc"))
    kdf = der.decode_oid(der.expect(kdf_oid, der.OID, "kdf").value(blob))
    if kdf not in (_OID_PBKDF2, _OID_SCRYPT):
        return KeyFileKdf(f"PBES2 with KDF {kdf}")
    fields = der.children(blob, der.expect(kdf_params[0], der.SEQUENCE, "kdf params"))
    if kdf == _OID_PBKDF2:
        iterations = _integer(blob, fields[1])
        prf = "hmacWithSHA1"  # the DEFAULT of PBKDF2-params
        for extra in fields[2:]:
            if extra.tag == der.SEQUENCE:
                prf_oid = der.decode_oid(der.expect(der.children(blob, extra)[0], der.OID, "prf").value(blob))
                prf = _PRFS.get(prf_oid, prf_oid)
        return KeyFileKdf("pbkdf2", prf=prf, iterations=iterations)
    n, r, p = (_integer(blob, f) for f in fields[1:4])
    return KeyFileKdf("scrypt", scrypt_cost=n * r * p)


def _integer(blob: bytes, tlv: der.Tlv) -> int:
    return int.from_bytes(der.expect(tlv, der.INTEGER, "INTEGER").value(blob), "big", signed=True)


def check_passphrase(passphrase: bytes) -> bytes:
    """Refuse an empty passphrase (it would leave the key effectively unprotected)."""
    if not passphrase:
        raise KeyStoreError("key.passphrase_empty", "the key passphrase must not be empty")
    return passphrase


def encrypt_key(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with PBES2: PBKDF2-HMAC-SHA256 (``PBKDF2_ITERATIONS``), AES-256-CBC."""
    secret = check_passphrase(passphrase)
    plain = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt, iv = os.urandom(SALT_BYTES), os.urandom(16)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, PBKDF2_ITERATIONS).derive(secret)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()

    def seq(*parts: bytes) -> bytes:
        return der.encode_tlv(der.SEQUENCE, b"".join(parts))

    prf = seq(der.encode_oid(_OID_HMAC_SHA256), der.encode_tlv(der.NULL, b""))
    pbkdf2 = seq(der.encode_oid(_OID_PBKDF2), seq(der.encode_tlv(der.OCTET_STRING, salt), der.encode_integer(PBKDF2_ITERATIONS), prf))
    cipher = seq(der.encode_oid(_OID_AES256_CBC), der.encode_tlv(der.OCTET_STRING, iv))
    info = seq(seq(der.encode_oid(_OID_PBES2), seq(pbkdf2, cipher)), der.encode_tlv(der.OCTET_STRING, ciphertext))
    return der.pem_encode(_PEM_TYPE.decode(), info)


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


def decrypt_key(data: bytes, passphrase: bytes, where: str, *, allow_weak_kdf: bool = False) -> ec.EllipticCurvePrivateKey:
    """Decrypt encrypted PKCS#8 PEM bytes; ``key.not_encrypted``, ``key.kdf_weak``, ``key.passphrase_wrong``, ``key.not_p256``.

    ``allow_weak_kdf``: only for re-encrypting a key file (``matter-pki home rekey``).
    """
    if ENCRYPTED_PEM_LABEL not in data:
        raise KeyStoreError("key.not_encrypted", f"key file {where} is not an encrypted PKCS#8 key; refused")
    kdf = key_file_kdf(data)
    if kdf is None:
        raise KeyStoreError("key.malformed", f"key file {where} is not a readable encrypted PKCS#8 key")
    if kdf.iterations > PBKDF2_MAX_ITERATIONS:
        raise KeyStoreError(
            "key.malformed", f"key file {where} asks for {kdf.iterations} PBKDF2 iterations (at most {PBKDF2_MAX_ITERATIONS})"
        )
    if not kdf.strong and not allow_weak_kdf:
        raise KeyStoreError(
            "key.kdf_weak",
            f"key file {where} is protected by a weak key derivation ({kdf.describe()}; at least PBKDF2-HMAC-SHA256 x "
            f"{PBKDF2_MIN_ITERATIONS} is required): re-encrypt the home's key files with 'matter-pki home rekey'",
        )
    try:
        key = serialization.load_pem_private_key(data, password=check_passphrase(passphrase))
    except ValueError as e:
        # cryptography reports a wrong passphrase and a corrupted file alike; the passphrase is the usual cause.
        raise KeyStoreError("key.passphrase_wrong", f"cannot decrypt {where}: wrong passphrase or corrupted key") from e
    except TypeError as e:
        raise KeyStoreError("key.not_encrypted", f"key file {where} is not encrypted; refused") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyStoreError("key.not_p256", f"key file {where} does not hold an EC P-256 key")
    return key


def load_key(path: str | Path, passphrase: bytes, *, allow_weak_kdf: bool = False) -> ec.EllipticCurvePrivateKey:
    """Decrypt a key file; raises ``key.missing``, ``key.permissions``, ``key.not_encrypted``, ``key.kdf_weak``, ``key.passphrase_wrong``."""
    p = Path(path)
    return decrypt_key(read_key_file(p), passphrase, repr(str(p)), allow_weak_kdf=allow_weak_kdf)


@dataclass(frozen=True, slots=True)
class FileKeySigner:
    """Picklable signer factory: each batch worker decrypts the key file once."""

    path: str
    passphrase: bytes = field(repr=False)
    #: Only to open a key that is about to be re-encrypted (``home upgrade``).
    allow_weak_kdf: bool = False

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """Open the key."""
        return load_key(self.path, self.passphrase, allow_weak_kdf=self.allow_weak_kdf)


def passphrase_from_env(env: str = "MATTER_PKI_PASSPHRASE") -> bytes | None:
    """The passphrase from the environment, or None when unset."""
    value = os.environ.get(env)
    return value.encode() if value is not None else None
