"""Checking and repairing a home: ``ledger verify``, ``ledger rebuild``, ``home upgrade``.

* ``verify_home``: the audit log (chain, seals, signed head, the PAA's binding of the audit key),
  the ledger (SQLite integrity, every transaction re-hashed, every DER against its digest), the two
  against each other (the head's ledger milestone), and every DAC and CRL signer of the ledger
  announced exactly once in the log and the reverse. Read-only.
* ``rebuild_ledger``: a new ledger from the verified audit log, taking each certificate's DER from
  the home (CA and CRL signer certificates) and from the folders given (the issued ``.pem`` files,
  matched by the SHA-256 the log recorded, or by issuer and serial for records older than that
  digest); revocations, withheld serials and CRL Numbers (per CA and per signer) come from the log. The old
  file is kept aside; the rebuild is an announced, signed operator action.
* ``upgrade_home``: a home made before device-key identity: migrates a format-1 ledger, gives a
  home without an audit key (a PKCS#11 home created without a passphrase) its key, has the PAA key
  certify the audit key, and accepts (adopts) a log that was never signed. Announced, idempotent.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.audit.log import AuditLog
from matter_pki.audit.seal import BINDING_NAME, AuditKey, Binding, read_audit_file
from matter_pki.audit.verify import verify_log
from matter_pki.errors import AuditError, InputError, LedgerError, MatterPkiError
from matter_pki.local.home import PAA_ID, PkiHome, operator
from matter_pki.local.ledger import (
    FORMAT,
    CertRow,
    Ledger,
    Transaction,
    create_ledger,
    iso,
    key_id_of_der,
    serial_hex,
    upgrade_v1,
)
from matter_pki.local.rekey import current_kdf, rekey_home
from matter_pki.local.state import audit_signer, create_audit_key, crl_numbering

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matter_pki.local.keys import Secrets


@dataclass
class HomeReport:
    """Outcome of ``verify_home``."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "problems": [{"code": c, "reason": r} for c, r in self.problems],
            "notes": self.notes,
            "counts": self.counts,
        }


def home_paa(home: PkiHome) -> tuple[bytes | None, bool]:
    """(PAA DER, whether its key is in this home)."""
    try:
        cert = home.load_cert(PAA_ID)
        info = home.ca_info(PAA_ID)
    except MatterPkiError:
        return None, False
    return cert.public_bytes(Encoding.DER), info.key is not None


def verify_audit(home: PkiHome, *, public_key: bytes | None = None, expect_key: str | None = None) -> Any:
    """``verify_log`` with the home's PAA binding checked (when the PAA key lives in the home)."""
    paa_der, has_key = home_paa(home)
    home_id = home.home_id() if home.is_initialized() else None
    return verify_log(
        home.path / "audit", public_key=public_key, expect_key=expect_key, paa_der=paa_der if has_key else None,
        home_id=home_id,
    )


def ledger_problem(home: PkiHome) -> Any:
    """The ledger/audit cross-check alone (O(1)): an ``audit.Problem`` or None. Read-only."""
    from matter_pki.audit.verify import Problem

    head = AuditLog(home.path).read_head()
    announced = head.ledger_gen if head else 0
    try:
        with Ledger(home.ledger_path) as ledger:
            gen, _chain = ledger.head()
            row = ledger.journal(announced) if announced else None
    except LedgerError as e:
        return Problem(e.code, e.message)
    rolled_back = Problem(
        "audit.rollback",
        f"the ledger holds {gen} transactions but the audit log announced only {announced}: the audit folder was "
        "rolled back or replaced",
    )
    if gen > announced + 1:
        return rolled_back
    if gen == announced + 1:
        # One transaction ahead is a run that stopped before announcing it only if the log still ends
        # where that transaction saw it (or holds that position, followed by part of its announcement).
        with Ledger(home.ledger_path) as ledger:
            last = ledger.journal(gen)
        if last is not None and not _log_holds(home, last.audit_seen_seq, last.audit_seen_hash):
            return rolled_back
    if gen < announced:
        return Problem("ledger.rollback", f"the ledger holds {gen} transactions, the signed audit head names {announced}")
    if announced and (row is None or head is None or row.chain != head.ledger_chain):
        return Problem("ledger.corrupt", f"ledger transaction {announced} is not the one the audit log announced")
    return None


