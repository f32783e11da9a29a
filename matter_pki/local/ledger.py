"""The issuance ledger: every certificate issued in a home, in SQLite (WAL, synchronous FULL).

Format 2. The unit of issuance is the device key: every row carries ``key_id``, the SHA-256 (hex)
of the certificate's public key as an uncompressed P-256 point (65 bytes, ``04 || x || y``). The
point, not the CSR, not the SPKI: it is what the key *is*, the same whatever CSR bytes carry it (a
re-signed CSR, an ECDSA signature flipped from s to n-s), and it can be recomputed from the issued
certificate alone, so a ledger can be checked and rebuilt from DAC files.

Tables:

* ``certificates``: one immutable row per certificate (kind, issuing CA, serial, subject, PID,
  key id, CSR SHA-256, DER and its SHA-256, validity, issue time, operator, re-issue reason, the
  seq of the audit record that announced it, and ``gen``: the transaction that inserted it).
  Lookups go through two small integer indexes: ``key_tag`` (the key id's first 8 bytes) and
  ``serial_tag`` (the first 8 bytes of SHA-256 of ``<ca>|<serial>``), which is UNIQUE: (CA, serial)
  pairs never repeat (and a tag collision between two serials, chance 2^-64, is refused like a
  serial collision and signed again with a fresh serial). Integer indexes keep an insert at a
  fraction of the cost of indexing the hex text.
* ``crl_signers``: one immutable row per delegated CRL signer certificate (id, issuing CA, serial,
  key id, DER, ...). A serial is unique per issuing CA across certificates *and* signers: checked
  before every insert (``serials_taken``) and enforced by two triggers, so revoking a signer can
  never revoke a DAC that shares its serial, nor the reverse.
* ``withheld``: the serial of every certificate the release gate withheld (signed, never released),
  with the refusal's code: such a serial is never used again by its CA.
* ``revocations``: one row per revoked certificate or CRL signer (with the key id: a key ever
  revoked is never certified again).
* ``crl_numbers``: every CRL Number ever allocated, ``PRIMARY KEY(ca, number)``: numbers never
  repeat and never go back (the next is always the highest + 1). A CA's direct CRLs are numbered
  under its id, a delegated signer's CRLs under ``signer:<id>``.
* ``journal``: one row per transaction: ``gen`` (1, 2, ...), kind, time, the SHA-256 of the rows it
  wrote, a hash ``chain`` over all transactions so far, and the audit position (seq and line hash)
  the ledger had seen when it committed. The signed audit head names the last (gen, chain) the
  log announced; ``matter_pki.local.state`` compares the two before every batch.

Rows are never updated or deleted (only ``audit_seq`` is set after a crash recovery), so the whole
ledger can be re-hashed transaction by transaction and checked against the journal (a transaction's
rows are hashed in table order: certificates, CRL signers, withheld serials, revocations, CRL numbers)
(``verify_deep``): an edited, deleted or added row, an older copy or a replaced file is found.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cryptography import x509

from matter_pki.csr import key_id_of_point
from matter_pki.errors import InputError, LedgerError, StorageError
from matter_pki.gate import P256_SPKI_PREFIX

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path

FORMAT = 2
_T = TypeVar("_T")
GENESIS_CHAIN = "0" * 64
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE certificates (
    id INTEGER PRIMARY KEY,
    gen INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('paa', 'pai', 'dac')),
    ca TEXT NOT NULL,
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    pid INTEGER,
    key_id TEXT NOT NULL,
    csr_sha256 TEXT,
    der_sha256 TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    reissue_reason TEXT,
    der BLOB NOT NULL,
    audit_seq INTEGER,
    key_tag INTEGER NOT NULL,
    serial_tag INTEGER NOT NULL
);
CREATE INDEX certificates_key ON certificates (key_tag);
CREATE UNIQUE INDEX certificates_serial ON certificates (serial_tag);
CREATE TABLE crl_signers (
    id TEXT PRIMARY KEY,
    gen INTEGER NOT NULL,
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_id TEXT NOT NULL,
    der_sha256 TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    der BLOB NOT NULL,
    serial_tag INTEGER NOT NULL,
    UNIQUE (issuer, serial)
);
CREATE TRIGGER crl_signer_serial_unique BEFORE INSERT ON crl_signers
WHEN EXISTS (SELECT 1 FROM certificates WHERE serial_tag = NEW.serial_tag AND ca = NEW.issuer AND serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'serial already issued by this CA'); END;
CREATE TRIGGER certificate_serial_not_a_crl_signer BEFORE INSERT ON certificates
WHEN EXISTS (SELECT 1 FROM crl_signers WHERE issuer = NEW.ca AND serial = NEW.serial)
BEGIN SELECT RAISE(ABORT, 'serial already issued by this CA to a CRL signer'); END;
CREATE TABLE withheld (
    ca TEXT NOT NULL,
    serial TEXT NOT NULL,
    code TEXT NOT NULL,
    at TEXT NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (ca, serial)
);
CREATE TABLE revocations (
    ca TEXT NOT NULL,
    serial TEXT NOT NULL,
    key_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (ca, serial)
);
CREATE INDEX revocations_key ON revocations (key_id);
CREATE TABLE crl_numbers (
    ca TEXT NOT NULL,
    number INTEGER NOT NULL,
    issued_at TEXT NOT NULL,
    gen INTEGER NOT NULL,
    PRIMARY KEY (ca, number)
);
CREATE TABLE journal (
    gen INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    digest TEXT NOT NULL,
    chain TEXT NOT NULL,
    audit_seen_seq INTEGER NOT NULL,
    audit_seen_hash TEXT NOT NULL
);
"""

