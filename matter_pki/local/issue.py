"""DAC issuance into a folder: every CSR is answered exactly once, with ``<name>.pem`` or ``<name>.err``.

Used by ``matter-pki dac issue`` (a CSR file or folder) and ``matter-pki inbox run`` (one folder per
PAI and PID). Signing goes through ``matter_pki.batch.issue_batch`` (which validates every DAC
before returning it). The order of effects is what makes a killed run safe to repeat:

1. A CSR that already has ``<name>.pem`` or ``<name>.err`` is skipped.
2. A CSR whose SHA-256 is already in the ledger for this PAI gets that DAC again (never a second one).
3. New DACs are recorded in the ledger (one durable transaction per group of results), then announced
   in the audit log (one append for the group; the ledger remembers each record's sequence number),
   then written with an atomic rename.

Inputs are streamed: the batch engine pulls them lazily with a bounded number in flight, and the
ledger lookup uses ``csr_digest`` (no signature check: the engine verifies each CSR once).

Guarantee after any kill (SIGKILL, power loss) and a re-run: each CSR has exactly one answer file;
the ledger holds at most one DAC per (PAI, CSR SHA-256) and no serial twice per PAI; the ``.pem``
holds the DAC the ledger recorded; the audit log announces each recorded DAC exactly once (a DAC
recorded but not yet announced is announced by the re-run with ``recovered: true``). Signatures made
but not yet recorded when the process died are simply discarded: such a DAC never left the process.
Refusals are deterministic, so a ``.err`` is never contradicted by a later run.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections import deque
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.batch import BatchContext, BatchItem, BatchResult, issue_batch
from matter_pki.csr import MAX_CSR_BYTES, csr_digest
from matter_pki.errors import ConfigError, CsrError, InputError, IssuanceError, MatterPkiError, StorageError
from matter_pki.layout import CsrKey, dumps_err, err_record, parse_csr_key
from matter_pki.local.ca import SERIAL_ATTEMPTS, operator, start_under, validity_from
from matter_pki.local.home import PAA_ID, PkiHome
from matter_pki.local.keys import Secrets, signer_factory
from matter_pki.local.ledger import InsertOutcome, Ledger, LedgerEntry, NewEntry, iso, serial_hex
from matter_pki.profiles import DacProfile
from matter_pki.storage.local import (
    atomic_write_at,
    atomic_write_many_at,
    exists_at,
    fsync_dir,
    open_dir,
    read_regular_at,
    remove_stale_temps,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from datetime import datetime
    from pathlib import Path

    from matter_pki.audit import AuditLog
    from matter_pki.batch import SignerFactory

GROUP_SIZE = 16
RESERVED_NAMES = frozenset({"pai", "paa"})
Status = Literal["issued", "reused", "refused", "skipped"]


@dataclass(frozen=True, slots=True)
class CsrInput:
    """One CSR to answer: its output base name, its key (for ``.err``), and its bytes or a read error."""

    name: str
    key: str
    data: bytes | None = None
    error: MatterPkiError | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one CSR."""

    name: str
    key: str
    status: Status
    serial: str | None = None
    code: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form."""
        return {
            "name": self.name, "csr": self.key, "status": self.status,
            "serial": self.serial, "code": self.code, "message": self.message,
        }


def der_to_pem(der: bytes) -> bytes:
    """PEM ``CERTIFICATE`` block of a DER certificate."""
    body = base64.b64encode(der)
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


class OutputDir:
    """Where answers go: ``<name>.pem`` / ``<name>.err`` written atomically inside an open folder."""

    def __init__(self, dir_fd: int, *, retry_refused: bool = False) -> None:
        self.fd = dir_fd
        self.retry_refused = retry_refused

    def answered(self, name: str) -> bool:
        """True when a ``.pem`` or ``.err`` for this name exists (the CSR is done).

        With ``retry_refused`` an ``.err`` is removed first (under the folder lock) and the CSR is
        examined again: a kill before its new answer leaves it unanswered, never doubly answered.
        """
        key = CsrKey.named(name)
        if exists_at(self.fd, key.pem):
            return True
        if not exists_at(self.fd, key.err):
            return False
        if not self.retry_refused:
            return True
        os.unlink(key.err, dir_fd=self.fd)
        fsync_dir(self.fd)
        return False

    def write_pem(self, name: str, der: bytes) -> None:
        """Write the DAC."""
        atomic_write_at(self.fd, CsrKey.named(name).pem, der_to_pem(der))

    def write_pems(self, dacs: list[tuple[str, bytes]]) -> None:
        """Write several DACs (one folder fsync for the group)."""
        atomic_write_many_at(self.fd, [(CsrKey.named(name).pem, der_to_pem(der)) for name, der in dacs])

    def write_err(self, name: str, data: bytes) -> None:
        """Write a refusal."""
        atomic_write_at(self.fd, CsrKey.named(name).err, data)

    def write_if_changed(self, name: str, data: bytes) -> None:
        """Write a shared file (chain certificates) unless it already holds exactly ``data``."""
        try:
            if read_regular_at(self.fd, name, max_bytes=len(data)) == data:
                return
        except StorageError:
            pass
        atomic_write_at(self.fd, name, data)


class DacIssuer:
    """One PAI issuing DACs of one PID into output folders; the chain, key and validity are fixed at start."""

    def __init__(
        self,
        home: PkiHome,
        ledger: Ledger,
        audit: AuditLog,
        *,
        pai_id: str,
        pid: int,
        validity_days: int | None,
        secrets: Secrets,
        now: datetime,
        request_id: str,
        common_name: str | None = "Matter DAC",
        jobs: int = 1,
        serials: Callable[[], int] | None = None,
        group_size: int = GROUP_SIZE,
        signer: SignerFactory | None = None,
    ) -> None:
        # ``signer``: a key the caller already opened and recorded as accessed (a long-running service
        # keeps its keys open); by default the PAI's key is opened here and its access audited.
        info = home.ca_info(pai_id)
        if info.role != "pai":
            raise ConfigError("config.unknown_ca", f"{pai_id!r} is not a PAI")
        self.pai = home.load_cert(pai_id)
        self.paa = home.load_cert(PAA_ID)
        validity = validity_from(start_under(self.pai, now), validity_days)
        # Checked once for the whole run: PID allowed by the PAI, validity inside the PAI's.
        DacProfile.for_issuer(self.pai, pid=pid, validity=validity, common_name=common_name).check_issuer(self.pai)
        factory = signer if signer is not None else signer_factory(home, pai_id, secrets)
        factory()  # fail now (wrong passphrase, missing token) rather than once per CSR
        self.op = operator()
        if signer is None:
            audit.record(
                "key.accessed", ca=pai_id, purpose="dac.issue", key_store=info.key.store if info.key else None,
                request_id=request_id, operator=self.op,
            )
        self.ctx = BatchContext(
            paa_der=self.paa.public_bytes(Encoding.DER),
            pai_der=self.pai.public_bytes(Encoding.DER),
            signer_factory=factory,
            pid=pid,
            validity=validity,
            common_name=common_name,
        )
        self.home, self.ledger, self.audit = home, ledger, audit
        self.pai_id, self.pid, self.now, self.request_id = pai_id, pid, now, request_id
        self.jobs, self.serials, self.group_size = jobs, serials, group_size
        self._on_result: Callable[[Outcome], None] = lambda _o: None
        self._outcomes: list[Outcome] = []
        self._announced_cache: dict[str, int] | None = None

    @property
    def chain_pem(self) -> tuple[bytes, bytes]:
        """(PAI PEM, PAA PEM)."""
        return der_to_pem(self.ctx.pai_der), der_to_pem(self.ctx.paa_der)

    def run(
        self, inputs: Iterable[CsrInput], out: OutputDir, on_result: Callable[[Outcome], None] | None = None
    ) -> list[Outcome]:
        """Answer every input; returns one outcome per input (``on_result`` sees them as they come)."""
        self._outcomes = []
        self._on_result = on_result or (lambda _o: None)
        # Streaming: the batch engine pulls inputs lazily and keeps a bounded number in flight, so
        # memory does not grow with the number of CSRs.
        self._sign_and_deliver(out, self._to_sign(inputs, out), attempt=1)
        return self._outcomes

    def _to_sign(self, inputs: Iterable[CsrInput], out: OutputDir) -> Iterator[tuple[CsrInput, str]]:
        """The inputs that need a new DAC, with their CSR SHA-256; every other input is answered on the way."""
        for item in inputs:
            if out.answered(item.name):
                self._emit(Outcome(item.name, item.key, "skipped"))
                continue
            if item.error is not None or item.data is None:
                self._refuse(out, item, item.error or StorageError("storage.unreadable", "no data"), None)
                continue
            if item.name in RESERVED_NAMES:
                self._refuse(out, item, InputError("input.reserved_name", f"{item.name!r} is reserved for the chain files"), None)
                continue
            try:
                # The envelope only: the batch engine does the cryptographic checks (once).
                sha = csr_digest(item.data)
            except CsrError as e:
                self._refuse(out, item, e, None)
                continue
            existing = self.ledger.find_csr(self.pai_id, sha)
            if existing is not None:
                self._deliver_existing(out, item, existing)
                continue
            yield item, sha

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._on_result(outcome)

    def _refuse(self, out: OutputDir, item: CsrInput, error: MatterPkiError, sha: str | None) -> None:
        record = err_record(error, csr_key=item.key, request_id=self.request_id, time=iso(self.now), csr_sha256=sha)
        out.write_err(item.name, dumps_err(record))
        self.audit.record(
            "dac.refused", ca=self.pai_id, csr=item.key, code=error.code, csr_sha256=sha,
            request_id=self.request_id, operator=self.op,
        )
        self._emit(Outcome(item.name, item.key, "refused", code=error.code, message=error.message))

    def _issued_fields(self, item: CsrInput, entry_serial: str, sha: str | None, *, recovered: bool = False) -> dict[str, Any]:
        return {
            "ca": self.pai_id, "serial": entry_serial, "pid": f"{self.pid:04X}", "csr": item.key,
            "csr_sha256": sha, "request_id": self.request_id, "recovered": True if recovered else None,
        }

    def _announce(self, item: CsrInput, entry_serial: str, sha: str | None, *, recovered: bool = False) -> int:
        fields = self._issued_fields(item, entry_serial, sha, recovered=recovered)
        return self.audit.record("dac.issued", operator=self.op, **fields).seq

    def _announced(self) -> dict[str, int]:
        """Serial → audit seq of every ``dac.issued`` by this PAI (read once, only during recovery)."""
        if self._announced_cache is None:
            self._announced_cache = {
                str(r.fields.get("serial")): r.seq
                for r in self.audit.records()
                if r.event == "dac.issued" and r.fields.get("ca") == self.pai_id
            }
        return self._announced_cache

    def _deliver_existing(self, out: OutputDir, item: CsrInput, existing: LedgerEntry) -> None:
        if existing.status == "revoked":
            error: MatterPkiError = IssuanceError(
                "issue.csr_revoked",
                f"the DAC {existing.serial} issued for this CSR was revoked; the device key is not certified again",
            )
            self._refuse(out, item, error, existing.csr_sha256)
            return
        if existing.pid != self.pid:
            error = IssuanceError(
                "issue.csr_already_issued",
                f"this CSR already has DAC {existing.serial} for PID {existing.pid or 0:04X} from {self.pai_id}",
            )
            self._refuse(out, item, error, existing.csr_sha256)
            return
        if existing.audit_seq is None:
            # Recorded by a run that stopped before the ledger learnt of its audit record (if any).
            seq = self._announced().get(existing.serial)
            if seq is None:
                seq = self._announce(item, existing.serial, existing.csr_sha256, recovered=True)
            self.ledger.set_audit_seq([(self.pai_id, existing.serial, seq)])
        out.write_pem(item.name, existing.der)
        self._emit(Outcome(item.name, item.key, "reused", serial=existing.serial))

    def _sign_and_deliver(self, out: OutputDir, pending: Iterable[tuple[CsrInput, str]], *, attempt: int) -> None:
        source = iter(pending)
        first = next(source, None)
        if first is None:
            return  # nothing to sign: the key is not opened
        in_flight: deque[tuple[CsrInput, str]] = deque()

        def items() -> Iterator[BatchItem]:
            for item, sha in chain([first], source):
                in_flight.append((item, sha))
                yield BatchItem(item.name, item.data or b"")

        if attempt == 1 and self.serials is not None:
            results = issue_batch(items(), self.ctx, jobs=self.jobs, serials=self.serials)
        else:
            # The batch engine's own serial source (random, drawn where the DAC is signed).
            results = issue_batch(items(), self.ctx, jobs=self.jobs if attempt == 1 else 1)
        buffer: list[tuple[CsrInput, str, BatchResult]] = []
        retry: list[tuple[CsrInput, str]] = []
        for result in results:
            item, sha = in_flight.popleft()
            if result.name != item.name:
                raise IssuanceError("issue.batch_order", "the batch engine returned results out of order")
            if not result.ok:
                code = result.error_code or "issue.failed"
                error = MatterPkiError(code, result.error_message or "issuance failed")
                # A CSR the engine finds unacceptable (csr.*) has no accepted digest, as before.
                self._refuse(out, item, error, None if code.startswith("csr.") else sha)
                continue
            if result.csr_sha256 != sha:
                raise IssuanceError("issue.batch_order", f"the batch engine hashed CSR {item.key!r} differently")
            buffer.append((item, sha, result))
            if len(buffer) >= self.group_size:
                retry.extend(self._record_and_write(out, buffer))
                buffer = []
        retry.extend(self._record_and_write(out, buffer))
        if in_flight:
            raise IssuanceError("issue.batch_order", f"the batch engine left {len(in_flight)} CSR(s) unanswered")
        if not retry:
            return
        if attempt >= SERIAL_ATTEMPTS:
            for item, sha in retry:
                error = IssuanceError("issue.serial_collision", f"no unused serial number after {attempt} attempts")
                self._refuse(out, item, error, sha)
            return
        self._sign_and_deliver(out, retry, attempt=attempt + 1)

    def _record_and_write(
        self, out: OutputDir, buffer: list[tuple[CsrInput, str, BatchResult]]
    ) -> list[tuple[CsrInput, str]]:
        if not buffer:
            return []
        entries = [NewEntry("dac", self.pai_id, r.dac_der or b"", pid=self.pid, csr_sha256=sha) for _, sha, r in buffer]
        outcomes = self.ledger.record_many(entries, issued_at=iso(self.now), operator=self.op)
        inserted: list[tuple[CsrInput, str, BatchResult, str]] = []
        retry: list[tuple[CsrInput, str]] = []
        same: list[tuple[CsrInput, str]] = []
        for (item, sha, result), outcome in zip(buffer, outcomes, strict=True):
            if outcome == InsertOutcome.INSERTED:
                number = x509.load_der_x509_certificate(result.dac_der or b"").serial_number
                inserted.append((item, sha, result, serial_hex(number)))
            elif outcome == InsertOutcome.SAME_CSR:
                same.append((item, sha))
            else:
                retry.append((item, sha))
        # One audit append (one fsync, one head signature) announces the whole group.
        records = self.audit.record_many(
            [("dac.issued", self._issued_fields(item, serial, sha)) for item, sha, _r, serial in inserted],
            operator=self.op,
        )
        self.ledger.set_audit_seq(
            [(self.pai_id, serial, rec.seq) for (_i, _s, _r, serial), rec in zip(inserted, records, strict=True)]
        )
        out.write_pems([(item.name, result.dac_der or b"") for item, _sha, result, _serial in inserted])
        for item, _sha, _result, serial in inserted:
            self._emit(Outcome(item.name, item.key, "issued", serial=serial))
        for item, sha in same:
            # The same CSR twice in one run (two file names): both get the first DAC. Delivered
            # only now, once that DAC (possibly in this very group) is announced.
            existing = self.ledger.find_csr(self.pai_id, sha)
            assert existing is not None
            self._deliver_existing(out, item, existing)
        return retry


# -- CSR files for `dac issue` -----------------------------------------------------------------
def check_name(filename: str) -> str:
    """The output base name of a ``<name>.csr`` file, with the inbox naming rules."""
    return parse_csr_key(f"local/0000/{filename}", cloud=False).name


def read_csr_file(path: Path) -> CsrInput:
    """One CSR named explicitly on the command line (symlinks are followed: the user chose the path)."""
    name = check_name(f"{path.stem}.csr")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CSR_BYTES + 1)
    except FileNotFoundError as e:
        raise InputError("input.not_a_file", f"CSR {str(path)!r} does not exist") from e
    except OSError as e:
        raise InputError("input.unreadable", f"cannot read CSR {str(path)!r}: {e.strerror}") from e
    return CsrInput(name=name, key=str(path), data=data)


class CsrFiles:
    """``*.csr`` files of one folder, each read only when iterated: memory does not grow with the folder.

    Holds the file names only; ``describe(filename)`` gives (output name, key). The folder is an open
    descriptor (``dir_fd``, owned by the caller) or a path opened for each iteration.
    """

    def __init__(
        self, describe: Callable[[str], tuple[str, str]], *, dir_fd: int | None = None, folder: Path | None = None
    ) -> None:
        self.describe, self.dir_fd, self.folder = describe, dir_fd, folder
        self.filenames: list[str] = []

    def __len__(self) -> int:
        return len(self.filenames)

    def __iter__(self) -> Iterator[CsrInput]:
        fd = self.dir_fd if self.dir_fd is not None else open_dir(self.folder)  # type: ignore[arg-type]
        try:
            for filename in self.filenames:
                name, key = self.describe(filename)
                try:
                    yield CsrInput(name, key, read_regular_at(fd, filename, max_bytes=MAX_CSR_BYTES))
                except StorageError as e:
                    yield CsrInput(name, key, error=e)
        finally:
            if self.dir_fd is None:
                os.close(fd)


def scan_csr_folder(folder: Path) -> tuple[CsrFiles, list[str]]:
    """Every ``*.csr`` directly in ``folder`` (sorted, read lazily); symlinks and non-files become refusals."""
    fd = open_dir(folder)
    try:
        with os.scandir(fd) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".csr"))
    finally:
        os.close(fd)
    inputs = CsrFiles(lambda filename: (check_name(filename), str(folder / filename)), folder=folder)
    notes: list[str] = []
    for filename in names:
        try:
            check_name(filename)
        except InputError as e:
            notes.append(f"ignored {str(folder / filename)!r}: {e.message}")
            continue
        inputs.filenames.append(filename)
    return inputs, notes


@dataclass
class IssueReport:
    """Outcome of one ``dac issue``."""

    outcomes: list[Outcome]
    notes: list[str]
    out_dir: Path

    def count(self, status: str) -> int:
        """How many CSRs ended with this status."""
        return sum(1 for o in self.outcomes if o.status == status)


def issue_files(
    home: PkiHome,
    *,
    pai_id: str,
    csr_path: Path,
    out_dir: Path,
    secrets: Secrets,
    now: datetime,
    pid: int | None = None,
    validity_days: int | None = None,
    common_name: str | None = "Matter DAC",
    jobs: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[Outcome], None] | None = None,
    serials: Callable[[], int] | None = None,
    retry_refused: bool = False,
) -> IssueReport:
    """Issue DACs for one CSR file or every ``*.csr`` in a folder into ``out_dir`` (+ ``pai.pem``, ``paa.pem``)."""
    from matter_pki.audit import AuditLog

    home.require()
    if pid is None:
        pid = home.ca_info(pai_id).pid
        if pid is None:
            raise InputError("input.pid_required", f"PAI {pai_id!r} is not product-scoped: give the DAC PID with --pid")
    inputs: Sequence[CsrInput] | CsrFiles
    if csr_path.is_dir():
        inputs, notes = scan_csr_folder(csr_path)
    else:
        single = read_csr_file(csr_path)
        inputs, notes = [single], []
        answers = {(out_dir / answer).resolve() for answer in CsrKey.named(single.name).answers}
        if csr_path.resolve() in answers:
            raise InputError("input.csr_is_output", f"{str(csr_path)!r} would be overwritten by its own answer")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot create {str(out_dir)!r}: {e.strerror}") from e
    fd = open_dir(out_dir)
    lock_name = "out-" + hashlib.sha256(os.path.realpath(out_dir).encode()).hexdigest()[:16]
    try:
        with home.try_lock(lock_name), Ledger(home.ledger_path) as ledger:
            remove_stale_temps(fd)  # left by a killed run; the folder lock is held
            issuer = DacIssuer(
                home, ledger, AuditLog(home.path), pai_id=pai_id, pid=pid, validity_days=validity_days,
                secrets=secrets, now=now, request_id=uuid.uuid4().hex, common_name=common_name, jobs=jobs,
                serials=serials,
            )
            out = OutputDir(fd, retry_refused=retry_refused)
            pai_pem, paa_pem = issuer.chain_pem
            out.write_if_changed("pai.pem", pai_pem)
            out.write_if_changed("paa.pem", paa_pem)
            if on_start is not None:
                on_start(len(inputs))
            outcomes = issuer.run(inputs, out, on_result)
    finally:
        os.close(fd)
    return IssueReport(outcomes, notes, out_dir)
