"""The ledger and the signed audit log of a home, opened together so that each vouches for the other.

Every change of CA state is one *commit*, made while the audit log's lock is held:

1. the ledger transaction (rows + a journal entry: its gen, a hash chain over every transaction,
   and the audit position it saw), one fsync;
2. one audit append announcing it (one record per fact: ``dac.issued``, ``cert.revoked``, ...), whose
   signed head now names the ledger milestone ``<gen>:<chain>``.

So the signed audit head always names the ledger's last transaction, or the one before it when a
run died between (1) and (2). Before any change (``CaState.open`` and every commit), the two are
compared:

* ledger behind the head: an older copy was restored (``ledger.rollback``); no ledger at all,
  or an empty file: ``ledger.missing``; a different history at the same gen: ``ledger.corrupt``;
* ledger one transaction ahead, seen from the exact audit position it recorded: a run died
  between (1) and (2); the transaction is announced now, with ``recovered: true``;
* ledger further ahead, or ahead from another audit position: the audit folder was rolled back
  or replaced (``audit.rollback``).

``open`` also checks the ledger deeply (``Ledger.verify_deep``: SQLite's integrity check and every
transaction re-hashed against the journal), so an edited, added or deleted row is refused
(``ledger.corrupt``). Recovery from any of these: ``matter-pki ledger verify`` says what is wrong;
``matter-pki ledger rebuild --from DIR`` makes a new ledger from the verified audit log and the
issued certificate files, announced in the log.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from matter_pki.audit.log import AuditLog
from matter_pki.audit.seal import REF_NAME, AuditKey, Binding, read_audit_file, write_public_key
from matter_pki.errors import AuditError, IssuanceError, LedgerError, MatterPkiError
from matter_pki.local.home import PAA_ID, KeyStoreSettings, PkiHome, operator
from matter_pki.local.keys import Secrets, pkcs11_config
from matter_pki.local.ledger import (
    GENESIS_CHAIN,
    CertRow,
    JournalRow,
    Ledger,
    LedgerEntry,
    SignerRow,
    Transaction,
    TxnKind,
    iso,
    serial_hex,
)
from matter_pki.profiles import issuer_valid_at

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.audit.log import AuditRecord, AuditSession

Records = list[tuple[str, dict[str, Any]]]
_MILESTONES = frozenset({"ledger.committed", "ledger.recovered", "ledger.upgraded", "ledger.rebuilt"})


# -- the audit key in the home's key store -----------------------------------------------------
def audit_signer(
    home: PkiHome, secrets: Secrets, *, allow_weak_kdf: bool = False
) -> Callable[[], ec.EllipticCurvePrivateKey]:
    """A callable opening the home's audit key: the encrypted file, or the token key ``audit-key.json`` names.

    ``allow_weak_kdf``: only while the key files are re-encrypted (``home rekey``, ``home upgrade``).
    """
    audit_dir = home.path / "audit"

    def open_key() -> ec.EllipticCurvePrivateKey:
        ref_bytes = read_audit_file(audit_dir / REF_NAME, 64 * 1024)
        if ref_bytes is None:
            return AuditKey(audit_dir, secrets.passphrase()).private_key(allow_weak_kdf=allow_weak_kdf)
        from matter_pki.backends.pkcs11 import Pkcs11SignerFactory

        try:
            ref = json.loads(ref_bytes)
            key_id, label = bytes.fromhex(ref["key_id"]), str(ref["label"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError("audit.key_invalid", f"audit/{REF_NAME} is malformed: {e}") from e
        return Pkcs11SignerFactory(pkcs11_config(home.key_store(), secrets), key_id, label)()

    return open_key


def open_audit(home: PkiHome, secrets: Secrets, *, allow_weak_kdf: bool = False) -> AuditLog:
    """The home's audit log, signing with the home's audit key (opened at the first append)."""
    return AuditLog(home.path, signer=audit_signer(home, secrets, allow_weak_kdf=allow_weak_kdf))


def create_audit_key(
    home: PkiHome,
    settings: KeyStoreSettings,
    secrets: Secrets,
    *,
    home_id: str,
    paa_key: ec.EllipticCurvePrivateKey | None,
    paa_der: bytes,
) -> Callable[[], ec.EllipticCurvePrivateKey]:
    """Make the home's one audit key (``init`` only), have the PAA key certify it; returns its opener."""
    from matter_pki.storage.local import atomic_write, ensure_private_dir

    audit_dir = ensure_private_dir(home.path / "audit")
    key = AuditKey(audit_dir, None)
    if key.exists():
        raise AuditError("audit.key_exists", f"{str(audit_dir)!r} already has an audit key; it is never replaced")
    if settings.kind == "pkcs11":
        from matter_pki.backends.pkcs11 import generate_keypair

        label = f"matter-pki/{home_id[:12]}/audit"
        key_id, public = generate_keypair(pkcs11_config(settings, secrets), label)
        ref = {"store": "pkcs11", "key_id": key_id.hex(), "label": label}
        atomic_write(audit_dir / REF_NAME, (json.dumps(ref, indent=2) + "\n").encode(), mode=0o600, exclusive=True)
        write_public_key(audit_dir, public)
        config = pkcs11_config(settings, secrets)

        def opener() -> ec.EllipticCurvePrivateKey:
            from matter_pki.backends.pkcs11 import Pkcs11SignerFactory

            return Pkcs11SignerFactory(config, key_id, label)()
    else:
        private = AuditKey(audit_dir, secrets.passphrase(confirm=True)).create()
        public = private.public_key()

        def opener() -> ec.EllipticCurvePrivateKey:
            return private
    if paa_key is not None:
        binding = Binding.make(paa_key, home_id=home_id, audit_key=public, paa_der=paa_der)
        atomic_write(audit_dir / "binding.json", binding.to_json(), mode=0o644, exclusive=True)
    return opener


