"""The issuance ledger: every certificate issued in a home, in SQLite (WAL, synchronous FULL).

One row per certificate: issuing CA id (``paa`` for the PAA and PAIs, the PAI id for DACs), serial
(upper-case hex of the magnitude, even length: the revocation-set form), subject, PID, CSR
SHA-256, validity, issue time, operator, status and the DER itself.

Constraints the issuance workflow relies on:

* ``UNIQUE(ca, serial)``: a serial collision is detected, and the DAC is re-signed with a fresh serial.
* ``UNIQUE(ca, csr_sha256)`` for DACs: one DAC per device key and PAI. A CSR seen again (a re-run
  after a crash between signing and writing the ``.pem``) gets the DAC already recorded here.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509

from matter_pki.errors import InputError, StorageError

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('paa', 'pai', 'dac')),
    ca TEXT NOT NULL,
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    pid INTEGER,
    csr_sha256 TEXT,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'revoked')),
    revocation_reason TEXT,
    revoked_at TEXT,
    der BLOB NOT NULL,
    audit_seq INTEGER,
    UNIQUE (ca, serial)
);
CREATE UNIQUE INDEX IF NOT EXISTS certificates_dac_csr ON certificates (ca, csr_sha256) WHERE kind = 'dac';
CREATE INDEX IF NOT EXISTS certificates_serial ON certificates (serial);
CREATE TABLE IF NOT EXISTS crl_state (
    ca TEXT PRIMARY KEY,
    crl_number INTEGER NOT NULL,
    published_at TEXT NOT NULL
);
"""

Kind = Literal["paa", "pai", "dac"]


def serial_hex(serial: int) -> str:
    """Upper-case hex of the serial's magnitude bytes, even length (Matter revocation-set form)."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(text: str) -> int:
    """A serial typed by a user: hex, optionally with ``0x`` or ``:`` separators."""
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        value = int(cleaned, 16)
    except ValueError as e:
        raise InputError("input.serial", f"serial {text!r} is not hexadecimal") from e
    if value <= 0:
        raise InputError("input.serial", f"serial {text!r} must be positive")
    return value


def iso(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One issued certificate."""

    kind: Kind
    ca: str
    serial: str
    subject: str
    pid: int | None
    csr_sha256: str | None
    not_before: str
    not_after: str
    issued_at: str
    operator: str
    status: Literal["issued", "revoked"]
    revocation_reason: str | None
    revoked_at: str | None
    der: bytes
    audit_seq: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the DER)."""
        return {
            "kind": self.kind,
            "ca": self.ca,
            "serial": self.serial,
            "subject": self.subject,
            "pid": f"{self.pid:04X}" if self.pid is not None else None,
            "csr_sha256": self.csr_sha256,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
            "operator": self.operator,
            "status": self.status,
            "revocation_reason": self.revocation_reason,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A certificate about to be recorded."""

    kind: Kind
    ca: str
    der: bytes
    pid: int | None = None
    csr_sha256: str | None = None

    def row(self, issued_at: str, operator: str) -> tuple[object, ...]:
        """Column values, read from the certificate itself."""
        cert = x509.load_der_x509_certificate(self.der)
        return (
            self.kind,
            self.ca,
            serial_hex(cert.serial_number),
            cert.subject.rfc4514_string(),
            self.pid,
            self.csr_sha256,
            iso(cert.not_valid_before_utc),
            iso(cert.not_valid_after_utc),
            issued_at,
            operator,
            self.der,
        )


class InsertOutcome:
    """What happened to one ``record_many`` entry."""

    INSERTED = "inserted"
    SAME_CSR = "same_csr"
    SERIAL_TAKEN = "serial_taken"


_COLUMNS = (
    "kind, ca, serial, subject, pid, csr_sha256, not_before, not_after, issued_at, operator, status, "
    "revocation_reason, revoked_at, der, audit_seq"
)


