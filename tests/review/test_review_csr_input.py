"""Hostile CSR bytes through `dac issue` (folder and single-file mode): a coded refusal each, never a traceback or a DAC."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from matter_pki.oid import MatterOID
from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home


def _hostile() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    k = crafted.key()
    good = crafted.csr(k)
    p384 = crafted.csr(ec.generate_private_key(ec.SECP384R1()))  # type: ignore[arg-type]
    rsa_csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .sign(rsa.generate_private_key(65537, 2048), hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    sha384 = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
              .sign(crafted.key(), hashes.SHA384()).public_bytes(serialization.Encoding.DER))
    return {
        "empty": (b"", ("csr.empty",)),
        "spaces": (b" \n\t ", ("csr.empty",)),
        "huge": (b"\x30\x82\x10\x00" + os.urandom(4096), ("csr.too_large",)),
        "huge-pem": (crafted.pem(os.urandom(4000)), ("csr.too_large",)),
        "deep-nesting": (crafted.nested(900), ("csr.malformed",)),
        "indefinite-length": (b"\x30\x80" + good[2:] + b"\x00\x00", ("csr.malformed",)),
        "trailing-byte": (good + b"\x00", ("csr.multiple", "csr.malformed")),
        "two-der": (good + crafted.csr(crafted.key()), ("csr.multiple",)),
        "der-then-pem": (good + crafted.pem(crafted.csr(crafted.key())), ("csr.multiple",)),
        "two-pem": (crafted.pem(good) + crafted.pem(crafted.csr(crafted.key())), ("csr.multiple",)),
        "pem-bad-base64": (b"-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n", ("csr.pem_invalid",)),
        "pem-unterminated": (crafted.pem(good)[:-30], ("csr.pem_invalid",)),
        "truncated": (good[:-10], ("csr.malformed",)),
        "random": (os.urandom(300), ("csr.malformed", "csr.multiple")),
        "a-certificate": (crafted.pem(bytes.fromhex("3003020101"), "CERTIFICATE"), ("csr.pem_invalid",)),
        "p384": (p384, ("csr.key_curve",)),
        "rsa": (rsa_csr, ("csr.key_not_ec",)),
        "sha384": (sha384, ("csr.signature_algorithm",)),
        "compressed-point": (crafted.compressed_point_csr(crafted.key()), ("csr.key_point",)),
        "bad-signature": (good[:-1] + bytes([good[-1] ^ 1]), ("csr.signature_invalid", "csr.malformed")),
        "utf16": (crafted.pem(good).decode().encode("utf-16"), ("csr.malformed", "csr.pem_invalid", "csr.multiple")),
    }


HOSTILE = _hostile()


def test_each_hostile_csr_in_a_folder_gets_its_coded_err_and_the_rest_are_answered(home: Home, tmp_path: Path) -> None:
    """GIVEN a folder of hostile CSRs and one good CSR WHEN `dac issue --format json` runs THEN exit 1, valid JSON,
    each hostile name has a .err with its csr.* code and no .pem, the good one has its .pem; no traceback."""
    folder = tmp_path / "csrs"
    for name, (data, _) in HOSTILE.items():
        write(folder, f"{name}.csr", data)
    write(folder, "good.csr", crafted.csr(crafted.key()))
    out = tmp_path / "out"
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out), "--format", "json", "--jobs", "2")
    assert run.code == 1, run
    assert "Traceback" not in run.err
    doc = json.loads(run.out)
    by_name = {r["name"]: r for r in doc["results"]}
    for name, (_, codes) in HOSTILE.items():
        assert by_name[name]["status"] == "refused", (name, by_name[name])
        assert by_name[name]["code"] in codes, (name, by_name[name])
        assert not (out / f"{name}.pem").exists(), name
        err = json.loads((out / f"{name}.err").read_text())
        assert err["code"] == by_name[name]["code"], name
    assert (out / "good.pem").exists()
    assert doc["counts"]["issued"] == 1


@pytest.mark.parametrize("name", ["huge", "deep-nesting", "two-pem", "p384", "compressed-point", "utf16"])
def test_a_single_hostile_csr_gives_one_coded_line_and_exit_1(home: Home, tmp_path: Path, name: str) -> None:
    """GIVEN one hostile CSR named on the command line WHEN `dac issue --csr FILE` runs in text mode THEN exit 1,
    stderr names the csr.* code on its first line, no traceback, no .pem."""
    data, codes = HOSTILE[name]
    csr_path = write(tmp_path / "in", "dev.csr", data)
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(csr_path), "--out", str(tmp_path / "out"))
    assert run.code == 1, run
    assert "Traceback" not in run.err + run.out
    assert any(code in run.err + run.out for code in codes), run
    assert not (tmp_path / "out" / "dev.pem").exists()


def test_nothing_from_the_csr_but_its_public_key_reaches_the_dac(home: Home, tmp_path: Path) -> None:
    """GIVEN a CSR asking for CA:TRUE, keyCertSign, an EKU, a SAN (ignored on the local path, as documented), another VID/PID and a hostile subject WHEN it is issued
    THEN the DAC's subject is the profile's (CN Matter DAC, VID FFF1, PID 8000), its extensions exactly BC/KU/SKID/AKID
    with cA FALSE and digitalSignature only, and no CSR byte but the key appears in it."""
    k = crafted.key()
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "EVIL-CN-MARKER"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EVIL-ORG-MARKER"),
        x509.NameAttribute(MatterOID.VENDOR_ID, "FFF2"),
        x509.NameAttribute(MatterOID.PRODUCT_ID, "8001"),
    ])
    exts = [
        x509.BasicConstraints(ca=True, path_length=None),
        x509.KeyUsage(True, False, False, False, False, True, True, False, False),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectAlternativeName([x509.DNSName("evil-san-marker.example")]),
        x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x04\x0eEVIL-EXT-MARKER"[:16]),
    ]
    data = crafted.csr(k, subject=subject, extensions=exts,
                       attributes=[(x509.ObjectIdentifier("1.2.840.113549.1.9.7"), b"EVIL-PW-MARKER")])
    out = tmp_path / "out"
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(write(tmp_path / "in", "dev.csr", data)), "--out", str(out))
    assert run.code == 0, run
    dac_der = x509.load_pem_x509_certificate((out / "dev.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
    assert b"EVIL" not in dac_der.upper()
    dac = x509.load_der_x509_certificate(dac_der)
    assert dac.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Matter DAC"
    assert dac.subject.get_attributes_for_oid(MatterOID.VENDOR_ID)[0].value == "FFF1"
    assert dac.subject.get_attributes_for_oid(MatterOID.PRODUCT_ID)[0].value == "8000"
    assert [e.oid for e in dac.extensions] == [x509.BasicConstraints.oid, x509.KeyUsage.oid,
                                               x509.SubjectKeyIdentifier.oid, x509.AuthorityKeyIdentifier.oid]
    assert dac.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ku = dac.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign and not ku.crl_sign
    assert dac.public_key().public_numbers() == k.public_key().public_numbers()
    assert len(dac_der) <= 600
