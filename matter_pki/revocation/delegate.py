"""The commissioner's revocation check: kSuccess 0, kPaiRevoked 202, kDacRevoked 302, kPaiAndDacRevoked 208.

Re-implements project-chip/connectedhomeip src/credentials/attestation_verifier/TestDACRevocationDelegateImpl.cpp
(IsCertificateRevoked, IsEntryInRevocationSet, CrossValidateCert, CheckForRevokedDACChain) exactly:

* a certificate is looked up by its issuer name (base64 of the raw DER, read into a 200-byte buffer),
  its AKID (upper-case hex, 20 bytes) and its serial (upper-case hex of OpenSSL's magnitude bytes,
  at most 20); failing to read any of them means "not revoked";
* entries are scanned in order; the first whose ``issuer_name`` and ``issuer_subject_key_id`` match
  is cross-checked: the certificate in ``crl_signer_delegator`` when that key is present (even as
  JSON null, which then fails), else ``crl_signer_cert``, decoded into 600 bytes, must have the
  issuer's subject and SKID; a failed cross-check ends the search ("not revoked") even when a later
  entry lists the serial;
* the DAC is checked first, then the PAI: 302, 202, or 208 when both are revoked.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from matter_pki.attestation import AttestationResult
from matter_pki.certparse import parse_certificate
from matter_pki.der import DerError
from matter_pki.errors import InputError
from matter_pki.findings import Finding, finding
from matter_pki.revocation.rules import MAX_CROSS_CHECK_CERT, MAX_ISSUER_NAME, MAX_SERIAL_OCTETS

if TYPE_CHECKING:
    from collections.abc import Sequence

ROLE = "revset"
MAX_SET_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Lookup:
    """Whether one certificate is revoked, and why (notes name the entries and checks involved)."""

    revoked: bool
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RevocationVerdict:
    """The revocation delegate's answer for a DAC and its PAI."""

    result: AttestationResult
    dac: Lookup
    pai: Lookup
    warnings: tuple[Finding, ...] = field(default=())

    @property
    def code(self) -> int:
        """0, 202, 302 or 208."""
        return int(self.result)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "code": self.code,
            "result": self.result.name,
            "dac_revoked": self.dac.revoked,
            "pai_revoked": self.pai.revoked,
            "dac_notes": list(self.dac.notes),
            "pai_notes": list(self.pai.notes),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def load_revocation_set(data: bytes) -> list[dict[str, Any]]:
    """Parse a revocation-set JSON file: a list of objects (``input.revocation_set`` otherwise)."""
    if len(data) > MAX_SET_BYTES:
        raise InputError("input.revocation_set", f"revocation set is {len(data)} bytes, over {MAX_SET_BYTES}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError("input.revocation_set", f"revocation set is not JSON: {e}") from e
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise InputError("input.revocation_set", "a revocation set is a JSON list of objects")
    for i, entry in enumerate(doc):
        serials = entry.get("revoked_serial_numbers", [])
        if not isinstance(serials, list):
            raise InputError("input.revocation_set", f"entry {i}: revoked_serial_numbers must be a list")
        for key in ("issuer_name", "issuer_subject_key_id", "crl_signer_cert"):
            if isinstance(entry.get(key), list | dict):
                raise InputError("input.revocation_set", f"entry {i}: {key} must be a string")
    return doc


def _as_string(value: object) -> str:
    """jsoncpp's asString(): null → "", strings as is, numbers and booleans spelled out."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True, slots=True)
class _Keys:
    issuer_name: str
    akid: str
    serial: str


def _keys(cert_der: bytes) -> _Keys | None:
    from matter_pki.lint import decode_akid

    try:
        raw = parse_certificate(cert_der)
    except DerError:
        return None
    if len(raw.issuer.der) > MAX_ISSUER_NAME:
        return None
    serial = raw.serial[1:] if len(raw.serial) > 1 and raw.serial[0] == 0 else raw.serial
    if len(serial) > MAX_SERIAL_OCTETS:
        return None
    akid_ext = [e for e in raw.extensions if e.oid == "2.5.29.35"]
    try:
        akid = decode_akid(akid_ext[0].value) if len(akid_ext) == 1 else None
    except DerError:
        akid = None
    if akid is None or len(akid) != 20:
        return None
    return _Keys(base64.b64encode(raw.issuer.der).decode(), akid.hex().upper(), serial.hex().upper())


def _cross_check(entry: dict[str, Any], keys: _Keys) -> tuple[bool, str]:
    from matter_pki.lint import decode_skid

    if "crl_signer_delegator" in entry:
        text, whose = _as_string(entry["crl_signer_delegator"]), "crl_signer_delegator"
    else:
        text, whose = _as_string(entry.get("crl_signer_cert")), "crl_signer_cert"
    if len(text) * 3 // 4 > MAX_CROSS_CHECK_CERT:
        return False, f"{whose} does not fit the delegate's {MAX_CROSS_CHECK_CERT}-byte buffer"
    try:
        raw = parse_certificate(base64.b64decode(text, validate=True))
        skid_ext = [e for e in raw.extensions if e.oid == "2.5.29.14"]
        skid = decode_skid(skid_ext[0].value) if len(skid_ext) == 1 else None
    except (binascii.Error, DerError, ValueError):
        return False, f"{whose} is empty or unreadable" + (" (JSON null)" if entry.get(whose, "") is None else "")
    if skid is None or len(skid) != 20:
        return False, f"{whose} has no 20-byte SKID"
    subject = base64.b64encode(raw.subject.der).decode()
    if subject != keys.issuer_name or skid.hex().upper() != keys.akid:
        return False, f"{whose} subject/SKID is not the certificate's issuer"
    return True, f"cross-checked against {whose}"


def is_certificate_revoked(cert_der: bytes, revocation_set: Sequence[dict[str, Any]]) -> Lookup:
    """IsCertificateRevoked: scan the set for the certificate's issuer, AKID and serial."""
    keys = _keys(cert_der)
    if keys is None:
        return Lookup(False, ("issuer name, AKID or serial cannot be read as the delegate reads them",))
    notes: list[str] = []
    for index, entry in enumerate(revocation_set):
        if _as_string(entry.get("issuer_name")) != keys.issuer_name:
            continue
        if _as_string(entry.get("issuer_subject_key_id")) != keys.akid:
            continue
        good, why = _cross_check(entry, keys)
        if not good:
            notes.append(f"entry {index}: {why}; the search ends here")
            return Lookup(False, tuple(notes))
        serials = entry.get("revoked_serial_numbers") or []
        if any(_as_string(s) == keys.serial for s in serials):
            notes.append(f"entry {index}: serial {keys.serial} listed ({why})")
            return Lookup(True, tuple(notes))
        notes.append(f"entry {index}: issuer matches, serial {keys.serial} not listed")
    return Lookup(False, tuple(notes))


def check_revocation(*, dac: bytes, pai: bytes, revocation_set: Sequence[dict[str, Any]]) -> RevocationVerdict:
    """CheckForRevokedDACChain: 0, kDacRevoked 302, kPaiRevoked 202 or kPaiAndDacRevoked 208."""
    dac_lookup = is_certificate_revoked(dac, revocation_set)
    pai_lookup = is_certificate_revoked(pai, revocation_set)
    result = AttestationResult.kSuccess
    if dac_lookup.revoked:
        result = AttestationResult.kDacRevoked
    if pai_lookup.revoked:
        result = AttestationResult.kPaiAndDacRevoked if dac_lookup.revoked else AttestationResult.kPaiRevoked
    return RevocationVerdict(result, dac_lookup, pai_lookup, tuple(lint_revocation_set(revocation_set)))


def lint_revocation_set(revocation_set: Sequence[dict[str, Any]]) -> list[Finding]:
    """Entries the delegate will misread: a null delegator, entries shadowed by an earlier failing one."""
    out: list[Finding] = []
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(revocation_set):
        if entry.get("type") != "revocation_set":
            out.append(finding("revset.entry_type", f"entry {index}: type is {entry.get('type')!r}, not 'revocation_set'", ROLE))
        if "crl_signer_delegator" in entry and not entry.get("crl_signer_delegator"):
            out.append(finding(
                "revset.delegator_null",
                f"entry {index}: crl_signer_delegator is present but empty/null: the delegate reads it as a delegator "
                "and never matches this entry (generate_revocation_set.py writes this for direct CRLs); drop the key",
                ROLE,
            ))  # fmt: skip
        key = (_as_string(entry.get("issuer_name")), _as_string(entry.get("issuer_subject_key_id")))
        if key in seen:
            out.append(finding(
                "revset.entry_shadowed",
                f"entry {index} has the issuer of entry {seen[key]}: if that one fails its cross-check, "
                "the delegate never reaches this one",
                ROLE,
            ))  # fmt: skip
        else:
            seen[key] = index
    return out


__all__ = [
    "Lookup",
    "RevocationVerdict",
    "check_revocation",
    "is_certificate_revoked",
    "lint_revocation_set",
    "load_revocation_set",
]
