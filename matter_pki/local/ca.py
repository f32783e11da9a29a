"""CA operations in a PKI home: create or import the PAA, create PAIs (directly or by CSR), list them.

Time policy: a CA's notBefore is ``now - BACKDATE`` (one hour, tolerating clock skew between this
machine and commissioners), never before its issuer's notBefore. The same rule dates DACs, so a
chain made a second ago already validates "now" (chip wants the DAC notBefore strictly in the past).
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.certparse import certificate_der_from_bytes, parse_certificate
from matter_pki.der import DerError
from matter_pki.errors import CertificateError, ConfigError, InputError, IssuanceError, ProfileError
from matter_pki.findings import Severity
from matter_pki.lint import lint
from matter_pki.local.home import PAA_ID, CaInfo, KeyStoreSettings, PkiHome, check_ca_id, operator
from matter_pki.local.keys import Secrets, generate_ca_key, signer_factory
from matter_pki.local.ledger import CertRow, Ledger, Transaction, create_ledger, iso, serial_hex
from matter_pki.local.state import create_audit_key
from matter_pki.profiles import (
    PaaProfile,
    PaiProfile,
    Validity,
    default_serial,
    issuer_subject_key_id,
    issuer_valid_at,
    require_utc,
    sign,
)
from matter_pki.storage.local import atomic_write, ensure_private_dir
from matter_pki.validity import ValidityPolicy
from matter_pki.vidpid import extract_vid_pid

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from matter_pki.audit.log import AuditSession

BACKDATE = timedelta(hours=1)
SERIAL_ATTEMPTS = 3
CERT_FILE = "cert.pem"
REQUEST_FILE = "request.csr"


__all__ = ["operator"]  # re-exported: the CA operations' audit records name the operator


def validity_from(start: datetime, days: int | None) -> Validity:
    """``days`` long from ``start``, or until 99991231235959Z when ``days`` is None (``matter_pki.validity``)."""
    return ValidityPolicy.from_days(days).resolve(start)


def start_under(issuer: x509.Certificate | None, now: datetime) -> datetime:
    """notBefore for a certificate issued ``now``: backdated, but never before the issuer's notBefore."""
    start = require_utc(now, "now") - BACKDATE
    if issuer is None:
        return start
    start = max(start, issuer.not_valid_before_utc)
    if not issuer_valid_at(start, issuer.not_valid_before_utc, issuer.not_valid_after_utc):
        raise ProfileError(
            "profile.issuer_expired",
            f"the issuer expired at {iso(issuer.not_valid_after_utc)}; it cannot issue anymore",
        )
    return start


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _errors(findings: list[Any]) -> list[Any]:
    return [f for f in findings if f.severity >= Severity.ERROR]


def _check_lint(der: bytes, role: str, issuer: bytes | None, what: str) -> None:
    bad = _errors(lint(der, role, issuer))
    if bad:
        listed = "; ".join(f"{f.code}: {f.message}" for f in bad[:5])
        raise CertificateError("cert.not_matter_compliant", f"{what} breaks Matter rules: {listed}")


def _fresh_serial_row(
    txn: Transaction,
    build: Callable[[int], x509.Certificate],
    row: Callable[[bytes], CertRow],
    serials: Callable[[], int],
) -> tuple[x509.Certificate, CertRow]:
    """Sign with a serial the issuer never used (re-signed on the astronomically rare collision)."""
    for _ in range(SERIAL_ATTEMPTS):
        cert = build(serials())
        candidate = row(_der(cert))
        if not txn.serials_taken(candidate.ca, [candidate.serial]):
            txn.add_certs([candidate])
            return cert, candidate
    raise IssuanceError("issue.serial_collision", f"no unused serial number after {SERIAL_ATTEMPTS} attempts")


