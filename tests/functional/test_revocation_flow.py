"""From ``revoke`` to a published, checked, DCL-announced CRL, through the CLI: direct and delegated, file and PKCS#11 keys."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.errors import IssuanceError
from matter_pki.local import crl as crl_ops
from matter_pki.local.crl_signers import SignerStore
from matter_pki.local.ledger import CertRow, Ledger, serial_hex, serial_tag
from tests.unit.test_local_fixtures import Token, cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

URL = "https://crl.example.com/matter/pai-1.crl"
PAA_URL = "https://crl.example.com/matter/paa.crl"


def _openssl_verify(crl: Path, signer_pem: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    proc = subprocess.run(
        [openssl, "crl", "-inform", "DER", "-in", str(crl), "-CAfile", str(signer_pem), "-noout"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "verify OK" in proc.stderr, proc.stderr


def _ok(args: list[str], env: dict[str, str]) -> str:
    result = run_cli(args, env)
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result.stdout


def _issue_five(tmp_path: Path, env: dict[str, str]) -> list[Path]:
    write_csrs(tmp_path / "csrs", 5)
    _ok(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env)
    return sorted((tmp_path / "out").glob("dev-*.pem"))


def _serial(path: Path) -> str:
    return f"{x509.load_pem_x509_certificate(path.read_bytes()).serial_number:X}"


def _announce_and_check(tmp_path: Path, env: dict[str, str], name: str, scope: list[str], url: str, crl: Path) -> Path:
    """dcl revocation-point (checked), then crl check on the published CRL; returns the revocation set written."""
    out = tmp_path / f"dcl-{name}"
    printed = json.loads(_ok(["dcl", "revocation-point", *scope, "--url", url, "--out", str(out), "--format", "json"], env))
    assert printed["ok"] and printed["point"]["dataURL"] == url and "add-revocation-point" in printed["dcld"]
    rset = tmp_path / f"{name}.set.json"
    report = json.loads(_ok([
        "crl", "check", "--point", str(out / "revocation-point.json"), "--crl", str(crl),
        "--paa", str(tmp_path / "home" / "ca" / "paa" / "cert.pem"), "--revocation-set-out", str(rset), "--format", "json",
    ], env))  # fmt: skip
    [point] = report["points"]
    assert report["ok"] and point["accepted"] and all(s["ok"] for s in point["steps"])
    assert {s["step"] for s in point["steps"]} >= {"1", "2", "3-4", "5", "6", "7a", "7b", "8", "9", "10", "x", "dcl"}
    return rset


def _codes(tmp_path: Path, env: dict[str, str], rset: Path, dacs: list[Path]) -> list[int]:
    codes = []
    for dac in dacs:
        result = run_cli([
            "revocation", "check", "--revocation-set", str(rset), "--dac", str(dac), "--pai", str(tmp_path / "out" / "pai.pem"),
            "--paa", str(tmp_path / "out" / "paa.pem"), "--format", "json",
        ], env)  # fmt: skip
        code = json.loads(result.stdout)["code"]
        assert result.exit_code == (0 if code == 0 else 1)
        codes.append(code)
    return codes


def _merge(tmp_path: Path, *sets: Path) -> Path:
    merged = tmp_path / "merged.json"
    merged.write_text(json.dumps([e for s in sets for e in json.loads(s.read_text())]))
    return merged


def test_direct_revocation_end_to_end(tmp_path: Path) -> None:
    # GIVEN a home, five DACs, two of them revoked
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    dacs = _issue_five(tmp_path, env)
    for dac in dacs[:2]:
        _ok(["revoke", "--serial", _serial(dac), "--reason", "keyCompromise"], env)
    # WHEN the PAI's CRL is published for its URL, announced and checked
    published = json.loads(_ok(["crl", "publish", "--pai", "pai-1", "--url", URL, "--format", "json"], env))
    crl = tmp_path / "home" / "crl" / "pai-1.crl"
    assert published["url"] == URL and published["crl"] == str(crl)
    _openssl_verify(crl, tmp_path / "out" / "pai.pem")
    rset = _announce_and_check(tmp_path, env, "pai", ["--pai", "pai-1"], URL, crl)
    # THEN the revocation check gives 302 for exactly the revoked DACs, 0 for the rest
    assert _codes(tmp_path, env, rset, dacs) == [302, 302, 0, 0, 0]
    # AND after the PAI itself is revoked on the PAA's CRL: 208 for the revoked DACs, 202 for the others
    _ok(["revoke", "--paa", "--serial", _serial(tmp_path / "out" / "pai.pem"), "--reason", "cACompromise"], env)
    _ok(["crl", "publish", "--paa", "--url", PAA_URL], env)
    paa_crl = tmp_path / "home" / "crl" / "paa.crl"
    _openssl_verify(paa_crl, tmp_path / "out" / "paa.pem")
    paa_set = _announce_and_check(tmp_path, env, "paa", ["--paa"], PAA_URL, paa_crl)
    assert _codes(tmp_path, env, _merge(tmp_path, rset, paa_set), dacs) == [208, 208, 202, 202, 202]


def test_delegated_revocation_end_to_end(tmp_path: Path) -> None:
    # GIVEN delegated CRL signers for the PAI and for the PAA
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    dacs = _issue_five(tmp_path, env)
    assert _ok(["crl-signer", "create", "--pai", "pai-1"], env).strip() == "signer-1"
    assert _ok(["crl-signer", "create", "--paa"], env).strip() == "signer-2"
    listed = json.loads(_ok(["crl-signer", "list", "--format", "json"], env))
    assert [(r["id"], r["issuer"], r["status"]) for r in listed] == [("signer-1", "pai-1", "issued"), ("signer-2", "paa", "issued")]
    for dac in dacs[1:3]:
        _ok(["revoke", "--serial", _serial(dac), "--reason", "keyCompromise"], env)
    # WHEN indirect CRLs are published by the signers, announced with their delegators, and checked
    _ok(["crl", "publish", "--pai", "pai-1", "--signer", "signer-1", "--url", URL], env)
    crl = tmp_path / "home" / "crl" / "signer-1.crl"
    _openssl_verify(crl, tmp_path / "home" / "crl-signers" / "signer-1" / "cert.pem")
    rset = _announce_and_check(tmp_path, env, "pai", ["--pai", "pai-1", "--signer", "signer-1"], URL, crl)
    # THEN the entry carries the PAI as delegator, and the check gives 302 for exactly the revoked DACs
    [entry] = json.loads(rset.read_text())
    assert "crl_signer_delegator" in entry
    assert _codes(tmp_path, env, rset, dacs) == [0, 302, 302, 0, 0]
    # AND a PAI revoked on the PAA delegate's CRL gives 208 / 202
    _ok(["revoke", "--paa", "--serial", _serial(tmp_path / "out" / "pai.pem"), "--reason", "superseded"], env)
    _ok(["crl", "publish", "--paa", "--signer", "signer-2", "--url", PAA_URL], env)
    paa_crl = tmp_path / "home" / "crl" / "signer-2.crl"
    _openssl_verify(paa_crl, tmp_path / "home" / "crl-signers" / "signer-2" / "cert.pem")
    paa_set = _announce_and_check(tmp_path, env, "paa", ["--paa", "--signer", "signer-2"], PAA_URL, paa_crl)
    assert _codes(tmp_path, env, _merge(tmp_path, rset, paa_set), dacs) == [202, 208, 208, 202, 202]


def test_revoked_signer_cannot_sign_and_goes_on_its_issuers_crl(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s1"], env)
    signer = x509.load_pem_x509_certificate((tmp_path / "home" / "crl-signers" / "s1" / "cert.pem").read_bytes())
    _ok(["crl-signer", "revoke", "--id", "s1", "--reason", "keyCompromise"], env)
    # WHEN it is asked to sign THEN it refuses with a code
    refused = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", URL], env)
    assert refused.exit_code == 2 and "error[input.signer_revoked]" in refused.stderr
    again = run_cli(["crl-signer", "revoke", "--id", "s1", "--reason", "superseded"], env)
    assert again.exit_code == 2 and "error[ledger.already_revoked]" in again.stderr
    # AND the PAI's next direct CRL lists the signer's serial
    _ok(["crl", "publish", "--pai", "pai-1"], env)
    crl = x509.load_der_x509_crl((tmp_path / "home" / "crl" / "pai-1.crl").read_bytes())
    assert [r.serial_number for r in crl] == [signer.serial_number]
    events = [json.loads(line)["event"] for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    assert events.count("crl_signer.created") == 1 and events.count("crl_signer.revoked") == 1


def test_signer_scope_and_missing_url_are_refused(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    _ok(["crl-signer", "create", "--pai", "pai-1"], env)
    wrong = run_cli(["crl", "publish", "--paa", "--signer", "signer-1", "--url", PAA_URL], env)
    assert wrong.exit_code == 2 and "error[input.signer_scope]" in wrong.stderr
    no_url = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "signer-1"], env)
    assert no_url.exit_code == 2 and "error[input.crl_url]" in no_url.stderr
    bad = run_cli(["dcl", "revocation-point", "--pai", "pai-1", "--url", "ftp://x/y.crl"], env)
    assert bad.exit_code == 1 and "dcl.data_url" in bad.stderr and "add-revocation-point" not in bad.stdout


def test_a_crl_failing_the_sdk_rules_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a build step that yields another CA's CRL (the SDK drops it at step 7a)
    pki = make_pki(tmp_path / "home")
    other = make_pki(tmp_path / "other")
    other_crl = crl_ops.core.build_direct_crl(
        other.home.load_cert("pai-1"),
        __import__("matter_pki.local.keys", fromlist=["signer_factory"]).signer_factory(other.home, "pai-1", other.secrets)(),
        [], crl_ops.core.CrlParams(this_update=crl_ops.datetime.now(crl_ops.UTC), next_update=crl_ops.datetime.now(crl_ops.UTC) + crl_ops.timedelta(days=1), crl_number=1),
    )  # fmt: skip
    monkeypatch.setattr(crl_ops.core, "build_direct_crl", lambda *a, **k: other_crl)
    # WHEN publishing THEN it is refused with the failed step, and nothing is written
    with pytest.raises(IssuanceError) as e:
        crl_ops.publish_crl(pki.home, "pai-1", secrets=pki.secrets, now=crl_ops.datetime.now(crl_ops.UTC))
    assert e.value.code == "crl.check_failed" and "step 7a" in e.value.message
    assert not (tmp_path / "home" / "crl" / "pai-1.crl").exists()


def test_a_serial_is_unique_per_issuer_across_certificates_and_signers(tmp_path: Path) -> None:
    # GIVEN a DAC issued by pai-1
    pki = make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    dac = x509.load_pem_x509_certificate(_issue_five(tmp_path, env)[0].read_bytes())
    # WHEN a CRL signer is created whose first serial candidate is the DAC's
    from matter_pki.local.crl_signers import create_crl_signer

    candidates = iter([dac.serial_number, 0x5EED])
    create_crl_signer(pki.home, issuer="pai-1", secrets=pki.secrets, now=crl_ops.datetime.now(crl_ops.UTC), serials=lambda: next(candidates))
    # THEN the signer gets the next serial, never the DAC's
    with SignerStore(pki.home) as store:
        [row] = store.all()
        assert row.serial == "5EED"
    with Ledger(pki.home.ledger_path) as ledger:
        txn = ledger.begin()
        try:
            # AND inside a ledger transaction a signer with the DAC's serial is refused
            der = _with_serial_signer(pki, dac.serial_number).public_bytes(Encoding.DER)
            assert txn.add_signer("again", "pai-1", der, issued_at="x", operator="t") is False
            # AND the database itself refuses it when that check is bypassed (its trigger)
            serial = serial_hex(dac.serial_number)
            with pytest.raises(sqlite3.IntegrityError, match="serial already issued"):
                ledger.db.execute(
                    "INSERT INTO crl_signers (id, gen, issuer, serial, subject, key_id, der_sha256, not_before, not_after, "
                    "issued_at, operator, der, serial_tag) VALUES ('again', 99, 'pai-1', ?, 's', 'k', 'd', 'a', 'b', 'x', "
                    "'t', x'00', ?)", (serial, serial_tag("pai-1", serial)),
                )  # fmt: skip
            # AND a certificate with the signer's serial cannot enter the ledger for the same issuer
            row = CertRow.from_der("dac", "pai-1", _with_serial(pki, dac, 0x5EED), issued_at="x", operator="t", pid=0x8000,
                                   csr_sha256="ab" * 32)  # fmt: skip
            with pytest.raises(sqlite3.IntegrityError, match="CRL signer"):
                txn.add_certs([row])
        finally:
            ledger.rollback()


def _with_serial(pki: object, cert: x509.Certificate, serial: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.local.keys import signer_factory

    key = signer_factory(pki.home, "pai-1", pki.secrets)()  # type: ignore[attr-defined]
    builder = (
        x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer).public_key(cert.public_key())
        .serial_number(serial).not_valid_before(cert.not_valid_before_utc).not_valid_after(cert.not_valid_after_utc)
    )  # fmt: skip
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, critical=ext.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def _with_serial_signer(pki: object, serial: int) -> x509.Certificate:
    from matter_pki.local.keys import signer_factory
    from matter_pki.profiles import Validity, sign
    from matter_pki.revocation.signer import CrlSignerProfile
    from tests.unit.revocation_fixtures import START, new_key

    home = pki.home  # type: ignore[attr-defined]
    pai = home.load_cert("pai-1")
    profile = CrlSignerProfile(validity=Validity.for_days(max(START, pai.not_valid_before_utc), 30))
    return sign(profile.builder(new_key().public_key(), serial=serial, issuer=pai), signer_factory(home, "pai-1", pki.secrets)())  # type: ignore[attr-defined]


def test_hsm_home_signer_key_on_the_token(tmp_path: Path, softhsm_token: Token) -> None:
    # GIVEN a home whose keys are on a PKCS#11 token
    env = cli_env(tmp_path / "home", **softhsm_token.env())
    del env["MATTER_PKI_PASSPHRASE"]
    _ok(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env)
    _ok(["pai", "create", "--pid", "8000"], env)
    # WHEN a CRL signer is created and signs the PAI's indirect CRL
    _ok(["crl-signer", "create", "--pai", "pai-1"], env)
    _ok(["crl", "publish", "--pai", "pai-1", "--signer", "signer-1", "--url", URL], env)
    # THEN its key is on the token (no key file), the CRL verifies with openssl, and the DCL point checks out
    assert not list((tmp_path / "home").rglob("key.pem"))
    info = json.loads((tmp_path / "home" / "crl-signers" / "signer-1" / "signer.json").read_text())
    assert info["key"]["store"] == "pkcs11" and "crl-signer/signer-1" in info["key"]["label"]
    _openssl_verify(tmp_path / "home" / "crl" / "signer-1.crl", tmp_path / "home" / "crl-signers" / "signer-1" / "cert.pem")
    point = json.loads(_ok(["dcl", "revocation-point", "--pai", "pai-1", "--signer", "signer-1", "--url", URL, "--format", "json"], env))
    assert point["ok"] and point["point"]["pid"] == 0x8000  # the product-scoped PAI's delegate carries its VID and PID


def test_a_failed_signer_creation_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a signer certificate that fails its own profile check (a broken profile, say)
    from matter_pki.errors import CertificateError
    from matter_pki.local import crl_signers

    pki = make_pki(tmp_path / "home")

    def refuse(*_a: object) -> None:
        raise CertificateError("cert.not_matter_compliant", "refused for the test")

    monkeypatch.setattr(crl_signers, "_check", refuse)
    # WHEN creation runs THEN it fails with the code, and no folder, key or ledger row remains
    with pytest.raises(CertificateError):
        crl_signers.create_crl_signer(pki.home, issuer="pai-1", secrets=pki.secrets, now=crl_ops.datetime.now(crl_ops.UTC), signer_id="s1")
    assert not (tmp_path / "home" / "crl-signers" / "s1").exists()
    with SignerStore(pki.home) as store:
        assert store.all() == []
    # AND the id can be used again once the cause is gone
    monkeypatch.undo()
    crl_signers.create_crl_signer(pki.home, issuer="pai-1", secrets=pki.secrets, now=crl_ops.datetime.now(crl_ops.UTC), signer_id="s1")


def test_an_edited_signer_certificate_is_refused(tmp_path: Path) -> None:
    # GIVEN a signer whose cert.pem was replaced on disk by another certificate
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s1"], env)
    _ok(["crl-signer", "create", "--pai", "pai-1", "--id", "s2"], env)
    folder = tmp_path / "home" / "crl-signers"
    (folder / "s1" / "cert.pem").write_bytes((folder / "s2" / "cert.pem").read_bytes())
    # WHEN it is asked to sign THEN the ledger copy disagrees and nothing is published
    result = run_cli(["crl", "publish", "--pai", "pai-1", "--signer", "s1", "--url", URL], env)
    assert result.exit_code == 2 and "error[config.corrupt]" in result.stderr
    assert not (tmp_path / "home" / "crl" / "s1.crl").exists()
