"""Production stations: who may ask the service for DACs, for which PAI and PIDs, how many per day.

The registry is ``<home>/serve/stations.sqlite`` (WAL, synchronous FULL, mode 0600). A station is
recognised by the SHA-256 of the client certificate it presents; the server re-reads the registry
whenever another process changed it (SQLite ``data_version``), so ``station revoke`` takes effect
on the next request without a restart, on open connections too.

Quotas count new DACs per station and UTC day. They are reserved durably *before* signing and
refunded after, for the CSRs that did not get a new DAC (refused, or re-delivered from the ledger);
a crash between the two leaves the reservation in place, so a station never gets more new DACs in a
day than its quota, at the price of unused quota after a crash.

Adding and revoking a station follow the home's commit protocol (announced in the signed audit log
before the registry holds the change), under the audit log's lock:

1. the change is *staged* in the registry (``changes`` table) with the audit position it saw;
2. one audit record announces it (``station.added`` / ``station.revoked``, with the change id);
3. the registry applies it (the station row inserted or marked revoked) and marks it done.

A kill between (1) and (3) leaves a staged change: the next ``station add``/``station revoke`` or
``serve`` start finishes it, announcing it (``recovered: true``) only when the records after the
position it saw do not already hold its announcement, so each change is announced exactly once. A
staged add grants nothing (the station is not in the registry); a staged revocation is honoured by
the server at once (the safe reading of a change in progress).
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.backends.keyfile import encrypt_key
from matter_pki.errors import InputError, ServiceError, StorageError
from matter_pki.local.ca import start_under, validity_from
from matter_pki.local.ledger import iso
from matter_pki.profiles import DacProfile
from matter_pki.serve.tls import ServePaths, cert_sha256, ensure_ca, make_station_cert
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from pathlib import Path

    from matter_pki.audit import AuditLog
    from matter_pki.audit.log import AuditRecord, AuditSession
    from matter_pki.local.home import PkiHome

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_QUOTA_RE = re.compile(r"\s*(\d{1,9})\s*(?:/\s*(?:day|d))?\s*")
DEFAULT_STATION_DAYS = 365
STATION_FILES = ("station.key", "station.pem", "ca.pem", "station.json")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    name TEXT PRIMARY KEY,
    pai TEXT NOT NULL,
    pids TEXT NOT NULL,
    quota_per_day INTEGER,
    cert_sha256 TEXT NOT NULL UNIQUE,
    serial TEXT NOT NULL,
    not_after TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT
);
CREATE TABLE IF NOT EXISTS usage (
    station TEXT NOT NULL,
    day TEXT NOT NULL,
    used INTEGER NOT NULL CHECK (used >= 0),
    PRIMARY KEY (station, day)
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL CHECK (event IN ('station.added', 'station.revoked')),
    station TEXT NOT NULL,
    fields TEXT NOT NULL,
    audit_seq INTEGER NOT NULL,
    audit_hash TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0
);
"""
_COLUMNS = "name, pai, pids, quota_per_day, cert_sha256, serial, not_after, status, created_at, revoked_at, revocation_reason"


def check_station_name(name: str) -> str:
    """Station names: ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``."""
    if not _NAME_RE.fullmatch(name):
        raise InputError("input.station_name", f"{name!r} is not a valid station name (letters, digits, '.', '-', '_'; 1-64)")
    return name


def parse_quota(text: str | None) -> int | None:
    """``N/day`` (or ``N``) → N; None means no quota."""
    if text is None:
        return None
    match = _QUOTA_RE.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise InputError("input.quota", f"quota {text!r} must be a positive number of DACs per day, e.g. 5000/day")
    return int(match.group(1))


def utc_day(now: datetime) -> str:
    """The quota day of an instant: ``YYYY-MM-DD`` in UTC."""
    return now.astimezone(UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Station:
    """One registered station."""

    name: str
    pai: str
    pids: tuple[int, ...]
    quota_per_day: int | None
    cert_sha256: str
    serial: str
    not_after: str
    status: Literal["active", "revoked"]
    created_at: str
    revoked_at: str | None = None
    revocation_reason: str | None = None

    @property
    def active(self) -> bool:
        """True unless revoked."""
        return self.status == "active"

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Station:
        """From a registry row."""
        name, pai, pids, quota, sha, serial, not_after, status, created, revoked_at, reason = row
        return cls(name, pai, tuple(json.loads(pids)), quota, sha, serial, not_after, status, created, revoked_at, reason)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name, "pai": self.pai, "pids": [f"{p:04X}" for p in self.pids],
            "quota_per_day": self.quota_per_day, "status": self.status, "serial": self.serial,
            "cert_sha256": self.cert_sha256, "not_after": self.not_after, "created_at": self.created_at,
            "revoked_at": self.revoked_at, "revocation_reason": self.revocation_reason,
        }


