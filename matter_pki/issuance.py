"""Issue one DAC from a device CSR with any signer: intake, profile, sign, release gate.

This is the reference path every backend and the batch engine must agree with byte for byte:
the CSR contributes only its public key; the subject and extensions come from ``DacProfile``;
the DAC passes the release gate (``gate.ReleaseGate``: exactly the profile for this PAI and key,
and the chip-parity validator PAA → PAI → DAC) before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.csr import DeviceCsr, load_device_csr
from matter_pki.gate import gate_for
from matter_pki.profiles import DacProfile, Validity, default_serial, sign

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec


@dataclass(frozen=True, slots=True)
class IssuedDac:
    """A released DAC."""

    der: bytes
    serial: int
    csr_sha256: str
    not_before: datetime
    not_after: datetime


def issue_dac(
    csr: bytes | DeviceCsr,
    *,
    pai: x509.Certificate,
    paa: x509.Certificate,
    signer: ec.EllipticCurvePrivateKey,  # a file key, or the PKCS#11 adapter (same code path)
    pid: int,
    validity: Validity,
    common_name: str | None = "Matter DAC",
    serial: int | None = None,
    serials: Callable[[], int] = default_serial,
    check_at: datetime | None = None,
) -> IssuedDac:
    """Issue one DAC; raises CsrError, ProfileError or IssuanceError (``gate.ReleaseRefused``) with stable codes."""
    device = csr if isinstance(csr, DeviceCsr) else load_device_csr(csr)
    profile = DacProfile.for_issuer(pai, pid=pid, validity=validity, common_name=common_name)
    number = serial if serial is not None else serials()
    cert = sign(profile.builder(device.public_key, serial=number, issuer=pai), signer)
    der = cert.public_bytes(Encoding.DER)
    gate = gate_for(profile, pai=pai, paa_der=paa.public_bytes(Encoding.DER))
    gate.check(der, public_point=device.public_point, at=check_at or validity.not_before + timedelta(seconds=1))
    return IssuedDac(der, number, device.sha256, validity.not_before, validity.not_after)
