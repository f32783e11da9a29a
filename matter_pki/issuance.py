"""Issue one DAC from a device CSR with any signer: intake, profile, sign, validate, release.

This is the reference path every backend and the batch engine must agree with byte for byte:
the CSR contributes only its public key; the subject and extensions come from ``DacProfile``;
the DAC is checked by the chip-parity validator (PAA → PAI → DAC) before it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.csr import DeviceCsr, load_device_csr
from matter_pki.errors import IssuanceError
from matter_pki.profiles import DacProfile, Validity, default_serial, sign
from matter_pki.validate import validate_att_cert

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


def check_released(dac_der: bytes, *, pai_der: bytes, paa_der: bytes, at: datetime) -> None:
    """Refuse to release a DAC the chip-parity validator rejects (issue.validation_failed)."""
    result = validate_att_cert(paa=paa_der, pai=pai_der, dac=dac_der, at=at, mode="commissioner")
    if not result.ok:
        raise IssuanceError(
            "issue.validation_failed",
            f"issued DAC failed validation: {result.result.label} [{result.code}] {result.reason}",
        )


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
    """Issue one DAC; raises CsrError, ProfileError or IssuanceError with stable codes."""
    device = csr if isinstance(csr, DeviceCsr) else load_device_csr(csr)
    profile = DacProfile.for_issuer(pai, pid=pid, validity=validity, common_name=common_name)
    number = serial if serial is not None else serials()
    cert = sign(profile.builder(device.public_key, serial=number, issuer=pai), signer)
    der = cert.public_bytes(Encoding.DER)
    check_released(
        der,
        pai_der=pai.public_bytes(Encoding.DER),
        paa_der=paa.public_bytes(Encoding.DER),
        at=check_at or validity.not_before + timedelta(seconds=1),
    )
    return IssuedDac(der, number, device.sha256, validity.not_before, validity.not_after)