def _station_from_dict(data: dict[str, Any]) -> Station:
    return Station(
        data["name"], data["pai"], tuple(int(p, 16) for p in data["pids"]), data["quota_per_day"], data["cert_sha256"],
        data["serial"], data["not_after"], data["status"], data["created_at"], data["revoked_at"], data["revocation_reason"],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StationChange:
    """A station change to announce and make: the station as it will be, the record's fields, the audit position seen."""

    event: Literal["station.added", "station.revoked"]
    station: Station
    fields: dict[str, Any]
    seen: tuple[int, str]


class StationRegistry:
    """The SQLite station registry; one instance per thread (``sqlite3`` connections are not shared)."""

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = path
        try:
            ensure_private_dir(path.parent)
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            path.chmod(0o600)
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot open the station registry {str(path)!r}: {e}") from e
        self._version: int | None = None
        self._by_sha: dict[str, Station] = {}

    def __enter__(self) -> StationRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    # -- stations ----------------------------------------------------------------------------
    def _insert(self, station: Station) -> None:
        if self._db.execute("SELECT 1 FROM stations WHERE name = ?", (station.name,)).fetchone():
            raise ServiceError("serve.station_exists", f"a station named {station.name!r} exists (names are never reused)")
        self._db.execute(
            f"INSERT INTO stations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                station.name, station.pai, json.dumps(list(station.pids)), station.quota_per_day,
                station.cert_sha256, station.serial, station.not_after, station.status, station.created_at,
                station.revoked_at, station.revocation_reason,
            ),
        )  # fmt: skip

    def add(self, station: Station) -> None:
        """Register a station, unannounced (``serve.station_exists`` when the name is taken); ``add_station`` announces."""
        try:
            with self._transaction():
                self._insert(station)
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the station registry: {e}") from e

    def revoke(self, name: str, *, at: str, reason: str | None) -> Station:
        """Mark a station revoked, unannounced (``serve.station_already_revoked``); ``revoke_station`` announces."""
        try:
            with self._transaction():
                station = self.get(name)
                if not station.active:
                    raise ServiceError("serve.station_already_revoked", f"station {name!r} was revoked at {station.revoked_at}")
                self._db.execute(
                    "UPDATE stations SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE name = ?",
                    (at, reason, name),
                )
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the station registry: {e}") from e
        return self.get(name)

    # -- staged changes (the commit protocol, see the module docstring) --------------------------
    def stage(self, change: StationChange) -> int:
        """Step 1: record the change to make and the audit position it saw; returns its id."""
        try:
            with self._transaction():
                cur = self._db.execute(
                    "INSERT INTO changes (event, station, fields, audit_seq, audit_hash) VALUES (?, ?, ?, ?, ?)",
                    (change.event, json.dumps(change.station.to_dict()), json.dumps(change.fields), *change.seen),
                )
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the station registry: {e}") from e
        assert cur.lastrowid is not None
        return int(cur.lastrowid)

    def staged(self) -> list[tuple[int, StationChange]]:
        """Changes staged and not yet applied, oldest first."""
        rows = self._db.execute(
            "SELECT id, event, station, fields, audit_seq, audit_hash FROM changes WHERE done = 0 ORDER BY id"
        ).fetchall()
        return [(r[0], StationChange(r[1], _station_from_dict(json.loads(r[2])), json.loads(r[3]), (r[4], r[5]))) for r in rows]

    def apply(self, change_id: int, change: StationChange) -> None:
        """Step 3: make the staged change in the station table and mark it done, in one transaction."""
        try:
            with self._transaction():
                station = change.station
                if change.event == "station.added":
                    self._insert(station)
                else:
                    self._db.execute(
                        "UPDATE stations SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE name = ?",
                        (station.revoked_at, station.revocation_reason, station.name),
                    )
                self._db.execute("UPDATE changes SET done = 1 WHERE id = ?", (change_id,))
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the station registry: {e}") from e

    def exists(self, name: str) -> bool:
        """True when the name is registered (active or revoked)."""
        return self._db.execute("SELECT 1 FROM stations WHERE name = ?", (name,)).fetchone() is not None

    def get(self, name: str) -> Station:
        """One station (``serve.station_unknown``)."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM stations WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ServiceError("serve.station_unknown", f"no station named {name!r}")
        return Station.from_row(row)

    def all(self) -> list[Station]:
        """Every station, by name."""
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM stations ORDER BY name").fetchall()
        return [Station.from_row(r) for r in rows]

    def by_certificate(self, sha256: str) -> Station | None:
        """The station presenting this certificate, from a cache refreshed whenever the registry changed."""
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._by_sha = {s.cert_sha256: s for s in self.all()}
            # A revocation being made (staged, not yet applied) is honoured at once.
            for _id, change in self.staged():
                if change.event == "station.revoked" and change.station.cert_sha256 in self._by_sha:
                    self._by_sha[change.station.cert_sha256] = change.station
            self._version = version
        return self._by_sha.get(sha256)

    # -- quotas ------------------------------------------------------------------------------
    def used(self, name: str, day: str) -> int:
        """DACs counted against a station's quota on one day."""
        row = self._db.execute("SELECT used FROM usage WHERE station = ? AND day = ?", (name, day)).fetchone()
        return int(row[0]) if row else 0

    def reserve(self, wanted: Sequence[tuple[Station, int, int]], day: str) -> list[int | None]:
        """Reserve quota for several requests in one durable transaction.

        ``wanted``: (station, count, minimum) per request; each gets ``count`` when it fits, else
        ``minimum`` when that fits, else None (refused). Stations without a quota always get ``count``.
        """
        granted: list[int | None] = []
        try:
            with self._transaction():
                for station, count, minimum in wanted:
                    if station.quota_per_day is None:
                        granted.append(count)
                        continue
                    left = station.quota_per_day - self.used(station.name, day)
                    take = count if count <= left else minimum if minimum <= left else None
                    granted.append(take)
                    if take:
                        self._db.execute(
                            "INSERT INTO usage (station, day, used) VALUES (?, ?, ?) "
                            "ON CONFLICT (station, day) DO UPDATE SET used = used + excluded.used",
                            (station.name, day, take),
                        )
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the quota counters: {e}") from e
        return granted

    def refund(self, refunds: Iterable[tuple[str, str, int]]) -> None:
        """Give back reserved quota (station, day, count) that did not become new DACs."""
        rows = [(n, s, d) for s, d, n in refunds if n > 0]
        if not rows:
            return
        try:
            with self._transaction():
                self._db.executemany(
                    "UPDATE usage SET used = MAX(used - ?, 0) WHERE station = ? AND day = ?", rows
                )
        except sqlite3.Error as e:
            raise StorageError("storage.stations", f"cannot write the quota counters: {e}") from e

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


