"""The local CA with its keys on a PKCS#11 token (SoftHSM2); skipped when SoftHSM2 is missing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.csr import load_device_csr
from tests.unit.test_local_fixtures import Token, cli_env, good_csr, run_cli

if TYPE_CHECKING:
    from pathlib import Path


def _env(tmp_path: Path, token: Token) -> dict[str, str]:
    env = cli_env(tmp_path / "home", **token.env())
    del env["MATTER_PKI_PASSPHRASE"]  # no key files: nothing may ask for a passphrase
    return env


def test_hsm_home_issues_chains_that_validate_and_keeps_no_key_files(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    # GIVEN a home whose PAA and PAI keys are generated on the token
    env = _env(tmp_path, softhsm_token)
    init = run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env)
    assert init.exit_code == 0, init.output
    assert run_cli(["pai", "create", "--pid", "8000"], env).stdout.strip() == "pai-1"
    # WHEN DACs are issued for a folder of CSRs
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    for i in range(3):
        (csrs / f"d{i}.csr").write_bytes(good_csr())
    issued = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(csrs), "--out", str(tmp_path / "out")], env)
    # THEN each chain validates, and no private key exists on disk
    assert issued.exit_code == 0, issued.output
    for i in range(3):
        args = ["validate-att-cert", "--paa", str(tmp_path / "out" / "paa.pem"), "--pai", str(tmp_path / "out" / "pai.pem"),
                "--dac", str(tmp_path / "out" / f"d{i}.pem")]
        assert run_cli(args, env).exit_code == 0
    assert not list((tmp_path / "home").rglob("key.pem"))
    info = json.loads((tmp_path / "home" / "ca" / "pai-1" / "ca.json").read_text())
    assert info["key"]["store"] == "pkcs11" and len(bytes.fromhex(info["key"]["key_id"])) == 16
    [row] = json.loads(run_cli(["pai", "list", "--format", "json"], env).stdout)
    assert row["key_store"] == "pkcs11"


def test_hsm_crl_verifies_with_the_ca_certificate(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    env = _env(tmp_path, softhsm_token)
    run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env)
    run_cli(["pai", "create"], env)
    (tmp_path / "d.csr").write_bytes(good_csr())
    run_cli(["dac", "issue", "--pai", "pai-1", "--pid", "8000", "--csr", str(tmp_path / "d.csr"), "--out", str(tmp_path / "out")], env)
    serial = x509.load_pem_x509_certificate((tmp_path / "out" / "d.pem").read_bytes()).serial_number
    assert run_cli(["revoke", "--serial", f"{serial:X}", "--reason", "keyCompromise"], env).exit_code == 0
    assert run_cli(["crl", "publish", "--pai", "pai-1"], env).exit_code == 0
    crl = x509.load_der_x509_crl((tmp_path / "home" / "crl" / "pai-1.crl").read_bytes())
    pai = x509.load_pem_x509_certificate((tmp_path / "out" / "pai.pem").read_bytes())
    public = pai.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None


def test_hsm_device_keys_and_csrs(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    env = _env(tmp_path, softhsm_token)
    result = run_cli(["csr", "generate", "--count", "3", "--out", str(tmp_path / "devs"), "--prefix", "hsmdev-",
                      "--key-store", "pkcs11"], env)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "devs").iterdir())
    assert names == ["hsmdev-00001.csr", "hsmdev-00002.csr", "hsmdev-00003.csr", "pkcs11-keys.json"]
    manifest = json.loads((tmp_path / "devs" / "pkcs11-keys.json").read_text())
    for name in ("hsmdev-00001", "hsmdev-00002", "hsmdev-00003"):
        csr = load_device_csr((tmp_path / "devs" / f"{name}.csr").read_bytes())
        assert manifest[name]["token"] == softhsm_token.label and csr.sha256


def test_hsm_without_pin_is_a_coded_error(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    env: dict[str, str | None] = {**_env(tmp_path, softhsm_token), "MATTER_PKI_PKCS11_PIN": None}
    result = run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env)  # type: ignore[arg-type]
    assert result.exit_code == 2 and "error[key.pkcs11_pin]" in result.stderr
    assert not (tmp_path / "home" / "config.json").exists()
    # Nothing half-made is left behind: init can run again once the PIN is given
    assert run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], _env(tmp_path, softhsm_token)).exit_code == 0


def test_hsm_home_takes_its_pin_from_pin_file_on_every_key_command(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    # GIVEN a PKCS#11 home and the PIN only in a 0600 file (no MATTER_PKI_PKCS11_PIN, no terminal)
    env: dict[str, str | None] = {**_env(tmp_path, softhsm_token), "MATTER_PKI_PKCS11_PIN": None}
    pin = tmp_path / "pin"
    pin.write_text(f"{softhsm_token_pin()}\nsecond line ignored\n")
    pin.chmod(0o600)
    (tmp_path / "d.csr").write_bytes(good_csr())
    out = str(tmp_path / "out")
    steps = [
        ["init", "--vid", "FFF1", "--key-store", "pkcs11"],
        ["pai", "create", "--pid", "8000"],
        ["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "d.csr"), "--out", out],
        ["crl-signer", "create", "--pai", "pai-1", "--id", "s1"],
        ["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", "https://crl.example.com/s1.crl"],
        ["crl-signer", "revoke", "--id", "s1", "--reason", "superseded"],
        ["audit", "seal"],
        ["home", "rekey"],
    ]
    # WHEN each command that opens a token key is given --pin-file THEN it succeeds
    for args in steps:
        done = run_cli([*args, "--pin-file", str(pin)], env)  # type: ignore[arg-type]
        assert done.exit_code == 0, (args, done.output)
    assert run_cli(["audit", "verify"], env).exit_code == 0  # type: ignore[arg-type]
    # AND a PIN file others may read is refused before anything is opened (as a passphrase file is)
    pin.chmod(0o644)
    log = (tmp_path / "home" / "audit" / "audit.log").read_bytes()
    refused = run_cli(["pai", "create", "--pid", "8001", "--pin-file", str(pin)], env)  # type: ignore[arg-type]
    assert refused.exit_code == 2 and "error[input.passphrase_file]" in refused.stderr and "0644" in refused.stderr
    assert (tmp_path / "home" / "audit" / "audit.log").read_bytes() == log
    # AND without it the PIN's absence names --pin-file
    missing = run_cli(["pai", "create", "--pid", "8001"], env)  # type: ignore[arg-type]
    assert missing.exit_code == 2 and "error[key.pkcs11_pin]" in missing.stderr and "--pin-file" in missing.stderr


def softhsm_token_pin() -> str:
    """The test token's user PIN."""
    from tests.unit.test_local_fixtures import PIN

    return PIN
