"""Delegated CRL signers in a PKI home: created by the PAA or a PAI, keys like CA keys, audited, revocable.

Layout::

    crl-signers/<id>/cert.pem      the signer certificate (revocation/signer.py profile)
    crl-signers/<id>/signer.json   id, issuer CA id, key reference, created, state
    crl-signers/<id>/key.pem       encrypted PKCS#8 (file key store), mode 0600

Each signer is a row of the ledger's ``crl_signers`` table, written like every other change of CA
state: one commit of ``matter_pki.local.state`` (a journaled ledger transaction, then one audit
append announcing it, ``crl_signer.created`` / ``crl_signer.revoked``), so signers are covered by
the ledger's integrity check and its cross-check with the signed audit log (a rolled-back, edited or
unannounced signer is found). A serial is unique per issuer across certificates *and* signers, so
revoking a signer can never revoke a DAC that shares its serial. A revocation is a row of the
ledger's ``revocations``: it is never undone; a revoked signer is listed on its issuer's next direct
CRL and can no longer sign. A signer's CRLs are numbered under ``signer:<id>`` (``crl_number_key``).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from matter_pki.backends.keyfile import FileKeySigner, generate_key_file
from matter_pki.backends.pkcs11 import Pkcs11SignerFactory, generate_keypair
from matter_pki.csr import key_id_of_point
from matter_pki.errors import CertificateError, ConfigError, InputError, IssuanceError
from matter_pki.findings import Severity
from matter_pki.local.ca import start_under
from matter_pki.local.home import PAA_ID, KeyRef, PkiHome, check_ca_id
from matter_pki.local.keys import KEY_FILE, Secrets, pkcs11_config, signer_factory
from matter_pki.local.ledger import Ledger, SignerRow, iso
from matter_pki.profiles import Validity, default_serial, sign
from matter_pki.revocation.lint import lint_crl_signer
from matter_pki.revocation.signer import DEFAULT_SIGNER_CN, CrlSignerProfile
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.audit.log import AuditSession
    from matter_pki.batch import SignerFactory
    from matter_pki.local.ledger import Transaction

SIGNERS_DIR = "crl-signers"
INFO_FILE = "signer.json"
CERT_FILE = "cert.pem"
SERIAL_ATTEMPTS = 3


def crl_number_key(signer_id: str) -> str:
    """The ledger key a signer's CRL Numbers are allocated under (never a CA id: those have no ``:``)."""
    return f"signer:{signer_id}"


