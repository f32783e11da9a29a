"""``matter-pki audit verify``: an intact log passes; every kind of tampering fails naming the record."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.audit import AuditLog, verify_log
from matter_pki.audit.seal import AuditKey
from matter_pki.cli import main
from tests.unit.test_local_fixtures import new_audit_log

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
RECORDS = 25  # with seals every 10: seals at seq 10 and 21, 27 lines (seq 0..26)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The audit key is always stored encrypted, so the default test environment has a passphrase.
    monkeypatch.setenv("MATTER_PKI_PASSPHRASE", "audit-test-passphrase")
    for name in ("MATTER_PKI_AUDIT_SEAL_EVERY", "MATTER_PKI_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose log holds 25 operations and two automatic seals."""
    log = new_audit_log(tmp_path, seal_every=10)
    for i in range(RECORDS):
        log.record("dac.issued", ca="pai-1", serial=f"{0x5A00 + i:04X}", pid="8000", operator="alice", now=NOW)
    return tmp_path


def log_lines(home: Path) -> list[bytes]:
    return (home / "audit" / "audit.log").read_bytes().splitlines(keepends=True)


def write_lines(home: Path, lines: list[bytes]) -> None:
    (home / "audit" / "audit.log").write_bytes(b"".join(lines))


def verify(home: Path, *extra: str):
    return CliRunner().invoke(main, ["audit", "verify", "--home", str(home), *extra])


def problem(home: Path) -> tuple[str, int | None, int | None]:
    p = verify_log(home / "audit").problem
    assert p is not None
    return p.code, p.line, p.seq


# -- intact ---------------------------------------------------------------------------------------
def test_untouched_log_with_several_seals_verifies(home: Path) -> None:
    # GIVEN 25 records and 2 automatic seals, THEN a manual seal on top
    AuditLog(home).seal()
    result = verify(home)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("audit log intact: 28 records, 3 seals, head seq 27, key ")


def test_untouched_unsealed_tail_verifies_thanks_to_the_head(home: Path) -> None:
    result = verify(home)
    assert result.exit_code == 0
    assert "note: records seq 22..26 are covered by the signed head, not yet by a seal" in result.output


def test_json_output(home: Path) -> None:
    data = json.loads(verify(home, "--format", "json").output)
    assert (data["ok"], data["records"], data["seals"], data["head_seq"], data["problem"]) == (True, 27, 2, 26, None)


# -- tampering ------------------------------------------------------------------------------------
def flip(line: bytes, at: int) -> bytes:
    return line[:at] + bytes([line[at] ^ 0x01]) + line[at + 1 :]


