"""Re-encrypt a home's key files with the current key-file KDF (``matter-pki home rekey``).

Key files written before the key-file KDF was strengthened (PBKDF2 with 2,048 iterations, what
``BestAvailableEncryption`` writes) are refused on load (``key.kdf_weak``). This re-encrypts every
such file of the home with the same passphrase: the CA keys, the delegated CRL signers' keys, the
audit key and the signing service's keys (files only; keys on a PKCS#11 token are not files).

Order, so that nothing changes unaudited: the weak files are found and decrypted (a wrong
passphrase changes nothing), one ``home.rekeyed`` record naming them is appended to the audit
log, then each file is replaced atomically by its re-encryption, checked to decrypt to the same
key before it replaces the old one. A kill or failure after the record leaves some files
re-encrypted and some not: running the command again finishes (and announces the rest). The
key material does not change, so certificates, the audit key's binding and the ledger stay valid.

Old copies elsewhere (backups) keep their weak encryption: replace them with the new files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization

from matter_pki.audit.seal import KEY_NAME, read_audit_file
from matter_pki.backends import keyfile
from matter_pki.errors import KeyStoreError
from matter_pki.local.home import PAA_ID
from matter_pki.local.keys import KEY_FILE
from matter_pki.storage.local import atomic_write

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.audit import AuditLog
    from matter_pki.local.home import PkiHome
    from matter_pki.local.keys import Secrets

REKEY_EVENT = "home.rekeyed"


@dataclass(frozen=True, slots=True)
class KeyFileState:
    """One key file of the home: where (relative to the home), what it is, and its KDF before the run."""

    path: str
    what: str
    kdf: str
    strong: bool


@dataclass(slots=True)
class RekeyReport:
    """What ``rekey_home`` found and did."""

    files: list[KeyFileState] = field(default_factory=list)
    rekeyed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the shape of ``home rekey --format json``)."""
        return {
            "rekeyed": list(self.rekeyed),
            "kdf": current_kdf(),
            "files": [{"path": f.path, "what": f.what, "kdf_before": f.kdf, "strong_before": f.strong} for f in self.files],
        }


def current_kdf() -> str:
    """The KDF new key files get, as reports name it."""
    return keyfile.KeyFileKdf("pbkdf2", prf="hmacWithSHA256", iterations=keyfile.PBKDF2_ITERATIONS).describe()


def home_key_files(home: PkiHome) -> list[tuple[Path, str]]:
    """Every encrypted key file of the home (file key store): (path, what it is)."""
    from matter_pki.local import crl_signers
    from matter_pki.serve.tls import ServePaths

    found: list[tuple[Path, str]] = []
    for ca_id in ([PAA_ID] if home.has_ca(PAA_ID) else []) + home.pai_ids():
        ref = home.ca_info(ca_id).key
        if ref is not None and ref.store == "file":
            found.append((home.ca_dir(ca_id) / (ref.file or KEY_FILE), f"CA key of {ca_id}"))
    root = home.path / crl_signers.SIGNERS_DIR
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if (folder / crl_signers.INFO_FILE).is_file():
            ref = crl_signers.load_info(home, folder.name).key
            if ref.store == "file":
                found.append((folder / (ref.file or KEY_FILE), f"key of CRL signer {folder.name}"))
    audit_key = home.path / "audit" / KEY_NAME
    if read_audit_file(audit_key, keyfile.MAX_KEY_FILE_BYTES) is not None:
        found.append((audit_key, "audit key"))
    serve = ServePaths.of(home)
    for path, what in ((serve.ca_key, "signing service CA key"), (serve.server_key, "signing service server key")):
        if path.is_file():
            found.append((path, what))
    return found


def _reencrypt(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    """Replace ``path`` by ``key`` encrypted with the current KDF, once the new bytes are shown to decrypt to it."""
    data = keyfile.encrypt_key(key, passphrase)
    again = keyfile.decrypt_key(data, passphrase, repr(str(path)))
    plain = serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    if again.private_bytes(*plain) != key.private_bytes(*plain):
        raise KeyStoreError("key.rekey_mismatch", f"the re-encryption of {str(path)!r} does not give back its key; unchanged")
    atomic_write(path, data, mode=keyfile.KEY_MODE)


def rekey_home(home: PkiHome, secrets: Secrets, *, audit: AuditLog | None = None) -> RekeyReport:
    """Re-encrypt every key file whose KDF is under the floor; announce them first (``home.rekeyed``).

    ``audit``: the home's audit log already opened by the caller (``home upgrade``); by default it is
    opened here with an audit key that may itself be one of the weak files.
    """
    from matter_pki.local.state import open_audit

    home.require()
    report = RekeyReport()
    with home.lock():
        weak: list[tuple[Path, str]] = []
        for path, what in home_key_files(home):
            kdf = keyfile.key_file_kdf(keyfile.read_key_file(path))
            relative = str(path.relative_to(home.path))
            report.files.append(KeyFileState(relative, what, kdf.describe() if kdf else "unreadable", bool(kdf and kdf.strong)))
            if kdf is None or not kdf.strong:
                weak.append((path, relative))
        if not weak:
            return report
        passphrase = secrets.passphrase()
        # Decrypt them all first: a wrong passphrase or a damaged file changes nothing.
        keys = [keyfile.load_key(path, passphrase, allow_weak_kdf=True) for path, _relative in weak]
        log = audit if audit is not None else open_audit(home, secrets, allow_weak_kdf=True)
        log.record(REKEY_EVENT, files=[relative for _path, relative in weak], kdf=current_kdf())
        for (path, relative), key in zip(weak, keys, strict=True):
            _reencrypt(path, key, passphrase)
            report.rekeyed.append(relative)
    return report


__all__ = ["REKEY_EVENT", "KeyFileState", "RekeyReport", "current_kdf", "home_key_files", "rekey_home"]