def _log_holds(home: PkiHome, seq: int, hash_hex: str) -> bool:
    """True when the audit log's record ``seq`` hashes to ``hash_hex`` (seq -1: the empty log)."""
    if seq < 0:
        return True
    for record in AuditLog(home.path).iter_records():
        if record.seq == seq:
            return record.hash == hash_hex
    return False


def verify_home(home: PkiHome) -> HomeReport:
    """Everything ``ledger verify`` checks; read-only."""
    home.require()
    report = HomeReport()
    audit = verify_audit(home)
    report.counts["audit_records"] = audit.records
    if audit.problem is not None:
        report.problems.append((audit.problem.code, f"audit log: {audit.problem.reason}"))
    try:
        ledger = Ledger(home.ledger_path)
    except LedgerError as e:
        report.problems.append((e.code, e.message))
        return report
    with ledger:
        try:
            ledger.db.execute("BEGIN")
            ledger.verify_deep(full=True, check_der=True)
        except LedgerError as e:
            report.problems.append((e.code, e.message))
            return report
        finally:
            ledger.db.execute("COMMIT")
        gen, _chain = ledger.head()
        report.counts["ledger_transactions"] = gen
        head = AuditLog(home.path).read_head()
        announced = head.ledger_gen if head else 0
        problem = ledger_problem(home)
        if problem is not None:
            report.problems.append((problem.code, problem.reason))
        elif gen == announced + 1:
            report.notes.append(
                f"ledger transaction {gen} is not announced yet (a run stopped before announcing it); the next command does"
            )
        if not report.problems:
            _check_announcements(home, ledger, report, pending_gen=gen if gen == announced + 1 else None)
    return report


def _check_announcements(home: PkiHome, ledger: Ledger, report: HomeReport, *, pending_gen: int | None) -> None:
    """Every DAC and CRL signer of the ledger announced exactly once, every announced one in the ledger."""
    announced: dict[tuple[str, str], int] = {}
    signers: dict[str, int] = {}
    for record in AuditLog(home.path).iter_records():
        if record.event == "dac.issued":
            key = (str(record.fields.get("ca")), str(record.fields.get("serial")))
            announced[key] = announced.get(key, 0) + 1
        elif record.event == "crl_signer.created":
            signer_id = str(record.fields.get("signer"))
            signers[signer_id] = signers.get(signer_id, 0) + 1
    for row in ledger.signers():
        times = signers.pop(row.id, 0)
        if times == 0 and row.gen != pending_gen:
            report.problems.append(("audit.unannounced", f"CRL signer {row.id} is in the ledger but never announced"))
        elif times > 1:
            report.problems.append(("audit.announced_twice", f"CRL signer {row.id} is announced {times} times"))
    for signer_id in list(signers)[:20]:
        report.problems.append(("ledger.missing_dac", f"CRL signer {signer_id} is announced but not in the ledger"))
    rows = 0
    for entry in ledger.iter_entries(kind="dac"):
        rows += 1
        times = announced.pop((entry.ca, entry.serial), 0)
        if times == 0 and entry.gen != pending_gen:
            report.problems.append(("audit.unannounced", f"DAC {entry.serial} of {entry.ca} is in the ledger but never announced"))
        elif times > 1:
            report.problems.append(("audit.announced_twice", f"DAC {entry.serial} of {entry.ca} is announced {times} times"))
    for (ca, serial), _times in list(announced.items())[:20]:
        report.problems.append(("ledger.missing_dac", f"DAC {serial} of {ca} is announced but not in the ledger"))
    report.counts["ledger_dacs"] = rows


# -- rebuild -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What ``rebuild_ledger`` made."""

    certificates: int
    revocations: int
    crl_numbers: int
    kept: Path | None
    chain: str
    crl_signers: int = 0


