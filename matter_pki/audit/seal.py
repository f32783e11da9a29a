"""The audit key and what it signs: seals (``audit.sealed`` records), the ``audit/head`` file, its binding.

The audit key is an ECDSA P-256 key made once, when the home is created (``matter-pki init``), and
never again: a missing key is an error, not a reason to mint a new one. It lives in the home's key
store: ``<home>/audit/audit-key.pem`` (PKCS#8, always encrypted with ``MATTER_PKI_PASSPHRASE``,
mode 0600) or, for a PKCS#11 home, on the token (``audit-key.json`` names it). Its public key is
kept beside it in ``audit-key.pub.pem`` so verification never needs a secret, and
``binding.json`` holds the PAA key's signature over the audit key: a key swapped in without the
PAA key's consent is visible to ``audit verify`` with nothing but the home itself.

Signed messages are fixed-format ASCII so any tool can rebuild them::

    matter-pki-audit-seal/1\\nfirst=<seq>\\nlast=<seq>\\ncount=<n>\\nhead=<sha256 hex of line 'last'>\\n
    matter-pki-audit-head/1\\nseq=<seq>\\nhash=<sha256 hex of line 'seq'>\\nsealed=<seq of last seal or -1>\\n
    matter-pki-audit-head/2\\nseq=...\\nhash=...\\nsealed=...\\nledger=<gen>:<chain sha256 hex>\\n
    matter-pki-audit-binding/1\\nhome=<home id>\\nkey=<audit key fingerprint>\\npaa=<sha256 hex of the PAA DER>\\n

Head version 2 also signs the last ledger milestone the log announced (the issuance ledger's
transaction count and hash chain), so the ledger and the log vouch for each other. The head also
carries, unsigned, the bytes of the append it announces (``base`` + ``pending``): written before
those bytes reach ``audit.log``, it lets the next writer finish an append that a kill or a full
disk interrupted. Those bytes need no signature of their own: they must hash-chain from ``base``
to the signed ``hash``.

Signatures are DER ECDSA-with-SHA256, base64 in the JSON. The key fingerprint is the SHA-256 of the
public key's SubjectPublicKeyInfo DER, in hex.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.backends.keyfile import ENCRYPTED_PEM_LABEL, decrypt_key, encrypt_key
from matter_pki.errors import AuditError, KeyStoreError
from matter_pki.storage.local import write_all

if TYPE_CHECKING:
    from pathlib import Path

KEY_NAME = "audit-key.pem"
PUB_NAME = "audit-key.pub.pem"
REF_NAME = "audit-key.json"
BINDING_NAME = "binding.json"
HEAD_NAME = "head"
SEAL_EVENT = "audit.sealed"
PASSPHRASE_ENV = "MATTER_PKI_PASSPHRASE"
#: Largest ``audit/head`` accepted (it carries the bytes of one append, see ``log.MAX_APPEND_RECORDS``).
MAX_HEAD_BYTES = 16 * 1024 * 1024
#: Largest public key, key reference or binding file accepted.
MAX_SMALL_FILE = 64 * 1024
_HEX64 = frozenset("0123456789abcdef")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def seal_message(first: int, last: int, count: int, head: str) -> bytes:
    """The bytes a seal signs: the sealed seq range, its record count and the hash of its last line."""
    return f"matter-pki-audit-seal/1\nfirst={first}\nlast={last}\ncount={count}\nhead={head}\n".encode()


def head_message(seq: int, hash_hex: str, sealed: int, ledger: str | None = None) -> bytes:
    """The bytes the head file signs (version 2 when it names a ledger milestone ``<gen>:<chain>``)."""
    if ledger is None:
        return f"matter-pki-audit-head/1\nseq={seq}\nhash={hash_hex}\nsealed={sealed}\n".encode()
    return f"matter-pki-audit-head/2\nseq={seq}\nhash={hash_hex}\nsealed={sealed}\nledger={ledger}\n".encode()


def binding_message(home_id: str, key_fp: str, paa_sha256: str) -> bytes:
    """The bytes the PAA key signs to certify the audit key of one home."""
    return f"matter-pki-audit-binding/1\nhome={home_id}\nkey={key_fp}\npaa={paa_sha256}\n".encode()


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


def read_audit_file(path: Path, max_bytes: int, *, what: str | None = None) -> bytes | None:
    """A file of the audit folder: None when absent; ``audit.not_regular`` / ``audit.oversized`` refused.

    Never follows a symlink and never blocks (a FIFO is refused, not read), and reads at most
    ``max_bytes + 1`` bytes whatever the file claims to be.
    """
    label = what or f"audit/{path.name}"
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            raise AuditError("audit.not_regular", f"{label} is a symlink; refused") from e
        raise AuditError("audit.unreadable", f"cannot read {label}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AuditError("audit.not_regular", f"{label} is not a regular file; refused")
        if info.st_size > max_bytes:
            raise AuditError("audit.oversized", f"{label} is {info.st_size} bytes, over the {max_bytes}-byte limit")
        chunks: list[bytes] = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as e:
        raise AuditError("audit.unreadable", f"cannot read {label}: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise AuditError("audit.oversized", f"{label} is over the {max_bytes}-byte limit")
    return data


@dataclass(frozen=True, slots=True)
class Head:
    """The signed ``audit/head`` file: the last record, the last seal, the last ledger milestone."""

    seq: int
    hash: str
    sealed: int
    key: str
    sig: str
    ledger: str | None = None
    #: The append this head announces: (seq, hash, byte size) of the log before it, and its bytes.
    base: tuple[int, str, int] | None = None
    pending: bytes | None = None

    def message(self) -> bytes:
        """The signed bytes."""
        return head_message(self.seq, self.hash, self.sealed, self.ledger)

    @property
    def ledger_gen(self) -> int:
        """Ledger transactions announced so far (0 when the head names none)."""
        return int(self.ledger.split(":", 1)[0]) if self.ledger else 0

    @property
    def ledger_chain(self) -> str | None:
        """Hash chain of the ledger after ``ledger_gen`` transactions."""
        return self.ledger.split(":", 1)[1] if self.ledger else None

    def to_json(self) -> bytes:
        """File contents."""
        body: dict[str, Any] = {"seq": self.seq, "hash": self.hash, "sealed": self.sealed, "key": self.key, "sig": self.sig}
        if self.ledger is not None:
            body["ledger"] = self.ledger
        if self.base is not None and self.pending is not None:
            body["base"] = list(self.base)
            body["pending"] = base64.b64encode(self.pending).decode()
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Head:
        """Parse the file; raises ``audit.head_invalid`` on anything malformed."""
        try:
            body = json.loads(data)
            ledger = body.get("ledger")
            base = body.get("base")
            pending = body.get("pending")
            head = cls(
                _int(body["seq"]), str(body["hash"]), _int(body["sealed"]), str(body["key"]), str(body["sig"]),
                ledger=None if ledger is None else str(ledger),
                base=None if base is None else (_int(base[0]), str(base[1]), _int(base[2])),
                pending=None if pending is None else base64.b64decode(str(pending), validate=True),
            )
        except (ValueError, KeyError, TypeError, IndexError, binascii.Error) as e:
            raise AuditError("audit.head_invalid", f"audit/head is malformed: {e}") from e
        if not is_sha256_hex(head.hash) or head.seq < 0 or head.sealed < -1 or head.sealed > head.seq:
            raise AuditError("audit.head_invalid", "audit/head is malformed: bad seq, hash or sealed value")
        if head.ledger is not None:
            gen, _, chain = head.ledger.partition(":")
            if not gen.isdigit() or not is_sha256_hex(chain):
                raise AuditError("audit.head_invalid", "audit/head is malformed: bad ledger milestone")
        if (head.base is None) != (head.pending is None) or (
            head.base is not None and (head.base[0] < -1 or head.base[2] < 0 or not is_sha256_hex(head.base[1]))
        ):
            raise AuditError("audit.head_invalid", "audit/head is malformed: bad pending append")
        return head


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not an integer")
    return value


@dataclass(frozen=True, slots=True)
class Binding:
    """``audit/binding.json``: the PAA key's signature certifying the audit key of one home."""

    home: str
    key: str
    paa: str
    sig: str

    def message(self) -> bytes:
        """The signed bytes."""
        return binding_message(self.home, self.key, self.paa)

    def to_json(self) -> bytes:
        """File contents."""
        body = {"home": self.home, "key": self.key, "paa": self.paa, "sig": self.sig}
        return json.dumps(body, sort_keys=True, indent=2).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Binding:
        """Parse the file; ``audit.binding_invalid`` when malformed."""
        try:
            body = json.loads(data)
            return cls(str(body["home"]), str(body["key"]), str(body["paa"]), str(body["sig"]))
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError("audit.binding_invalid", f"audit/{BINDING_NAME} is malformed: {e}") from e

    @classmethod
    def make(
        cls, paa_key: ec.EllipticCurvePrivateKey, *, home_id: str, audit_key: ec.EllipticCurvePublicKey, paa_der: bytes
    ) -> Binding:
        """Certify ``audit_key`` with the PAA key."""
        key_fp, paa_fp = fingerprint(audit_key), hashlib.sha256(paa_der).hexdigest()
        return cls(home_id, key_fp, paa_fp, sign(paa_key, binding_message(home_id, key_fp, paa_fp)))

    def problem(self, *, home_id: str | None, key_fp: str, paa_der: bytes) -> str | None:
        """Why this binding does not certify ``key_fp`` for this home and PAA, or None when it does."""
        from cryptography import x509

        if self.key != key_fp:
            return f"the audit key {key_fp} is not the key the PAA certified ({self.key})"
        if self.paa != hashlib.sha256(paa_der).hexdigest():
            return "the binding was made by another PAA certificate"
        if home_id is not None and self.home != home_id:
            return f"the binding belongs to home {self.home}, not {home_id}"
        paa_key = x509.load_der_x509_certificate(paa_der).public_key()
        if not isinstance(paa_key, ec.EllipticCurvePublicKey) or not verify_signature(paa_key, self.message(), self.sig):
            return "the PAA signature over the audit key does not verify"
        return None