# -- commits -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Commit:
    """What one commit wrote: the ledger milestone (gen 0 when nothing reached the ledger) and the records."""

    gen: int
    chain: str
    records: list[AuditRecord]


class CaState:
    """A home's ledger + audit log; use ``CaState.open`` (a context manager) for every change of state."""

    def __init__(self, home: PkiHome, ledger: Ledger, audit: AuditLog) -> None:
        self.home, self.ledger, self.audit = home, ledger, audit
        self.operator = operator()
        self.recovered: list[AuditRecord] = []

    @classmethod
    def open(cls, home: PkiHome, secrets: Secrets, *, deep: bool = True, audit: AuditLog | None = None) -> CaState:
        """Open and cross-check the ledger and the audit log (deeply by default); recover a crashed commit.

        ``audit``: the home's audit log as the caller already opened it (signing with the home's
        audit key); one instance per thread. By default it is opened here.
        """
        home.require()
        home_id = home.home_id()
        ledger = Ledger(home.ledger_path)
        try:
            if ledger.home_id and ledger.home_id != home_id:
                raise LedgerError(
                    "ledger.corrupt", f"the ledger belongs to home {ledger.home_id}, not to this home ({home_id})"
                )
            state = cls(home, ledger, audit if audit is not None else open_audit(home, secrets))
            if deep:
                state.verify_ledger()
            with state.session():
                pass
        except BaseException:
            ledger.close()
            raise
        return state

    def __enter__(self) -> CaState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the ledger."""
        self.ledger.close()

    def verify_ledger(self, *, check_der: bool = False) -> None:
        """The deep check, on one consistent snapshot of the ledger."""
        db = self.ledger.db
        db.execute("BEGIN")
        try:
            self.ledger.verify_deep(check_der=check_der)
        finally:
            db.execute("COMMIT")

    @contextlib.contextmanager
    def session(self) -> Iterator[AuditSession]:
        """The audit log's lock, with the ledger cross-checked (and a crashed commit announced)."""
        with self.audit.session() as session:
            self._cross_check(session)
            yield session

    def _cross_check(self, session: AuditSession) -> None:
        announced_gen, announced_chain = session.ledger or (0, GENESIS_CHAIN)
        gen, _chain = self.ledger.head()
        if gen < announced_gen:
            if gen == 0:
                raise LedgerError(
                    "ledger.missing",
                    f"the ledger is empty but the audit log announced {announced_gen} ledger transactions: restore the "
                    "ledger from a backup, or rebuild it: matter-pki ledger rebuild --from DIR",
                )
            raise LedgerError(
                "ledger.rollback",
                f"the ledger holds {gen} transactions but the signed audit log announced {announced_gen}: an older "
                "copy of the ledger was restored; restore the latest one, or rebuild it: matter-pki ledger rebuild --from DIR",
            )
        if announced_gen:
            row = self.ledger.journal(announced_gen)
            if row is None or row.chain != announced_chain:
                raise LedgerError(
                    "ledger.corrupt",
                    f"ledger transaction {announced_gen} is not the one the signed audit log announced: the ledger was "
                    "replaced or rewritten; see `matter-pki ledger verify`",
                )
        if gen == announced_gen:
            return
        row = self.ledger.journal(gen)
        assert row is not None
        after = session.records_after(row.audit_seen_seq, row.audit_seen_hash) if gen == announced_gen + 1 else None
        if after is not None and not any(r.event in _MILESTONES for r in after):
            # A run died after its ledger commit and before (all of) its announcement: finish it now.
            self._announce_recovered(session, row, after)
            return
        if gen > announced_gen + 1 or session.next_seq - 1 < row.audit_seen_seq:
            raise AuditError(
                "audit.rollback",
                f"the ledger holds {gen} transactions but the audit log announced only {announced_gen}: the audit folder "
                "was rolled back or replaced; restore the latest copy of audit/",
            )
        raise LedgerError(
            "ledger.corrupt",
            f"ledger transaction {gen} was committed after audit seq {row.audit_seen_seq}, which the audit log does not "
            "match; see `matter-pki ledger verify`",
        )

    def _announce_recovered(self, session: AuditSession, row: JournalRow, after: list[AuditRecord]) -> None:
        """Announce what transaction ``row`` wrote and ``after`` (its partial announcement) does not name."""
        done_dacs = {(r.fields.get("ca"), r.fields.get("serial")): r.seq for r in after if r.event == "dac.issued"}
        done_revoked = {
            (r.fields.get("ca"), r.fields.get("serial")) for r in after if r.event in ("cert.revoked", "crl_signer.revoked")
        }
        done_crl = {(crl_numbering(r.fields), r.fields.get("crl_number")) for r in after if r.event.startswith("crl.")}
        done_signers = {r.fields.get("signer") for r in after if r.event == "crl_signer.created"}
        records: Records = []
        serials: list[tuple[str, str]] = []
        seqs: list[tuple[str, str, int]] = []
        for entry in self.ledger.iter_entries(gen=row.gen):
            seq = done_dacs.get((entry.ca, entry.serial)) if entry.kind == "dac" else None
            if seq is not None:
                seqs.append((entry.ca, entry.serial, seq))
                continue
            records.append(announcement(entry, recovered=True))
            serials.append((entry.ca, entry.serial))
        for signer in self.ledger.signers(gen=row.gen):
            if signer.id not in done_signers:
                records.append(signer_announcement(signer, recovered=True))
        done_withheld = {(r.fields.get("ca"), r.fields.get("serial")) for r in after if r.event == "dac.withheld"}
        for ca, serial, code, _at in self.ledger.withheld_in(row.gen):
            if (ca, serial) not in done_withheld:
                records.append(("dac.withheld", {"ca": ca, "serial": serial, "code": code or None, "recovered": True}))
        for ca, serial, key_id, reason, at in self.ledger.revocations_in(row.gen):
            if (ca, serial) not in done_revoked:
                revoked_signer = next((s for s in self.ledger.signers(ca) if s.serial == serial), None)
                if revoked_signer is not None:
                    records.append(("crl_signer.revoked", {"ca": ca, "signer": revoked_signer.id, "serial": serial,
                                                           "key_id": key_id, "reason": reason, "revoked_at": at,
                                                           "recovered": True}))  # fmt: skip
                    continue
                records.append(("cert.revoked", {"ca": ca, "serial": serial, "key_id": key_id, "reason": reason,
                                                 "revoked_at": at, "recovered": True}))
        for ca, number, _at in self.ledger.crl_numbers_in(row.gen):
            if (ca, number) not in done_crl:
                records.append(("crl.number_allocated", {"ca": ca, "crl_number": number, "recovered": True}))
        records.append(("ledger.recovered", {"gen": row.gen, "txn": row.kind, "chain": row.chain}))
        written = session.append(records, operator=self.operator)
        seqs += [(ca, serial, rec.seq) for (ca, serial), rec in zip(serials, written, strict=False)]
        self.ledger.set_audit_seq(seqs)
        self.recovered.extend(written)

    def commit(
        self,
        kind: TxnKind,
        write: Callable[[Transaction, AuditSession], Records],
        *,
        now: datetime | None = None,
        extra: Records | None = None,
    ) -> Commit:
        """One ledger transaction (``write`` adds rows and returns their announcements) and its audit append.

        ``extra`` records (refusals, key accesses) go into the same append, after the announcements.
        When ``write`` adds nothing to the ledger, only the records are appended.
        """
        at = iso(now) if now is not None else iso(datetime.now().astimezone())
        with self.session() as session:
            txn = self.ledger.begin()
            try:
                records = write(txn, session)
                if txn.empty:
                    self.ledger.rollback()
                    gen, chain = 0, ""
                else:
                    gen, chain = self.ledger.commit(
                        txn, kind=kind, at=at, audit_seen=(session.next_seq - 1, session.tail_hash)
                    )
            except BaseException:
                self.ledger.rollback()
                raise
            all_records = records + (extra or [])
            if not all_records:
                return Commit(gen, chain, [])
            if gen:
                # Last: the signed head names this transaction only once all its announcements are in the log.
                all_records.append(("ledger.committed", {"gen": gen, "txn": kind, "chain": chain}))
            try:
                # Through record_many (re-entrant inside the session): one append for the whole group.
                written = self.audit.record_many(all_records, operator=self.operator, now=now)
            except MatterPkiError as e:
                if not gen:
                    raise
                raise type(e)(
                    e.code,
                    f"{e.message}; the change itself is recorded in the ledger (transaction {gen}) and the next "
                    "matter-pki command announces it in the audit log",
                    ledger_gen=gen,
                ) from e
            return Commit(gen, chain, written)

    def record(self, event: str, **fields: Any) -> AuditRecord:
        """One audit record that changes nothing in the ledger (key accesses, refusals)."""
        with self.session() as session:
            return session.append([(event, fields)], operator=self.operator)[0]

    def record_many(self, records: Records) -> list[AuditRecord]:
        """Several such records in one append."""
        if not records:
            return []
        with self.session() as session:
            return session.append(records, operator=self.operator)

    def allocate_crl_number(self, ca: str, *, now: datetime | None = None) -> int:
        """The next CRL Number of ``ca`` (highest ever + 1), recorded in the ledger and announced."""
        numbers: list[int] = []

        def write(txn: Transaction, _session: AuditSession) -> Records:
            number = txn.crl_number(ca, iso(now) if now else iso(datetime.now().astimezone()))
            numbers.append(number)
            return [("crl.number_allocated", {"ca": ca, "crl_number": number})]

        self.commit("crl", write, now=now)
        return numbers[0]

    # -- issuing CA ---------------------------------------------------------------------------
    def check_can_issue(self, ca_id: str, now: datetime) -> None:
        """Refuse to issue from a revoked or expired CA (``issue.ca_revoked`` / ``issue.ca_expired``), or under one."""
        chain = [ca_id] if ca_id == PAA_ID else [ca_id, PAA_ID]
        for cid in chain:
            cert = self.home.load_cert(cid)
            if cid != PAA_ID:
                entry = self.ledger.get(PAA_ID, serial_hex(cert.serial_number))
                if entry is not None and entry.status == "revoked":
                    raise IssuanceError(
                        "issue.ca_revoked",
                        f"PAI {cid!r} was revoked ({entry.revocation_reason}, {entry.revoked_at}); it issues nothing anymore",
                    )
            _check_not_expired(cid, cert, now)


