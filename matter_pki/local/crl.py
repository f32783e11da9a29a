"""Revocation and CRLs per issuing CA (matter-rules.md §8).

Each CRL is a v2 CRL signed by the issuing CA's own key with ecdsa-with-SHA256, whose issuer is
byte-for-byte the CA's subject, with an AKID equal to the CA's SKID and a monotonic CRL Number.
Entries carry a reasonCode, except ``unspecified`` (RFC 5280 5.3.1: SHOULD be absent). Next to the
DER and PEM files, a revocation-set JSON (the DCL form a commissioner consumes) is written.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki import der
from matter_pki.certparse import parse_certificate
from matter_pki.errors import InputError, IssuanceError
from matter_pki.local.keys import Secrets, signer_factory
from matter_pki.local.ledger import LedgerEntry, Transaction, iso, parse_serial, serial_hex
from matter_pki.profiles import issuer_subject_key_id, require_utc
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from pathlib import Path

    from matter_pki.audit.log import AuditSession
    from matter_pki.local.home import PkiHome

DEFAULT_NEXT_UPDATE_DAYS = 365

# Reasons that make sense for a permanently revoked attestation certificate (no hold).
REASONS: dict[str, x509.ReasonFlags] = {
    flag.value.lower(): flag
    for flag in (
        x509.ReasonFlags.unspecified,
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.ca_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
        x509.ReasonFlags.privilege_withdrawn,
    )
}


def parse_reason(text: str) -> x509.ReasonFlags:
    """``keyCompromise``, ``key-compromise`` or ``key_compromise`` (any case) → the RFC 5280 reason."""
    flag = REASONS.get(text.replace("-", "").replace("_", "").lower())
    if flag is None:
        names = ", ".join(f.value for f in REASONS.values())
        raise InputError("input.revocation_reason", f"unknown revocation reason {text!r}; use one of: {names}")
    return flag


@dataclass(frozen=True, slots=True)
class Revocation:
    """Outcome of ``revoke``: the entry, and whether it was already revoked with that reason."""

    entry: LedgerEntry
    already: bool = False


def revoke(
    home: PkiHome, *, serial: str, reason: str, ca: str | None = None, now: datetime, secrets: Secrets
) -> Revocation:
    """Mark a DAC (``ca`` = its PAI id) or a PAI (``ca`` = ``paa``) revoked: ledger, then audit log.

    Idempotent: revoking again with the same reason reports the existing revocation (``already``),
    so after any failure the operator simply runs the same command again. A different reason is
    ``ledger.already_revoked``.
    """
    from matter_pki.local.state import CaState

    home.require()
    flag = parse_reason(reason)
    number = serial_hex(parse_serial(serial))
    with home.lock(), CaState.open(home, secrets) as state:
        matches = [e for e in state.ledger.find_serial(number, ca) if e.kind != "paa"]
        if not matches:
            where = f" issued by {ca!r}" if ca else ""
            raise InputError("ledger.serial_unknown", f"no certificate with serial {number}{where} in this home")
        if len(matches) > 1:
            cas = ", ".join(sorted(e.ca for e in matches))
            raise InputError("ledger.serial_ambiguous", f"serial {number} was issued by several CAs ({cas}); pass --pai or --paa")
        entry = matches[0]
        if entry.status == "revoked":
            if entry.revocation_reason != flag.value:
                raise InputError(
                    "ledger.already_revoked",
                    f"certificate {number} of {entry.ca!r} was revoked at {entry.revoked_at} ({entry.revocation_reason})",
                )
            return Revocation(entry, already=True)
        at = iso(now)

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            txn.revoke(entry.ca, entry.serial, entry.key_id, flag.value, at)
            return [("cert.revoked", {"ca": entry.ca, "serial": entry.serial, "kind": entry.kind,
                                      "key_id": entry.key_id, "reason": flag.value, "revoked_at": at})]

        state.commit("revoke", write, now=now)
        revoked = state.ledger.get(entry.ca, entry.serial)
    assert revoked is not None
    return Revocation(revoked)


@dataclass(frozen=True, slots=True)
class CrlPublication:
    """Files written by one ``crl publish``."""

    ca: str
    crl_number: int
    revoked: int
    der_path: Path
    pem_path: Path
    revocation_set_path: Path


def _crl_issuer_bytes(crl_der: bytes) -> bytes:
    top = der.read_tlv(crl_der)
    tbs = der.children(crl_der, der.children(crl_der, top)[0])
    # TBSCertList: version (v2), signature, issuer, ...
    return tbs[2].encoded(crl_der)


def build_crl(
    ca_cert: x509.Certificate,
    signer: ec.EllipticCurvePrivateKey,
    revoked: list[LedgerEntry],
    *,
    crl_number: int,
    now: datetime,
    next_update_days: int = DEFAULT_NEXT_UPDATE_DAYS,
) -> x509.CertificateRevocationList:
    """A v2 CRL for ``ca_cert``, signed by ``signer``; checked (issuer bytes, signature) before return."""
    this_update = require_utc(now, "now")
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(this_update)
        .next_update(this_update + timedelta(days=next_update_days))
        .add_extension(x509.AuthorityKeyIdentifier(issuer_subject_key_id(ca_cert), None, None), critical=False)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
    )
    for entry in revoked:
        when = datetime.strptime(entry.revoked_at or iso(this_update), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        item = x509.RevokedCertificateBuilder().serial_number(int(entry.serial, 16)).revocation_date(when)
        reason = x509.ReasonFlags(entry.revocation_reason or "unspecified")
        if reason is not x509.ReasonFlags.unspecified:
            item = item.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    crl = builder.sign(signer, hashes.SHA256())
    ca_der = ca_cert.public_bytes(Encoding.DER)
    if _crl_issuer_bytes(crl.public_bytes(Encoding.DER)) != parse_certificate(ca_der).subject.der:
        raise IssuanceError("crl.issuer_mismatch", "the CRL issuer is not byte-for-byte the CA subject")
    public = ca_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(public):
        raise IssuanceError("crl.signature_invalid", "the CRL signature does not verify with the CA certificate")
    return crl


def revocation_set(ca_cert: x509.Certificate, revoked: list[LedgerEntry]) -> list[dict[str, Any]]:
    """The DCL revocation-set entry for this CA (generate_revocation_set.py's output shape)."""
    ca_der = ca_cert.public_bytes(Encoding.DER)
    return [
        {
            "type": "revocation_set",
            "issuer_subject_key_id": issuer_subject_key_id(ca_cert).hex().upper(),
            "issuer_name": base64.b64encode(parse_certificate(ca_der).subject.der).decode(),
            "revoked_serial_numbers": [e.serial for e in revoked],
            "crl_signer_cert": base64.b64encode(ca_der).decode(),
        }
    ]


def publish_crl(
    home: PkiHome,
    ca_id: str,
    *,
    secrets: Secrets,
    now: datetime,
    next_update_days: int = DEFAULT_NEXT_UPDATE_DAYS,
) -> CrlPublication:
    """Sign and write ``crl/<ca id>.crl`` (DER), ``.pem`` and ``.revocation-set.json`` for one CA.

    The CRL Number is allocated in the ledger, in the same transaction as the announcement of the
    publication: numbers never repeat and never go back, even after a failed write (the next run
    takes the next number).
    """
    from matter_pki.local.state import CaState

    home.require()
    if next_update_days <= 0:
        raise InputError("input.next_update", "--next-update-days must be positive")
    try:
        require_utc(now, "now") + timedelta(days=next_update_days)
    except OverflowError as e:
        raise InputError("input.next_update", f"--next-update-days {next_update_days} ends after the year 9999") from e
    with home.lock(), CaState.open(home, secrets) as state:
        info = home.ca_info(ca_id)
        cert = home.load_cert(ca_id)
        signer = signer_factory(home, ca_id, secrets)()
        revoked = state.ledger.revoked(ca_id)
        made: list[tuple[int, bytes, x509.CertificateRevocationList]] = []

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            number = txn.crl_number(ca_id, iso(now))
            crl = build_crl(cert, signer, revoked, crl_number=number, now=now, next_update_days=next_update_days)
            crl_der = crl.public_bytes(Encoding.DER)
            made.append((number, crl_der, crl))
            return [("crl.published", {"ca": ca_id, "crl_number": number, "revoked": len(revoked),
                                       "sha256": hashlib.sha256(crl_der).hexdigest()})]

        accessed = [("key.accessed", {"ca": ca_id, "purpose": "crl.publish",
                                      "key_store": info.key.store if info.key else None})]
        state.commit("crl", write, now=now, extra=accessed)
        number, crl_der, crl = made[0]
        out = ensure_private_dir(home.crl_dir)
        der_path, pem_path = out / f"{ca_id}.crl", out / f"{ca_id}.pem"
        set_path = out / f"{ca_id}.revocation-set.json"
        atomic_write(der_path, crl_der)
        atomic_write(pem_path, crl.public_bytes(Encoding.PEM))
        atomic_write(set_path, (json.dumps(revocation_set(cert, revoked), indent=2) + "\n").encode())
    return CrlPublication(ca_id, number, len(revoked), der_path, pem_path, set_path)


__all__ = ["CrlPublication", "Revocation", "build_crl", "parse_reason", "publish_crl", "revocation_set", "revoke"]
