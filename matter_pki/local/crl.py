"""Revocation and CRLs per issuing CA (matter-rules.md §8).

A direct CRL is a v2 CRL signed by the issuing CA's own key with ecdsa-with-SHA256, whose issuer is
byte-for-byte the CA's subject, with an AKID equal to the CA's SKID and a monotonic CRL Number;
with ``url`` it also carries an IssuingDistributionPoint naming that URL (the DCL point's dataURL).
A delegated CRL is an indirect CRL signed by one of the home's CRL signers (``local.crl_signers``).
Entries carry a reasonCode, except ``unspecified`` (RFC 5280 5.3.1: SHOULD be absent). The CRLs are
built by ``matter_pki.revocation.crl``.

Before anything is written, the CRL goes through the SDK's revocation-set algorithm with the point
that will announce it (``matter_pki.revocation.setgen``): a CRL the SDK would drop, or that fails the
extra RFC 5280 checks, is refused (``crl.check_failed``). Next to the DER and PEM files, the
revocation-set JSON that algorithm produces is written (the form a commissioner consumes).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import parse_certificate
from matter_pki.errors import InputError
from matter_pki.local.home import PAA_ID
from matter_pki.local.keys import Secrets, signer_factory
from matter_pki.local.ledger import LedgerEntry, SignerRow, Transaction, iso, parse_serial, serial_hex
from matter_pki.profiles import issuer_subject_key_id, require_utc
from matter_pki.revocation import crl as core
from matter_pki.revocation import setgen
from matter_pki.revocation.setgen import check_before_publishing
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec

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


def already_revoked(what: str, row: LedgerEntry | SignerRow, flag: x509.ReasonFlags) -> bool:
    """Revoking again: True when ``row`` is revoked for ``flag`` already (nothing to do); another reason is refused."""
    if row.status != "revoked":
        return False
    if row.revocation_reason != flag.value:
        raise InputError("ledger.already_revoked", f"{what} was revoked at {row.revoked_at} ({row.revocation_reason})")
    return True


@dataclass(frozen=True, slots=True)
class Revocation:
    """Outcome of ``revoke``: the entry, and whether it was already revoked with that reason."""

    entry: LedgerEntry
    already: bool = False


def revoke(
    home: PkiHome, *, serial: str, reason: str, ca: str | None = None, now: datetime, secrets: Secrets
) -> Revocation:
    """Mark a DAC (``ca`` = its PAI id, or None) or a PAI (``ca`` = ``paa``, never None) revoked: ledger, then audit log.

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
        if ca is None and entry.kind == "pai":
            # A PAI's revocation stops everything it issues: never a side effect of a DAC's serial.
            raise InputError(
                "input.revoke_scope",
                f"serial {number} is a PAI's certificate (issued by the PAA): revoking a PAI stops all its issuance; "
                "pass --paa to mean it",
            )
        if already_revoked(f"certificate {number} of {entry.ca!r}", entry, flag):
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
    signer: str | None = None
    url: str | None = None
    report: setgen.PointReport | None = None


