"""The Matter SDK's AttestationVerificationResult codes (DeviceAttestationVerifier.h)."""

from __future__ import annotations

from enum import IntEnum


class AttestationResult(IntEnum):
    """Verdict codes, numbered as in the Matter SDK so reports compare directly."""

    kSuccess = 0
    kPaaUntrusted = 100
    kPaaNotFound = 101
    kPaaExpired = 102
    kPaaSignatureInvalid = 103
    kPaaRevoked = 104
    kPaaFormatInvalid = 105
    kPaaArgumentInvalid = 106
    kPaiExpired = 200
    kPaiSignatureInvalid = 201
    kPaiRevoked = 202
    kPaiFormatInvalid = 203
    kPaiArgumentInvalid = 204
    kPaiVendorIdMismatch = 205
    kPaiAuthorityNotFound = 206
    kPaiMissing = 207
    kPaiAndDacRevoked = 208
    kDacExpired = 300
    kDacSignatureInvalid = 301
    kDacRevoked = 302
    kDacFormatInvalid = 303
    kDacArgumentInvalid = 304
    kDacVendorIdMismatch = 305
    kDacProductIdMismatch = 306
    kDacAuthorityNotFound = 307
    kInvalidArgument = 701
    kInternalError = 702

    @property
    def label(self) -> str:
        """Name and number, as printed in reports: ``kDacFormatInvalid (303)``."""
        return f"{self.name} ({self.value})"


FORMAT_CODE_BY_ROLE = {
    "paa": AttestationResult.kPaaFormatInvalid,
    "pai": AttestationResult.kPaiFormatInvalid,
    "dac": AttestationResult.kDacFormatInvalid,
}
