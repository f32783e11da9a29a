"""The SQLite issuance ledger (matter_pki.local.ledger)."""

from __future__ import annotations

import sqlite3
import stat
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.errors import InputError
from matter_pki.local.ledger import InsertOutcome, Ledger, NewEntry, parse_serial, serial_hex
from matter_pki.profiles import DacProfile, PaaProfile, Validity, sign
from tests.unit.test_local_fixtures import NOW

if TYPE_CHECKING:
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


def test_ledger_file_is_wal_and_private(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_same_csr_and_same_serial_are_detected_not_duplicated(tmp_path: Path) -> None:
    # GIVEN a ledger with one DAC for CSR "aa" and serial 0x1234
    with Ledger(tmp_path / "l.sqlite") as ledger:
        first = NewEntry("dac", "pai-1", _dac_der(0x1234), pid=0x8000, csr_sha256="aa")
        assert ledger.record(first, issued_at="t", operator="op") == InsertOutcome.INSERTED
        # WHEN the same CSR comes with another DAC, or another CSR reuses the serial
        again = NewEntry("dac", "pai-1", _dac_der(0x9999), pid=0x8000, csr_sha256="aa")
        clash = NewEntry("dac", "pai-1", _dac_der(0x1234), pid=0x8000, csr_sha256="bb")
        other_pai = NewEntry("dac", "pai-2", _dac_der(0x1234), pid=0x8000, csr_sha256="aa")
        outcomes = ledger.record_many([again, clash, other_pai], issued_at="t", operator="op")
        # THEN both conflicts are reported; the same serial and CSR under another PAI is fine
        assert outcomes == [InsertOutcome.SAME_CSR, InsertOutcome.SERIAL_TAKEN, InsertOutcome.INSERTED]
        assert [e.serial for e in ledger.entries("pai-1")] == ["1234"]
        assert ledger.find_csr("pai-1", "aa").serial == "1234"  # type: ignore[union-attr]


def test_revoke_records_reason_and_refuses_twice(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        ledger.record(NewEntry("dac", "pai-1", _dac_der(0x42), pid=0x8000, csr_sha256="aa"), issued_at="t", operator="op")
        entry = ledger.revoke("pai-1", "42", reason="keyCompromise", at="2026-06-01T12:00:00Z")
        assert (entry.status, entry.revocation_reason, entry.revoked_at) == ("revoked", "keyCompromise", "2026-06-01T12:00:00Z")
        with pytest.raises(InputError) as err:
            ledger.revoke("pai-1", "42", reason="superseded", at="x")
        assert err.value.code == "ledger.already_revoked"
        with pytest.raises(InputError) as unknown:
            ledger.revoke("pai-1", "43", reason="superseded", at="x")
        assert unknown.value.code == "ledger.serial_unknown"


def test_crl_numbers_are_monotonic_per_ca(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        assert [ledger.next_crl_number("pai-1", "t") for _ in range(3)] == [1, 2, 3]
        assert ledger.next_crl_number("paa", "t") == 1
    with Ledger(tmp_path / "l.sqlite") as reopened:
        assert reopened.next_crl_number("pai-1", "t") == 4