Kind = Literal["paa", "pai", "dac"]
#: What a ``LedgerEntry`` can be: a certificate row, or a delegated CRL signer (``find_keys`` only).
EntryKind = Literal["paa", "pai", "dac", "crl_signer"]
#: Transaction kinds: CA certificates, a group of DACs, a CRL signer, a revocation, a CRL Number, a migration, a rebuild.
TxnKind = Literal["ca", "issue", "signer", "revoke", "crl", "upgrade", "rebuild"]

_CERT_COLUMNS = (
    "gen, kind, ca, serial, subject, pid, key_id, csr_sha256, der_sha256, not_before, not_after, issued_at, "
    "operator, reissue_reason, der, audit_seq, key_tag, serial_tag"
)
_ENTRY_SELECT = (
    "SELECT c.kind, c.ca, c.serial, c.subject, c.pid, c.csr_sha256, c.not_before, c.not_after, c.issued_at, "
    "c.operator, CASE WHEN r.serial IS NULL THEN 'issued' ELSE 'revoked' END, r.reason, r.revoked_at, c.der, "
    "c.audit_seq, c.key_id, c.der_sha256, c.reissue_reason, c.gen, c.id "
    "FROM certificates c LEFT JOIN revocations r ON r.ca = c.ca AND r.serial = c.serial"
)


def serial_hex(serial: int) -> str:
    """Upper-case hex of the serial's magnitude bytes, even length (Matter revocation-set form)."""
    text = f"{serial:X}"
    return text if len(text) % 2 == 0 else "0" + text


def parse_serial(text: str) -> int:
    """A serial typed by a user: hex, optionally with ``0x`` or ``:`` separators."""
    cleaned = text.strip().replace(":", "").replace(" ", "")
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if len(cleaned) > 64:
        raise InputError("input.serial", f"serial {text[:80]!r}... is too long")
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


def key_tag(key_id: str) -> int:
    """The indexed integer of a key id: its first 8 bytes, as a signed 64-bit number."""
    return int.from_bytes(bytes.fromhex(key_id[:16]), "big", signed=True)


def serial_tag(ca: str, serial: str) -> int:
    """The indexed (unique) integer of a (CA, serial) pair: 8 bytes of SHA-256, signed."""
    return int.from_bytes(hashlib.sha256(f"{ca}|{serial}".encode()).digest()[:8], "big", signed=True)


