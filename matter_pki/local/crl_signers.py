"""Delegated CRL signers in a PKI home: created by the PAA or a PAI, keys like CA keys, audited, revocable.

Layout::

    crl-signers/<id>/cert.pem      the signer certificate (revocation/signer.py profile)
    crl-signers/<id>/signer.json   id, issuer CA id, key reference, created, state
    crl-signers/<id>/key.pem       encrypted PKCS#8 (file key store), mode 0600

Each signer is recorded in the ledger database, table ``crl_signers``, with the same guarantees as
certificates: a serial is unique per issuer across certificates *and* signers (two triggers), so
revoking a signer can never revoke a DAC that shares its serial. A revoked signer is listed on its
issuer's next direct CRL and can no longer sign.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.audit import AuditLog
from matter_pki.backends.keyfile import FileKeySigner, generate_key_file
from matter_pki.backends.pkcs11 import Pkcs11SignerFactory, generate_keypair
from matter_pki.errors import CertificateError, ConfigError, InputError, IssuanceError, StorageError
from matter_pki.findings import Severity
from matter_pki.local.ca import operator, start_under
from matter_pki.local.home import PAA_ID, KeyRef, PkiHome, check_ca_id
from matter_pki.local.keys import KEY_FILE, Secrets, pkcs11_config, signer_factory
from matter_pki.local.ledger import Ledger, iso, serial_hex
from matter_pki.profiles import Validity, default_serial, sign
from matter_pki.revocation.lint import lint_crl_signer
from matter_pki.revocation.signer import DEFAULT_SIGNER_CN, CrlSignerProfile
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.batch import SignerFactory

SIGNERS_DIR = "crl-signers"
INFO_FILE = "signer.json"
CERT_FILE = "cert.pem"
SERIAL_ATTEMPTS = 3
_SCHEMA = """
CREATE TABLE IF NOT EXISTS crl_signers (
    id TEXT PRIMARY KEY,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'revoked')),
    revocation_reason TEXT,
    revoked_at TEXT,
    der BLOB NOT NULL,
    UNIQUE (issuer, serial)
);
CREATE TRIGGER IF NOT EXISTS crl_signer_serial_unique BEFORE INSERT ON crl_signers
WHEN EXISTS (SELECT 1 FROM certificates WHERE ca = NEW.issuer AND serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'serial already issued by this CA'); END;
CREATE TRIGGER IF NOT EXISTS certificate_serial_not_a_crl_signer BEFORE INSERT ON certificates
WHEN EXISTS (SELECT 1 FROM crl_signers WHERE issuer = NEW.ca AND serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'serial already issued by this CA to a CRL signer'); END;
"""


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """``crl-signers/<id>/signer.json``."""

    id: str
    issuer: str
    key: KeyRef
    created: str
    common_name: str = DEFAULT_SIGNER_CN

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignerInfo:
        """Inverse of ``asdict``."""
        return cls(
            id=data["id"], issuer=data["issuer"], key=KeyRef(**data["key"]), created=data.get("created", ""),
            common_name=data.get("common_name", DEFAULT_SIGNER_CN),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SignerRow:
    """One signer as the ledger records it."""

    id: str
    issuer: str
    serial: str
    subject: str
    not_before: str
    not_after: str
    issued_at: str
    operator: str
    status: Literal["issued", "revoked"]
    revocation_reason: str | None
    revoked_at: str | None
    der: bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the DER)."""
        data = asdict(self)
        data.pop("der")
        return data