# -- PAA ---------------------------------------------------------------------------------------
def init_paa(
    home: PkiHome,
    *,
    vid: int | None,
    common_name: str | None = None,
    organization: str | None = None,
    validity_days: int | None = None,
    settings: KeyStoreSettings | None = None,
    secrets: Secrets,
    now: datetime,
    serials: Callable[[], int] = default_serial,
) -> CaInfo:
    """Create a new home with a PAA (VID-scoped unless ``vid`` is None) whose key is generated here.

    Also the home's ledger and its one audit key, certified by the new PAA key; ``config.json`` is
    written last, so an interrupted init leaves no usable half-home (and is cleaned up).
    """
    settings = settings or KeyStoreSettings()
    profile_args: dict[str, Any] = {"vid": vid, "organization": organization}
    if common_name is not None:
        profile_args["common_name"] = common_name
    profile = PaaProfile(validity=validity_from(start_under(None, now), validity_days), **profile_args)
    with home.lock():
        home_id = home.prepare()
        ca_dir = home.ca_dir(PAA_ID)
        try:
            ensure_private_dir(ca_dir)
            key_ref, public = generate_ca_key(home, settings, PAA_ID, secrets, home_id=home_id)
            signer = _open_new_key(home, settings, PAA_ID, key_ref, secrets)
            cert = sign(profile.builder(public, serial=serials()), signer)
            _check_lint(_der(cert), "paa", None, "the new PAA")
            info = CaInfo(
                id=PAA_ID, role="paa", vid=vid, pid=None, common_name=profile.common_name,
                key=key_ref, state="active", created=iso(now),
            )
            audit_key = create_audit_key(home, settings, secrets, home_id=home_id, paa_key=signer, paa_der=_der(cert))
            fields = {"vid": f"{vid:04X}" if vid is not None else None, "key_store": settings.kind}
            _first_commit(home, home_id, audit_key, cert, fields, now=now)
            atomic_write(ca_dir / CERT_FILE, _pem(cert))
            home.write_ca_info(info)
            home.commit(settings, home_id=home_id, created=iso(now))
        except BaseException:
            _undo_init(home, ca_dir)
            raise
    return info


def _first_commit(
    home: PkiHome, home_id: str, audit_key: Callable[[], ec.EllipticCurvePrivateKey], paa: x509.Certificate,
    fields: dict[str, Any], *, now: datetime, imported: bool = False,
) -> None:
    """The new ledger's first transaction (the PAA certificate), announced in the new audit log."""
    from matter_pki.audit.log import AuditLog
    from matter_pki.local.state import CaState, announcement

    ledger = create_ledger(home.ledger_path, home_id=home_id)
    with CaState(home, ledger, AuditLog(home.path, signer=audit_key)) as state:

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            row = CertRow.from_der("paa", PAA_ID, _der(paa), issued_at=iso(now), operator=state.operator)
            txn.add_certs([row])
            event, announced = announcement(row, subject=paa.subject.rfc4514_string(), **fields)
            if imported:
                event = "paa.imported"
                announced["skid"] = issuer_subject_key_id(paa).hex().upper()
            return [(event, announced)]

        state.commit("ca", write, now=now)


