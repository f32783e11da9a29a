"""The SQLite issuance ledger (matter_pki.local.ledger)."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki.errors import InputError, LedgerError
from matter_pki.local.ledger import (
    CertRow,
    Ledger,
    Transaction,
    TxnKind,
    create_ledger,
    key_id_of_der,
    key_id_of_point,
    parse_serial,
    serial_hex,
)
from matter_pki.profiles import DacProfile, PaaProfile, Validity, sign
from tests.unit.test_local_fixtures import NOW

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _dac_der(serial: int) -> bytes:
    """A DAC-shaped certificate with a given serial (issued by a throwaway VID-scoped CA)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    validity = Validity.no_expiry(NOW)
    issuer = sign(PaaProfile(vid=0xFFF1, validity=validity).builder(ca_key.public_key(), serial=7), ca_key)
    key = ec.generate_private_key(ec.SECP256R1())
    dac = DacProfile(vid=0xFFF1, pid=0x8000, validity=validity)
    return sign(dac.builder(key.public_key(), serial=serial, issuer=issuer), ca_key).public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    ("serial", "text"),
    [(1, "01"), (0xABC, "0ABC"), (0x80, "80"), (2**159 - 1, "7F" + "FF" * 19)],
)
def test_serial_hex_is_the_revocation_set_form(serial: int, text: str) -> None:
    # Upper-case hex of the magnitude, even length, no 00 sign byte (matter-rules §4, §8).
    assert serial_hex(serial) == text
    assert parse_serial(text.lower()) == serial


def test_parse_serial_accepts_colons_and_0x_and_refuses_junk() -> None:
    assert parse_serial("0x0a:bc") == 0xABC
    with pytest.raises(InputError) as err:
        parse_serial("xyz")
    assert err.value.code == "input.serial"


def _row(serial: int, *, ca: str = "pai-1", key: str | None = None, pid: int = 0x8000) -> CertRow:
    der = _dac_der(serial)
    row = CertRow.from_der("dac", ca, der, issued_at="2026-06-01T12:00:00Z", operator="op", pid=pid, csr_sha256="aa")
    return row if key is None else CertRow(**{**{f: getattr(row, f) for f in CertRow.__dataclass_fields__}, "key_id": key})


def _commit(ledger: Ledger, write: Callable[[Transaction], object], kind: TxnKind = "issue") -> tuple[int, str]:
    txn = ledger.begin()
    write(txn)
    return ledger.commit(txn, kind=kind, at="2026-06-01T12:00:00Z", audit_seen=(-1, "0" * 64))


def test_ledger_file_is_wal_and_private_and_never_created_by_opening(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with pytest.raises(LedgerError) as err:
        Ledger(path)
    assert err.value.code == "ledger.missing" and not path.exists()
    create_ledger(path, home_id="h").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    path.write_bytes(b"")
    with pytest.raises(LedgerError) as empty:
        Ledger(path)
    assert empty.value.code == "ledger.missing"


def test_a_format_1_ledger_is_refused_with_the_migration_command(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                     "INSERT INTO meta VALUES ('schema_version', '1');")
    db.close()
    with pytest.raises(LedgerError) as err:
        Ledger(path)
    assert err.value.code == "ledger.old_format" and "matter-pki home upgrade" in err.value.message


def test_rows_are_keyed_by_device_key_and_found_whatever_the_csr(tmp_path: Path) -> None:
    with create_ledger(tmp_path / "l.sqlite", home_id="h") as ledger:
        row = _row(0x1234)
        _commit(ledger, lambda txn: txn.add_certs([row]))
        # THEN the key id is SHA-256 of the DAC's uncompressed point, and lookups by key find the row
        cert = x509.load_der_x509_certificate(row.der)
        point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)  # type: ignore[union-attr]
        assert row.key_id == key_id_of_point(point) == key_id_of_der(row.der)
        assert [e.serial for e in ledger.find_keys([row.key_id])[row.key_id]] == ["1234"]
        assert ledger.find_keys(["00" * 32]) == {}