def key_id_of_der(der: bytes) -> str:
    """The key id of a certificate's P-256 key (found after the fixed P-256 SPKI prefix)."""
    at = der.find(P256_SPKI_PREFIX)
    if at >= 0 and der.find(P256_SPKI_PREFIX, at + 1) < 0:
        point = der[at + len(P256_SPKI_PREFIX) - 1 : at + len(P256_SPKI_PREFIX) + 64]
        if len(point) == 65:
            return key_id_of_point(point)
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = x509.load_der_x509_certificate(der).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise LedgerError("ledger.corrupt", "a certificate in the ledger does not carry an EC key")
    return key_id_of_point(key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One issued certificate."""

    kind: EntryKind
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
    key_id: str = ""
    der_sha256: str = ""
    reissue_reason: str | None = None
    gen: int = 0
    id: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the DER)."""
        return {
            "kind": self.kind,
            "ca": self.ca,
            "serial": self.serial,
            "subject": self.subject,
            "pid": f"{self.pid:04X}" if self.pid is not None else None,
            "key_id": self.key_id,
            "csr_sha256": self.csr_sha256,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
            "operator": self.operator,
            "status": self.status,
            "revocation_reason": self.revocation_reason,
            "revoked_at": self.revoked_at,
            "reissue_reason": self.reissue_reason,
        }

    def der_intact(self) -> bool:
        """True when the stored DER still hashes to the recorded digest."""
        return hashlib.sha256(self.der).hexdigest() == self.der_sha256


@dataclass(frozen=True, slots=True)
class CertRow:
    """A certificate about to be recorded (every column but ``gen``)."""

    kind: Kind
    ca: str
    serial: str
    subject: str
    pid: int | None
    key_id: str
    csr_sha256: str | None
    der: bytes
    not_before: str
    not_after: str
    issued_at: str
    operator: str
    reissue_reason: str | None = None
    audit_seq: int | None = None
    #: SHA-256 (hex) of ``der`` when the caller computed it already (it is not computed twice).
    known_sha256: str | None = None

    @property
    def der_sha256(self) -> str:
        """SHA-256 (hex) of the DER."""
        return self.known_sha256 or hashlib.sha256(self.der).hexdigest()

    @classmethod
    def from_der(
        cls, kind: Kind, ca: str, der: bytes, *, issued_at: str, operator: str, pid: int | None = None,
        csr_sha256: str | None = None, reissue_reason: str | None = None,
    ) -> CertRow:
        """Columns read from the certificate itself."""
        cert = x509.load_der_x509_certificate(der)
        return cls(
            kind, ca, serial_hex(cert.serial_number), cert.subject.rfc4514_string(), pid, key_id_of_der(der),
            csr_sha256, der, iso(cert.not_valid_before_utc), iso(cert.not_valid_after_utc), issued_at, operator,
            reissue_reason,
        )


@dataclass(frozen=True, slots=True)
class SignerRow:
    """One delegated CRL signer as the ledger records it (its status comes from the revocations)."""

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
    key_id: str = ""
    der_sha256: str = ""
    gen: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the DER)."""
        return {
            "id": self.id, "issuer": self.issuer, "serial": self.serial, "subject": self.subject,
            "not_before": self.not_before, "not_after": self.not_after, "issued_at": self.issued_at,
            "operator": self.operator, "status": self.status, "revocation_reason": self.revocation_reason,
            "revoked_at": self.revoked_at, "key_id": self.key_id,
        }  # fmt: skip

    def der_intact(self) -> bool:
        """True when the stored DER still hashes to the recorded digest."""
        return hashlib.sha256(self.der).hexdigest() == self.der_sha256


def _f(value: object) -> str:
    """One length-prefixed field of a canonical line (unambiguous whatever the text holds)."""
    text = "" if value is None else str(value)
    return f"{len(text)}:{text}"


def _sql_f(column: str) -> str:
    """The same field, built by SQLite (``length`` counts characters, as ``len`` does)."""
    return f"length(ifnull({column}, '')) || ':' || ifnull({column}, '')"


_CERT_FIELDS = ("kind", "ca", "serial", "subject", "pid", "key_id", "csr_sha256", "der_sha256", "not_before",
                "not_after", "issued_at", "operator", "reissue_reason", "key_tag", "serial_tag")
#: Free text (a CN, an operator name, a reason) is length-prefixed; every other field cannot hold a "|".
_FREE_TEXT = frozenset({"subject", "operator", "reissue_reason"})
#: The canonical line of every certificate row, built by SQLite (the deep check reads no row into Python objects).
_CERT_LINE_SQL = "'cert' || " + " || ".join(
    f"'|' || {_sql_f(c) if c in _FREE_TEXT else f'ifnull({c}, {chr(39)}{chr(39)})'}" for c in _CERT_FIELDS
) + " || char(10)"


def _cert_line(r: CertRow, der_sha: str, k_tag: int, s_tag: int) -> str:
    """The canonical line of a certificate row: what ``_CERT_LINE_SQL`` builds from the stored row."""
    pid = "" if r.pid is None else r.pid
    reissue, op, subject = r.reissue_reason or "", r.operator, r.subject
    return (
        f"cert|{r.kind}|{r.ca}|{r.serial}|{len(subject)}:{subject}|{pid}|{r.key_id}|{r.csr_sha256 or ''}|{der_sha}|"
        f"{r.not_before}|{r.not_after}|{r.issued_at}|{len(op)}:{op}|{len(reissue)}:{reissue}|{k_tag}|{s_tag}\n"
    )


_SIGNER_COLUMNS = (
    "id, gen, issuer, serial, subject, key_id, der_sha256, not_before, not_after, issued_at, operator, der, serial_tag"
)
_SIGNER_SELECT = (
    "SELECT s.id, s.issuer, s.serial, s.subject, s.not_before, s.not_after, s.issued_at, s.operator, "
    "CASE WHEN r.serial IS NULL THEN 'issued' ELSE 'revoked' END, r.reason, r.revoked_at, s.der, s.key_id, "
    "s.der_sha256, s.gen FROM crl_signers s LEFT JOIN revocations r ON r.ca = s.issuer AND r.serial = s.serial"
)


def _signer_line(*values: object) -> str:
    """The canonical line of a CRL signer row: id, issuer, serial, subject, key id, DER SHA-256, validity, time, operator."""
    return "signer" + "".join("|" + _f(v) for v in values) + "\n"


def _withheld_line(ca: str, serial: str, code: str, at: str) -> str:
    return "withheld" + "".join("|" + _f(v) for v in (ca, serial, code, at)) + "\n"


def _revoke_line(ca: str, serial: str, key_id: str, reason: str, at: str) -> str:
    return "revoke" + "".join("|" + _f(v) for v in (ca, serial, key_id, reason, at)) + "\n"


def _crl_line(ca: str, number: int, at: str) -> str:
    return "crl" + "".join("|" + _f(v) for v in (ca, number, at)) + "\n"


def chain_step(prev: str, gen: int, kind: str, at: str, digest: str) -> str:
    """The journal hash chain after transaction ``gen``."""
    return hashlib.sha256(f"matter-pki-ledger/2|{prev}|{gen}|{kind}|{at}|{digest}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One ledger transaction."""

    gen: int
    kind: str
    at: str
    digest: str
    chain: str
    audit_seen_seq: int
    audit_seen_hash: str