def _check_not_expired(ca_id: str, cert: x509.Certificate, now: datetime) -> None:
    # The issuer-validity rule of profiles.issuer_valid_at: at its notAfter an issuer is already expired.
    if not issuer_valid_at(now, min(now, cert.not_valid_before_utc), cert.not_valid_after_utc):
        raise IssuanceError(
            "issue.ca_expired", f"{ca_id!r} expired at {iso(cert.not_valid_after_utc)}; it issues nothing anymore"
        )


def signer_announcement(signer: SignerRow, *, recovered: bool = False, **extra: Any) -> tuple[str, dict[str, Any]]:
    """The audit record announcing one delegated CRL signer of the ledger."""
    fields: dict[str, Any] = {
        "ca": signer.issuer, "signer": signer.id, "serial": signer.serial, "subject": signer.subject,
        "key_id": signer.key_id, "cert_sha256": signer.der_sha256, "recovered": True if recovered else None,
    }
    fields.update(extra)
    return "crl_signer.created", fields


def crl_numbering(fields: dict[str, Any]) -> str:
    """Under which ledger key an audit record's CRL Number was allocated: the CA id, or ``signer:<id>``."""
    numbering = fields.get("numbering")
    if isinstance(numbering, str) and numbering:
        return numbering
    signer = fields.get("signer")
    return f"signer:{signer}" if signer else str(fields.get("ca"))


def announcement(entry: LedgerEntry | CertRow, *, recovered: bool = False, **extra: Any) -> tuple[str, dict[str, Any]]:
    """The audit record announcing one ledger certificate."""
    event = {"dac": "dac.issued", "pai": "pai.created", "paa": "paa.created"}[entry.kind]
    fields: dict[str, Any] = {
        "ca": entry.ca, "serial": entry.serial, "pid": f"{entry.pid:04X}" if entry.pid is not None else None,
        "key_id": entry.key_id, "csr_sha256": entry.csr_sha256, "dac_sha256": entry.der_sha256,
        "reissue_reason": entry.reissue_reason, "recovered": True if recovered else None,
    }
    if entry.kind != "dac":
        fields["cert_sha256"] = fields.pop("dac_sha256")
        fields["subject"] = entry.subject
    fields.update(extra)
    return event, fields
