"""The local CA from the command line: init, pai, dac issue/show, csr generate, validation of the chains."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.csr import load_device_csr
from matter_pki.local.issue import Outcome, issue_files
from matter_pki.profiles import PaaProfile, PaiProfile, Validity, sign
from tests.unit.test_local_fixtures import (
    BAD_CSRS,
    PASSPHRASE,
    REPO,
    cli_env,
    good_csr,
    make_pki,
    run_cli,
    write_csrs,
)

if TYPE_CHECKING:
    from pathlib import Path


def _validate(out: Path, name: str, env: dict[str, str]) -> int:
    result = run_cli(
        ["validate-att-cert", "--paa", str(out / "paa.pem"), "--pai", str(out / "pai.pem"), "--dac", str(out / f"{name}.pem")],
        env,
    )
    return result.exit_code


def _subject_ids(pem: bytes) -> dict[str, str]:
    cert = x509.load_pem_x509_certificate(pem)
    return {a.oid.dotted_string: str(a.value) for a in cert.subject}


VID, PID = "1.3.6.1.4.1.37244.2.1", "1.3.6.1.4.1.37244.2.2"


@pytest.mark.parametrize(
    ("init_args", "pai_args", "issue_args", "dac_pid"),
    [
        (["--vid", "FFF1"], ["--pid", "8000"], [], "8000"),  # product-scoped PAI: PID taken from it
        (["--vid", "FFF1"], [], ["--pid", "8001"], "8001"),  # PAI without PID
        (["--no-vid"], ["--vid", "FFF2"], ["--pid", "0001"], "0001"),  # non-VID-scoped PAA
    ],
)
def test_init_pai_create_dac_issue_chain_validates(
    tmp_path: Path, init_args: list[str], pai_args: list[str], issue_args: list[str], dac_pid: str
) -> None:
    # GIVEN a home made with init + pai create
    env = cli_env(tmp_path / "home")
    assert run_cli(["init", *init_args], env).exit_code == 0
    created = run_cli(["pai", "create", *pai_args], env)
    assert created.exit_code == 0
    pai_id = created.stdout.strip()
    assert pai_id == "pai-1"
    # WHEN a DAC is issued for one CSR
    (tmp_path / "dev.csr").write_bytes(good_csr())
    issued = run_cli(["dac", "issue", "--pai", pai_id, *issue_args, "--csr", str(tmp_path / "dev.csr"), "--out", str(tmp_path / "out")], env)
    # THEN the output folder has the DAC and the chain, and validate-att-cert accepts it (exit 0)
    assert issued.exit_code == 0, issued.output
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["dev.pem", "paa.pem", "pai.pem"]
    assert _validate(out, "dev", env) == 0
    ids = _subject_ids((out / "dev.pem").read_bytes())
    assert ids[PID] == dac_pid and ids[VID] == ("FFF2" if "--no-vid" in init_args else "FFF1")


def test_openssl_csr_from_certificates_config_is_accepted(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    # GIVEN a CSR made exactly as the README says
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", f"ec:{REPO / 'certificates' / 'ecparam'}",
         "-keyout", str(tmp_path / "dev.key"), "-passout", "env:DEVICE_KEY_PASS",
         "-config", str(REPO / "certificates" / "config.ssl"), "-out", str(tmp_path / "dev.csr")],
        check=True, capture_output=True, env={**os.environ, "DEVICE_KEY_PASS": "device-key-passphrase"},
    )
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / "dev.key").read_bytes()
    env = cli_env(tmp_path / "home")
    make_pki(tmp_path / "home")
    # WHEN it is issued
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "dev.csr"), "--out", str(tmp_path / "out")], env)
    # THEN a valid DAC comes out for the CSR's key
    assert result.exit_code == 0, result.output
    assert _validate(tmp_path / "out", "dev", env) == 0
    dac = x509.load_pem_x509_certificate((tmp_path / "out" / "dev.pem").read_bytes())
    assert dac.public_key() == load_device_csr((tmp_path / "dev.csr").read_bytes()).public_key


def test_bad_csrs_in_a_folder_get_coded_err_files_and_no_certificate(tmp_path: Path) -> None:
    # GIVEN a folder with two good CSRs and one of each refused kind
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    csrs = tmp_path / "csrs"
    write_csrs(csrs, 2, prefix="good-")
    for name, (make, _code) in BAD_CSRS.items():
        (csrs / f"{name}.csr").write_bytes(make())
    # WHEN the folder is issued
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(csrs), "--out", str(tmp_path / "out"), "--format", "json"], env)
    # THEN exit 1, good ones have .pem, each bad one has only a .err with its code
    assert result.exit_code == 1
    out = tmp_path / "out"
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"issued": 2, "reused": 0, "skipped": 0, "refused": len(BAD_CSRS)}
    for name, (_make, code) in BAD_CSRS.items():
        assert not (out / f"{name}.pem").exists()
        record = json.loads((out / f"{name}.err").read_text())
        assert record["code"] == code, name
        assert record["csr_key"] == str(csrs / f"{name}.csr")
        assert record["message"]
    assert (out / "good-0000.pem").exists() and (out / "good-0001.pem").exists()


def test_single_refused_csr_exits_1_with_the_code(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    (tmp_path / "p384.csr").write_bytes(BAD_CSRS["p384"][0]())
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "p384.csr"), "--out", str(tmp_path / "out")], env)
    assert result.exit_code == 1
    assert "error[csr.key_curve]" in result.stderr
    assert json.loads((tmp_path / "out" / "p384.err").read_text())["code"] == "csr.key_curve"


def test_pid_not_allowed_by_a_product_scoped_pai_is_refused_up_front(tmp_path: Path) -> None:
    make_pki(tmp_path / "home", pid=0x8000)
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 2)
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--pid", "8001", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env)
    assert result.exit_code == 1
    assert "error[profile.pid_not_allowed]" in result.stderr
    assert not any((tmp_path / "out").glob("dev-*"))


def test_reissue_is_idempotent_and_the_ledger_keeps_one_dac_per_csr(tmp_path: Path) -> None:
    # GIVEN 20 CSRs issued once
    pki = make_pki(tmp_path / "home", pid=None)
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 20)
    args = ["dac", "issue", "--pai", "pai-1", "--pid", "8000", "--csr", str(tmp_path / "csrs")]
    assert run_cli([*args, "--out", str(tmp_path / "out")], env).exit_code == 0
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    # WHEN the same command runs again, and then into another folder
    again = run_cli([*args, "--out", str(tmp_path / "out"), "--format", "json"], env)
    other = run_cli([*args, "--out", str(tmp_path / "out2"), "--format", "json"], env)
    # THEN nothing is issued twice: skipped in place, the very same DACs re-delivered elsewhere
    assert json.loads(again.stdout)["counts"] == {"issued": 0, "reused": 0, "skipped": 20, "refused": 0}
    assert json.loads(other.stdout)["counts"] == {"issued": 0, "reused": 20, "skipped": 0, "refused": 0}
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == first
    assert {p.name: p.read_bytes() for p in (tmp_path / "out2").iterdir()} == first
    db = sqlite3.connect(pki.home.ledger_path)
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT csr_sha256), COUNT(DISTINCT serial) FROM certificates WHERE kind='dac'").fetchone() == (20, 20, 20)
    # AND the same device key for another PID is refused (one DAC per device key unless re-issued explicitly)
    clash = run_cli([*args[:4], "--pid", "8001", "--csr", str(tmp_path / "csrs" / "dev-0000.csr"), "--out", str(tmp_path / "out3")], env)
    assert clash.exit_code == 1 and "error[issue.key_reused]" in clash.stderr


def test_serial_collision_is_retried_with_a_fresh_serial(tmp_path: Path) -> None:
    # GIVEN a serial generator that always returns the same number
    pki = make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 3)
    now = datetime.now(UTC)
    # WHEN three CSRs are issued with it
    outcomes: list[Outcome] = []
    issue_files(
        pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out", secrets=pki.secrets,
        now=now, serials=_FixedSerial(0x1234), on_result=outcomes.append,
    )
    # THEN the first keeps it and the others were re-signed with fresh serials
    serials = [o.serial for o in outcomes]
    assert [o.status for o in outcomes] == ["issued"] * 3
    assert serials[0] == "1234" and len(set(serials)) == 3
    for o in outcomes:
        cert = x509.load_pem_x509_certificate((tmp_path / "out" / f"{o.name}.pem").read_bytes())
        assert f"{cert.serial_number:X}".zfill(len(o.serial or "")) == o.serial


class _FixedSerial:
    """Picklable serial source that always collides."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __call__(self) -> int:
        return self.value