class Transaction:
    """The writes of one ledger transaction; its digest is computed as rows are added."""

    def __init__(self, db: sqlite3.Connection, gen: int) -> None:
        self._db = db
        self.gen = gen
        self._hash = hashlib.sha256()
        self.certs = 0
        self.writes = 0
        self._tags: dict[tuple[str, str], int] = {}  # serial tags already computed in this transaction

    def add_certs(self, rows: Sequence[CertRow]) -> None:
        """Insert certificates (the caller has checked serials and keys in this transaction)."""
        values = []
        lines = []
        gen, tags = self.gen, self._tags
        for r in rows:
            der_sha = r.known_sha256 or hashlib.sha256(r.der).hexdigest()
            k_tag = key_tag(r.key_id)
            s_tag = tags.get((r.ca, r.serial)) or serial_tag(r.ca, r.serial)
            values.append((
                gen, r.kind, r.ca, r.serial, r.subject, r.pid, r.key_id, r.csr_sha256, der_sha, r.not_before,
                r.not_after, r.issued_at, r.operator, r.reissue_reason, r.der, r.audit_seq, k_tag, s_tag,
            ))
            lines.append(_cert_line(r, der_sha, k_tag, s_tag))
        self._db.executemany(
            f"INSERT INTO certificates ({_CERT_COLUMNS}) VALUES ({', '.join('?' * 18)})", values
        )
        self._hash.update("".join(lines).encode())
        self.certs += len(rows)
        self.writes += len(rows)

    def add_signer(self, signer_id: str, issuer: str, der: bytes, *, issued_at: str, operator: str) -> bool:
        """Record a delegated CRL signer; False when ``issuer`` used its serial already (certificate or signer).

        ``input.signer_id_taken`` when the id is. Call after any ``add_certs`` of the same transaction.
        """
        cert = x509.load_der_x509_certificate(der)
        serial = serial_hex(cert.serial_number)
        if self.serials_taken(issuer, [serial]):
            return False
        values = (
            signer_id, self.gen, issuer, serial, cert.subject.rfc4514_string(), key_id_of_der(der),
            hashlib.sha256(der).hexdigest(), iso(cert.not_valid_before_utc), iso(cert.not_valid_after_utc), issued_at,
            operator, der, self._tags.get((issuer, serial)) or serial_tag(issuer, serial),
        )
        try:
            self._db.execute(f"INSERT INTO crl_signers ({_SIGNER_COLUMNS}) VALUES ({', '.join('?' * 13)})", values)
        except sqlite3.IntegrityError as e:
            if "crl_signers.id" in str(e):
                raise InputError("input.signer_id_taken", f"CRL signer id {signer_id!r} is already used") from e
            return False  # the serial triggers (a concurrent writer cannot exist: BEGIN IMMEDIATE)
        self._hash.update(_signer_line(signer_id, *values[2:11]).encode())
        self.writes += 1
        return True

    def withhold(self, ca: str, serial: str, code: str, at: str) -> bool:
        """Record the serial of a certificate the release gate withheld; False when it is recorded already.

        Call after any ``add_certs`` / ``add_signer`` of the same transaction.
        """
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO withheld (ca, serial, code, at, gen) VALUES (?, ?, ?, ?, ?)", (ca, serial, code, at, self.gen)
        )
        if cursor.rowcount != 1:
            return False
        self._hash.update(_withheld_line(ca, serial, code, at).encode())
        self.writes += 1
        return True

    def signer(self, signer_id: str) -> SignerRow | None:
        """A CRL signer as this (open) transaction sees it."""
        rows = self._db.execute(f"{_SIGNER_SELECT} WHERE s.id = ?", (signer_id,)).fetchall()
        return SignerRow(*rows[0]) if rows else None

    def revoke(self, ca: str, serial: str, key_id: str, reason: str, at: str) -> None:
        """Record a revocation (of a certificate or a CRL signer issued by ``ca``)."""
        self._db.execute(
            "INSERT INTO revocations (ca, serial, key_id, reason, revoked_at, gen) VALUES (?, ?, ?, ?, ?, ?)",
            (ca, serial, key_id, reason, at, self.gen),
        )
        self._hash.update(_revoke_line(ca, serial, key_id, reason, at).encode())
        self.writes += 1

    def crl_number(self, ca: str, at: str) -> int:
        """Allocate the next CRL Number of ``ca``: one more than any ever allocated (never reused)."""
        row = self._db.execute("SELECT MAX(number) FROM crl_numbers WHERE ca = ?", (ca,)).fetchone()
        number = (row[0] or 0) + 1
        self._db.execute(
            "INSERT INTO crl_numbers (ca, number, issued_at, gen) VALUES (?, ?, ?, ?)", (ca, number, at, self.gen)
        )
        self._hash.update(_crl_line(ca, number, at).encode())
        self.writes += 1
        return number

    def add_crl_number(self, ca: str, number: int, at: str) -> None:
        """Record a CRL Number known from elsewhere (a migration, a rebuild from the audit log)."""
        self._db.execute(
            "INSERT INTO crl_numbers (ca, number, issued_at, gen) VALUES (?, ?, ?, ?)", (ca, number, at, self.gen)
        )
        self._hash.update(_crl_line(ca, number, at).encode())
        self.writes += 1

    def serials_taken(self, ca: str, serials: Sequence[str]) -> set[str]:
        """Which of these serials cannot be used by ``ca``: used already (or, 2^-64, sharing a tag with one used)."""
        by_tag = {serial_tag(ca, s): s for s in serials}
        self._tags.update({(ca, s): t for t, s in by_tag.items()})
        taken: set[str] = set()
        for part in _chunks(list(by_tag), 500):
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT serial_tag FROM certificates WHERE serial_tag IN ({marks})", tuple(part))
            taken.update(by_tag[r[0]] for r in rows)
        for texts in _chunks(list(by_tag.values()), 500):
            marks = ",".join("?" * len(texts))
            for sql in (
                f"SELECT serial FROM crl_signers WHERE issuer = ? AND serial IN ({marks})",
                f"SELECT serial FROM withheld WHERE ca = ? AND serial IN ({marks})",
            ):
                taken.update(r[0] for r in self._db.execute(sql, (ca, *texts)))
        return taken

    @property
    def empty(self) -> bool:
        """True when nothing was written."""
        return self.writes == 0

    @property
    def digest(self) -> str:
        """SHA-256 of everything written so far."""
        return self._hash.hexdigest()