class _DerIndex:
    """Certificate files found under the given folders, by SHA-256 of the DER and by (issuer AKID, serial)."""

    def __init__(self, folders: list[Path]) -> None:
        self.by_sha: dict[str, Path] = {}
        self.by_serial: dict[str, list[Path]] = {}
        for folder in folders:
            if not folder.is_dir():
                raise InputError("input.not_a_folder", f"{str(folder)!r} is not a folder")
            for path in _walk(folder):
                try:
                    with path.open("rb") as fh:
                        data = fh.read(16 * 1024)
                    cert = x509.load_pem_x509_certificate(data)
                except (OSError, ValueError):
                    continue
                der = cert.public_bytes(Encoding.DER)
                self.by_sha.setdefault(hashlib.sha256(der).hexdigest(), path)
                self.by_serial.setdefault(serial_hex(cert.serial_number), []).append(path)

    def find(self, *, sha: str | None, serial: str, issuer_der: bytes) -> bytes | None:
        """The DER recorded with ``sha`` (or, without one, the certificate with that serial signed by the issuer)."""
        if sha and sha in self.by_sha:
            der = _load_der(self.by_sha[sha])
            return der if der is not None and hashlib.sha256(der).hexdigest() == sha else None
        from cryptography.hazmat.primitives.asymmetric import ec

        issuer = x509.load_der_x509_certificate(issuer_der)
        for path in self.by_serial.get(serial, []):
            der = _load_der(path)
            if der is None:
                continue
            cert = x509.load_der_x509_certificate(der)
            key = issuer.public_key()
            if isinstance(key, ec.EllipticCurvePublicKey) and cert.issuer == issuer.subject:
                try:
                    cert.verify_directly_issued_by(issuer)
                except (ValueError, TypeError, Exception):  # noqa: BLE001 - any failure means "not this one"
                    continue
                return der
        return None


def _walk(folder: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            if name.endswith(".pem") and name not in ("pai.pem", "paa.pem"):
                yield Path(root) / name


def _load_der(path: Path) -> bytes | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)
    except (OSError, ValueError):
        return None