# -- station lifecycle (the CLI's ``station`` commands) ------------------------------------------
def check_station_scope(home: PkiHome, pai_id: str, pids: Sequence[int], now: datetime) -> None:
    """The PAI exists, is active and may certify every PID (the DAC profile's own rule)."""
    if not pids:
        raise InputError("input.pid_required", "give at least one --pid")
    pai = home.load_cert(pai_id)
    if home.ca_info(pai_id).role != "pai":
        raise InputError("input.ca_id", f"{pai_id!r} is not a PAI")
    validity = validity_from(start_under(pai, now), None)
    for pid in pids:
        DacProfile.for_issuer(pai, pid=pid, validity=validity)


def add_station(
    home: PkiHome,
    *,
    name: str,
    pai_id: str,
    pids: Sequence[int],
    quota_per_day: int | None,
    out_dir: Path,
    passphrase: bytes,
    station_passphrase: bytes,
    audit: AuditLog,
    now: datetime,
    days: int = DEFAULT_STATION_DAYS,
) -> Station:
    """Register a station and write its encrypted key, client certificate, the CA bundle and a summary."""
    home.require()
    check_station_name(name)
    pids = tuple(dict.fromkeys(pids))
    check_station_scope(home, pai_id, pids, now)
    if days < 1:
        raise InputError("input.validity", "--validity-days must be at least 1")
    paths = ServePaths.of(home)
    with home.lock():
        with StationRegistry(paths.stations_db) as registry:
            if registry.exists(name):
                raise ServiceError("serve.station_exists", f"a station named {name!r} exists (names are never reused)")
            taken = [f for f in STATION_FILES if (out_dir / f).exists()]
            if taken:
                raise InputError("input.exists", f"{str(out_dir)!r} already holds {', '.join(taken)}; refusing to overwrite")
            ca_key, ca = ensure_ca(home, paths, passphrase, now, audit)
            key, cert = make_station_cert(ca_key, ca, name, now, days)
            station = Station(
                name=name, pai=pai_id, pids=pids, quota_per_day=quota_per_day, cert_sha256=cert_sha256(cert),
                serial=f"{cert.serial_number:X}", not_after=iso(cert.not_valid_after_utc), status="active",
                created_at=iso(now),
            )
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StorageError("storage.write_failed", f"cannot create {str(out_dir)!r}: {e.strerror}") from e
            # Files first: a certificate the registry does not list is refused by the server.
            atomic_write(out_dir / "station.key", encrypt_key(key, station_passphrase), mode=0o600, exclusive=True)
            atomic_write(out_dir / "station.pem", cert.public_bytes(Encoding.PEM), exclusive=True)
            atomic_write(out_dir / "ca.pem", ca.public_bytes(Encoding.PEM), exclusive=True)
            summary = {k: v for k, v in station.to_dict().items() if v is not None}
            atomic_write(out_dir / "station.json", (json.dumps(summary, indent=2) + "\n").encode(), exclusive=True)
            fields = {
                "station": name, "pai": pai_id, "pids": [f"{p:04X}" for p in pids], "quota_per_day": quota_per_day,
                "serial": station.serial, "cert_sha256": station.cert_sha256, "not_after": station.not_after,
            }  # fmt: skip

            def make() -> tuple[Station, dict[str, Any]]:
                if registry.exists(name):  # again, under the audit lock (a staged add of this name was finished)
                    raise ServiceError("serve.station_exists", f"a station named {name!r} exists (names are never reused)")
                return station, fields

            _commit(registry, audit, "station.added", make)
    return station