@dataclass(frozen=True, slots=True)
class SignerInfo:
    """``crl-signers/<id>/signer.json``."""

    id: str
    issuer: str
    key: KeyRef
    created: str
    common_name: str = DEFAULT_SIGNER_CN

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignerInfo:
        """Inverse of ``asdict``."""
        return cls(
            id=data["id"], issuer=data["issuer"], key=KeyRef(**data["key"]), created=data.get("created", ""),
            common_name=data.get("common_name", DEFAULT_SIGNER_CN),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SignerRevocation:
    """Outcome of ``revoke_crl_signer``: the signer, and whether it was already revoked with that reason."""

    row: SignerRow
    already: bool = False


class SignerStore:
    """The CRL signers of a home's ledger, read-only (every change goes through a ``CaState`` commit)."""

    def __init__(self, home: PkiHome) -> None:
        self._ledger = Ledger(home.ledger_path)

    def __enter__(self) -> SignerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self._ledger.close()

    def get(self, signer_id: str) -> SignerRow:
        """One signer (``config.unknown_crl_signer`` when absent)."""
        return _row(self._ledger, signer_id)

    def all(self, issuer: str | None = None) -> list[SignerRow]:
        """Every signer (optionally of one issuer), in creation order."""
        return self._ledger.signers(issuer)

    def revoked(self, issuer: str) -> list[SignerRow]:
        """The revoked signers of one issuer, in revocation order."""
        return self._ledger.revoked_signers(issuer)


def _row(ledger: Ledger, signer_id: str) -> SignerRow:
    row = ledger.signer(signer_id)
    if row is None:
        raise ConfigError("config.unknown_crl_signer", f"no CRL signer {signer_id!r} in this home")
    return row


def signer_dir(home: PkiHome, signer_id: str) -> Any:
    """``crl-signers/<id>/``."""
    return home.path / SIGNERS_DIR / check_ca_id(signer_id)


def load_info(home: PkiHome, signer_id: str) -> SignerInfo:
    """The signer's ``signer.json`` (``config.unknown_crl_signer`` when absent)."""
    path = signer_dir(home, signer_id) / INFO_FILE
    if not path.is_file():
        raise ConfigError("config.unknown_crl_signer", f"no CRL signer {signer_id!r} in {str(home.path)!r}")
    try:
        return SignerInfo.from_json(json.loads(path.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError("config.corrupt", f"CRL signer file {str(path)!r} cannot be read: {e}") from e


def load_certificate(home: PkiHome, signer_id: str) -> x509.Certificate:
    """The signer certificate."""
    path = signer_dir(home, signer_id) / CERT_FILE
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError("config.corrupt", f"CRL signer certificate {str(path)!r} cannot be read: {e}") from e


def key_factory(home: PkiHome, signer_id: str, secrets: Secrets) -> SignerFactory:
    """A factory opening the signer's private key (file or token)."""
    ref = load_info(home, signer_id).key
    if ref.store == "file":
        return FileKeySigner(str(signer_dir(home, signer_id) / (ref.file or KEY_FILE)), secrets.passphrase())
    if ref.store == "pkcs11" and ref.key_id:
        return Pkcs11SignerFactory(pkcs11_config(home.key_store(), secrets), bytes.fromhex(ref.key_id), ref.label or "")
    raise ConfigError("config.key_store", f"unusable key reference for CRL signer {signer_id!r}")


def _next_id(home: PkiHome, ledger: Ledger) -> str:
    root = home.path / SIGNERS_DIR
    taken = {p.name for p in root.iterdir()} if root.is_dir() else set()
    taken.update(row.id for row in ledger.signers())
    n = 1
    while f"signer-{n}" in taken:
        n += 1
    return f"signer-{n}"


def _generate_key(home: PkiHome, signer_id: str, secrets: Secrets) -> tuple[KeyRef, ec.EllipticCurvePublicKey]:
    settings = home.key_store()
    if settings.kind == "pkcs11":
        label = f"matter-pki/{home.home_id()[:12]}/crl-signer/{signer_id}"
        key_id, public = generate_keypair(pkcs11_config(settings, secrets), label)
        return KeyRef(store="pkcs11", key_id=key_id.hex(), label=label), public
    public = generate_key_file(signer_dir(home, signer_id) / KEY_FILE, secrets.passphrase(confirm=True))
    return KeyRef(store="file", file=KEY_FILE), public


def create_crl_signer(
    home: PkiHome,
    *,
    issuer: str,
    secrets: Secrets,
    now: datetime,
    signer_id: str | None = None,
    common_name: str = DEFAULT_SIGNER_CN,
    validity_days: int | None = None,
    digital_signature: bool = False,
    serials: Callable[[], int] = default_serial,
) -> SignerInfo:
    """Issue a delegated CRL signer from the PAA (``issuer='paa'``) or a PAI; its key goes to the home's key store.

    Validity: ``validity_days`` from now, or (default) until the issuer's notAfter. The signer's
    files are written inside its ledger transaction: the ledger names a signer only once its
    certificate and key are on disk, and a failure leaves neither files nor a row.
    """
    from matter_pki.local.state import CaState, signer_announcement

    home.require()
    with home.lock(), CaState.open(home, secrets) as state:
        issuer_info = home.ca_info(issuer)
        issuer_cert = home.load_cert(issuer)
        state.check_can_issue(issuer, now)
        new_id = check_ca_id(signer_id) if signer_id else _next_id(home, state.ledger)
        folder = signer_dir(home, new_id)
        if folder.exists() or state.ledger.signer(new_id) is not None:
            raise InputError("input.signer_id_taken", f"CRL signer id {new_id!r} is already used in this home")
        start = start_under(issuer_cert, now)
        end = issuer_cert.not_valid_after_utc
        if validity_days is not None:
            end = min(end, start + timedelta(days=validity_days) - timedelta(seconds=1))
        profile = CrlSignerProfile.for_issuer(
            issuer_cert, validity=Validity(not_before=start, not_after=end), common_name=common_name,
            digital_signature=digital_signature,
        )  # fmt: skip
        issuer_key = signer_factory(home, issuer, secrets)()
        at = iso(now)
        ensure_private_dir(home.path / SIGNERS_DIR)
        ensure_private_dir(folder)
        try:
            key_ref, public = _generate_key(home, new_id, secrets)
            info = SignerInfo(id=new_id, issuer=issuer, key=key_ref, created=at, common_name=common_name)

            def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
                _check_key_unused(state.ledger, public)
                for _ in range(SERIAL_ATTEMPTS):
                    cert = sign(profile.builder(public, serial=serials(), issuer=issuer_cert), issuer_key)
                    _check(cert, issuer_cert)
                    der = cert.public_bytes(Encoding.DER)
                    if txn.add_signer(new_id, issuer, der, issued_at=at, operator=state.operator):
                        break
                else:
                    raise IssuanceError("issue.serial_collision", f"no unused serial number after {SERIAL_ATTEMPTS} attempts")
                atomic_write(folder / CERT_FILE, cert.public_bytes(Encoding.PEM))
                atomic_write(folder / INFO_FILE, (json.dumps(asdict(info), indent=2, sort_keys=True) + "\n").encode(),
                             mode=0o600)  # fmt: skip
                row = txn.signer(new_id)
                assert row is not None
                return [signer_announcement(row, key_store=key_ref.store)]

            accessed = [("key.accessed", {"ca": issuer, "purpose": "crl_signer.create",
                                          "key_store": issuer_info.key.store if issuer_info.key else None})]
            state.commit("signer", write, now=now, extra=accessed)
        except BaseException:
            if state.ledger.signer(new_id) is None:
                shutil.rmtree(folder, ignore_errors=True)
            raise
    return info


def _check_key_unused(ledger: Ledger, public: ec.EllipticCurvePublicKey) -> None:
    """A signer's key is no other certificate's: not a device key, not a CA key, not another signer's.

    Keys are generated here (file or token), so this only fails with a key store that hands back a
    key it already holds; the rule is the device-key rule read the other way (``issue.key_reused``).
    """
    key_id = key_id_of_point(public.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))
    entries = ledger.find_keys([key_id]).get(key_id, [])
    if entries:
        e = entries[0]
        raise IssuanceError(
            "issue.key_reused", f"the new CRL signer's key is already the key of {e.kind} certificate {e.serial} of {e.ca}"
        )
    if ledger.revoked_keys([key_id]):
        raise IssuanceError("issue.key_reused", "the new CRL signer's key belongs to a revoked certificate")


def _check(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    bad = [f for f in lint_crl_signer(cert.public_bytes(Encoding.DER), issuer.public_bytes(Encoding.DER)) if f.severity >= Severity.ERROR]
    if bad:
        listed = "; ".join(f"{f.code}: {f.message}" for f in bad[:5])
        raise CertificateError("cert.not_matter_compliant", f"the new CRL signer breaks its profile: {listed}")


def revoke_crl_signer(home: PkiHome, signer_id: str, *, reason: str, now: datetime, secrets: Secrets) -> SignerRevocation:
    """Revoke a signer: it can no longer sign, and its issuer's next CRL lists it.

    Idempotent like ``revoke``: the same reason again reports the existing revocation (``already``);
    a different one is ``ledger.already_revoked``.
    """
    from matter_pki.local.crl import already_revoked, parse_reason
    from matter_pki.local.state import CaState

    home.require()
    flag = parse_reason(reason)
    with home.lock(), CaState.open(home, secrets) as state:
        row = _row(state.ledger, signer_id)
        if already_revoked(f"CRL signer {signer_id!r}", row, flag):
            return SignerRevocation(row, already=True)
        at = iso(now)

        def write(txn: Transaction, _session: AuditSession) -> list[tuple[str, dict[str, Any]]]:
            txn.revoke(row.issuer, row.serial, row.key_id, flag.value, at)
            return [("crl_signer.revoked", {"ca": row.issuer, "signer": signer_id, "serial": row.serial,
                                            "key_id": row.key_id, "reason": flag.value, "revoked_at": at})]

        state.commit("revoke", write, now=now)
        return SignerRevocation(_row(state.ledger, signer_id))


def describe_signers(home: PkiHome) -> list[dict[str, Any]]:
    """One JSON-ready row per signer: id, issuer, serial, subject, validity, state, key store."""
    home.require()
    out: list[dict[str, Any]] = []
    with SignerStore(home) as store:
        for row in store.all():
            data = row.to_dict()
            try:
                data["key_store"] = load_info(home, row.id).key.store
            except ConfigError:
                data["key_store"] = None
            out.append(data)
    return out


def active_signer(
    home: PkiHome, signer_id: str, issuer: str, *, ledger: Ledger | None = None
) -> tuple[x509.Certificate, SignerRow]:
    """The signer's certificate, when it is not revoked and was issued by ``issuer`` (``ledger``: one already open)."""
    if ledger is None:
        with SignerStore(home) as store:
            row = store.get(signer_id)
    else:
        row = _row(ledger, signer_id)
    if row.status == "revoked":
        raise InputError("input.signer_revoked", f"CRL signer {signer_id!r} is revoked ({row.revocation_reason}); it cannot sign")
    if row.issuer != issuer:
        scope = "--paa" if row.issuer == PAA_ID else f"--pai {row.issuer}"
        raise InputError("input.signer_scope", f"CRL signer {signer_id!r} was issued by {row.issuer!r}: publish with {scope}")
    cert = load_certificate(home, signer_id)
    if cert.public_bytes(Encoding.DER) != row.der or not row.der_intact():
        raise ConfigError("config.corrupt", f"CRL signer {signer_id!r}: cert.pem differs from the ledger")
    return cert, row


def revoked_signers(home: PkiHome, issuer: str) -> Iterator[SignerRow]:
    """Revoked signers issued by ``issuer`` (they go on its direct CRL)."""
    with SignerStore(home) as store:
        yield from store.revoked(issuer)


__all__ = [
    "SignerInfo",
    "SignerRevocation",
    "SignerRow",
    "SignerStore",
    "active_signer",
    "create_crl_signer",
    "crl_number_key",
    "describe_signers",
    "key_factory",
    "load_certificate",
    "load_info",
    "revoke_crl_signer",
    "revoked_signers",
]
