"""Which VendorID / ProductID values matter-pki puts in a certificate: one rule for the local CA,
the AWS commands and the CDK app.

- VID 0x0000 (``Common``/``Unspecified``) and VIDs above 0xFFF4 (``NotSpecified`` = 0xFFFF and the
  unassigned range) are not valid vendor IDs (SDK ``src/lib/core/CHIPVendorIdentifiers.hpp``,
  ``IsVendorIdValidOperationally``): refused with ``profile.vid_reserved``.
- VIDs 0xFFF1-0xFFF4 are the test vendor IDs (``IsTestVendorId``): accepted, with a note that they
  are for development only (the DCL has no production PAA for them).
- PID 0x0000 is never assigned to a product (SDK ``src/setup_payload/SetupPayload.cpp``: "A value of
  0x0000 SHALL NOT be assigned to a product"): refused with ``profile.pid_reserved``.

The validator does not apply these rules (chip does not range-check VID/PID when verifying a chain):
they decide what this PKI issues.
"""

from __future__ import annotations

from matter_pki.errors import ProfileError
from matter_pki.vidpid import format_hex16, parse_hex16

RESERVED_ID = 0x0000
TEST_VENDOR_IDS = range(0xFFF1, 0xFFF5)
MAX_OPERATIONAL_VID = 0xFFF4


def check_vid(vid: int) -> int:
    """``vid`` if matter-pki may certify it, else ``profile.vid_reserved``."""
    if vid == RESERVED_ID or vid > MAX_OPERATIONAL_VID:
        raise ProfileError(
            "profile.vid_reserved",
            f"VID {format_hex16(vid)} is not a valid vendor ID (0000 and FFF5-FFFF are reserved; "
            "FFF1-FFF4 are the test vendors)",
        )
    return vid


def check_pid(pid: int) -> int:
    """``pid`` if matter-pki may certify it, else ``profile.pid_reserved``."""
    if pid == RESERVED_ID:
        raise ProfileError("profile.pid_reserved", "PID 0000 is reserved and is never assigned to a product")
    return pid


def vid_note(vid: int | None) -> str | None:
    """The note shown when a CA is created for a test vendor ID, else None."""
    if vid is not None and vid in TEST_VENDOR_IDS:
        return (
            f"VID {format_hex16(vid)} is a Matter test vendor ID: certificates under it are for development only "
            "(commissioners trust them only with test PAAs)"
        )
    return None


def parse_vid(text: str) -> int:
    """A VID typed by a user (1-4 hex digits, optional 0x), checked; ``ValueError`` or ``ProfileError``."""
    return check_vid(parse_hex16(text, "VID"))


def parse_pid(text: str) -> int:
    """A PID typed by a user (1-4 hex digits, optional 0x), checked; ``ValueError`` or ``ProfileError``."""
    return check_pid(parse_hex16(text, "PID"))
