"""In-memory chains for the revocation tests (PAA → PAI → DACs, delegated signers) and the SDK's revocation vectors."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.profiles import DacProfile, PaaProfile, PaiProfile, Validity, sign
from matter_pki.revocation.signer import CrlSignerProfile

NOW = datetime.now(UTC).replace(microsecond=0)
START = NOW - timedelta(hours=1)
REPO = Path(__file__).resolve().parents[2]
VECTORS = Path(os.environ.get("MATTER_PKI_VECTORS", REPO.parent / "shared" / "vectors")) / "revocation"
GUIDE_CODES = {
    # docs/guides/device-attestation-revocation-guide.md and src/python_testing/TC_DA_1_9.py
    "revoked-pai.json": 202,
    "revoked-dac-01.json": 302,
    "revoked-dac-02.json": 302,
    "revoked-dac-03.json": 302,
    "revoked-dac-and-pai.json": 208,
    "indirect-revoked-dac-01.json": 302,
    "indirect-revoked-pai-03.json": 202,
    "indirect-revoked-dac-01-pai-03.json": 208,
}


def der(cert: x509.Certificate) -> bytes:
    """DER bytes."""
    return cert.public_bytes(Encoding.DER)


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key."""
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Chain:
    """A PAA, one PAI and some DACs, with every key."""

    paa: x509.Certificate
    paa_key: ec.EllipticCurvePrivateKey
    pai: x509.Certificate
    pai_key: ec.EllipticCurvePrivateKey
    dacs: list[x509.Certificate] = field(default_factory=list)

    def signer(self, *, of: str = "pai", digital_signature: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A delegated CRL signer issued by the PAI (or the PAA)."""
        issuer, issuer_key = (self.pai, self.pai_key) if of == "pai" else (self.paa, self.paa_key)
        key = new_key()
        profile = CrlSignerProfile.for_issuer(issuer, validity=Validity.for_days(START, 365), digital_signature=digital_signature)
        return sign(profile.builder(key.public_key(), serial=x509.random_serial_number(), issuer=issuer), issuer_key), key


def make_chain(*, dacs: int = 5, vid: int | None = 0xFFF1, pid: int | None = None, dac_pid: int = 0x8001) -> Chain:
    """PAA (VID-scoped unless ``vid`` is None) → PAI (VID FFF1, optional PID) → ``dacs`` DACs."""
    paa_key, pai_key = new_key(), new_key()
    paa = sign(PaaProfile(vid=vid, validity=Validity.no_expiry(START)).builder(paa_key.public_key(), serial=0x1001), paa_key)
    pai_profile = PaiProfile(vid=0xFFF1, pid=pid, validity=Validity.no_expiry(START))
    pai = sign(pai_profile.builder(pai_key.public_key(), serial=x509.random_serial_number(), issuer=paa), paa_key)
    chain = Chain(paa, paa_key, pai, pai_key)
    for _ in range(dacs):
        profile = DacProfile.for_issuer(pai, pid=pid or dac_pid, validity=Validity.no_expiry(START))
        chain.dacs.append(sign(profile.builder(new_key().public_key(), serial=x509.random_serial_number(), issuer=pai), pai_key))
    return chain


# -- the SDK's vectors ----------------------------------------------------------------------------
def _require_vectors() -> None:
    if not (VECTORS / "revocation-sets" / "revocation-set.json").is_file():
        pytest.skip(f"Matter SDK revocation vectors not found at {VECTORS} (set MATTER_PKI_VECTORS)")


@cache
def _dev_pai() -> bytes:
    data = json.loads((VECTORS / "dac-provider-test-vectors" / "revoked-dac-01.json").read_text())
    return bytes.fromhex(data["pai_cert"])


def vector_cert(name: str) -> x509.Certificate:
    """A certificate of credentials/test/revoked-attestation-certificates (git symlinks resolved)."""
    _require_vectors()
    path = VECTORS / name
    data = path.read_bytes()
    if data.startswith(b"../"):  # a git symlink stored as its target path
        target = data.decode().strip()
        if target.endswith("Chip-Test-PAA-FFF1-Cert.pem"):
            data = (VECTORS.parent / "paa-root-certs" / "Chip-Test-PAA-FFF1-Cert.pem").read_bytes()
        elif target.endswith("Matter-Development-PAI-FFF1-noPID-Cert.pem"):
            return x509.load_der_x509_certificate(_dev_pai())  # the same PAI, from the DAC-provider vector
        else:
            pytest.skip(f"{name} links to {target}, not among the shared vectors")
    return x509.load_pem_x509_certificate(data)


def vector_crl(name: str) -> bytes:
    """A vector CRL, as DER (the form a dataURL serves)."""
    _require_vectors()
    return x509.load_pem_x509_crl((VECTORS / name).read_bytes()).public_bytes(Encoding.DER)


def provider_vector(name: str) -> tuple[bytes, bytes]:
    """(DAC DER, PAI DER) of a dac-provider-test-vectors file."""
    _require_vectors()
    data = json.loads((VECTORS / "dac-provider-test-vectors" / name).read_text())
    return bytes.fromhex(data["dac_cert"]), bytes.fromhex(data["pai_cert"])


def sdk_revocation_set_path() -> Path:
    """revocation-sets/revocation-set.json (the set TC-DA-1.9 and the guide use)."""
    _require_vectors()
    return VECTORS / "revocation-sets" / "revocation-set.json"


#: The points that published the SDK's vector CRLs: (signer, delegator, CRL, dataURL, isPAA).
VECTOR_POINTS = [
    ("Chip-Test-PAA-FFF1-Cert.pem", None, "Chip-Test-PAA-FFF1-CRL.pem", "https://example.com/paa.crl", True),
    ("Matter-Development-PAI-FFF1-noPID-Cert.pem", None, "Matter-Development-PAI-FFF1-noPID-CRL.pem", "https://example.com/dev-pai.crl", False),
    ("Chip-Test-PAI-FFF1-noPID-Revoked-Cert.pem", None, "Chip-Test-PAI-FFF1-noPID-Revoked-CRL.pem", "https://example.com/revoked-pai.crl", False),
    ("indirect/Chip-Test-PAA-Delegate-FFF1-Cert.pem", "Chip-Test-PAA-FFF1-Cert.pem", "indirect/Chip-Test-PAA-FFF1-Delegated-CRL.pem", "https://example.com/paa-delegated-crl.der", True),
    ("indirect/Chip-Test-PAI-Delegate-FFF1-01-Cert.pem", "indirect/Chip-Test-PAI-FFF1-01-Cert.pem", "indirect/Chip-Test-PAI-FFF1-Delegated-CRL.pem", "https://example.com/pai-delegated-crl.der", False),
    ("indirect/Chip-Test-PAI-Delegate-FFF1-02-Cert.pem", "indirect/Chip-Test-PAI-FFF1-02-Cert.pem", "indirect/Chip-Test-PAI-FFF1-Delegated-CRL.pem", "https://example.com/pai-delegated-crl.der", False),
]
