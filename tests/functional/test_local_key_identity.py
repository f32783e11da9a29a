"""One DAC per device key, and nothing from a revoked key or a revoked/expired CA (the issuance rules)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from matter_pki import der
from matter_pki.csr import load_device_csr
from matter_pki.fastpath import parse_csr_skeleton
from matter_pki.local.state import open_audit
from tests.unit.test_local_fixtures import cli_env, csr_for, make_pki, run_cli

if TYPE_CHECKING:
    from pathlib import Path

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")


def flipped(csr_pem: bytes) -> bytes:
    """The same CSR with its ECDSA signature (r, s) replaced by (r, n - s): still valid, other bytes."""
    skeleton = parse_csr_skeleton(csr_pem)
    assert skeleton is not None
    r, s = decode_dss_signature(skeleton.signature)
    signature = encode_dss_signature(r, P256_N - s)
    body = skeleton.info + ECDSA_SHA256 + der.encode_tlv(der.BIT_STRING, b"\x00" + signature)
    return der.encode_tlv(der.SEQUENCE, body)


def issue(env: dict[str, str], csr: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(csr), "--out", str(out), *extra], env)
    return result.exit_code, result.stdout, result.stderr


def dac_serial(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def test_a_revoked_key_is_never_certified_again_whatever_csr_carries_it(tmp_path: Path) -> None:
    # GIVEN a device whose DAC was revoked for keyCompromise
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "dev.csr").write_bytes(csr_for(key))
    assert issue(env, tmp_path / "dev.csr", tmp_path / "out")[0] == 0
    serial = dac_serial(tmp_path / "out" / "dev.pem")
    assert run_cli(["revoke", "--serial", f"{serial:X}", "--reason", "keyCompromise"], env).exit_code == 0
    # WHEN the same key sends a freshly signed CSR (other bytes, other subject)
    (tmp_path / "new.csr").write_bytes(csr_for(key, cn="a new request"))
    code, _out, err = issue(env, tmp_path / "new.csr", tmp_path / "out2")
    # THEN it is refused with issue.key_revoked, answered by a .err, and the ledger holds no second DAC
    assert code == 1 and "error[issue.key_revoked]" in err
    assert json.loads((tmp_path / "out2" / "new.err").read_text())["code"] == "issue.key_revoked"
    assert not (tmp_path / "out2" / "new.pem").exists()
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM certificates WHERE kind = 'dac'").fetchone()[0] == 1


def test_a_flipped_signature_gets_the_existing_dac_not_a_second_one(tmp_path: Path) -> None:
    # GIVEN a device certified once, and its CSR with the signature flipped from s to n - s
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    original = csr_for(ec.generate_private_key(ec.SECP256R1()))
    other = flipped(original)
    assert other != x509.load_pem_x509_csr(original).public_bytes(serialization.Encoding.DER)
    assert load_device_csr(other).sha256 != load_device_csr(original).sha256  # still a valid CSR, other digest
    (tmp_path / "dev.csr").write_bytes(original)
    (tmp_path / "flip.csr").write_bytes(other)
    assert issue(env, tmp_path / "dev.csr", tmp_path / "out")[0] == 0
    # WHEN someone who holds only the CSR submits the flipped one (and a re-signed one by the device itself)
    code, stdout, _ = issue(env, tmp_path / "flip.csr", tmp_path / "out")
    # THEN it is answered with the very same DAC (same serial), and nothing new is issued or announced
    assert code == 0 and "already in the ledger: same DAC" in stdout
    assert (tmp_path / "out" / "flip.pem").read_bytes() == (tmp_path / "out" / "dev.pem").read_bytes()
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM certificates WHERE kind = 'dac'").fetchone()[0] == 1
    issued = [json.loads(line) for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    assert [r["event"] for r in issued].count("dac.issued") == 1


def test_a_csr_that_does_not_prove_the_key_gets_nothing_even_for_a_certified_key(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    original = csr_for(ec.generate_private_key(ec.SECP256R1()))
    (tmp_path / "dev.csr").write_bytes(original)
    assert issue(env, tmp_path / "dev.csr", tmp_path / "out")[0] == 0
    # GIVEN the certified key's CSR with a broken signature
    broken = bytearray(flipped(original))
    broken[-3] ^= 0x01
    (tmp_path / "bad.csr").write_bytes(bytes(broken))
    code, _out, err = issue(env, tmp_path / "bad.csr", tmp_path / "out")
    assert code == 1 and "error[csr.signature_invalid]" in err


def test_one_key_under_two_pids_or_pais_needs_an_audited_reissue(tmp_path: Path) -> None:
    # GIVEN a PAI without PID, a second PAI, and a key certified for PID 8000 by pai-1
    pki = make_pki(tmp_path / "home", pid=None)
    env = cli_env(tmp_path / "home")
    assert run_cli(["pai", "create", "--pid", "8001"], env).stdout.strip() == "pai-2"
    (tmp_path / "dev.csr").write_bytes(csr_for(ec.generate_private_key(ec.SECP256R1())))
    assert issue(env, tmp_path / "dev.csr", tmp_path / "a", "--pid", "8000")[0] == 0
    # WHEN the same key asks for PID 8001 from pai-1, or from pai-2
    for args in (["--pid", "8001"], []):
        pai = "pai-1" if args else "pai-2"
        out = tmp_path / f"b-{pai}"
        result = run_cli(["dac", "issue", "--pai", pai, "--csr", str(tmp_path / "dev.csr"), "--out", str(out), *args], env)
        # THEN it is refused with issue.key_reused
        assert result.exit_code == 1 and "error[issue.key_reused]" in result.stderr, result.output
    # WHEN an operator re-issues on purpose, with a reason
    again = run_cli(["dac", "issue", "--pai", "pai-2", "--csr", str(tmp_path / "dev.csr"), "--out", str(tmp_path / "c"),
                     "--reissue-reason", "moved to product 8001"], env)
    assert again.exit_code == 0, again.output
    # THEN the second DAC is in the ledger and the audit log with the reason
    rows = sqlite3.connect(pki.home.ledger_path).execute(
        "SELECT ca, pid, reissue_reason FROM certificates WHERE kind = 'dac' ORDER BY id"
    ).fetchall()
    assert rows == [("pai-1", 0x8000, None), ("pai-2", 0x8001, "moved to product 8001")]
    issued = [json.loads(line) for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    assert [r.get("reissue_reason") for r in issued if r["event"] == "dac.issued"] == [None, "moved to product 8001"]


def test_a_ca_key_is_never_certified_as_a_device(tmp_path: Path) -> None:
    # GIVEN a CSR made with the PAI's own key (a file key store: readable with the passphrase)
    from matter_pki.backends.keyfile import load_key
    from tests.unit.test_local_fixtures import PASSPHRASE

    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    pai_key = load_key(tmp_path / "home" / "ca" / "pai-1" / "key.pem", PASSPHRASE.encode())
    (tmp_path / "ca.csr").write_bytes(csr_for(pai_key))
    code, _out, err = issue(env, tmp_path / "ca.csr", tmp_path / "out")
    assert code == 1 and "error[issue.key_reused]" in err


def test_a_pai_revoked_by_the_paa_stops_issuing_on_every_path(tmp_path: Path) -> None:
    # GIVEN a PAI revoked with `revoke --paa` and the PAA CRL published
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    pai = x509.load_pem_x509_certificate((tmp_path / "home" / "ca" / "pai-1" / "cert.pem").read_bytes())
    assert run_cli(["revoke", "--paa", "--serial", f"{pai.serial_number:X}", "--reason", "cACompromise"], env).exit_code == 0
    assert run_cli(["crl", "publish", "--paa"], env).exit_code == 0
    (tmp_path / "dev.csr").write_bytes(csr_for(ec.generate_private_key(ec.SECP256R1())))
    # WHEN dac issue and inbox run are asked for DACs of that PAI
    code, _out, err = issue(env, tmp_path / "dev.csr", tmp_path / "out")
    inbox = tmp_path / "inbox" / "pai-1" / "8000"
    inbox.mkdir(parents=True)
    (inbox / "dev.csr").write_bytes((tmp_path / "dev.csr").read_bytes())
    ran = run_cli(["inbox", "run", "--dir", str(tmp_path / "inbox")], env)
    # THEN both refuse with issue.ca_revoked (the inbox answers each CSR so, and goes on) and nothing is issued
    assert code == 1 and "error[issue.ca_revoked]" in err
    assert ran.exit_code == 0, ran.output
    assert json.loads((inbox / "dev.err").read_text())["code"] == "issue.ca_revoked"
    assert not list((tmp_path).rglob("dev.pem"))
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM certificates WHERE kind = 'dac'").fetchone()[0] == 0


def test_an_expired_pai_stops_issuing(tmp_path: Path) -> None:
    # GIVEN a PAI valid for one day, and a clock three days later
    from matter_pki.local import ca as ca_ops
    from matter_pki.local.home import PkiHome
    from matter_pki.local.issue import DacIssuer

    pki = make_pki(tmp_path / "home")
    info = ca_ops.create_pai(pki.home, pid=0x8000, validity_days=1, secrets=pki.secrets, now=datetime.now(UTC))
    later = datetime.now(UTC) + timedelta(days=3)
    # WHEN a long-running caller opens an issuer THEN it is refused with issue.ca_expired
    try:
        DacIssuer.open(PkiHome(tmp_path / "home"), pai_id=info.id, secrets=pki.secrets, now=later)
    except Exception as e:  # noqa: BLE001 - the coded error is what the caller sees
        assert getattr(e, "code", None) == "issue.ca_expired"
    else:
        raise AssertionError("an expired PAI issued")


def test_the_same_key_under_two_names_in_one_run_gets_one_dac(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    key = ec.generate_private_key(ec.SECP256R1())
    folder = tmp_path / "csrs"
    folder.mkdir()
    (folder / "a.csr").write_bytes(csr_for(key, cn="a"))
    (folder / "b.csr").write_bytes(csr_for(key, cn="b"))
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(tmp_path / "out"),
                      "--format", "json"], env)
    assert json.loads(result.stdout)["counts"] == {"issued": 1, "reused": 1, "skipped": 0, "refused": 0}
    assert (tmp_path / "out" / "a.pem").read_bytes() == (tmp_path / "out" / "b.pem").read_bytes()





def test_a_crl_signers_key_is_never_certified_as_a_device_on_any_issuing_path(tmp_path: Path) -> None:
    # GIVEN delegated CRL signers s1 (active) and s2 (revoked), and CSRs made with their keys (file key store)
    from matter_pki.backends.keyfile import load_key
    from matter_pki.serve.engine import CsrRequest, IssuingEngine
    from tests.unit.test_local_fixtures import PASSPHRASE

    pki = make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    for signer in ("s1", "s2"):
        assert run_cli(["crl-signer", "create", "--pai", "pai-1", "--id", signer], env).exit_code == 0
    assert run_cli(["crl-signer", "revoke", "--id", "s2", "--reason", "superseded"], env).exit_code == 0
    csrs = {s: csr_for(load_key(tmp_path / "home" / "crl-signers" / s / "key.pem", PASSPHRASE.encode())) for s in ("s1", "s2")}
    folder = tmp_path / "csrs"
    folder.mkdir()
    for name, csr in csrs.items():
        (folder / f"{name}.csr").write_bytes(csr)
    inbox = tmp_path / "inbox" / "pai-1" / "8000"
    inbox.mkdir(parents=True)
    for name, csr in csrs.items():
        (inbox / f"{name}.csr").write_bytes(csr)
    expected = {"s1": "issue.key_reused", "s2": "issue.key_revoked"}
    # WHEN dac issue (also with an explicit re-issue reason), inbox run and the signing service are asked for DACs
    code, _out, _err = issue(env, folder, tmp_path / "out")
    code_reissue, _o, _e = issue(env, folder, tmp_path / "out2", "--reissue-reason", "line change")
    ran = run_cli(["inbox", "run", "--dir", str(tmp_path / "inbox")], env)
    engine = IssuingEngine(pki.home, pki.secrets, open_audit(pki.home, pki.secrets))
    engine.open_keys()
    outcomes = engine.issue("pai-1", 0x8000, [CsrRequest(name, csr) for name, csr in csrs.items()])
    engine.close()
    # THEN every path refuses both keys with the device-key codes, and no DAC exists for them
    assert code == 1 and code_reissue == 1 and ran.exit_code == 0, ran.output
    for out in (tmp_path / "out", tmp_path / "out2", inbox):
        assert {n: json.loads((out / f"{n}.err").read_text())["code"] for n in csrs} == expected
    assert [(o.status, o.code) for o in outcomes] == [("refused", expected["s1"]), ("refused", expected["s2"])]
    assert not list(tmp_path.rglob("s1.pem")) and not list(tmp_path.rglob("s2.pem"))
    db = sqlite3.connect(tmp_path / "home" / "ledger.sqlite")
    assert db.execute("SELECT COUNT(*) FROM certificates WHERE kind = 'dac'").fetchone()[0] == 0
    db.close()