@pytest.mark.parametrize("where", ["early", "middle", "late"])
def test_flipping_one_byte_anywhere_names_that_record(home: Path, where: str) -> None:
    # GIVEN one byte flipped in each line in turn (beginning, middle or end of the JSON)
    original = log_lines(home)
    for i, line in enumerate(original):
        at = {"early": 2, "middle": len(line) // 2, "late": len(line) - 3}[where]
        write_lines(home, [*original[:i], flip(line, at), *original[i + 1 :]])
        # THEN verify fails naming line i+1 (seq i)
        code, line_no, seq = problem(home)
        assert (line_no, seq) == (i + 1, i), (i, at, code)
        assert code in ("audit.modified", "audit.malformed", "audit.seal_invalid")


def test_flipped_byte_in_a_field_via_cli(home: Path) -> None:
    # GIVEN the serial of seq 5 changed from 5A05 to 5A04
    lines = log_lines(home)
    lines[5] = lines[5].replace(b'"serial":"5A05"', b'"serial":"5A04"')
    write_lines(home, lines)
    result = verify(home)
    # THEN exit 1 and the message names line 6 / seq 5
    assert result.exit_code == 1
    assert result.output.startswith("audit log FAILED verification at line 6 (seq 5): [audit.modified] record seq 5")


def test_deleting_a_record_is_detected(home: Path) -> None:
    lines = log_lines(home)
    write_lines(home, lines[:7] + lines[8:])
    assert problem(home) == ("audit.deleted", 8, 7)
    result = verify(home)
    assert (result.exit_code, "record seq 7 is missing" in result.output) == (1, True)


def test_deleting_a_seal_record_is_detected(home: Path) -> None:
    lines = log_lines(home)
    write_lines(home, lines[:10] + lines[11:])
    assert problem(home) == ("audit.deleted", 11, 10)


def test_swapping_two_records_is_detected(home: Path) -> None:
    lines = log_lines(home)
    lines[3], lines[4] = lines[4], lines[3]
    write_lines(home, lines)
    code, line, seq = problem(home)
    assert (code, seq) == ("audit.reordered", 3)
    assert "records seq 3 and seq 4 are swapped" in verify(home).output


def test_moving_a_record_far_is_detected(home: Path) -> None:
    lines = log_lines(home)
    moved = lines.pop(2)
    lines.insert(15, moved)
    write_lines(home, lines)
    assert problem(home)[0:3:2] == ("audit.reordered", 2)


def test_inserting_a_forged_record_is_detected(home: Path) -> None:
    # GIVEN a record crafted to chain correctly after seq 12, with seq 13, placed before the real seq 13
    lines = log_lines(home)
    forged = {"seq": 13, "time": "2026-06-01T12:00:00Z", "event": "dac.issued", "operator": "mallory",
              "prev": hashlib.sha256(lines[12]).hexdigest(), "ca": "pai-1", "serial": "DEAD"}
    forged_line = json.dumps(forged, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    write_lines(home, [*lines[:13], forged_line, *lines[13:]])
    # THEN the forged line (line 14) is named as inserted
    assert problem(home) == ("audit.inserted", 14, 13)
    assert "line 14 (seq 13) was inserted" in verify(home).output


def test_inserting_a_copy_of_an_old_record_is_detected(home: Path) -> None:
    lines = log_lines(home)
    write_lines(home, [*lines[:17], lines[4], *lines[17:]])
    assert problem(home) == ("audit.inserted", 18, 4)


def test_inserting_a_record_with_a_made_up_seq_is_detected(home: Path) -> None:
    lines = log_lines(home)
    bogus = json.loads(lines[6]) | {"seq": 999}
    write_lines(home, [*lines[:6], json.dumps(bogus).encode() + b"\n", *lines[6:]])
    code, line, _ = problem(home)
    assert (code, line) == ("audit.inserted", 7)


def test_truncating_the_tail_after_the_last_seal_is_detected(home: Path) -> None:
    # GIVEN the last three records (after the seal at seq 21) removed
    write_lines(home, log_lines(home)[:-3])
    # THEN the signed head shows the missing tail
    assert problem(home) == ("audit.truncated", 25, 24)
    result = verify(home)
    assert result.exit_code == 1
    assert "seq 24..26 missing (truncated)" in result.output


def test_truncating_back_to_a_seal_is_detected(home: Path) -> None:
    write_lines(home, log_lines(home)[:22])  # ends exactly with the seal at seq 21
    assert problem(home) == ("audit.truncated", 23, 22)


def test_truncating_inside_a_record_is_detected(home: Path) -> None:
    # GIVEN the log cut inside its last record, and the head re-signed by nobody
    data = (home / "audit" / "audit.log").read_bytes()
    (home / "audit" / "audit.log").write_bytes(data[:-40])
    # THEN verify fails: the signed head announces bytes the log no longer holds (as after a kill mid-append)
    assert problem(home)[0] == "audit.incomplete_append"
    # AND the next writer puts back exactly the announced bytes: the log verifies again, nothing lost
    AuditLog(home).seal()
    assert (home / "audit" / "audit.log").read_bytes().startswith(data)
    assert verify_log(home / "audit").ok


def test_truncating_inside_an_older_record_is_malformed(home: Path) -> None:
    lines = log_lines(home)
    write_lines(home, [*lines[:5], lines[5][:-20]])
    code, line, seq = problem(home)
    assert (code, line, seq) == ("audit.malformed", 6, 5)


def test_emptying_the_log_is_detected(home: Path) -> None:
    (home / "audit" / "audit.log").write_bytes(b"")
    assert problem(home)[0] == "audit.truncated"
    assert verify(home).exit_code == 1


def test_deleting_the_head_is_detected(home: Path) -> None:
    (home / "audit" / "head").unlink()
    assert problem(home)[0] == "audit.head_missing"


def test_rolling_the_head_back_with_the_log_keeps_seals_honest(home: Path) -> None:
    # GIVEN a consistent rewrite of the unsealed tail (seq 22..26) without the audit key
    lines = log_lines(home)[:22]
    for seq in range(22, 27):
        body = {"seq": seq, "time": "2026-06-01T12:00:00Z", "event": "dac.issued", "operator": "mallory",
                "prev": hashlib.sha256(lines[-1]).hexdigest(), "ca": "pai-1", "serial": "BEEF"}
        lines.append(json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    write_lines(home, lines)
    # THEN the head signed by the audit key no longer matches the last record
    assert problem(home) == ("audit.modified", 27, 26)


def test_a_seal_signed_by_another_key_fails(home: Path) -> None:
    # GIVEN an attacker re-signs the head and seals with their own key and swaps the public key file
    AuditLog(home).seal()
    expected = verify_log(home / "audit").key
    audit = home / "audit"
    for name in ("audit-key.pem", "audit-key.pub.pem", "head"):
        (audit / name).unlink()
    (audit / "audit.log").unlink()
    AuditKey(audit, b"mallory").create()
    log = AuditLog(home, seal_every=10, passphrase=b"mallory")
    for i in range(RECORDS):
        log.record("dac.issued", ca="pai-1", serial=f"{i:04X}", now=NOW)
    # THEN outside a PKI home (no PAA to certify the key), only a pinned key (--expect-key) reveals it
    assert verify(home).exit_code == 0
    result = verify(home, "--expect-key", str(expected))
    assert result.exit_code == 1 and "[audit.key_mismatch]" in result.output


def test_public_key_kept_elsewhere_detects_a_swapped_key(home: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    kept = tmp_path_factory.mktemp("kept") / "audit.pub.pem"
    kept.write_bytes((home / "audit" / "audit-key.pub.pem").read_bytes())
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (home / "audit" / "audit-key.pub.pem").write_bytes(
        other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert verify(home).exit_code == 1  # the seals no longer verify with the swapped key
    assert verify(home, "--public-key", str(kept)).exit_code == 0


# -- usage ----------------------------------------------------------------------------------------
def test_missing_home_is_a_usage_error(tmp_path: Path) -> None:
    result = verify(tmp_path / "nope")
    assert result.exit_code == 2
    assert "error[input.home]" in result.output


def test_home_without_audit_log_is_a_usage_error(tmp_path: Path) -> None:
    result = verify(tmp_path)
    assert result.exit_code == 2
    assert "error[config.no_audit_log]" in result.output


def test_home_from_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATTER_PKI_HOME", str(home))
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0


def test_seal_command(home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "seal", "--home", str(home)])
    assert (result.exit_code, result.output.strip()) == (0, "sealed seq 22..26 (5 records) with seal record seq 27")
    again = runner.invoke(main, ["audit", "seal", "--home", str(home)])
    assert again.output.strip() == "nothing to seal: the log is empty or already sealed"
