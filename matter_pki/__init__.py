"""matter-pki: a Matter device-attestation PKI (PAA, PAI, DAC) with chip-parity validation."""

from __future__ import annotations

__version__ = "0.1.0"