def test_serials_taken_and_revoked_keys(tmp_path: Path) -> None:
    with create_ledger(tmp_path / "l.sqlite", home_id="h") as ledger:
        row = _row(0x42)
        _commit(ledger, lambda txn: txn.add_certs([row]))
        txn = ledger.begin()
        assert txn.serials_taken("pai-1", ["42", "43"]) == {"42"}
        assert txn.serials_taken("pai-2", ["42"]) == set()
        txn.revoke("pai-1", "42", row.key_id, "keyCompromise", "2026-06-01T12:00:00Z")
        ledger.commit(txn, kind="revoke", at="t", audit_seen=(0, "0" * 64))
        entry = ledger.get("pai-1", "42")
        assert entry is not None and (entry.status, entry.revocation_reason) == ("revoked", "keyCompromise")
        assert ledger.revoked_keys([row.key_id, "ab" * 32]) == {row.key_id}


def test_crl_numbers_never_repeat_or_go_back(tmp_path: Path) -> None:
    with create_ledger(tmp_path / "l.sqlite", home_id="h") as ledger:
        numbers = []
        for _ in range(3):
            _commit(ledger, lambda txn: numbers.append(txn.crl_number("pai-1", "t")), "crl")
        _commit(ledger, lambda txn: numbers.append(txn.crl_number("paa", "t")), "crl")
        assert numbers == [1, 2, 3, 1]
        # A number already taken cannot be recorded twice (PRIMARY KEY (ca, number))
        txn = ledger.begin()
        with pytest.raises(sqlite3.IntegrityError):
            txn.add_crl_number("pai-1", 2, "t")
        ledger.rollback()
    with Ledger(tmp_path / "l.sqlite") as reopened:
        assert reopened.last_crl_number("pai-1") == 3


def test_the_journal_chains_every_transaction_and_the_deep_check_finds_any_edit(tmp_path: Path) -> None:
    # GIVEN three transactions (two DACs, a revocation)
    path = tmp_path / "l.sqlite"
    with create_ledger(path, home_id="h") as ledger:
        rows = [_row(0x10), _row(0x11)]
        _commit(ledger, lambda txn: txn.add_certs(rows))
        _commit(ledger, lambda txn: txn.revoke("pai-1", "10", rows[0].key_id, "keyCompromise", "t"), "revoke")
        gen, chain = ledger.head()
        assert gen == 2 and chain != "0" * 64
        ledger.verify_deep(check_der=True)
    edits = [
        "UPDATE certificates SET pid = 32769 WHERE serial = '11'",
        "DELETE FROM revocations",
        "UPDATE certificates SET key_id = 'ff' || substr(key_id, 3) WHERE serial = '10'",
        "DELETE FROM certificates WHERE serial = '11'",
        "UPDATE journal SET chain = '11' || substr(chain, 3) WHERE gen = 1",
    ]
    for edit in edits:
        copy = tmp_path / f"copy-{edits.index(edit)}.sqlite"
        shutil.copy(path, copy)
        db = sqlite3.connect(copy)
        db.execute(edit)
        db.commit()
        db.close()
        # WHEN the ledger is hand-edited THEN the deep check refuses it
        with Ledger(copy) as edited, pytest.raises(LedgerError) as err:
            edited.verify_deep()
        assert err.value.code == "ledger.corrupt", edit


def test_rows_with_odd_text_hash_the_same_in_python_and_in_sqlite(tmp_path: Path) -> None:
    # GIVEN free text with separators, non-ASCII characters and NULLs
    with create_ledger(tmp_path / "l.sqlite", home_id="h") as ledger:
        base = _row(0x77)
        odd = CertRow(**{
            **{f: getattr(base, f) for f in CertRow.__dataclass_fields__},
            "subject": "CN=Ünïcødé | 3:x|", "operator": "a|b:1", "reissue_reason": "moved | to 8001", "pid": None,
            "csr_sha256": None,
        })
        _commit(ledger, lambda txn: txn.add_certs([odd]))
        # THEN the deep check (lines rebuilt by SQLite) agrees with the digest made at insert (Python)
        ledger.verify_deep(full=True, check_der=True)