def test_dac_show_and_pai_list(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    (tmp_path / "d.csr").write_bytes(good_csr())
    run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "d.csr"), "--out", str(tmp_path / "out")], env)
    dac = x509.load_pem_x509_certificate((tmp_path / "out" / "d.pem").read_bytes())
    serial = f"{dac.serial_number:x}"
    # dac show: the ledger row, in JSON and as PEM
    [shown] = json.loads(run_cli(["dac", "show", serial, "--format", "json"], env).stdout)
    assert shown["ca"] == "pai-1" and shown["pid"] == "8000" and shown["status"] == "issued"
    assert shown["operator"] == "tester"
    assert shown["csr_sha256"] == load_device_csr((tmp_path / "d.csr").read_bytes()).sha256
    assert shown["not_after"] == "9999-12-31T23:59:59Z"
    assert run_cli(["dac", "show", serial, "--pem"], env).stdout.encode() == (tmp_path / "out" / "d.pem").read_bytes()
    unknown = run_cli(["dac", "show", "ABCDEF"], env)
    assert unknown.exit_code == 2 and "error[ledger.serial_unknown]" in unknown.stderr
    # pai list: one PAI with one DAC
    [row] = json.loads(run_cli(["pai", "list", "--format", "json"], env).stdout)
    assert (row["id"], row["vid"], row["pid"], row["state"], row["key_store"], row["dacs_issued"]) == (
        "pai-1", "FFF1", "8000", "active", "file", 1
    )
    text = run_cli(["pai", "list"], env).stdout
    assert "pai-1" in text and "FFF1" in text