class Ledger:
    """The SQLite ledger of one home; use as a context manager or call ``close()``.

    Opening never creates a ledger (``create=True`` is for ``init`` and ``ledger rebuild``): a
    missing file is ``ledger.missing``, an unreadable one ``ledger.corrupt``, a format-1 ledger
    ``ledger.old_format`` (``matter-pki home upgrade`` migrates it).
    """

    def __init__(self, path: Path, *, create: bool = False, home_id: str | None = None, timeout: float = 30.0,
                 allow_old: bool = False) -> None:
        self.path = path
        if not create:
            if not path.exists():
                raise LedgerError(
                    "ledger.missing",
                    f"the ledger {str(path)!r} is missing; restore it from a backup, or rebuild it from the audit log "
                    "and the issued files: matter-pki ledger rebuild --from DIR",
                )
            if path.stat().st_size == 0:
                raise LedgerError(
                    "ledger.missing",
                    f"the ledger {str(path)!r} is empty; restore it from a backup, or: matter-pki ledger rebuild --from DIR",
                )
        elif path.exists():
            raise LedgerError("ledger.exists", f"{str(path)!r} already exists; refusing to replace a ledger")
        try:
            uri = f"file:{path}?mode={'rwc' if create else 'rw'}"
            # One thread at a time: a batch may hand its group commits to a thread of its own.
            self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            if create:
                self._db.executescript(_SCHEMA)
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("format", str(FORMAT)), ("home_id", home_id or "")],
                )
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as e:
            raise LedgerError("ledger.corrupt", f"the ledger {str(path)!r} cannot be read: {e}; see `matter-pki ledger verify`") from e
        self.home_id = meta.get("home_id")
        fmt = meta.get("format") or ("1" if meta.get("schema_version") == "1" else None)
        self.format = int(fmt) if fmt and fmt.isdigit() else 0
        if self.format != FORMAT and not (allow_old and self.format == 1):
            self._db.close()
            if self.format == 1:
                raise LedgerError(
                    "ledger.old_format",
                    f"the ledger {str(path)!r} is format 1 (before device-key identity): run `matter-pki home upgrade`",
                )
            raise LedgerError("ledger.corrupt", f"the ledger {str(path)!r} has an unknown format {fmt!r}")
        path.chmod(0o600)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- transactions ------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """(last gen, its chain); (0, GENESIS_CHAIN) before the first transaction."""
        row = self._read("SELECT gen, chain FROM journal ORDER BY gen DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, GENESIS_CHAIN)

    def journal(self, gen: int) -> JournalRow | None:
        """One journal row."""
        row = self._read(
            "SELECT gen, kind, at, digest, chain, audit_seen_seq, audit_seen_hash FROM journal WHERE gen = ?", (gen,)
        ).fetchone()
        return JournalRow(*row) if row else None

    def begin(self) -> Transaction:
        """BEGIN IMMEDIATE (the ledger's write lock) and a transaction for the next gen."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            gen = self.head()[0] + 1
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e
        return Transaction(self._db, gen)

    def commit(self, txn: Transaction, *, kind: TxnKind, at: str, audit_seen: tuple[int, str]) -> tuple[int, str]:
        """Journal and commit ``txn`` (one fsync); returns (gen, chain)."""
        try:
            prev = self.head()[1]
            chain = chain_step(prev, txn.gen, kind, at, txn.digest)
            self._db.execute(
                "INSERT INTO journal (gen, kind, at, digest, chain, audit_seen_seq, audit_seen_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (txn.gen, kind, at, txn.digest, chain, audit_seen[0], audit_seen[1]),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            self.rollback()
            if "full" in str(e).lower():
                raise StorageError("storage.disk_full", f"cannot write the ledger: the disk is full ({e})") from e
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e
        return txn.gen, chain

    def rollback(self) -> None:
        """Abandon the open transaction, if any."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def set_audit_seq(self, pairs: Iterable[tuple[str, str, int]]) -> None:
        """Remember which audit record announced each (ca, serial) (after a crash recovery)."""
        try:
            self._db.executemany(
                "UPDATE certificates SET audit_seq = ? WHERE serial_tag = ? AND ca = ? AND serial = ?",
                [(seq, serial_tag(ca, serial), ca, serial) for ca, serial, seq in pairs],
            )
        except sqlite3.Error as e:
            raise StorageError("storage.ledger", f"cannot write the ledger: {e}") from e

    # -- reads -------------------------------------------------------------------------------
    def get(self, ca: str, serial: str) -> LedgerEntry | None:
        """The certificate with this serial from this CA."""
        return self._one("WHERE c.serial_tag = ? AND c.ca = ? AND c.serial = ?", (serial_tag(ca, serial), ca, serial))

    def find_serial(self, serial: str, ca: str | None = None) -> list[LedgerEntry]:
        """Every certificate with this serial (optionally from one CA)."""
        cas = [ca] if ca is not None else self.cas()
        found = [self.get(c, serial) for c in cas]
        return sorted((e for e in found if e is not None), key=lambda e: e.id)

    def cas(self) -> list[str]:
        """Every issuing CA id in the ledger (the PAA and the PAIs that issued)."""
        return [r[0] for r in self._read("SELECT DISTINCT ca FROM certificates")]

    def find_keys(self, key_ids: Sequence[str]) -> dict[str, list[LedgerEntry]]:
        """Every certificate of each key id (any CA, any kind, CRL signers included: kind ``crl_signer``).

        The device-key rules decide on this: a key with any certificate but its own DAC is refused.
        Certificates come in issue order, then CRL signers in creation order.
        """
        found: dict[str, list[LedgerEntry]] = {}
        wanted = set(key_ids)
        for part in _chunks(list(dict.fromkeys(key_ids)), 500):
            marks = ",".join("?" * len(part))
            tags = tuple(key_tag(k) for k in part)
            for entry in self._many(f"WHERE c.key_tag IN ({marks}) ORDER BY c.id", tags):
                if entry.key_id in wanted:
                    found.setdefault(entry.key_id, []).append(entry)
            # A handful of rows per home: no index needed.
            for row in self._read(f"{_SIGNER_SELECT} WHERE s.key_id IN ({marks}) ORDER BY s.rowid", tuple(part)):
                signer = SignerRow(*row)
                found.setdefault(signer.key_id, []).append(LedgerEntry(
                    "crl_signer", signer.issuer, signer.serial, signer.subject, None, None, signer.not_before,
                    signer.not_after, signer.issued_at, signer.operator, signer.status, signer.revocation_reason,
                    signer.revoked_at, signer.der, None, signer.key_id, signer.der_sha256, None, signer.gen,
                ))  # fmt: skip
        return found

    def revoked_keys(self, key_ids: Sequence[str]) -> set[str]:
        """Which of these keys were ever revoked (under any CA)."""
        out: set[str] = set()
        for part in _chunks(list(dict.fromkeys(key_ids)), 500):
            marks = ",".join("?" * len(part))
            out.update(r[0] for r in self._read(f"SELECT key_id FROM revocations WHERE key_id IN ({marks})", tuple(part)))
        return out

    def revoked(self, ca: str) -> list[LedgerEntry]:
        """Revoked certificates of one issuing CA, in revocation order."""
        return self._many("WHERE c.ca = ? AND r.serial IS NOT NULL ORDER BY r.revoked_at, c.id", (ca,))

    def entries(self, ca: str | None = None, kind: Kind | None = None) -> list[LedgerEntry]:
        """Every row (optionally filtered), in issue order."""
        return list(self.iter_entries(ca, kind))

    def iter_entries(self, ca: str | None = None, kind: Kind | None = None, *, gen: int | None = None) -> Iterator[LedgerEntry]:
        """Every row (optionally filtered), in issue order, streamed."""
        clauses, args = [], []
        for column, value in (("c.ca", ca), ("c.kind", kind), ("c.gen", gen)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        cursor = self._read(f"{_ENTRY_SELECT} {where} ORDER BY c.id", tuple(args))
        while True:
            rows = cursor.fetchmany(1000)
            if not rows:
                return
            for row in rows:
                yield LedgerEntry(*row)

    def signer(self, signer_id: str) -> SignerRow | None:
        """One delegated CRL signer."""
        rows = self._read(f"{_SIGNER_SELECT} WHERE s.id = ?", (signer_id,)).fetchall()
        return SignerRow(*rows[0]) if rows else None

    def signers(self, issuer: str | None = None, *, gen: int | None = None) -> list[SignerRow]:
        """Delegated CRL signers (optionally of one issuing CA, or of one transaction), in creation order."""
        clauses, args = [], []
        for column, value in (("s.issuer", issuer), ("s.gen", gen)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return [SignerRow(*r) for r in self._read(f"{_SIGNER_SELECT} {where} ORDER BY s.rowid", tuple(args)).fetchall()]

    def revoked_signers(self, issuer: str) -> list[SignerRow]:
        """Revoked CRL signers of one issuing CA (they go on its direct CRL), in revocation order."""
        return [
            SignerRow(*r)
            for r in self._read(
                f"{_SIGNER_SELECT} WHERE s.issuer = ? AND r.serial IS NOT NULL ORDER BY r.revoked_at, s.rowid", (issuer,)
            ).fetchall()
        ]

    def withheld_in(self, gen: int) -> list[tuple[str, str, str, str]]:
        """(ca, serial, code, at) of the serials one transaction recorded as withheld."""
        return list(self._read("SELECT ca, serial, code, at FROM withheld WHERE gen = ? ORDER BY rowid", (gen,)))

    def revocations_in(self, gen: int) -> list[tuple[str, str, str, str, str]]:
        """(ca, serial, key_id, reason, revoked_at) of one transaction."""
        return list(self._read(
            "SELECT ca, serial, key_id, reason, revoked_at FROM revocations WHERE gen = ? ORDER BY rowid", (gen,)
        ))

    def crl_numbers_in(self, gen: int) -> list[tuple[str, int, str]]:
        """(ca, number, issued_at) of one transaction."""
        return list(self._read("SELECT ca, number, issued_at FROM crl_numbers WHERE gen = ? ORDER BY rowid", (gen,)))

    def last_crl_number(self, ca: str) -> int:
        """The highest CRL Number allocated for ``ca`` (0 when none)."""
        row = self._read("SELECT MAX(number) FROM crl_numbers WHERE ca = ?", (ca,)).fetchone()
        return int(row[0] or 0)

    def count(self, ca: str, kind: Kind) -> dict[str, int]:
        """Issued / revoked counts for one CA."""
        total = self._read("SELECT COUNT(*) FROM certificates WHERE ca = ? AND kind = ?", (ca, kind)).fetchone()[0]
        revoked = self._read(
            "SELECT COUNT(*) FROM revocations r JOIN certificates c ON c.ca = r.ca AND c.serial = r.serial "
            "WHERE r.ca = ? AND c.kind = ?", (ca, kind),
        ).fetchone()[0]
        return {"issued": total - revoked, "revoked": revoked}

    # -- integrity ---------------------------------------------------------------------------
    def verify_deep(self, *, full: bool = False, check_der: bool = False) -> None:
        """Every transaction re-hashed from its rows and chained, the indexes checked against the table.

        ``ledger.corrupt`` on any difference: a row edited, added or deleted, a journal entry changed,
        an index entry altered (a flipped byte). ``full`` runs SQLite's own ``integrity_check`` too
        (slower; ``ledger verify``); ``check_der`` re-hashes every stored DER.
        """
        try:
            if full:
                result = [r[0] for r in self._db.execute("PRAGMA integrity_check").fetchall()]
                if result != ["ok"]:
                    raise LedgerError("ledger.corrupt", f"the ledger's SQLite integrity check failed: {'; '.join(result[:3])}")
            self._check_indexes()
            digests = self._digests()
            if check_der:
                for serial, ca, der, digest in self._db.execute(
                    "SELECT serial, ca, der, der_sha256 FROM certificates UNION ALL "
                    "SELECT serial, issuer, der, der_sha256 FROM crl_signers"
                ):
                    if hashlib.sha256(der).hexdigest() != digest:
                        raise LedgerError("ledger.corrupt", f"the DER of certificate {serial} of {ca!r} was altered")
            journal = self._db.execute("SELECT gen, kind, at, digest, chain FROM journal ORDER BY gen").fetchall()
        except sqlite3.DatabaseError as e:
            raise LedgerError("ledger.corrupt", f"the ledger cannot be read: {e}; see `matter-pki ledger verify`") from e
        chain = GENESIS_CHAIN
        for expected_gen, (gen, kind, at, digest, stored_chain) in enumerate(journal, start=1):
            if gen != expected_gen:
                raise LedgerError("ledger.corrupt", f"ledger transaction {expected_gen} is missing from the journal")
            h = digests.pop(gen, None)
            actual = h.hexdigest() if h is not None else hashlib.sha256().hexdigest()
            if actual != digest:
                raise LedgerError(
                    "ledger.corrupt",
                    f"the rows of ledger transaction {gen} ({kind}, {at}) were altered, added or deleted",
                )
            chain = chain_step(chain, gen, kind, at, digest)
            if chain != stored_chain:
                raise LedgerError("ledger.corrupt", f"the ledger journal's hash chain breaks at transaction {gen}")
        if digests:
            raise LedgerError(
                "ledger.corrupt", f"ledger rows belong to transactions the journal does not hold ({sorted(digests)[:3]})"
            )

    def _check_indexes(self) -> None:
        """Each index, read on its own, holds exactly the table's (tag, row) pairs: checksums over both."""
        mix = "(({tag} % 999983) * 65537 + (id % 65521))"
        table = self._db.execute(
            f"SELECT COUNT(*), SUM({mix.format(tag='key_tag')}), SUM({mix.format(tag='serial_tag')}) "
            "FROM certificates NOT INDEXED"
        ).fetchone()
        by_key = self._db.execute(
            f"SELECT COUNT(*), SUM({mix.format(tag='key_tag')}) FROM certificates INDEXED BY certificates_key"
        ).fetchone()
        by_serial = self._db.execute(
            f"SELECT COUNT(*), SUM({mix.format(tag='serial_tag')}) FROM certificates INDEXED BY certificates_serial"
        ).fetchone()
        if (table[0], table[1]) != tuple(by_key) or (table[0], table[2]) != tuple(by_serial):
            raise LedgerError("ledger.corrupt", "a ledger index no longer matches its table (an edited or damaged index)")

    def _digests(self) -> dict[int, hashlib._Hash]:
        """SHA-256 of each transaction's canonical lines, rebuilt from the rows."""
        digests: dict[int, hashlib._Hash] = {}
        cursor = self._db.execute(f"SELECT gen, {_CERT_LINE_SQL} FROM certificates ORDER BY id")
        last_gen = 0
        pending: list[str] = []
        while rows := cursor.fetchmany(4096):
            for gen, line in rows:
                if gen != last_gen:
                    if gen < last_gen:
                        raise LedgerError("ledger.corrupt", "ledger rows are out of transaction order (rows were re-inserted)")
                    if pending:
                        digests.setdefault(last_gen, hashlib.sha256()).update("".join(pending).encode())
                        pending = []
                    last_gen = gen
                pending.append(line)
        if pending:
            digests.setdefault(last_gen, hashlib.sha256()).update("".join(pending).encode())
        for gen, *values in self._db.execute(
            "SELECT gen, id, issuer, serial, subject, key_id, der_sha256, not_before, not_after, issued_at, operator "
            "FROM crl_signers ORDER BY gen, rowid"
        ):
            digests.setdefault(gen, hashlib.sha256()).update(_signer_line(*values).encode())
        for gen, ca, serial, code, at in self._db.execute("SELECT gen, ca, serial, code, at FROM withheld ORDER BY gen, rowid"):
            digests.setdefault(gen, hashlib.sha256()).update(_withheld_line(ca, serial, code, at).encode())
        for gen, ca, serial, key_id, reason, at in self._db.execute(
            "SELECT gen, ca, serial, key_id, reason, revoked_at FROM revocations ORDER BY gen, rowid"
        ):
            digests.setdefault(gen, hashlib.sha256()).update(_revoke_line(ca, serial, key_id, reason, at).encode())
        for gen, ca, number, at in self._db.execute("SELECT gen, ca, number, issued_at FROM crl_numbers ORDER BY gen, rowid"):
            digests.setdefault(gen, hashlib.sha256()).update(_crl_line(ca, number, at).encode())
        return digests

    # -- helpers -----------------------------------------------------------------------------
    def _read(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, args)
        except sqlite3.DatabaseError as e:
            raise LedgerError("ledger.corrupt", f"cannot read the ledger: {e}; see `matter-pki ledger verify`") from e

    def _one(self, where: str, args: tuple[object, ...]) -> LedgerEntry | None:
        found = self._many(where, args)
        return found[0] if found else None

    def _many(self, where: str, args: tuple[object, ...]) -> list[LedgerEntry]:
        return [LedgerEntry(*row) for row in self._read(f"{_ENTRY_SELECT} {where}", args).fetchall()]

    @property
    def db(self) -> sqlite3.Connection:
        """The connection (migration and tests)."""
        return self._db


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _statements(script: str) -> Iterator[str]:
    """The SQL statements of a script, one by one (a trigger body holds ``;`` of its own)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""


def create_ledger(path: Path, *, home_id: str) -> Ledger:
    """A new, empty format-2 ledger (``init``, ``ledger rebuild``)."""
    return Ledger(path, create=True, home_id=home_id)


def upgrade_v1(path: Path, *, home_id: str, operator: str, at: str, audit_seen: tuple[int, str]) -> tuple[int, str, int]:
    """Migrate a format-1 ledger in place (one transaction): returns (gen, chain, certificates)."""
    ledger = Ledger(path, allow_old=True)
    db = ledger.db
    try:
        if ledger.format != 1:
            raise LedgerError("ledger.corrupt", f"{str(path)!r} is not a format-1 ledger")
        old_rows = db.execute(
            "SELECT kind, ca, serial, subject, pid, csr_sha256, not_before, not_after, issued_at, operator, status, "
            "revocation_reason, revoked_at, der, audit_seq FROM certificates ORDER BY id"
        ).fetchall()
        crl_state = db.execute("SELECT ca, crl_number, published_at FROM crl_state").fetchall()
        has_signers = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'crl_signers'").fetchone()
        old_signers = db.execute(
            "SELECT id, issuer, der, issued_at, operator, status, revocation_reason, revoked_at FROM crl_signers ORDER BY rowid"
        ).fetchall() if has_signers else []
        db.execute("BEGIN IMMEDIATE")
        for table in ("certificates", "crl_state", "crl_signers", "meta"):
            db.execute(f"DROP TABLE IF EXISTS {table}")  # their triggers go with them
        db.execute("DROP INDEX IF EXISTS certificates_dac_csr")
        db.execute("DROP INDEX IF EXISTS certificates_serial")
        for statement in _statements(_SCHEMA):
            db.execute(statement)
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [("format", str(FORMAT)), ("home_id", home_id)])
        txn = Transaction(db, 1)
        rows = []
        revocations = []
        for (kind, ca, serial, subject, pid, csr, nb, na, issued_at, op, status, reason, revoked_at, der, seq) in old_rows:
            key_id = key_id_of_der(der)
            rows.append(CertRow(kind, ca, serial, subject, pid, key_id, csr, der, nb, na, issued_at, op or operator,
                                None, seq))
            if status == "revoked":
                revocations.append((ca, serial, key_id, reason or "unspecified", revoked_at or at))
        txn.add_certs(rows)
        for signer_id, issuer, der, issued_at, op, status, reason, revoked_at in old_signers:
            if not txn.add_signer(signer_id, issuer, der, issued_at=issued_at, operator=op or operator):
                raise LedgerError("ledger.corrupt", f"CRL signer {signer_id!r} shares its serial with another certificate")
            if status == "revoked":
                revocations.append((issuer, serial_hex(x509.load_der_x509_certificate(der).serial_number),
                                    key_id_of_der(der), reason or "unspecified", revoked_at or at))
        for revocation in revocations:
            txn.revoke(*revocation)
        for ca, number, published_at in crl_state:
            # Format 1 kept only the last number: recording it keeps every next one above it.
            txn.add_crl_number(ca, number, published_at)
        chain = chain_step(GENESIS_CHAIN, 1, "upgrade", at, txn.digest)
        db.execute(
            "INSERT INTO journal (gen, kind, at, digest, chain, audit_seen_seq, audit_seen_hash) VALUES (1, 'upgrade', ?, ?, ?, ?, ?)",
            (at, txn.digest, chain, audit_seen[0], audit_seen[1]),
        )
        db.execute("COMMIT")
    except sqlite3.Error as e:
        ledger.rollback()
        raise StorageError("storage.ledger", f"cannot migrate the ledger: {e}") from e
    finally:
        ledger.close()
    return 1, chain, len(old_rows)
