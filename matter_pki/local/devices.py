"""Factory device key pairs and CSRs (``matter-pki csr generate``): P-256, one key per device.

File store: ``<name>.key`` (encrypted PKCS#8, mode 0600) and ``<name>.csr``. PKCS#11 store: the key
pair is generated on the token (label ``<name>``) and only ``<name>.csr`` is written, plus
``pkcs11-keys.json`` mapping names to token key ids. Nothing is overwritten: all target names are
checked before the first key is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from matter_pki.backends.keyfile import check_passphrase, write_key
from matter_pki.backends.pkcs11 import Pkcs11Config, generate_keypair, load_private_key
from matter_pki.errors import InputError, StorageError
from matter_pki.local.issue import check_name
from matter_pki.storage.local import atomic_write

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

MAX_COUNT = 1_000_000
MANIFEST = "pkcs11-keys.json"


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """One generated device: its name, CSR file, and key location."""

    name: str
    csr_path: Path
    key_path: Path | None = None
    key_id: str | None = None


def device_names(prefix: str, start: int, count: int) -> list[str]:
    """``<prefix><n>`` with at least five digits, checked against the inbox naming rules."""
    if not 1 <= count <= MAX_COUNT:
        raise InputError("input.count", f"--count must be 1..{MAX_COUNT}")
    if start < 0:
        raise InputError("input.count", "--start must not be negative")
    width = max(5, len(str(start + count - 1)))
    return [check_name(f"{prefix}{n:0{width}d}.csr") for n in range(start, start + count)]


def _csr(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    # The subject is informative only: the DAC subject is built from the PAI VID and the PID.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def generate_device_csrs(
    out_dir: Path,
    *,
    count: int,
    prefix: str = "device-",
    start: int = 1,
    passphrase: bytes | None = None,
    pkcs11: Pkcs11Config | None = None,
    on_progress: Callable[[DeviceRequest], None] | None = None,
) -> list[DeviceRequest]:
    """Make ``count`` key pairs and CSRs in ``out_dir`` (file keys need ``passphrase``; HSM keys ``pkcs11``)."""
    names = device_names(prefix, start, count)
    if pkcs11 is None:
        if passphrase is None:
            raise InputError("input.passphrase", "file keys need a passphrase")
        check_passphrase(passphrase)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot create {str(out_dir)!r}: {e.strerror}") from e
    for name in names:
        for suffix in (".csr", ".key"):
            if (out_dir / f"{name}{suffix}").exists():
                raise StorageError("storage.exists", f"{str(out_dir / (name + suffix))!r} exists; choose another --prefix or --start")
    made: list[DeviceRequest] = []
    manifest: dict[str, dict[str, str]] = {}
    manifest_path = out_dir / MANIFEST
    if pkcs11 is not None and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
    try:
        for name in names:
            csr_path = out_dir / f"{name}.csr"
            if pkcs11 is None:
                assert passphrase is not None
                key = ec.generate_private_key(ec.SECP256R1())
                key_path = out_dir / f"{name}.key"
                write_key(key_path, key, passphrase)
                atomic_write(csr_path, _csr(key, name), exclusive=True)
                request = DeviceRequest(name, csr_path, key_path=key_path)
            else:
                key_id, _public = generate_keypair(pkcs11, name)
                token_key = load_private_key(pkcs11, key_id, name)
                atomic_write(csr_path, _csr(token_key, name), exclusive=True)
                manifest[name] = {"label": name, "key_id": key_id.hex(), "token": pkcs11.token}
                request = DeviceRequest(name, csr_path, key_id=key_id.hex())
            made.append(request)
            if on_progress is not None:
                on_progress(request)
    finally:
        if pkcs11 is not None and made:
            atomic_write(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return made