def test_init_twice_and_missing_home_are_coded(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    assert run_cli(["init", "--vid", "FFF1"], env).exit_code == 0
    again = run_cli(["init", "--vid", "FFF1"], env)
    assert again.exit_code == 2 and "error[config.home_exists]" in again.stderr
    missing = run_cli(["pai", "create"], cli_env(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "error[config.home_missing]" in missing.stderr
    both = run_cli(["init", "--vid", "FFF1", "--no-vid"], cli_env(tmp_path / "h2"))
    assert both.exit_code == 2 and "error[input.init_mode]" in both.stderr


def test_wrong_or_missing_passphrase_issues_nothing(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 3)
    args = ["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")]
    wrong = run_cli(args, cli_env(tmp_path / "home", MATTER_PKI_PASSPHRASE="Zebra-Quartz-991"))
    assert wrong.exit_code == 1 and "error[key.passphrase_wrong]" in wrong.stderr
    assert "Zebra-Quartz-991" not in wrong.output
    env: dict[str, str | None] = {**cli_env(tmp_path / "home"), "MATTER_PKI_PASSPHRASE": None}  # unset
    missing = run_cli(args, env)  # type: ignore[arg-type]
    assert missing.exit_code == 2 and "error[key.passphrase_missing]" in missing.stderr
    assert not list((tmp_path / "out").glob("dev-*"))


def test_home_and_key_file_permissions(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "home")
    home = pki.home.path
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for key in (home / "ca" / "paa" / "key.pem", home / "ca" / "pai-1" / "key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "ledger.sqlite").stat().st_mode) == 0o600
    assert PASSPHRASE.encode() not in b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_csr_generate_makes_encrypted_0600_keys_and_accepted_csrs(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", MATTER_PKI_DEVICE_PASSPHRASE="device pw")
    result = run_cli(["csr", "generate", "--count", "4", "--out", str(tmp_path / "devs")], env)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "devs").iterdir())
    assert names == [f"device-0000{i}.{ext}" for i in range(1, 5) for ext in ("csr", "key")]
    from matter_pki.local.devices import DeviceKeyReader

    reader = DeviceKeyReader(b"device pw")
    for i in range(1, 5):
        key_path = tmp_path / "devs" / f"device-0000{i}.key"
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        assert key_path.read_bytes().startswith(b"-----BEGIN MATTER-PKI ENCRYPTED DEVICE KEY-----")
        csr = load_device_csr((tmp_path / "devs" / f"device-0000{i}.csr").read_bytes())
        assert reader.load(key_path).public_key() == csr.public_key
    # Running it again would overwrite: refused, nothing changed
    before = {p.name: p.read_bytes() for p in (tmp_path / "devs").iterdir()}
    again = run_cli(["csr", "generate", "--count", "4", "--out", str(tmp_path / "devs")], env)
    assert again.exit_code == 1 and "error[storage.exists]" in again.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "devs").iterdir()} == before