def _commit(
    registry: StationRegistry,
    audit: AuditLog,
    event: Literal["station.added", "station.revoked"],
    make: Callable[[], tuple[Station, dict[str, Any]]],
) -> Station:
    """Stage, announce, apply (the module docstring); staged changes of killed runs are finished first.

    ``make``: run under the audit lock once those are finished; the station as the change leaves it and
    the record's fields, or a refusal.
    """
    with audit.session() as session:
        _finish(registry, session)
        station, fields = make()
        change = StationChange(event, station, fields, (session.next_seq - 1, session.tail_hash))
        change_id = registry.stage(change)
        session.append([(event, {**fields, "change": change_id})])
        registry.apply(change_id, change)
    return station


def _finish(registry: StationRegistry, session: AuditSession) -> list[AuditRecord]:
    """Announce (unless already announced) and apply every staged change; returns the records appended."""
    written: list[AuditRecord] = []
    for change_id, change in registry.staged():
        after = session.records_after(*change.seen) or []
        if not any(r.event == change.event and r.fields.get("change") == change_id for r in after):
            written += session.append([(change.event, {**change.fields, "change": change_id, "recovered": True})])
        registry.apply(change_id, change)
    return written


def finish_station_changes(home: PkiHome, audit: AuditLog) -> list[AuditRecord]:
    """Finish the station changes a killed ``station add``/``station revoke`` left staged (``serve`` start does)."""
    path = ServePaths.of(home).stations_db
    if not path.exists():
        return []
    with StationRegistry(path) as registry:
        if not registry.staged():
            return []
        with audit.session() as session:
            return _finish(registry, session)


def list_stations(home: PkiHome, now: datetime) -> list[dict[str, Any]]:
    """Every station with today's quota use."""
    home.require()
    path = ServePaths.of(home).stations_db
    if not path.exists():
        return []
    day = utc_day(now)
    with StationRegistry(path) as registry:
        return [{**s.to_dict(), "used_today": registry.used(s.name, day)} for s in registry.all()]


def revoke_station(home: PkiHome, name: str, *, reason: str | None, audit: AuditLog, now: datetime) -> Station:
    """Revoke a station: the server refuses its certificate from the next request on."""
    home.require()
    path = ServePaths.of(home).stations_db
    if not path.exists():
        raise ServiceError("serve.station_unknown", f"no station named {name!r}")
    with StationRegistry(path) as registry:

        def make() -> tuple[Station, dict[str, Any]]:
            station = registry.get(name)
            if not station.active:
                raise ServiceError("serve.station_already_revoked", f"station {name!r} was revoked at {station.revoked_at}")
            fields = {"station": name, "reason": reason, "serial": station.serial, "cert_sha256": station.cert_sha256}
            return replace(station, status="revoked", revoked_at=iso(now), revocation_reason=reason), fields

        station = _commit(registry, audit, "station.revoked", make)
    return station
