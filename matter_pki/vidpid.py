"""Vendor ID / Product ID in a subject DN, read exactly as the Matter SDK reads them.

Matter OIDs first; the legacy ``Mvid:XXXX``/``Mpid:YYYY`` Common Name encoding only when the
subject holds neither Matter attribute (src/crypto/CHIPCryptoPAL.cpp, ExtractVIDPIDFromAttributeString).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matter_pki.oid import MatterOID, NameOID

if TYPE_CHECKING:
    from matter_pki.certparse import RawName

_VID_OID = MatterOID.VENDOR_ID.dotted_string
_PID_OID = MatterOID.PRODUCT_ID.dotted_string
_CN_OID = NameOID.COMMON_NAME.dotted_string
_HEX4 = re.compile(rb"[0-9A-F]{4}")
MAX_CN_SCAN = 64


class VidPidError(ValueError):
    """The DN encodes a VID or PID wrongly (chip: CHIP_ERROR_WRONG_CERT_DN)."""


@dataclass(frozen=True, slots=True)
class VidPid:
    """VID/PID found in a subject, and where they came from."""

    vid: int | None
    pid: int | None
    source: str | None  # "oid", "cn" or None
    string_tags: tuple[int, ...] = ()


def parse_hex16(text: str, what: str = "value") -> int:
    """Parse a user-supplied VID/PID: 4 hex digits (case-insensitive, optional 0x); chip form is upper case."""
    cleaned = text.strip()
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    if not re.fullmatch(r"[0-9A-Fa-f]{1,4}", cleaned):
        raise ValueError(f"{what} must be 1 to 4 hex digits (e.g. FFF1), got {text!r}")
    return int(cleaned, 16)


def format_hex16(value: int) -> str:
    """The only encoding chip accepts: 4 upper-case hex digits."""
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{value} is not a 16-bit value")
    return f"{value:04X}"


def _find_after_prefix(data: bytes, prefix: bytes) -> int | None:
    """First ``prefix`` followed by 4 upper-case hex digits; error if the prefix only appears bare."""
    seen = False
    start = data.find(prefix)
    while start != -1:
        seen = True
        digits = data[start + len(prefix) : start + len(prefix) + 4]
        if len(digits) < 4:
            break
        if _HEX4.fullmatch(digits):
            return int(digits, 16)
        start = data.find(prefix, start + 1)
    if seen:
        raise VidPidError(f"{prefix.decode()} is not followed by 4 upper-case hex digits")
    return None


def extract_vid_pid(name: RawName) -> VidPid:
    """VID/PID of a subject; raises VidPidError where chip reports WRONG_CERT_DN."""
    vid: int | None = None
    pid: int | None = None
    cn_vid: int | None = None
    cn_pid: int | None = None
    tags: list[int] = []
    for oid, tag, value in name.attributes:
        if oid not in (_VID_OID, _PID_OID, _CN_OID):
            continue
        if not value:
            raise VidPidError("empty Common Name or Matter attribute")
        if oid in (_VID_OID, _PID_OID):
            label = "VendorID" if oid == _VID_OID else "ProductID"
            if not _HEX4.fullmatch(value):
                raise VidPidError(f"{label} attribute {value!r} is not 4 upper-case hex digits")
            tags.append(tag)
            if oid == _VID_OID:
                if vid is not None:
                    raise VidPidError("more than one VendorID attribute")
                vid = int(value, 16)
            else:
                if pid is not None:
                    raise VidPidError("more than one ProductID attribute")
                pid = int(value, 16)
        elif cn_vid is None and cn_pid is None:
            scan = value[:MAX_CN_SCAN]
            cn_vid = _find_after_prefix(scan, b"Mvid:")
            cn_pid = _find_after_prefix(scan, b"Mpid:")
    if vid is not None or pid is not None:
        return VidPid(vid, pid, "oid", tuple(tags))
    if cn_vid is not None or cn_pid is not None:
        return VidPid(cn_vid, cn_pid, "cn")
    return VidPid(None, None, None)