def _undo_init(home: PkiHome, ca_dir: Path) -> None:
    """Leave no half-made home behind: init can simply be run again."""
    shutil.rmtree(ca_dir, ignore_errors=True)
    shutil.rmtree(home.path / "audit", ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            home.ledger_path.with_name(home.ledger_path.name + suffix).unlink()


def _open_new_key(
    home: PkiHome, settings: KeyStoreSettings, ca_id: str, key_ref: Any, secrets: Secrets
) -> ec.EllipticCurvePrivateKey:
    # The home's config.json is not written yet during init, so build the factory from the settings.
    from matter_pki.backends.keyfile import FileKeySigner
    from matter_pki.backends.pkcs11 import Pkcs11SignerFactory
    from matter_pki.local.keys import pkcs11_config

    if key_ref.store == "file":
        return FileKeySigner(str(home.ca_dir(ca_id) / key_ref.file), secrets.passphrase())()
    return Pkcs11SignerFactory(pkcs11_config(settings, secrets), bytes.fromhex(key_ref.key_id), key_ref.label)()


def load_certificate_bytes(data: bytes, what: str) -> x509.Certificate:
    """A certificate given as PEM, DER or hex; ``cert.unreadable`` otherwise."""
    try:
        return x509.load_der_x509_certificate(certificate_der_from_bytes(data))
    except (DerError, ValueError) as e:
        raise CertificateError("cert.unreadable", f"{what} cannot be read as a certificate: {e}") from e


def import_paa(
    home: PkiHome, cert_bytes: bytes, *, settings: KeyStoreSettings | None = None, secrets: Secrets, now: datetime
) -> CaInfo:
    """Create a new home under an existing PAA whose key lives elsewhere (PAIs then go through a CSR).

    The home still gets its own audit key (in the key store); with no PAA key here, nothing can
    certify it: pin its fingerprint (``audit verify --expect-key``).
    """
    settings = settings or KeyStoreSettings()
    cert = load_certificate_bytes(cert_bytes, "the PAA")
    der = _der(cert)
    _check_lint(der, "paa", None, "the imported PAA")
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CertificateError("cert.not_matter_compliant", "the imported PAA does not carry an EC key")
    try:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise CertificateError("cert.not_self_signed", "the imported PAA is not self-signed") from e
    ids = extract_vid_pid(parse_certificate(der).subject)
    with home.lock():
        home_id = home.prepare()
        ca_dir = ensure_private_dir(home.ca_dir(PAA_ID))
        try:
            info = CaInfo(
                id=PAA_ID, role="paa", vid=ids.vid, pid=None,
                common_name=_cn(cert), key=None, state="active", created=iso(now), imported=True,
            )
            audit_key = create_audit_key(home, settings, secrets, home_id=home_id, paa_key=None, paa_der=der)
            _first_commit(home, home_id, audit_key, cert, {}, now=now, imported=True)
            atomic_write(ca_dir / CERT_FILE, _pem(cert))
            home.write_ca_info(info)
            home.commit(settings, home_id=home_id, created=iso(now))
        except BaseException:
            _undo_init(home, ca_dir)
            raise
    return info


def _cn(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


# -- PAI ---------------------------------------------------------------------------------------
def next_pai_id(home: PkiHome) -> str:
    """``pai-<n>``, one more than the highest existing number."""
    numbers = [int(i[4:]) for i in home.pai_ids() if i.startswith("pai-") and i[4:].isdigit()]
    n = max(numbers, default=0) + 1
    while home.ca_dir(f"pai-{n}").exists():
        n += 1
    return f"pai-{n}"


def _pai_profile(
    paa: x509.Certificate, paa_info: CaInfo, *, vid: int | None, pid: int | None, common_name: str | None,
    organization: str | None, validity_days: int | None, now: datetime,
) -> PaiProfile:
    if vid is None:
        vid = paa_info.vid
    if vid is None:
        raise InputError("input.vid_required", "the PAA is not VID-scoped: give the PAI's VendorID with --vid")
    args: dict[str, Any] = {"vid": vid, "pid": pid, "organization": organization}
    if common_name is not None:
        args["common_name"] = common_name
    profile = PaiProfile(validity=validity_from(start_under(paa, now), validity_days), **args)
    profile.check_issuer(paa)  # VID scope and validity, before any key is made
    return profile


def _new_pai_id(home: PkiHome, pai_id: str | None) -> str:
    if pai_id is None:
        return next_pai_id(home)
    check_ca_id(pai_id)
    if pai_id == PAA_ID or home.ca_dir(pai_id).exists():
        raise InputError("input.ca_id_taken", f"CA id {pai_id!r} is already used in this home")
    return pai_id


def create_pai(
    home: PkiHome,
    *,
    pid: int | None = None,
    vid: int | None = None,
    common_name: str | None = None,
    organization: str | None = None,
    validity_days: int | None = None,
    pai_id: str | None = None,
    secrets: Secrets,
    now: datetime,
    serials: Callable[[], int] = default_serial,
) -> CaInfo:
    """Create a PAI signed by the home's PAA; its key is generated in the home's key store."""
    from matter_pki.local.state import CaState, announcement

    home.require()
    with home.lock(), CaState.open(home, secrets) as state:
        paa_info = home.ca_info(PAA_ID)
        if paa_info.key is None:
            raise ConfigError(
                "config.ca_key_absent",
                "the PAA key is not in this home (imported PAA): use 'matter-pki pai create --csr-out FILE', "
                "have the PAA owner sign it, then 'matter-pki pai import'",
            )
        state.check_can_issue(PAA_ID, now)
        paa = home.load_cert(PAA_ID)
        profile = _pai_profile(
            paa, paa_info, vid=vid, pid=pid, common_name=common_name, organization=organization,
            validity_days=validity_days, now=now,
        )
        new_id = _new_pai_id(home, pai_id)
        settings = home.key_store()
        paa_key = signer_factory(home, PAA_ID, secrets)()
        accessed = [("key.accessed", {"ca": PAA_ID, "purpose": "pai.create", "key_store": settings.kind})]
        ca_dir = ensure_private_dir(home.ca_dir(new_id))
        try:
            key_ref, public = generate_ca_key(home, settings, new_id, secrets, home_id=home.home_id())
            made: list[x509.Certificate] = []

            def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
                cert, row = _fresh_serial_row(
                    txn,
                    lambda serial: sign(profile.builder(public, serial=serial, issuer=paa), paa_key),
                    lambda der: CertRow.from_der("pai", PAA_ID, der, issued_at=iso(now), operator=state.operator, pid=pid),
                    serials,
                )
                _check_lint(_der(cert), "pai", _der(paa), "the new PAI")
                made.append(cert)
                return [announcement(row, pai=new_id, key_store=settings.kind)]

            state.commit("ca", write, now=now, extra=accessed)
            cert = made[0]
            info = CaInfo(
                id=new_id, role="pai", vid=profile.vid, pid=pid, common_name=profile.common_name,
                key=key_ref, state="active", created=iso(now),
            )
            atomic_write(ca_dir / CERT_FILE, _pem(cert))
            home.write_ca_info(info)
        except BaseException:
            if not (ca_dir / "ca.json").exists():
                shutil.rmtree(ca_dir, ignore_errors=True)
            raise
    return info


def create_pai_request(
    home: PkiHome,
    *,
    pid: int | None = None,
    vid: int | None = None,
    common_name: str | None = None,
    organization: str | None = None,
    validity_days: int | None = None,
    pai_id: str | None = None,
    secrets: Secrets,
    now: datetime,
) -> tuple[CaInfo, bytes]:
    """Generate a PAI key here and return a CSR (PEM) for the PAA owner to sign; the PAI stays pending."""
    from matter_pki.local.state import CaState

    home.require()
    with home.lock(), CaState.open(home, secrets) as state:
        paa_info = home.ca_info(PAA_ID)
        paa = home.load_cert(PAA_ID)
        profile = _pai_profile(
            paa, paa_info, vid=vid, pid=pid, common_name=common_name, organization=organization,
            validity_days=validity_days, now=now,
        )
        new_id = _new_pai_id(home, pai_id)
        settings = home.key_store()
        ca_dir = ensure_private_dir(home.ca_dir(new_id))
        try:
            key_ref, _public = generate_ca_key(home, settings, new_id, secrets, home_id=home.home_id())
            info = CaInfo(
                id=new_id, role="pai", vid=profile.vid, pid=pid, common_name=profile.common_name,
                key=key_ref, state="pending", created=iso(now),
            )
            home.write_ca_info(info)
            key = signer_factory(home, new_id, secrets)()
            csr = x509.CertificateSigningRequestBuilder().subject_name(profile.subject()).sign(key, hashes.SHA256())
            pem = csr.public_bytes(Encoding.PEM)
            atomic_write(ca_dir / REQUEST_FILE, pem)
            state.record(
                "pai.created", ca=PAA_ID, pai=new_id, state="pending", subject=profile.subject().rfc4514_string(),
                pid=f"{pid:04X}" if pid is not None else None, key_store=settings.kind,
            )
        except BaseException:
            shutil.rmtree(ca_dir, ignore_errors=True)
            raise
    return info, pem


def import_pai(home: PkiHome, pai_id: str, cert_bytes: bytes, *, secrets: Secrets, now: datetime) -> CaInfo:
    """Install the certificate the PAA owner issued for a pending PAI, after checking it thoroughly."""
    from matter_pki.local.state import CaState, announcement

    home.require()
    with home.lock(), CaState.open(home, secrets) as state:
        info = home.ca_info(pai_id)
        if info.role != "pai" or info.state != "pending":
            raise InputError("input.pai_not_pending", f"{pai_id!r} is not a PAI waiting for its certificate")
        paa = home.load_cert(PAA_ID)
        cert = load_certificate_bytes(cert_bytes, "the PAI certificate")
        request = x509.load_pem_x509_csr((home.ca_dir(pai_id) / REQUEST_FILE).read_bytes())
        _check_imported_pai(cert, paa, request, info)

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            row = CertRow.from_der("pai", PAA_ID, _der(cert), issued_at=iso(now), operator=state.operator, pid=info.pid)
            if txn.serials_taken(PAA_ID, [row.serial]):
                raise IssuanceError("issue.serial_collision", "another PAI of this PAA already has this serial number")
            txn.add_certs([row])
            event, fields = announcement(row, pai=pai_id)
            return [("pai.imported", fields)]

        state.commit("ca", write, now=now)
        atomic_write(home.cert_path(pai_id), _pem(cert))
        active = replace(info, state="active")
        home.write_ca_info(active)
    return active


def _check_imported_pai(cert: x509.Certificate, paa: x509.Certificate, request: x509.CertificateSigningRequest, info: CaInfo) -> None:
    if cert.public_key() != request.public_key():
        raise CertificateError("cert.key_mismatch", "the certificate's key is not the key of this PAI's request")
    if parse_certificate(_der(cert)).issuer.der != parse_certificate(_der(paa)).subject.der:
        raise CertificateError("cert.issuer_mismatch", "the certificate's issuer is not byte-for-byte the PAA subject")
    _check_lint(_der(cert), "pai", _der(paa), "the PAI certificate")
    paa_public = paa.public_key()
    assert isinstance(paa_public, ec.EllipticCurvePublicKey)
    try:
        paa_public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise CertificateError("cert.signature_invalid", "the certificate is not signed by the PAA key") from e
    ids = extract_vid_pid(parse_certificate(_der(cert)).subject)
    if ids.vid != info.vid or ids.pid != info.pid:
        raise CertificateError(
            "cert.vid_pid_mismatch",
            f"the certificate has VID/PID {ids.vid}/{ids.pid}, the request asked for {info.vid}/{info.pid}",
        )


# -- listing -----------------------------------------------------------------------------------
def describe_cas(home: PkiHome, *, include_paa: bool = False) -> list[dict[str, Any]]:
    """One JSON-ready row per CA: id, VID, PID, subject, serial, validity, state, key store, DAC counts."""
    home.require()
    ids = ([PAA_ID] if include_paa else []) + home.pai_ids()
    out: list[dict[str, Any]] = []
    with Ledger(home.ledger_path) as ledger:
        for ca_id in ids:
            info = home.ca_info(ca_id)
            row: dict[str, Any] = {
                "id": ca_id,
                "role": info.role,
                "vid": f"{info.vid:04X}" if info.vid is not None else None,
                "pid": f"{info.pid:04X}" if info.pid is not None else None,
                "common_name": info.common_name,
                "state": info.state,
                "key_store": info.key.store if info.key else None,
                "created": info.created,
            }
            if home.cert_path(ca_id).is_file():
                cert = home.load_cert(ca_id)
                row.update(
                    serial=serial_hex(cert.serial_number),
                    subject=cert.subject.rfc4514_string(),
                    not_before=iso(cert.not_valid_before_utc),
                    not_after=iso(cert.not_valid_after_utc),
                    skid=issuer_subject_key_id(cert).hex().upper(),
                )
                if ca_id != PAA_ID:
                    entry = ledger.get(PAA_ID, serial_hex(cert.serial_number))
                    row["revoked"] = bool(entry and entry.status == "revoked")
            if ca_id != PAA_ID:
                counts = ledger.count(ca_id, "dac")
                row["dacs_issued"] = counts["issued"] + counts["revoked"]
                row["dacs_revoked"] = counts["revoked"]
            out.append(row)
    return out