def test_imported_paa_with_pai_by_csr(tmp_path: Path) -> None:
    # GIVEN a PAA whose key stays outside the home
    paa_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC).replace(microsecond=0)
    from datetime import timedelta

    validity = Validity.no_expiry(start - timedelta(hours=2))
    paa = sign(PaaProfile(vid=0xFFF1, validity=validity).builder(paa_key.public_key(), serial=0x77), paa_key)
    (tmp_path / "paa.pem").write_bytes(paa.public_bytes(Encoding.PEM))
    env = cli_env(tmp_path / "home")
    assert run_cli(["init", "--import-paa", str(tmp_path / "paa.pem")], env).exit_code == 0
    # WHEN a PAI is created directly, THEN it is refused: the PAA key is absent
    direct = run_cli(["pai", "create", "--pid", "8000"], env)
    assert direct.exit_code == 2 and "error[config.ca_key_absent]" in direct.stderr
    # WHEN a PAI is requested by CSR and the PAA owner signs it
    requested = run_cli(["pai", "create", "--pid", "8000", "--csr-out", str(tmp_path / "pai.csr")], env)
    assert requested.exit_code == 0
    pai_id = requested.stdout.strip()
    csr = x509.load_pem_x509_csr((tmp_path / "pai.csr").read_bytes())
    assert csr.is_signature_valid
    pai_profile = PaiProfile(vid=0xFFF1, pid=0x8000, validity=Validity.no_expiry(start - timedelta(hours=1)))
    pai_cert = sign(pai_profile.builder(csr.public_key(), serial=0x99, issuer=paa), paa_key)  # type: ignore[arg-type]
    (tmp_path / "pai.pem").write_bytes(pai_cert.public_bytes(Encoding.PEM))
    # (a certificate for another key is refused)
    stranger = sign(pai_profile.builder(ec.generate_private_key(ec.SECP256R1()).public_key(), serial=0x9A, issuer=paa), paa_key)
    (tmp_path / "stranger.pem").write_bytes(stranger.public_bytes(Encoding.PEM))
    refused = run_cli(["pai", "import", "--pai", pai_id, "--cert", str(tmp_path / "stranger.pem")], env)
    assert refused.exit_code == 1 and "error[cert.key_mismatch]" in refused.stderr
    pending = run_cli(["dac", "issue", "--pai", pai_id, "--csr", str(tmp_path / "pai.csr"), "--out", str(tmp_path / "x")], env)
    assert "error[config.ca_pending]" in pending.stderr
    assert run_cli(["pai", "import", "--pai", pai_id, "--cert", str(tmp_path / "pai.pem")], env).exit_code == 0
    # THEN DACs issued by the imported PAI validate under the imported PAA
    (tmp_path / "dev.csr").write_bytes(good_csr())
    assert run_cli(["dac", "issue", "--pai", pai_id, "--csr", str(tmp_path / "dev.csr"), "--out", str(tmp_path / "out")], env).exit_code == 0
    assert _validate(tmp_path / "out", "dev", env) == 0
    events = [json.loads(line)["event"] for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    assert [e for e in events if not e.startswith("ledger.")][:3] == ["paa.imported", "pai.created", "pai.imported"]


def test_pai_create_errors_are_coded(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    run_cli(["init", "--no-vid"], env)
    no_vid = run_cli(["pai", "create", "--pid", "8000"], env)
    assert no_vid.exit_code == 2 and "error[input.vid_required]" in no_vid.stderr
    assert run_cli(["pai", "create", "--vid", "FFF1", "--id", "line-a"], env).stdout.strip() == "line-a"
    taken = run_cli(["pai", "create", "--vid", "FFF1", "--id", "line-a"], env)
    assert taken.exit_code == 2 and "error[input.ca_id_taken]" in taken.stderr
    bad_pid = run_cli(["pai", "create", "--vid", "FFF1", "--pid", "12345"], env)
    assert bad_pid.exit_code == 2 and "PID must be 1 to 4 hex digits" in bad_pid.output
    env2 = cli_env(tmp_path / "home2")
    run_cli(["init", "--vid", "FFF1"], env2)
    mismatch = run_cli(["pai", "create", "--vid", "FFF2"], env2)
    assert mismatch.exit_code == 1 and "error[profile.vid_mismatch]" in mismatch.stderr
    assert sorted(p.name for p in (tmp_path / "home2" / "ca").iterdir()) == ["paa"]