class SignerStore:
    """The ``crl_signers`` table of a home's ledger database; a context manager."""

    def __init__(self, home: PkiHome) -> None:
        Ledger(home.ledger_path).close()  # the certificates table must exist for the triggers
        try:
            self._db = sqlite3.connect(home.ledger_path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot open the CRL signer table: {e}") from e

    def __enter__(self) -> SignerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._db.close()

    def insert(self, signer_id: str, issuer: str, cert: x509.Certificate, *, at: str, operator: str) -> bool:
        """Record a signer; False when its serial is taken by this issuer (certificate or signer)."""
        row = (
            signer_id, issuer, serial_hex(cert.serial_number), cert.subject.rfc4514_string(),
            iso(cert.not_valid_before_utc), iso(cert.not_valid_after_utc), at, operator, cert.public_bytes(Encoding.DER),
        )  # fmt: skip
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO crl_signers (id, issuer, serial, subject, not_before, not_after, issued_at, operator, der) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError as e:
                self._db.execute("ROLLBACK")
                if "id" in str(e) and "serial" not in str(e):
                    raise InputError("input.signer_id_taken", f"CRL signer id {signer_id!r} is already used") from e
                return False
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot record the CRL signer: {e}") from e
        return True

    def revoke(self, signer_id: str, *, reason: str, at: str) -> SignerRow:
        """Mark a signer revoked (``ledger.already_revoked`` if it is)."""
        row = self.get(signer_id)
        if row.status == "revoked":
            raise InputError("ledger.already_revoked", f"CRL signer {signer_id!r} was revoked at {row.revoked_at}")
        try:
            self._db.execute(
                "UPDATE crl_signers SET status = 'revoked', revocation_reason = ?, revoked_at = ? WHERE id = ? AND status = 'issued'",
                (reason, at, signer_id),
            )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the CRL signer table: {e}") from e
        return self.get(signer_id)

    def get(self, signer_id: str) -> SignerRow:
        """One signer (``config.unknown_crl_signer`` when absent)."""
        rows = self._rows("WHERE id = ?", (signer_id,))
        if not rows:
            raise ConfigError("config.unknown_crl_signer", f"no CRL signer {signer_id!r} in this home")
        return rows[0]

    def all(self, issuer: str | None = None) -> list[SignerRow]:
        """Every signer (optionally of one issuer), in creation order."""
        if issuer is None:
            return self._rows("ORDER BY rowid", ())
        return self._rows("WHERE issuer = ? ORDER BY rowid", (issuer,))

    def _rows(self, where: str, args: tuple[object, ...]) -> list[SignerRow]:
        try:
            rows = self._db.execute(
                "SELECT id, issuer, serial, subject, not_before, not_after, issued_at, operator, status, "
                f"revocation_reason, revoked_at, der FROM crl_signers {where}",
                args,
            ).fetchall()
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot read the CRL signer table: {e}") from e
        return [SignerRow(*r) for r in rows]


def signer_dir(home: PkiHome, signer_id: str) -> Any:
    """``crl-signers/<id>/``."""
    return home.path / SIGNERS_DIR / check_ca_id(signer_id)


def load_info(home: PkiHome, signer_id: str) -> SignerInfo:
    """The signer's ``signer.json`` (``config.unknown_crl_signer`` when absent)."""
    path = signer_dir(home, signer_id) / INFO_FILE
    if not path.is_file():
        raise ConfigError("config.unknown_crl_signer", f"no CRL signer {signer_id!r} in {str(home.path)!r}")
    try:
        return SignerInfo.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError("config.corrupt", f"CRL signer file {str(path)!r} cannot be read: {e}") from e


def load_certificate(home: PkiHome, signer_id: str) -> x509.Certificate:
    """The signer certificate."""
    path = signer_dir(home, signer_id) / CERT_FILE
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError("config.corrupt", f"CRL signer certificate {str(path)!r} cannot be read: {e}") from e


def key_factory(home: PkiHome, signer_id: str, secrets: Secrets) -> SignerFactory:
    """A factory opening the signer's private key (file or token)."""
    ref = load_info(home, signer_id).key
    if ref.store == "file":
        return FileKeySigner(str(signer_dir(home, signer_id) / (ref.file or KEY_FILE)), secrets.passphrase())
    if ref.store == "pkcs11" and ref.key_id:
        return Pkcs11SignerFactory(pkcs11_config(home.key_store(), secrets), bytes.fromhex(ref.key_id), ref.label or "")
    raise ConfigError("config.key_store", f"unusable key reference for CRL signer {signer_id!r}")


def _next_id(home: PkiHome) -> str:
    root = home.path / SIGNERS_DIR
    taken = {p.name for p in root.iterdir()} if root.is_dir() else set()
    n = 1
    while f"signer-{n}" in taken:
        n += 1
    return f"signer-{n}"


def _generate_key(home: PkiHome, signer_id: str, secrets: Secrets) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
    settings = home.key_store()
    if settings.kind == "pkcs11":
        label = f"matter-pki/{home.home_id()[:12]}/crl-signer/{signer_id}"
        key_id, public = generate_keypair(pkcs11_config(settings, secrets), label)
        return KeyRef(store="pkcs11", key_id=key_id.hex(), label=label), public
    public = generate_key_file(signer_dir(home, signer_id) / KEY_FILE, secrets.passphrase(confirm=True))
    return KeyRef(store="file", file=KEY_FILE), public


def create_crl_signer(
    home: PkiHome,
    *,
    issuer: str,
    secrets: Secrets,
    now: datetime,
    signer_id: str | None = None,
    common_name: str = DEFAULT_SIGNER_CN,
    validity_days: int | None = None,
    digital_signature: bool = False,
    serials: Callable[[], int] = default_serial,
) -> SignerInfo:
    """Issue a delegated CRL signer from the PAA (``issuer='paa'``) or a PAI; its key goes to the home's key store.

    Validity: ``validity_days`` from now, or (default) until the issuer's notAfter.
    """
    home.require()
    with home.lock():
        issuer_info = home.ca_info(issuer)
        issuer_cert = home.load_cert(issuer)
        new_id = check_ca_id(signer_id) if signer_id else _next_id(home)
        folder = signer_dir(home, new_id)
        if folder.exists():
            raise InputError("input.signer_id_taken", f"CRL signer id {new_id!r} is already used in this home")
        start = start_under(issuer_cert, now)
        end = issuer_cert.not_valid_after_utc
        if validity_days is not None:
            end = min(end, start + timedelta(days=validity_days) - timedelta(seconds=1))
        profile = CrlSignerProfile.for_issuer(
            issuer_cert, validity=Validity(not_before=start, not_after=end), common_name=common_name,
            digital_signature=digital_signature,
        )  # fmt: skip
        issuer_key = signer_factory(home, issuer, secrets)()
        audit = AuditLog(home.path)
        audit.record("key.accessed", ca=issuer, purpose="crl_signer.create", key_store=issuer_info.key.store if issuer_info.key else None, operator=operator())
        ensure_private_dir(home.path / SIGNERS_DIR)
        ensure_private_dir(folder)
        try:
            key_ref, public = _generate_key(home, new_id, secrets)
            with SignerStore(home) as store:
                for _ in range(SERIAL_ATTEMPTS):
                    cert = sign(profile.builder(public, serial=serials(), issuer=issuer_cert), issuer_key)
                    _check(cert, issuer_cert)
                    if store.insert(new_id, issuer, cert, at=iso(now), operator=operator()):
                        break
                else:
                    raise IssuanceError("issue.serial_collision", f"no unused serial number after {SERIAL_ATTEMPTS} attempts")
            info = SignerInfo(id=new_id, issuer=issuer, key=key_ref, created=iso(now), common_name=common_name)
            atomic_write(folder / CERT_FILE, cert.public_bytes(Encoding.PEM))
            atomic_write(folder / INFO_FILE, (json.dumps(asdict(info), indent=2, sort_keys=True) + "\n").encode(), mode=0o600)
        except BaseException:
            if not (folder / INFO_FILE).exists():
                shutil.rmtree(folder, ignore_errors=True)
            raise
    audit.record(
        "crl_signer.created", ca=issuer, signer=new_id, serial=serial_hex(cert.serial_number),
        subject=cert.subject.rfc4514_string(), key_store=key_ref.store, operator=operator(),
    )  # fmt: skip
    return info


def _check(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    bad = [f for f in lint_crl_signer(cert.public_bytes(Encoding.DER), issuer.public_bytes(Encoding.DER)) if f.severity >= Severity.ERROR]
    if bad:
        listed = "; ".join(f"{f.code}: {f.message}" for f in bad[:5])
        raise CertificateError("cert.not_matter_compliant", f"the new CRL signer breaks its profile: {listed}")


def revoke_crl_signer(home: PkiHome, signer_id: str, *, reason: str, now: datetime) -> SignerRow:
    """Revoke a signer: it can no longer sign, and its issuer's next CRL lists it."""
    from matter_pki.local.crl import parse_reason

    home.require()
    flag = parse_reason(reason)
    with home.lock(), SignerStore(home) as store:
        row = store.revoke(signer_id, reason=flag.value, at=iso(now))
    AuditLog(home.path).record(
        "crl_signer.revoked", ca=row.issuer, signer=signer_id, serial=row.serial, reason=flag.value, operator=operator()
    )
    return row


def describe_signers(home: PkiHome) -> list[dict[str, Any]]:
    """One JSON-ready row per signer: id, issuer, serial, subject, validity, state, key store."""
    home.require()
    out: list[dict[str, Any]] = []
    with SignerStore(home) as store:
        for row in store.all():
            data = row.to_dict()
            try:
                data["key_store"] = load_info(home, row.id).key.store
            except ConfigError:
                data["key_store"] = None
            out.append(data)
    return out


def active_signer(home: PkiHome, signer_id: str, issuer: str) -> tuple[x509.Certificate, SignerRow]:
    """The signer's certificate, when it is not revoked and was issued by ``issuer``."""
    with SignerStore(home) as store:
        row = store.get(signer_id)
    if row.status == "revoked":
        raise InputError("input.signer_revoked", f"CRL signer {signer_id!r} is revoked ({row.revocation_reason}); it cannot sign")
    if row.issuer != issuer:
        scope = "--paa" if row.issuer == PAA_ID else f"--pai {row.issuer}"
        raise InputError("input.signer_scope", f"CRL signer {signer_id!r} was issued by {row.issuer!r}: publish with {scope}")
    cert = load_certificate(home, signer_id)
    if cert.public_bytes(Encoding.DER) != row.der:
        raise ConfigError("config.corrupt", f"CRL signer {signer_id!r}: cert.pem differs from the ledger")
    return cert, row


def revoked_signers(home: PkiHome, issuer: str) -> Iterator[SignerRow]:
    """Revoked signers issued by ``issuer`` (they go on its direct CRL)."""
    with SignerStore(home) as store:
        yield from (r for r in store.all(issuer) if r.status == "revoked")


__all__ = [
    "SignerInfo",
    "SignerRow",
    "SignerStore",
    "active_signer",
    "create_crl_signer",
    "describe_signers",
    "key_factory",
    "load_certificate",
    "load_info",
    "revoke_crl_signer",
    "revoked_signers",
]
