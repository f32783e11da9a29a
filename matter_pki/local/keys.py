"""CA key generation and opening for a PKI home, over the file and PKCS#11 key stores.

Secrets (the key-file passphrase, the token PIN) come from a ``Secrets`` object the caller builds:
the CLI reads ``MATTER_PKI_PASSPHRASE`` / ``MATTER_PKI_PKCS11_PIN`` (or a secret file) or prompts;
tests pass values. Each is asked for at most once per ``Secrets`` instance. Device keys (``csr
generate``) have their own passphrase, ``MATTER_PKI_DEVICE_PASSPHRASE``, never the CA's.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from matter_pki.backends.keyfile import FileKeySigner, generate_key_file, passphrase_from_env
from matter_pki.backends.pkcs11 import PIN_ENV, Pkcs11Config, Pkcs11SignerFactory, generate_keypair
from matter_pki.errors import ConfigError, InputError, KeyStoreError
from matter_pki.local.home import KeyRef, KeyStoreSettings, PkiHome

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.batch import SignerFactory

KEY_FILE = "key.pem"
PASSPHRASE_ENV = "MATTER_PKI_PASSPHRASE"
#: Device keys (``csr generate``) have their own passphrase, never the CA's: the people who flash
#: devices need theirs and must not learn the CA's.
DEVICE_PASSPHRASE_ENV = "MATTER_PKI_DEVICE_PASSPHRASE"
MAX_SECRET_FILE_BYTES = 4096


def _missing_passphrase(confirm: bool) -> bytes:
    raise KeyStoreError("key.passphrase_missing", "no key passphrase: set MATTER_PKI_PASSPHRASE")


def _missing_pin() -> str:
    raise KeyStoreError("key.pkcs11_pin", f"no PKCS#11 user PIN: set {PIN_ENV}")


@dataclass
class Secrets:
    """Lazy, cached sources of the key-file passphrase and the PKCS#11 PIN."""

    passphrase_source: Callable[[bool], bytes] = field(default=_missing_passphrase, repr=False)
    pin_source: Callable[[], str] = field(default=_missing_pin, repr=False)
    _passphrase: bytes | None = field(default=None, repr=False)
    _pin: str | None = field(default=None, repr=False)

    @classmethod
    def fixed(cls, passphrase: bytes | None = None, pin: str | None = None) -> Secrets:
        """Known values (tests, scripts)."""
        s = cls()
        s._passphrase, s._pin = passphrase, pin
        return s

    @classmethod
    def from_env(cls) -> Secrets:
        """``MATTER_PKI_PASSPHRASE`` and ``MATTER_PKI_PKCS11_PIN``; errors when asked for an unset one."""
        return cls.fixed(passphrase_from_env(), os.environ.get(PIN_ENV))

    def passphrase(self, *, confirm: bool = False) -> bytes:
        """The key-file passphrase (``confirm`` when a new key is about to be encrypted with it)."""
        if self._passphrase is None:
            self._passphrase = self.passphrase_source(confirm)
        return self._passphrase

    def pin(self) -> str:
        """The token user PIN."""
        if self._pin is None:
            self._pin = self.pin_source()
        return self._pin


def read_secret_file(path: str | Path, what: str = "passphrase file") -> bytes:
    """The first line of a secret file or pipe (``<(...)``); refuses empty and group/other-readable files.

    Opened non-blocking, so a named pipe nobody writes to reads as empty instead of hanging; only
    regular files and pipes are read (not devices, sockets or folders).
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InputError("input.passphrase_file", f"cannot read {what} {str(p)!r}: {e.strerror}") from e
    try:
        info = os.fstat(fd)
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):
            raise InputError("input.passphrase_file", f"{what} {str(p)!r} is not a regular file or a pipe")
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
            raise InputError(
                "input.passphrase_file",
                f"{what} {str(p)!r} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600 (chmod 600)",
            )
        os.set_blocking(fd, True)  # a pipe with a writer is read to its end; one without reads as empty
        data = b""
        while len(data) <= MAX_SECRET_FILE_BYTES:
            chunk = os.read(fd, MAX_SECRET_FILE_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as e:
        raise InputError("input.passphrase_file", f"cannot read {what} {str(p)!r}: {e.strerror}") from e
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE_BYTES:
        raise InputError("input.passphrase_file", f"{what} {str(p)!r} is too large for a passphrase")
    secret = data.split(b"\n", 1)[0].removesuffix(b"\r")
    if not secret:
        raise InputError("input.passphrase_file", f"{what} {str(p)!r} is empty (the passphrase is its first line)")
    return secret


def pkcs11_config(settings: KeyStoreSettings, secrets: Secrets) -> Pkcs11Config:
    """Module and token from the home's settings, PIN from the secrets."""
    return Pkcs11Config.from_env(settings.module, settings.token, pin=secrets.pin())


def generate_ca_key(
    home: PkiHome, settings: KeyStoreSettings, ca_id: str, secrets: Secrets, *, home_id: str
) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
    """Create the key of CA ``ca_id`` in the home's key store (token label ``matter-pki/<home id>/<ca id>``)."""
    if settings.kind == "file":
        path = home.ca_dir(ca_id) / KEY_FILE
        public = generate_key_file(path, secrets.passphrase(confirm=True))
        return KeyRef(store="file", file=KEY_FILE), public
    if settings.kind == "pkcs11":
        label = f"matter-pki/{home_id[:12]}/{ca_id}"
        key_id, public = generate_keypair(pkcs11_config(settings, secrets), label)
        return KeyRef(store="pkcs11", key_id=key_id.hex(), label=label), public
    raise ConfigError("config.key_store", f"unknown key store {settings.kind!r}")


def signer_factory(home: PkiHome, ca_id: str, secrets: Secrets, *, allow_weak_kdf: bool = False) -> SignerFactory:
    """A picklable factory opening CA ``ca_id``'s private key (``config.ca_key_absent`` for an imported PAA).

    ``allow_weak_kdf``: only to open a key file that is about to be re-encrypted (``home upgrade``).
    """
    info = home.ca_info(ca_id)
    ref = info.key
    if ref is None:
        raise ConfigError(
            "config.ca_key_absent",
            f"the private key of {ca_id!r} is not held in this home (imported certificate)",
        )
    if ref.store == "file":
        return FileKeySigner(str(home.ca_dir(ca_id) / (ref.file or KEY_FILE)), secrets.passphrase(), allow_weak_kdf)
    if ref.store == "pkcs11":
        if not ref.key_id:
            raise ConfigError("config.corrupt", f"PKCS#11 key reference of {ca_id!r} has no key id")
        return Pkcs11SignerFactory(pkcs11_config(home.key_store(), secrets), bytes.fromhex(ref.key_id), ref.label or "")
    raise ConfigError("config.key_store", f"unknown key store {ref.store!r} for {ca_id!r}")