class AuditKey:
    """The audit key pair of one audit folder, file key store; the private half is opened only to sign."""

    def __init__(self, audit_dir: Path, passphrase: bytes | None) -> None:
        self.dir = audit_dir
        self.key_path = audit_dir / KEY_NAME
        self.pub_path = audit_dir / PUB_NAME
        self._passphrase = passphrase

    def exists(self) -> bool:
        """True when the private key file, the token reference or the public key file is present."""
        return any(os.path.lexists(p) for p in (self.key_path, self.pub_path, self.dir / REF_NAME))

    def create(self) -> ec.EllipticCurvePrivateKey:
        """Generate the key pair (exclusive create, 0600), always encrypted; only ``init`` calls this."""
        if not self._passphrase:
            raise KeyStoreError(
                "key.passphrase_missing", f"set {PASSPHRASE_ENV} to create the audit key (it is stored encrypted)"
            )
        if self.exists():
            raise AuditError("audit.key_exists", f"{str(self.dir)!r} already has an audit key; it is never replaced")
        key = ec.generate_private_key(ec.SECP256R1())
        _write_exclusive(self.key_path, encrypt_key(key, self._passphrase), 0o600)
        write_public_key(self.dir, key.public_key())
        return key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key from ``audit-key.pub.pem`` (``audit.key_missing`` when absent)."""
        data = read_audit_file(self.pub_path, MAX_SMALL_FILE)
        if data is None:
            raise AuditError(
                "audit.key_missing",
                f"audit public key {str(self.pub_path)!r} is missing: restore audit/ from a backup "
                "(a home never gets a new audit key)",
            )
        return load_public_key(data, str(self.pub_path))

    def private_key(self, *, allow_weak_kdf: bool = False) -> ec.EllipticCurvePrivateKey:
        """Open the private key; ``key.passphrase_missing``/``key.passphrase_wrong``/``key.kdf_weak``/``audit.key_missing``.

        ``allow_weak_kdf``: only to re-encrypt the key file (``matter-pki home rekey``).
        """
        data = read_audit_file(self.key_path, MAX_SMALL_FILE)
        if data is None:
            raise AuditError(
                "audit.key_missing",
                f"audit key {str(self.key_path)!r} is missing: restore audit/ from a backup "
                "(a home never gets a new audit key)",
            )
        if ENCRYPTED_PEM_LABEL not in data:
            raise AuditError("audit.key_invalid", f"{str(self.key_path)!r} is not an encrypted key; refused")
        if not self._passphrase:
            raise KeyStoreError(
                "key.passphrase_missing", f"the audit key is encrypted: set {PASSPHRASE_ENV} to sign the audit log"
            )
        try:
            return decrypt_key(data, self._passphrase, f"{str(self.key_path)!r} (the audit key)", allow_weak_kdf=allow_weak_kdf)
        except KeyStoreError as e:
            if e.code == "key.not_p256":
                raise AuditError("audit.key_invalid", f"{str(self.key_path)!r} is not an EC P-256 key") from e
            raise


def write_public_key(audit_dir: Path, public_key: ec.EllipticCurvePublicKey) -> None:
    """Write ``audit-key.pub.pem`` (exclusive: an existing public key is never replaced)."""
    pub = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_exclusive(audit_dir / PUB_NAME, pub, 0o644)


def sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    """Base64 DER ECDSA-SHA256 signature."""
    return base64.b64encode(key.sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def _write_exclusive(path: Path, data: bytes, mode: int) -> None:
    from matter_pki.storage.local import storage_error

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, mode)
    except FileExistsError as e:
        raise AuditError("audit.key_exists", f"{str(path)!r} exists; it is never replaced") from e
    except OSError as e:
        raise storage_error(e, repr(str(path))) from e
    try:
        write_all(fd, data)
        os.fsync(fd)
    except OSError as e:
        os.close(fd)
        path.unlink()
        raise storage_error(e, repr(str(path))) from e
    os.close(fd)