def _revocation(serial: str, reason: str | None, revoked_at: str | None, fallback: datetime) -> core.Revocation:
    when = datetime.strptime(revoked_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if revoked_at else fallback
    flag = x509.ReasonFlags(reason or "unspecified")
    return core.Revocation(int(serial, 16), when, None if flag is x509.ReasonFlags.unspecified else flag)


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
    params = core.CrlParams(
        this_update=this_update, next_update=this_update + timedelta(days=next_update_days), crl_number=crl_number
    )
    revocations = [_revocation(e.serial, e.revocation_reason, e.revoked_at, this_update) for e in revoked]
    return x509.load_der_x509_crl(core.build_direct_crl(ca_cert, signer, revocations, params))


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
    signer_id: str | None = None,
    url: str | None = None,
) -> CrlPublication:
    """Sign, check and write a CRL of one CA: ``crl/<ca id>.crl`` (direct) or ``crl/<signer id>.crl`` (delegated).

    Also ``.pem`` and ``.revocation-set.json``. ``url`` (the DCL point's dataURL) goes into an
    IssuingDistributionPoint; a delegated (indirect) CRL requires it.

    The CRL Number (per CA for a direct CRL, per signer, ``signer:<id>``, for a delegated one) is
    allocated in the ledger, in the same commit that announces the publication: numbers never repeat
    and never go back, even after a failed write (the next run takes the next number). A CRL that
    fails its check is neither announced nor written and takes no number.
    """
    from matter_pki.local import crl_signers
    from matter_pki.local.state import CaState

    home.require()
    if next_update_days <= 0:
        raise InputError("input.next_update", "--next-update-days must be positive")
    if signer_id is not None and url is None:
        raise InputError("input.crl_url", "a delegated CRL names its URL in an IssuingDistributionPoint: give --url")
    try:
        require_utc(now, "now") + timedelta(days=next_update_days)
    except OverflowError as e:
        raise InputError("input.next_update", f"--next-update-days {next_update_days} ends after the year 9999") from e
    with home.lock(), CaState.open(home, secrets) as state:
        info = home.ca_info(ca_id)
        cert = home.load_cert(ca_id)
        paa = home.load_cert(PAA_ID)
        signer_cert: x509.Certificate = cert
        if signer_id is None:
            key = signer_factory(home, ca_id, secrets)()
            key_store = info.key.store if info.key else None
            numbering = ca_id
        else:
            signer_cert, _row = crl_signers.active_signer(home, signer_id, ca_id, ledger=state.ledger)
            key = crl_signers.key_factory(home, signer_id, secrets)()
            key_store = crl_signers.load_info(home, signer_id).key.store
            numbering = crl_signers.crl_number_key(signer_id)
        this_update = require_utc(now, "now")
        revocations = [
            _revocation(e.serial, e.revocation_reason, e.revoked_at, this_update) for e in state.ledger.revoked(ca_id)
        ]
        revocations += [
            _revocation(r.serial, r.revocation_reason, r.revoked_at, this_update)
            for r in state.ledger.revoked_signers(ca_id)
        ]
        made: list[tuple[int, bytes, setgen.PointReport]] = []

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            number = txn.crl_number(numbering, iso(now))
            params = core.CrlParams(
                this_update=this_update, next_update=this_update + timedelta(days=next_update_days), crl_number=number,
                idp_url=url,
            )  # fmt: skip
            if signer_id is None:
                crl_der = core.build_direct_crl(cert, key, revocations, params)
            else:
                crl_der = core.build_indirect_crl(signer_cert, key, [core.CrlScope(cert, revocations)], params)
            report = check_before_publishing(
                crl_der, signer=signer_cert, delegator=None if signer_id is None else cert, paa=paa,
                is_paa=ca_id == PAA_ID, url=url, vid=home.ca_info(PAA_ID).vid if ca_id == PAA_ID else None,
                now=this_update,
            )  # fmt: skip
            made.append((number, crl_der, report))
            return [("crl.published", {"ca": ca_id, "signer": signer_id, "url": url, "numbering": numbering,
                                       "crl_number": number, "revoked": len(revocations),
                                       "sha256": hashlib.sha256(crl_der).hexdigest()})]  # fmt: skip

        accessed = [("key.accessed", {"ca": ca_id, "signer": signer_id, "purpose": "crl.publish", "key_store": key_store})]
        state.commit("crl", write, now=now, extra=accessed)
        number, crl_der, report = made[0]
        out = ensure_private_dir(home.crl_dir)
        stem = ca_id if signer_id is None else signer_id
        der_path, pem_path = out / f"{stem}.crl", out / f"{stem}.pem"
        set_path = out / f"{stem}.revocation-set.json"
        atomic_write(der_path, crl_der)
        atomic_write(pem_path, x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
        atomic_write(set_path, (json.dumps(setgen.revocation_set([report]), indent=2) + "\n").encode())
    return CrlPublication(ca_id, number, len(revocations), der_path, pem_path, set_path, signer_id, url, report)


__all__ = [
    "CrlPublication",
    "Revocation",
    "build_crl",
    "check_before_publishing",
    "parse_reason",
    "publish_crl",
    "revocation_set",
    "revoke",
]