def rebuild_ledger(home: PkiHome, *, sources: list[Path], secrets: Secrets, reason: str) -> RebuildResult:
    """A new ledger from the verified audit log and the issued files; the old file is kept aside."""
    home.require()
    if not reason.strip():
        raise InputError("input.reason", "give the reason for the rebuild (--reason)")
    report = verify_audit(home)
    if report.problem is not None:
        raise AuditError(
            report.problem.code, f"the audit log does not verify, so nothing can be rebuilt from it: {report.problem.reason}"
        )
    index = _DerIndex(sources)
    ca_ders: dict[str, bytes] = {}
    for ca_id in [PAA_ID, *home.pai_ids()]:
        path = home.cert_path(ca_id)
        if path.is_file():
            ca_ders[ca_id] = home.load_cert(ca_id).public_bytes(Encoding.DER)
    pai_by_serial = {serial_hex(x509.load_der_x509_certificate(d).serial_number): (cid, d) for cid, d in ca_ders.items()}
    now = iso(datetime.now(UTC))
    tmp = home.ledger_path.with_name("ledger.sqlite.rebuild")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    audit = AuditLog(home.path, signer=audit_signer(home, secrets))
    kept: Path | None = None
    with audit.session() as session:
        ledger = create_ledger(tmp, home_id=home.home_id())
        try:
            txn = ledger.begin()
            counts = _replay(home, ledger, txn, audit, index, ca_ders, pai_by_serial)
            gen, chain = ledger.commit(txn, kind="rebuild", at=now, audit_seen=(session.next_seq - 1, session.tail_hash))
            ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            ledger.close()
        if home.ledger_path.exists():
            kept = home.ledger_path.with_name(f"ledger.sqlite.replaced-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
            home.ledger_path.rename(kept)
        for suffix in ("-wal", "-shm"):
            Path(f"{home.ledger_path}{suffix}").unlink(missing_ok=True)
        tmp.rename(home.ledger_path)
        session.append(
            [("ledger.rebuilt", {"gen": gen, "chain": chain, "certificates": counts[0], "revocations": counts[1],
                                 "crl_numbers": counts[2], "crl_signers": counts[3], "reason": reason,
                                 "sources": [str(s) for s in sources], "replaced": kept.name if kept else None})],
            operator=operator(),
        )
    return RebuildResult(counts[0], counts[1], counts[2], kept, chain, counts[3])


def _replay(
    home: PkiHome, ledger: Ledger, txn: Transaction, audit: AuditLog, index: _DerIndex, ca_ders: dict[str, bytes],
    pai_by_serial: dict[str, tuple[str, bytes]],
) -> tuple[int, int, int, int]:
    rows: dict[tuple[str, str], CertRow] = {}
    signers: dict[str, tuple[str, bytes, str, str]] = {}  # id -> (issuer, DER, issued_at, operator)
    signer_serials: dict[tuple[str, str], str] = {}  # (issuer, serial) -> key id
    withheld: dict[tuple[str, str], tuple[str, str]] = {}
    revocations: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    crl: dict[tuple[str, int], str] = {}
    missing: list[str] = []
    for record in audit.iter_records():
        f = record.fields
        event = record.event
        if event in ("paa.created", "paa.imported", "pai.created", "pai.imported") and f.get("state") != "pending":
            found = pai_by_serial.get(str(f.get("serial")))
            if found is None:
                missing.append(f"{event} {f.get('serial')}")
                continue
            ca_id, ca_der = found
            is_paa = ca_id == PAA_ID
            rows[(PAA_ID, str(f.get("serial")))] = CertRow.from_der(
                "paa" if is_paa else "pai", PAA_ID, ca_der, issued_at=record.time[:19] + "Z", operator=record.operator,
                pid=None if is_paa else x509_pid(ca_der),
            )
        elif event == "dac.issued":
            ca, serial = str(f.get("ca")), str(f.get("serial"))
            if (ca, serial) in rows:
                continue
            issuer = ca_ders.get(ca)
            der = index.find(sha=f.get("dac_sha256"), serial=serial, issuer_der=issuer) if issuer is not None else None
            if der is None:
                missing.append(f"DAC {serial} of {ca}")
                continue
            pid = int(str(f.get("pid")), 16) if f.get("pid") else None
            row = CertRow.from_der("dac", ca, der, issued_at=record.time[:19] + "Z", operator=record.operator, pid=pid,
                                   csr_sha256=f.get("csr_sha256"), reissue_reason=f.get("reissue_reason"))
            rows[(ca, serial)] = CertRow(**{**_asdict(row), "audit_seq": record.seq})
        elif event == "crl_signer.created":
            signer_id, issuer_id = str(f.get("signer")), str(f.get("ca"))
            der = _signer_der(home, signer_id, f.get("cert_sha256"))
            if der is None:
                missing.append(f"CRL signer {signer_id}")
                continue
            signers[signer_id] = (issuer_id, der, record.time[:19] + "Z", record.operator)
            cert = x509.load_der_x509_certificate(der)
            signer_serials[(issuer_id, serial_hex(cert.serial_number))] = key_id_of_der(der)
        elif event == "dac.withheld":
            withheld.setdefault((str(f.get("ca")), str(f.get("serial"))), (str(f.get("code") or ""), record.time[:19] + "Z"))
        elif event in ("cert.revoked", "crl_signer.revoked"):
            ca, serial = str(f.get("ca")), str(f.get("serial"))
            revocations[(ca, serial)] = (ca, serial, str(f.get("key_id") or ""), str(f.get("reason") or "unspecified"),
                                         str(f.get("revoked_at") or record.time[:19] + "Z"))
        elif event in ("crl.published", "crl.number_allocated") and isinstance(f.get("crl_number"), int):
            crl.setdefault((crl_numbering(f), int(f["crl_number"])), record.time[:19] + "Z")
    if missing:
        listed = ", ".join(missing[:5])
        raise LedgerError(
            "ledger.der_missing",
            f"{len(missing)} certificate(s) announced in the audit log were not found in the folders given ({listed}"
            f"{', ...' if len(missing) > 5 else ''}); add the folders that hold them (--from DIR)",
        )
    txn.add_certs(list(rows.values()))
    for signer_id, (issuer_id, der, issued_at, op) in signers.items():
        if not txn.add_signer(signer_id, issuer_id, der, issued_at=issued_at, operator=op):
            raise LedgerError("ledger.corrupt", f"CRL signer {signer_id} shares its serial with another certificate")
    for (ca, serial), (code, at) in withheld.items():
        txn.withhold(ca, serial, code, at)
    for (ca, serial), (_ca, _serial, key_id, reason, at) in revocations.items():
        revoked = rows.get((ca, serial))
        key = revoked.key_id if revoked is not None else signer_serials.get((ca, serial))
        if key is None:
            raise LedgerError("ledger.der_missing", f"revoked certificate {serial} of {ca} is not in the rebuilt ledger")
        txn.revoke(ca, serial, key_id or key, reason, at)
    for (ca, number), at in sorted(crl.items()):
        txn.add_crl_number(ca, number, at)
    return len(rows), len(revocations), len(crl), len(signers)


def _signer_der(home: PkiHome, signer_id: str, sha: object) -> bytes | None:
    """A CRL signer's certificate from its folder in the home (when it hashes to the announced digest)."""
    from matter_pki.local.crl_signers import CERT_FILE, signer_dir

    try:
        der = _load_der(signer_dir(home, signer_id) / CERT_FILE)
    except MatterPkiError:
        return None
    if der is None or (isinstance(sha, str) and hashlib.sha256(der).hexdigest() != sha):
        return None
    return der


def _asdict(row: CertRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in CertRow.__dataclass_fields__}


def x509_pid(der: bytes) -> int | None:
    """The ProductID in a certificate's subject, if any."""
    from matter_pki.certparse import parse_certificate
    from matter_pki.vidpid import extract_vid_pid

    return extract_vid_pid(parse_certificate(der).subject).pid


# -- upgrade -----------------------------------------------------------------------------------
def upgrade_home(home: PkiHome, *, secrets: Secrets) -> list[str]:
    """Bring a home made by an earlier version up to date (key files re-encrypted too); returns what was done."""
    home.require()
    done: list[str] = []
    audit_dir = home.path / "audit"
    settings = home.key_store()
    paa_der, has_paa_key = home_paa(home)
    if paa_der is None:
        raise LedgerError("config.ca_cert_missing", "the home has no PAA certificate")
    paa_key = None
    if has_paa_key:
        from matter_pki.local.keys import signer_factory

        paa_key = signer_factory(home, PAA_ID, secrets, allow_weak_kdf=True)()
    if not AuditKey(audit_dir, None).exists():
        audit_dir.mkdir(mode=0o700, exist_ok=True)
        create_audit_key(home, settings, secrets, home_id=home.home_id(), paa_key=paa_key, paa_der=paa_der)
        done.append("created the audit key" + (" (certified by the PAA key)" if paa_key else ""))
    elif paa_key is not None and read_audit_file(audit_dir / BINDING_NAME, 64 * 1024) is None:
        from matter_pki.storage.local import atomic_write

        public = AuditKey(audit_dir, None).public_key()
        binding = Binding.make(paa_key, home_id=home.home_id(), audit_key=public, paa_der=paa_der)
        atomic_write(audit_dir / BINDING_NAME, binding.to_json(), mode=0o644, exclusive=True)
        done.append("the PAA key certified the audit key (binding.json)")
    audit = AuditLog(home.path, signer=audit_signer(home, secrets, allow_weak_kdf=True))
    try:
        with audit.session():
            pass
    except AuditError as e:
        if e.code not in ("audit.head_missing", "audit.unsigned_tail"):
            raise
        result = audit.seal(adopt_tail="home upgrade: records written before every append was signed")
        done.append(f"adopted unsigned audit records (sealed up to seq {result.last if result else '?'})")
    try:
        Ledger(home.ledger_path).close()
    except LedgerError as e:
        if e.code != "ledger.old_format":
            raise
        with audit.session() as session:
            gen, chain, count = upgrade_v1(
                home.ledger_path, home_id=home.home_id(), operator=operator(), at=iso(datetime.now(UTC)),
                audit_seen=(session.next_seq - 1, session.tail_hash),
            )
            session.append(
                [("ledger.upgraded", {"gen": gen, "chain": chain, "certificates": count, "format": FORMAT})],
                operator=operator(),
            )
        done.append(f"migrated the ledger to format {FORMAT} ({count} certificates, keyed by device key)")
    rekeyed = rekey_home(home, secrets, audit=audit).rekeyed
    if rekeyed:
        done.append(f"re-encrypted {len(rekeyed)} key file(s) with {current_kdf()}: {', '.join(rekeyed)}")
    return done


__all__ = ["HomeReport", "RebuildResult", "rebuild_ledger", "upgrade_home", "verify_audit", "verify_home"]