class Ledger:
    """The SQLite ledger of one home; use as a context manager or call ``close()``."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot open ledger {str(path)!r}: {e}") from e
        path.chmod(0o600)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- writes ------------------------------------------------------------------------------
    def record(self, entry: NewEntry, *, issued_at: str, operator: str) -> str:
        """Insert one certificate; returns an ``InsertOutcome`` value."""
        return self.record_many([entry], issued_at=issued_at, operator=operator)[0]

    def record_many(self, entries: Iterable[NewEntry], *, issued_at: str, operator: str) -> list[str]:
        """Insert several certificates in one durable transaction; conflicts are reported, not raised."""
        outcomes: list[str] = []
        try:
            with self._transaction():
                for entry in entries:
                    row = entry.row(issued_at, operator)
                    if entry.kind == "dac" and self._find_csr(entry.ca, entry.csr_sha256) is not None:
                        outcomes.append(InsertOutcome.SAME_CSR)
                    elif self.get(entry.ca, str(row[2])) is not None:
                        outcomes.append(InsertOutcome.SERIAL_TAKEN)
                    else:
                        self._db.execute(
                            "INSERT INTO certificates (kind, ca, serial, subject, pid, csr_sha256, not_before, "
                            "not_after, issued_at, operator, der) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            row,
                        )
                        outcomes.append(InsertOutcome.INSERTED)
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e
        return outcomes

    def set_audit_seq(self, pairs: Iterable[tuple[str, str, int]]) -> None:
        """Remember which audit record announced each (ca, serial)."""
        try:
            with self._transaction():
                self._db.executemany(
                    "UPDATE certificates SET audit_seq = ? WHERE ca = ? AND serial = ?",
                    [(seq, ca, serial) for ca, serial, seq in pairs],
                )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e

    def revoke(self, ca: str, serial: str, *, reason: str, at: str) -> LedgerEntry:
        """Mark one certificate revoked (``ledger.already_revoked`` if it is)."""
        try:
            with self._transaction():
                entry = self.get(ca, serial)
                if entry is None:
                    raise InputError("ledger.serial_unknown", f"no certificate {serial} issued by {ca!r}")
                if entry.status == "revoked":
                    raise InputError(
                        "ledger.already_revoked", f"certificate {serial} of {ca!r} was revoked at {entry.revoked_at}"
                    )
                self._db.execute(
                    "UPDATE certificates SET status = 'revoked', revocation_reason = ?, revoked_at = ? "
                    "WHERE ca = ? AND serial = ?",
                    (reason, at, ca, serial),
                )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e
        revoked = self.get(ca, serial)
        assert revoked is not None
        return revoked

    def next_crl_number(self, ca: str, at: str) -> int:
        """Allocate the next CRL Number for a CA (1, 2, ...; never reused)."""
        try:
            with self._transaction():
                row = self._db.execute("SELECT crl_number FROM crl_state WHERE ca = ?", (ca,)).fetchone()
                number = (row[0] if row else 0) + 1
                self._db.execute(
                    "INSERT INTO crl_state (ca, crl_number, published_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (ca) DO UPDATE SET crl_number = excluded.crl_number, published_at = excluded.published_at",
                    (ca, number, at),
                )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e
        return number

    # -- reads -------------------------------------------------------------------------------
    def get(self, ca: str, serial: str) -> LedgerEntry | None:
        """The certificate with this serial from this CA."""
        return self._one("WHERE ca = ? AND serial = ?", (ca, serial))

    def find_serial(self, serial: str, ca: str | None = None) -> list[LedgerEntry]:
        """Every certificate with this serial (optionally from one CA)."""
        if ca is None:
            return self._many("WHERE serial = ? ORDER BY id", (serial,))
        return self._many("WHERE serial = ? AND ca = ? ORDER BY id", (serial, ca))

    def find_csr(self, ca: str, csr_sha256: str) -> LedgerEntry | None:
        """The DAC already issued by ``ca`` for this CSR, if any."""
        return self._find_csr(ca, csr_sha256)

    def _find_csr(self, ca: str, csr_sha256: str | None) -> LedgerEntry | None:
        if csr_sha256 is None:
            return None
        return self._one("WHERE kind = 'dac' AND ca = ? AND csr_sha256 = ?", (ca, csr_sha256))

    def revoked(self, ca: str) -> list[LedgerEntry]:
        """Revoked certificates of one issuing CA, in revocation order."""
        return self._many("WHERE ca = ? AND status = 'revoked' ORDER BY revoked_at, id", (ca,))

    def entries(self, ca: str | None = None, kind: Kind | None = None) -> list[LedgerEntry]:
        """Every row (optionally filtered), in issue order."""
        clauses, args = [], []
        if ca is not None:
            clauses.append("ca = ?")
            args.append(ca)
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._many(f"{where} ORDER BY id", tuple(args))

    def count(self, ca: str, kind: Kind) -> dict[str, int]:
        """Issued / revoked counts for one CA."""
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM certificates WHERE ca = ? AND kind = ? GROUP BY status", (ca, kind)
        ).fetchall()
        counts = {"issued": 0, "revoked": 0}
        counts.update({status: n for status, n in rows})
        return counts

    # -- helpers -----------------------------------------------------------------------------
    def _one(self, where: str, args: tuple[object, ...]) -> LedgerEntry | None:
        found = self._many(where, args)
        return found[0] if found else None

    def _many(self, where: str, args: tuple[object, ...]) -> list[LedgerEntry]:
        try:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM certificates {where}", args).fetchall()
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot read the ledger: {e}") from e
        return [LedgerEntry(*row) for row in rows]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")

