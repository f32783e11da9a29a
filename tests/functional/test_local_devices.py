"""``csr generate`` and ``csr export-key`` from the command line: factory keys, DACs, flashing, kills."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from matter_pki.backends.keyfile import load_key
from matter_pki.cli.local import CSR_GENERATE_INTERRUPTED
from matter_pki.csr import load_device_csr
from matter_pki.local.devices import JOURNAL, DeviceKeyReader
from tests.unit.test_local_fixtures import CLI_PREFIX, PASSPHRASE, cli_env, run_cli, run_cli_process

if TYPE_CHECKING:
    from pathlib import Path

DEVICE_PW = "factory floor passphrase"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return cli_env(tmp_path / "home", MATTER_PKI_DEVICE_PASSPHRASE=DEVICE_PW, **extra)


def test_generated_devices_get_dacs_and_their_keys_export_for_flashing(tmp_path: Path) -> None:
    # GIVEN a CA and two generated devices
    env = _env(tmp_path)
    assert run_cli(["init", "--vid", "FFF1"], env).exit_code == 0
    assert run_cli(["pai", "create", "--pid", "8000"], env).exit_code == 0
    made = run_cli(["csr", "generate", "--count", "2", "--out", str(tmp_path / "devs")], env)
    assert made.exit_code == 0, made.output
    assert "generated 2 devices" in made.stdout and "device-00001 .. device-00002" in made.stdout
    # WHEN their CSRs are issued
    issued = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "devs"), "--out", str(tmp_path / "out")], env)
    assert issued.exit_code == 0, issued.output
    # THEN each exported key (PEM and DER) is the private key of its DAC
    for i in range(1, 3):
        name = f"device-0000{i}"
        dac = x509.load_pem_x509_certificate((tmp_path / "out" / f"{name}.pem").read_bytes())
        pem = run_cli(["csr", "export-key", str(tmp_path / "devs" / f"{name}.key")], env)
        der = run_cli(["csr", "export-key", str(tmp_path / "devs" / f"{name}.key"), "--key-format", "der"], env)
        assert pem.exit_code == 0 and der.exit_code == 0, pem.output
        assert serialization.load_pem_private_key(pem.stdout_bytes, None).public_key() == dac.public_key()
        assert serialization.load_der_private_key(der.stdout_bytes, None).public_key() == dac.public_key()
    # AND --dac refuses a key its DAC does not certify (a station flashing the wrong pair)
    checked = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--dac",
                       str(tmp_path / "out" / "device-00001.pem")], env)
    crossed = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--dac",
                       str(tmp_path / "out" / "device-00002.pem")], env)
    assert checked.exit_code == 0 and checked.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert crossed.exit_code == 1 and "error[cert.key_mismatch]" in crossed.stderr and not crossed.stdout
    # AND an encrypted PKCS#8 export goes to a 0600 file under the device passphrase
    target = tmp_path / "flash" / "k.pem"
    target.parent.mkdir()
    out = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--key-format", "encrypted-pem",
                   "-o", str(target)], env)
    assert out.exit_code == 0, out.output
    assert out.stdout == f"device-00001: key written to {target} (encrypted PKCS#8, mode 0600)\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert load_key(target, DEVICE_PW.encode()).public_key() == DeviceKeyReader(DEVICE_PW.encode()).load(
        tmp_path / "devs" / "device-00001.key"
    ).public_key()


def test_plain_key_never_goes_to_a_file(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli(["csr", "generate", "--count", "1", "--out", str(tmp_path / "devs")], env).exit_code == 0
    for fmt in ("pem", "der"):
        result = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--key-format", fmt,
                          "-o", str(tmp_path / "plain.pem")], env)  # fmt: skip
        assert result.exit_code == 2 and "error[input.plaintext_key]" in result.stderr
        assert not (tmp_path / "plain.pem").exists()


def test_device_keys_need_their_own_passphrase(tmp_path: Path) -> None:
    # GIVEN only the CA passphrase in the environment
    env = cli_env(tmp_path / "home")
    # THEN generation is refused with a coded line (a usage error) and nothing is made
    result = run_cli(["csr", "generate", "--count", "2", "--out", str(tmp_path / "devs")], env)
    assert result.exit_code == 2 and "error[key.device_passphrase_missing]" in result.stderr
    assert "MATTER_PKI_DEVICE_PASSPHRASE" in result.stderr and not (tmp_path / "devs").exists()
    # AND keys made with the device passphrase do not open with the CA's
    assert run_cli(["csr", "generate", "--count", "1", "--out", str(tmp_path / "devs")], _env(tmp_path)).exit_code == 0
    wrong = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key")],
                    cli_env(tmp_path / "home", MATTER_PKI_DEVICE_PASSPHRASE=PASSPHRASE))
    assert wrong.exit_code == 1 and wrong.stderr.strip() == (
        "error[key.passphrase_wrong]: wrong device-key passphrase (the key files' check value differs)"
    )


def test_passphrase_file_first_line_wins_over_the_environment(tmp_path: Path) -> None:
    # GIVEN a passphrase file (CRLF line end, mode 0600) and a different value in the environment
    secret = tmp_path / "pw.txt"
    secret.write_bytes(b"from the file\r\nsecond line ignored\n")
    secret.chmod(0o600)
    env = _env(tmp_path)
    made = run_cli(["csr", "generate", "--count", "1", "--out", str(tmp_path / "devs"), "--device-passphrase-file", str(secret)], env)
    assert made.exit_code == 0, made.output
    # THEN the key opens with the file's first line only
    DeviceKeyReader(b"from the file").load(tmp_path / "devs" / "device-00001.key")
    ok = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--device-passphrase-file", str(secret)], env)
    assert ok.exit_code == 0 and ok.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    missing = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--device-passphrase-file",
                       str(tmp_path / "nope")], env)
    assert missing.exit_code == 2 and "error[input.passphrase_file]" in missing.stderr
    # AND a passphrase file others may read is refused before anything is opened
    secret.chmod(0o644)
    shared = run_cli(["csr", "export-key", str(tmp_path / "devs" / "device-00001.key"), "--device-passphrase-file",
                      str(secret)], env)  # fmt: skip
    assert shared.exit_code == 2 and "error[input.passphrase_file]" in shared.stderr and not shared.stdout


def test_export_of_an_altered_key_is_a_coded_error(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run_cli(["csr", "generate", "--count", "2", "--out", str(tmp_path / "devs")], env).exit_code == 0
    key = tmp_path / "devs" / "device-00001.key"
    # a swapped file, then a damaged one, then none
    key.write_bytes((tmp_path / "devs" / "device-00002.key").read_bytes())
    swapped = run_cli(["csr", "export-key", str(key)], env)
    key.write_bytes(b"-----BEGIN MATTER-PKI ENCRYPTED DEVICE KEY-----\nAAAA\n-----END MATTER-PKI ENCRYPTED DEVICE KEY-----\n")
    damaged = run_cli(["csr", "export-key", str(key)], env)
    key.unlink()
    gone = run_cli(["csr", "export-key", str(key)], env)
    assert (swapped.exit_code, damaged.exit_code, gone.exit_code) == (1, 1, 1)
    assert "error[key.tampered]" in swapped.stderr and "error[key.malformed]" in damaged.stderr
    assert "error[key.missing]" in gone.stderr
    assert not (swapped.stdout or damaged.stdout or gone.stdout)


def test_sigkill_of_a_multiprocess_run_then_rerun_finishes(tmp_path: Path) -> None:
    # GIVEN a two-worker run killed (SIGKILL, parent only) once its first CSRs exist
    out = tmp_path / "devs"
    env = {**os.environ, **_env(tmp_path)}
    args = ["csr", "generate", "--count", "3000", "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen([*CLI_PREFIX, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(p.suffix == ".csr" for p in out.iterdir())):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (out / JOURNAL).exists()
    # WHEN the same command runs again (busy for as long as an orphaned worker lives)
    for _ in range(50):
        again = run_cli_process(args, _env(tmp_path))
        if "error[storage.busy]" not in again.stderr:
            break
        time.sleep(0.2)
    # THEN the run is finished: 3000 whole devices, keys matching CSRs, no leftovers
    assert again.returncode == 0, again.stderr
    assert "finished an interrupted run" in again.stdout
    reader = DeviceKeyReader(DEVICE_PW.encode())
    names = sorted(p.stem for p in out.glob("*.csr"))
    assert names == [f"device-{i:05d}" for i in range(1, 3001)]
    for name in names[::97]:
        assert load_device_csr((out / f"{name}.csr").read_bytes()).public_key == reader.load(out / f"{name}.key").public_key()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_ctrl_c_leaves_one_line_and_a_run_that_finishes(tmp_path: Path) -> None:
    # GIVEN a two-worker run interrupted with Ctrl-C (SIGINT to the whole process group)
    out = tmp_path / "devs"
    env = {**os.environ, **_env(tmp_path)}
    args = ["csr", "generate", "--count", "3000", "--out", str(out), "--jobs", "2"]
    proc = subprocess.Popen([*CLI_PREFIX, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and any(p.suffix == ".csr" for p in out.iterdir())):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    # THEN one coded line, no traceback, exit 130 (unless the run had already finished)
    if proc.returncode != 0:
        assert proc.returncode == 130 and stderr.strip().splitlines() == [f"error[cli.interrupted]: {CSR_GENERATE_INTERRUPTED}"], stderr
        assert "Traceback" not in stderr
    # AND the same command finishes the run
    again = run_cli_process(args, _env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert len(list(out.glob("*.csr"))) == 3000 and len(list(out.glob("*.key"))) == 3000
    assert not (out / JOURNAL).exists()
