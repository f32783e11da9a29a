"""The PKI home folder: configuration, CA certificates and key references, ledger, CRLs, audit log.

Layout (``--home``, ``$MATTER_PKI_HOME``, default ``~/.matter-pki``)::

    config.json              format, home id, key store (file | pkcs11 module + token label)
    ca/paa/cert.pem          the PAA (created here, or imported: then no key)
    ca/paa/ca.json           role, VID, key reference, state
    ca/paa/key.pem           encrypted PKCS#8 (file key store only), mode 0600
    ca/<pai id>/...          same files per PAI; request.csr while waiting for an imported cert
    ledger.sqlite            every certificate issued here (WAL)
    crl/<ca id>.crl|.pem     the latest CRL per issuing CA, and <ca id>.revocation-set.json
    audit/audit.log          hash-chained audit log (matter_pki.audit)
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509

from matter_pki.errors import ConfigError, InputError, StorageError
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

HOME_ENV = "MATTER_PKI_HOME"
DEFAULT_HOME = "~/.matter-pki"
HOME_FORMAT = "matter-pki-home/1"
#: The folders a home keeps its own files in (never an output folder).
HOME_FOLDERS = ("ca", "audit", "crl", "serve", "locks")
PAA_ID = "paa"
_CA_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

KeyStoreKind = Literal["file", "pkcs11"]


@dataclass(frozen=True, slots=True)
class KeyStoreSettings:
    """The home's key store: encrypted files, or a PKCS#11 module and token label (never the PIN)."""

    kind: KeyStoreKind = "file"
    module: str | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Where a CA key lives: a file in the CA folder, or a CKA_ID on the token."""

    store: KeyStoreKind
    file: str | None = None
    key_id: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class CaInfo:
    """Metadata of one CA in the home (``ca/<id>/ca.json``)."""

    id: str
    role: Literal["paa", "pai"]
    vid: int | None
    pid: int | None
    common_name: str | None
    key: KeyRef | None
    state: Literal["active", "pending"]
    created: str
    imported: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaInfo:
        """Inverse of ``to_json``."""
        key = data.get("key")
        return cls(
            id=data["id"],
            role=data["role"],
            vid=data.get("vid"),
            pid=data.get("pid"),
            common_name=data.get("common_name"),
            key=KeyRef(**key) if key else None,
            state=data.get("state", "active"),
            created=data.get("created", ""),
            imported=bool(data.get("imported", False)),
        )


def operator() -> str:
    """Who runs the command: ``$MATTER_PKI_OPERATOR`` or the login name."""
    try:
        return os.environ.get("MATTER_PKI_OPERATOR") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return f"uid:{os.getuid()}"


def is_ca_id(name: str) -> bool:
    """True for a well-formed CA id (``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``)."""
    return _CA_ID_RE.fullmatch(name) is not None


def check_ca_id(ca_id: str) -> str:
    """CA ids are inbox folder names: ``[A-Za-z0-9][A-Za-z0-9_-]{0,63}``."""
    if not _CA_ID_RE.fullmatch(ca_id):
        raise InputError("input.ca_id", f"{ca_id!r} is not a valid CA id (letters, digits, '-', '_'; 1-64)")
    return ca_id


class PkiHome:
    """Paths and small JSON files of one PKI home."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    @classmethod
    def resolve(cls, path: str | Path | None) -> PkiHome:
        """``--home``, else ``$MATTER_PKI_HOME``, else ``~/.matter-pki``."""
        return cls(path or os.environ.get(HOME_ENV) or DEFAULT_HOME)

    # -- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """``config.json``."""
        return self.path / "config.json"

    @property
    def ledger_path(self) -> Path:
        """``ledger.sqlite``."""
        return self.path / "ledger.sqlite"

    @property
    def crl_dir(self) -> Path:
        """``crl/``."""
        return self.path / "crl"

    def ca_dir(self, ca_id: str) -> Path:
        """``ca/<id>/``."""
        return self.path / "ca" / check_ca_id(ca_id)

    def cert_path(self, ca_id: str) -> Path:
        """``ca/<id>/cert.pem``."""
        return self.ca_dir(ca_id) / "cert.pem"

    # -- state -------------------------------------------------------------------------------
    def is_initialized(self) -> bool:
        """True once ``init`` has written the configuration."""
        return self.config_path.is_file()

    def require(self) -> PkiHome:
        """Refuse to work on a folder that is not an initialised home."""
        if not self.is_initialized():
            raise ConfigError(
                "config.home_missing", f"no PKI home at {str(self.path)!r}: run 'matter-pki init' (or pass --home)"
            )
        return self

    def refuse_inside(self, folder: Path, what: str) -> None:
        """Refuse a folder the CA writes answers into when it is the home or one of the home's own folders.

        Keys, certificates, CRLs and logs live there under names an answer can take (``key.csr`` is
        answered as ``key.pem``); a folder of the operator's own inside the home is allowed.
        """
        home = Path(os.path.realpath(self.path))
        where = Path(os.path.realpath(folder))
        if where == home or any(where == home / name or (home / name) in where.parents for name in HOME_FOLDERS):
            raise InputError(
                "input.output_in_home",
                f"{what} {str(folder)!r} is the PKI home {str(self.path)!r} or one of its own folders "
                f"({', '.join(HOME_FOLDERS)}): answers there could replace its keys, certificates or logs",
            )

    def prepare(self) -> str:
        """Create the folders (0700) of a new home and return a fresh home id; refuses an existing home."""
        if self.is_initialized():
            raise ConfigError("config.home_exists", f"a PKI home already exists at {str(self.path)!r}")
        for leftover in ("ca/" + PAA_ID, "ledger.sqlite", "audit"):
            if os.path.lexists(self.path / leftover):
                raise ConfigError(
                    "config.home_partial",
                    f"{str(self.path)!r} holds {leftover} but no config.json (an interrupted init, or a home whose "
                    "configuration was lost); move it away before running init again",
                )
        ensure_private_dir(self.path)
        try:
            # Also when the folder existed: the home is readable by its owner only.
            self.path.chmod(0o700)
        except OSError as e:
            raise StorageError("storage.write_failed", f"cannot make {str(self.path)!r} private: {e.strerror}") from e
        ensure_private_dir(self.path / "ca")
        return uuid.uuid4().hex

    def commit(self, settings: KeyStoreSettings, *, home_id: str, created: str) -> None:
        """Write ``config.json``: the last step of init, which makes the home usable."""
        config = {"format": HOME_FORMAT, "home_id": home_id, "created": created, "key_store": asdict(settings)}
        atomic_write(self.config_path, _dumps(config), mode=0o600, exclusive=True)

    def config(self) -> dict[str, Any]:
        """The parsed ``config.json``."""
        self.require()
        data = _load_json(self.config_path, "configuration")
        if data.get("format") != HOME_FORMAT:
            raise ConfigError("config.home_format", f"{str(self.config_path)!r} has unknown format {data.get('format')!r}")
        return data

    def key_store(self) -> KeyStoreSettings:
        """The home's key store settings."""
        return KeyStoreSettings(**self.config()["key_store"])

    def home_id(self) -> str:
        """Random id of this home (prefixes PKCS#11 key labels)."""
        return str(self.config()["home_id"])

    def ca_info(self, ca_id: str) -> CaInfo:
        """Metadata of one CA; ``config.unknown_ca`` if absent."""
        path = self.ca_dir(ca_id) / "ca.json"
        if not path.is_file():
            what = "PAA" if ca_id == PAA_ID else "PAI"
            raise ConfigError("config.unknown_ca", f"no {what} {ca_id!r} in {str(self.path)!r}")
        return CaInfo.from_json(_load_json(path, f"CA {ca_id!r}"))

    def write_ca_info(self, info: CaInfo) -> None:
        """Write ``ca/<id>/ca.json`` atomically."""
        ensure_private_dir(self.ca_dir(info.id))
        atomic_write(self.ca_dir(info.id) / "ca.json", _dumps(info.to_json()), mode=0o600)

    def has_ca(self, ca_id: str) -> bool:
        """True when ``ca/<id>/ca.json`` exists."""
        return (self.ca_dir(ca_id) / "ca.json").is_file()

    def pai_ids(self) -> list[str]:
        """Every PAI id, in creation order (then by name)."""
        root = self.path / "ca"
        if not root.is_dir():
            return []
        infos = [self.ca_info(p.name) for p in root.iterdir() if p.name != PAA_ID and (p / "ca.json").is_file()]
        return [i.id for i in sorted(infos, key=lambda i: (i.created, _natural(i.id)))]

    def load_cert(self, ca_id: str) -> x509.Certificate:
        """The CA's certificate; ``config.ca_pending`` while a PAI waits for its imported certificate."""
        path = self.cert_path(ca_id)
        if not path.is_file():
            info = self.ca_info(ca_id)
            if info.state == "pending":
                raise ConfigError(
                    "config.ca_pending",
                    f"PAI {ca_id!r} has no certificate yet: import it with 'matter-pki pai import --pai {ca_id} --cert FILE'",
                )
            raise ConfigError("config.ca_cert_missing", f"certificate of {ca_id!r} is missing ({str(path)!r})")
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except ValueError as e:
            raise ConfigError("config.ca_cert_corrupt", f"certificate of {ca_id!r} cannot be read: {e}") from e

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise state-changing CA operations (init, PAI creation, revocation, CRL publication)."""
        ensure_private_dir(self.path)
        with _flock(self.path / ".lock", blocking=True, name="the PKI home"):
            yield

    @contextlib.contextmanager
    def try_lock(self, name: str) -> Iterator[None]:
        """A named non-blocking lock (``storage.busy`` when another process holds it)."""
        locks = ensure_private_dir(self.path / "locks")
        with _flock(locks / f"{name}.lock", blocking=False, name=name):
            yield


# Lock descriptors held by this process. A forked child (a batch worker) closes its copies at once:
# flock() locks belong to the open file description, so an orphaned worker would otherwise keep
# the lock after its parent was killed, and block every later run.
_held_locks: set[int] = set()


def _close_inherited_locks() -> None:
    for fd in list(_held_locks):
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_locks.clear()


os.register_at_fork(after_in_child=_close_inherited_locks)


@contextlib.contextmanager
def _flock(path: Path, *, blocking: bool, name: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    _held_locks.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise StorageError("storage.busy", f"another matter-pki process is working on {name!r}") from e
        yield
    finally:
        _held_locks.discard(fd)
        os.close(fd)


def _natural(text: str) -> tuple[object, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _dumps(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError("config.corrupt", f"{what} file {str(path)!r} cannot be read: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError("config.corrupt", f"{what} file {str(path)!r} is not a JSON object")
    return data
