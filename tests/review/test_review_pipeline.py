"""The AWS pipeline attacked through its bucket: moto S3 + SQS, the real handler, the Private CA model."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from tests.lambdas.conftest import aws_env, make_harness
from tests.review import crafted

if TYPE_CHECKING:
    from tests.lambdas.conftest import Harness

assert aws_env  # the moto fixture, used by name below


def _setup() -> tuple[Harness, str]:
    h = make_harness()
    pai = h.pca.add_pai(h.pca.add_paa(), pid=0x8000)
    h.drain()
    return h, pai


def _issued_points(h: Harness) -> list[bytes]:
    return [c.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            for c in (x509.load_pem_x509_certificate(v.certificate.encode()) if isinstance(v.certificate, str) else v.certificate
                      for v in h.pca.certificates.values())]


def test_hostile_csr_objects_get_coded_err_and_no_certificate(aws_env: None) -> None:
    """GIVEN CSR objects that are empty, 1 MiB, deeply nested, two CSRs, trailing bytes, SAN-requesting, compressed
    WHEN the pipeline drains THEN each gets a .err with a csr.* code, no .pem, and Private CA issued nothing."""
    h, pai = _setup()
    good = crafted.csr(crafted.key())
    san = crafted.csr(crafted.key(), extensions=[x509.SubjectAlternativeName([x509.DNSName("evil.example")])])
    bodies = {
        "empty": b"", "huge": os.urandom(1 << 20), "deep": crafted.nested(900), "two": good + crafted.csr(crafted.key()),
        "trailing": good + b"\x00", "san": san, "compressed": crafted.compressed_point_csr(crafted.key()),
        "badsig": good[:-1] + bytes([good[-1] ^ 1]),
    }
    for name, body in bodies.items():
        h.upload(f"{pai}/8000/{name}.csr", body)
    h.drain()
    for name in bodies:
        assert f"{pai}/8000/{name}.pem" not in h.keys(), name
        err = h.err(f"{pai}/8000/{name}.err")
        assert str(err["code"]).startswith("csr."), (name, err)
    assert h.err(f"{pai}/8000/san.err")["code"] == "csr.subject_alt_name"
    assert len(h.pca.certificates) == 0
    assert not h.dead_letters


def test_the_dac_carries_nothing_of_the_csr_but_its_key(aws_env: None) -> None:
    """GIVEN a CSR asking for CA:TRUE, keyCertSign, an EKU and a hostile subject WHEN the pipeline signs it THEN the
    published DAC (or a coded .err) carries only the profile's subject and extensions."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    h, pai = _setup()
    k = crafted.key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EVIL-CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "EVIL-O")])
    body = crafted.csr(k, subject=subject, extensions=[
        x509.BasicConstraints(ca=True, path_length=None),
        x509.KeyUsage(True, False, False, False, False, True, True, False, False),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
    ])
    h.upload(f"{pai}/8000/dev.csr", body)
    h.drain()
    if f"{pai}/8000/dev.pem" in h.keys():
        dac = x509.load_pem_x509_certificate(h.read(f"{pai}/8000/dev.pem"))
        assert b"EVIL" not in dac.public_bytes(serialization.Encoding.DER)
        assert {e.oid for e in dac.extensions} == {x509.BasicConstraints.oid, x509.KeyUsage.oid,
                                                    x509.SubjectKeyIdentifier.oid, x509.AuthorityKeyIdentifier.oid}
        assert dac.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    else:
        assert str(h.err(f"{pai}/8000/dev.err")["code"]).startswith("csr.")


def test_a_flipped_signature_of_a_signed_csr_gets_no_second_certificate(aws_env: None) -> None:
    """GIVEN a CSR signed by the pipeline WHEN the s→n−s flip of that CSR (no private key needed) is uploaded under
    another name, and a PEM copy under a third THEN Private CA holds one certificate for that device key."""
    h, pai = _setup()
    original = crafted.csr(crafted.key())
    h.upload(f"{pai}/8000/a.csr", original)
    h.drain()
    assert f"{pai}/8000/a.pem" in h.keys()
    h.upload(f"{pai}/8000/b.csr", crafted.flip_s(original))
    h.upload(f"{pai}/8000/c.csr", crafted.pem(original))
    h.drain()
    assert len(h.pca.certificates) == 1
    for name in ("b", "c"):
        key = f"{pai}/8000/{name}"
        if f"{key}.pem" in h.keys():
            assert h.read(f"{key}.pem") == h.read(f"{pai}/8000/a.pem")
        else:
            assert f"{key}.err" in h.keys()


def test_object_names_that_break_the_layout_are_never_answered_elsewhere(aws_env: None) -> None:
    """GIVEN CSR objects whose keys try path tricks (.., double slashes, another PAI's prefix, no PID) WHEN the pipeline
    drains THEN no object is written outside the CSR's own folder name, and no certificate is issued for them."""
    h, pai = _setup()
    good = crafted.csr(crafted.key())
    tricks = [f"{pai}/8000/../../x.csr", f"{pai}//8000/x.csr", f"{pai}/8000/sub/x.csr", f"{pai}/x.csr", "x.csr",
              f"{pai}/0000/x.csr", f"{pai}/8000/.csr", f"{pai}/8000/claims.csr", f"claims/{pai}/8000/x.csr"]
    before = h.keys()
    for key in tricks:
        h.upload(key, good)
    h.drain()
    added = h.keys() - before - set(tricks)
    for key in added:
        stem = key.rsplit(".", 1)[0]
        assert f"{stem}.csr" in tricks, (key, added)
    assert len(h.pca.certificates) <= 0 or all(k.endswith((".pem", ".err")) for k in added)


def test_an_expired_pai_gets_no_certificate_and_no_per_csr_err(aws_env: None) -> None:
    """GIVEN a Private CA PAI whose notAfter has passed WHEN a CSR for it is uploaded THEN Private CA issues nothing and
    the record goes to the DLQ as a configuration error (no .pem; no per-CSR .err to block a later re-drive)."""
    from datetime import UTC, datetime, timedelta

    h = make_harness()
    now = datetime.now(UTC)
    pai = h.pca.add_pai(h.pca.add_paa(start=now - timedelta(days=900)), pid=0x8000,
                        start=now - timedelta(days=800), not_after=now - timedelta(days=1))
    h.drain()
    h.upload(f"{pai}/8000/dev.csr", crafted.csr(crafted.key()))
    h.drain()
    assert len(h.pca.certificates) == 0
    assert f"{pai}/8000/dev.pem" not in h.keys()
    assert len(h.dead_letters) == 1
    assert f"{pai}/8000/dev.err" not in h.keys()
