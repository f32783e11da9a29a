"""``matter-pki revoke`` and ``matter-pki crl publish``: files, CRL content, revocation set, audit."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki import der
from matter_pki.certparse import parse_certificate
from tests.unit.test_local_fixtures import cli_env, make_pki, run_cli, write_csrs

if TYPE_CHECKING:
    from pathlib import Path


def _crl_issuer_bytes(crl_der: bytes) -> bytes:
    tbs = der.children(crl_der, der.children(crl_der, der.read_tlv(crl_der))[0])
    return tbs[2].encoded(crl_der)


def test_revoke_dac_and_publish_crl(tmp_path: Path) -> None:
    # GIVEN a PAI that issued three DACs
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    write_csrs(tmp_path / "csrs", 3)
    run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env)
    dac = x509.load_pem_x509_certificate((tmp_path / "out" / "dev-0001.pem").read_bytes())
    pai = x509.load_pem_x509_certificate((tmp_path / "out" / "pai.pem").read_bytes())
    # WHEN one DAC is revoked and the PAI's CRL is published twice
    revoked = run_cli(["revoke", "--serial", f"{dac.serial_number:x}", "--reason", "key-compromise"], env)
    assert revoked.exit_code == 0, revoked.output
    assert run_cli(["crl", "publish", "--pai", "pai-1"], env).exit_code == 0
    published = json.loads(run_cli(["crl", "publish", "--pai", "pai-1", "--format", "json"], env).stdout)
    # THEN crl/pai-1.crl (DER) and .pem hold a CRL by the PAI: issuer bytes, AKID, CRL Number 2, the serial
    crl_dir = tmp_path / "home" / "crl"
    assert published["crl_number"] == 2 and published["crl"] == str(crl_dir / "pai-1.crl")
    crl_der = (crl_dir / "pai-1.crl").read_bytes()
    crl = x509.load_der_x509_crl(crl_der)
    assert x509.load_pem_x509_crl((crl_dir / "pai-1.pem").read_bytes()) == crl
    assert _crl_issuer_bytes(crl_der) == parse_certificate(pai.public_bytes(Encoding.DER)).subject.der
    skid = pai.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == skid
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert [r.serial_number for r in crl] == [dac.serial_number]
    entry = crl.get_revoked_certificate_by_serial_number(dac.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.key_compromise
    public = pai.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public)
    # AND the revocation set names the PAI and the serial as a commissioner matches them
    [rs] = json.loads((crl_dir / "pai-1.revocation-set.json").read_text())
    assert rs["issuer_subject_key_id"] == skid.hex().upper()
    assert base64.b64decode(rs["issuer_name"]) == parse_certificate(dac.public_bytes(Encoding.DER)).issuer.der
    serial_text = f"{dac.serial_number:X}"
    assert rs["revoked_serial_numbers"] == [serial_text.zfill(len(serial_text) + len(serial_text) % 2)]
    assert base64.b64decode(rs["crl_signer_cert"]) == pai.public_bytes(Encoding.DER)
    # AND the ledger and the audit log know
    [shown] = json.loads(run_cli(["dac", "show", f"{dac.serial_number:X}", "--format", "json"], env).stdout)
    assert (shown["status"], shown["revocation_reason"]) == ("revoked", "keyCompromise")
    events = [json.loads(line) for line in (tmp_path / "home" / "audit" / "audit.log").read_text().splitlines()]
    assert [e["event"] for e in events].count("cert.revoked") == 1
    assert [e["crl_number"] for e in events if e["event"] == "crl.published"] == [1, 2]
    # AND revoking again is refused; re-issuing the revoked device's CSR is refused
    again = run_cli(["revoke", "--serial", f"{dac.serial_number:X}", "--reason", "superseded"], env)
    assert again.exit_code == 2 and "error[ledger.already_revoked]" in again.stderr
    reissue = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs" / "dev-0001.csr"), "--out", str(tmp_path / "o2")], env)
    assert reissue.exit_code == 1 and "error[issue.key_revoked]" in reissue.stderr


def test_revoke_pai_goes_on_the_paa_crl(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    run_cli(["pai", "create", "--pid", "8001"], env)
    pai = x509.load_pem_x509_certificate((tmp_path / "home" / "ca" / "pai-2" / "cert.pem").read_bytes())
    paa = x509.load_pem_x509_certificate((tmp_path / "home" / "ca" / "paa" / "cert.pem").read_bytes())
    assert run_cli(["revoke", "--serial", f"{pai.serial_number:X}", "--reason", "cessationOfOperation", "--paa"], env).exit_code == 0
    assert run_cli(["crl", "publish", "--paa"], env).exit_code == 0
    crl = x509.load_der_x509_crl((tmp_path / "home" / "crl" / "paa.crl").read_bytes())
    assert [r.serial_number for r in crl] == [pai.serial_number]
    public = paa.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey) and crl.is_signature_valid(public)
    [row] = [r for r in json.loads(run_cli(["pai", "list", "--format", "json"], env).stdout) if r["id"] == "pai-2"]
    assert row["revoked"] is True


def test_revoke_errors_are_coded(tmp_path: Path) -> None:
    make_pki(tmp_path / "home")
    env = cli_env(tmp_path / "home")
    unknown = run_cli(["revoke", "--serial", "0123", "--reason", "superseded"], env)
    assert unknown.exit_code == 2 and "error[ledger.serial_unknown]" in unknown.stderr
    bad_reason = run_cli(["revoke", "--serial", "0123", "--reason", "lost-it"], env)
    assert bad_reason.exit_code == 2 and "error[input.revocation_reason]" in bad_reason.stderr
    scope = run_cli(["crl", "publish"], env)
    assert scope.exit_code == 2 and "error[input.crl_scope]" in scope.stderr
