"""DAC issuance: every CSR is answered exactly once, with a DAC or a coded refusal, whatever happens.

Used by ``matter-pki dac issue`` (a CSR file or folder: ``<name>.pem`` / ``<name>.err``), ``matter-pki
inbox run`` (one folder per PAI and PID), and by long-running callers through ``DacIssuer.issue_csrs``
(CSRs in memory, outcomes with the DER). Signing goes through ``matter_pki.batch.issue_batch``, which
releases only DACs its gate validated.

The unit of issuance is the device key (``ledger.key_id_of_point``), never the CSR's bytes:

* a key ever revoked is never certified again (``issue.key_revoked``);
* a key certified by this PAI for this PID gets that DAC again (same serial), whatever CSR carries
  it: a re-signed CSR or one whose ECDSA signature was flipped (s to n-s) yields nothing new. CSR
  bytes the ledger has not seen must still prove possession of the key;
* a key certified under another PAI or PID is refused (``issue.key_reused``) unless the run names a
  re-issue reason (``reissue_reason``), which is recorded and announced; a CA's or a delegated CRL
  signer's key always is.

Group commit (durability is a property of a group of answers, not of a file). Per group of up to
``group_size`` answers, in this order:

1. one ledger transaction (all new DACs, checked again against the keys and serials in the ledger
   inside that transaction), one fsync;
2. one audit append announcing the group (one ``dac.issued`` per DAC, one ``dac.refused`` per
   refusal) and naming the ledger milestone (``matter_pki.local.state``);
3. the group's ``.pem`` / ``.err`` files put in place by rename, without fsync, then one barrier
   (``syncfs``) for all of them. With an output folder, a writer process (forked before the signing
   workers, when this process runs one thread) does this step while this process collects and
   commits the next group; the group is reported once its barrier returned, and the next group's
   files are written only after that.

A DAC therefore reaches an output only once it is recorded and announced. After a kill or a power
loss at any point, a re-run of the same command re-checks every existing answer against the ledger
(a ``.pem`` must hold a DAC the ledger recorded for that CSR's key, a ``.err`` must be a whole
refusal) and re-writes from the ledger whatever is missing or torn; a DAC recorded but not yet
announced is announced by the next command (``recovered: true``); signatures not yet recorded are
discarded (they never left the process). Each DAC is announced exactly once, also when two runs
share a CSR folder: the announcing append is made under the same lock as the ledger transaction.

Memory does not grow with the number of CSRs: inputs are streamed, at most a few groups are in
flight, and reports keep counts and the first refusals only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import signal
import stat
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, Literal

from matter_pki.batch import (
    DEFAULT_CHUNK,
    BatchContext,
    BatchItem,
    BatchResult,
    _exit_with_parent,
    issue_batch,
)
from matter_pki.csr import MAX_CSR_BYTES, csr_digest, key_id_of_point, load_device_csr
from matter_pki.der import pem_encode
from matter_pki.errors import (
    ConfigError,
    CsrError,
    InputError,
    IssuanceError,
    LedgerError,
    MatterPkiError,
    StorageError,
)
from matter_pki.fastpath import csr_der, element_length, header_end
from matter_pki.gate import P256_SPKI_PREFIX
from matter_pki.layout import (
    CSR_SUFFIX,
    ERR_SUFFIX,
    PEM_SUFFIX,
    CsrKey,
    dumps_err,
    err_record,
    is_answer,
    parse_csr_key,
)
from matter_pki.local.ca import SERIAL_ATTEMPTS, start_under, validity_from
from matter_pki.local.home import PAA_ID, PkiHome
from matter_pki.local.keys import Secrets, signer_factory
from matter_pki.local.ledger import (
    CertRow,
    LedgerEntry,
    Transaction,
    iso,
    key_id_of_der,
    serial_hex,
)
from matter_pki.local.state import CaState
from matter_pki.profiles import DacProfile
from matter_pki.storage.local import (
    atomic_write_at,
    exists_at,
    fsync_dir,
    open_dir,
    read_regular_at,
    remove_stale_temps,
    storage_error,
    sync_filesystem,
    write_all,
    write_unsynced_at,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import datetime
    from multiprocessing.connection import Connection
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.audit.log import AuditSession
    from matter_pki.batch import SignerFactory

GROUP_SIZE = 1024
#: The first group is small (the first answers appear at once); each next one doubles, up to ``GROUP_SIZE``.
FIRST_GROUP = 16
INTAKE_BLOCK = 256
#: In-memory CSRs are answered this many at a time (``issue_csrs``).
SLICE = 4096
RESERVED_NAMES = frozenset({"pai", "paa"})
MAX_LISTED = 20
Status = Literal["issued", "reused", "refused", "skipped"]
Records = list[tuple[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class CsrInput:
    """One CSR to answer: its output base name, its key (for ``.err``), and its bytes or a read error."""

    name: str
    key: str
    data: bytes | None = None
    error: MatterPkiError | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one CSR (``der``: the DAC, for issued and re-delivered ones; ``code``: the refusal, also
    the earlier one of a CSR skipped because a previous run refused it)."""

    name: str
    key: str
    status: Status
    serial: str | None = None
    code: str | None = None
    message: str | None = None
    der: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form (without the DER)."""
        return {
            "name": self.name, "csr": self.key, "status": self.status,
            "serial": self.serial, "code": self.code, "message": self.message,
        }


def der_to_pem(der: bytes) -> bytes:
    """PEM ``CERTIFICATE`` block of a DER certificate."""
    return pem_encode("CERTIFICATE", der)


def pem_to_der(pem: bytes) -> bytes | None:
    """The DER of a file ``der_to_pem`` wrote, or None when the file is anything else (torn, edited)."""
    head, tail = b"-----BEGIN CERTIFICATE-----\n", b"\n-----END CERTIFICATE-----\n"
    if not pem.startswith(head) or not pem.endswith(tail):
        return None
    try:
        der = base64.b64decode(pem[len(head) : -len(tail)].replace(b"\n", b""), validate=True)
    except binascii.Error:
        return None
    return der if der_to_pem(der) == pem else None


class OutputDir:
    """Where answers go: ``<name>.pem`` / ``<name>.err`` inside an open folder, made durable per group."""

    def __init__(self, dir_fd: int, *, retry_refused: bool = False) -> None:
        self.fd = dir_fd
        self.retry_refused = retry_refused
        self._dirty = False
        # One listing instead of two lookups per CSR: the names that had an answer when the run
        # started (the folder lock keeps other runs out; this run answers each name once).
        try:
            with os.scandir(dir_fd) as entries:
                self._answered = {e.name.rpartition(".")[0] for e in entries if is_answer(e.name)}
        except OSError as e:
            raise StorageError("storage.unreadable", f"cannot list the output folder: {e.strerror}") from e

    def had_answer(self, name: str) -> bool:
        """True when a ``.pem`` or ``.err`` existed for this name when the run started."""
        return name in self._answered

    def answer(self, name: str) -> tuple[bytes | None, bytes | None]:
        """The current ``.pem`` and ``.err`` contents (None when absent or unreadable).

        With ``retry_refused`` an existing ``.err`` does not count: the CSR is examined again, and its
        new answer replaces the refusal (a kill before that leaves the old refusal: still one answer).
        """
        if name not in self._answered:
            return None, None
        key = CsrKey.named(name)
        err = None if self.retry_refused else self._read(key.err)
        return self._read(key.pem), err

    def _read(self, filename: str) -> bytes | None:
        if not exists_at(self.fd, filename):
            return None
        try:
            return read_regular_at(self.fd, filename, max_bytes=16 * 1024)
        except StorageError:
            return b""  # present but not a readable regular file: not a valid answer

    def write_pems(self, dacs: list[tuple[str, bytes]]) -> None:
        """Put DACs in place as ``<name>.pem`` (each whole or absent; durable at the next ``barrier``)."""
        if dacs:
            write_answers(self.fd, [], dacs)
            self._dirty = True

    def write_errs(self, refusals: list[tuple[str, bytes]]) -> None:
        """Put refusals in place as ``<name>.err`` (each whole or absent; durable at the next ``barrier``)."""
        if refusals:
            write_answers(self.fd, refusals, [])
            self._dirty = True

    def barrier(self) -> None:
        """Make every answer written so far durable (one ``syncfs``)."""
        if self._dirty:
            sync_filesystem(self.fd)
            self._dirty = False

    def remove(self, filename: str) -> None:
        """Remove a stale answer (a ``.err`` superseded by a ``.pem`` or the reverse)."""
        try:
            os.unlink(filename, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise storage_error(e, repr(filename)) from e

    def write_if_changed(self, name: str, data: bytes) -> None:
        """Write a shared file (chain certificates) unless it already holds exactly ``data``.

        A whole certificate of another CA there means the folder holds another PAI's answers, which
        the new chain file would break: refused (``input.output_other_ca``). A torn file is rewritten.
        """
        current = self._read(name)
        if current == data:
            return
        if current is not None and pem_to_der(current) is not None:
            raise InputError(
                "input.output_other_ca",
                f"{name} in the output folder is another CA's certificate: answers of different PAIs never share a "
                "folder (their chains would break); use another --out",
            )
        atomic_write_at(self.fd, name, data)


def write_answers(dir_fd: int, refusals: list[tuple[str, bytes]], dacs: list[tuple[str, bytes]]) -> None:
    """``<name>.err`` per (name, refusal) and ``<name>.pem`` per (name, DAC DER), each whole or absent, unsynced."""
    files = [(CsrKey.named(name).err, data) for name, data in refusals]
    files += [(CsrKey.named(name).pem, der_to_pem(der)) for name, der in dacs]
    write_unsynced_at(dir_fd, files)


class _Writer:
    """A process that writes each group's answer files and runs the group's barrier, off the issuing process.

    Forked (from a process running one thread) before the signing workers, it inherits the open
    output folder. One group at a time: ``submit`` after the group's commit, ``result`` before the
    next group's answers are reported or written. A killed parent leaves it without work: it exits.
    """

    def __init__(self, out: OutputDir) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_write_loop, args=(child, out, os.getpid()), name="matter-pki-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._busy = False

    def submit(self, refusals: list[tuple[str, bytes]], dacs: list[tuple[str, bytes]]) -> None:
        """Write these answers and make them durable (one barrier)."""
        self._conn.send((refusals, dacs))
        self._busy = True

    def result(self) -> None:
        """Wait for the submitted group; its failure is raised here."""
        if not self._busy:
            return
        self._busy = False
        try:
            reply = self._conn.recv()
        except (EOFError, OSError) as e:
            raise StorageError("storage.write_failed", "the process writing the answers stopped") from e
        except Exception as e:  # an exception that does not unpickle
            raise StorageError("storage.write_failed", f"writing the answers failed: {e}") from e
        if isinstance(reply, tuple):
            cls, code, message = reply
            try:
                error = cls(code, message)
            except TypeError:  # a constructor that wants more than (code, message)
                error = StorageError(code, message)
            raise error
        if reply is not None:
            raise reply  # whatever stopped the writer stops the run, as if it had happened here

    def close(self) -> None:
        """Wait for the submitted group (without raising) and stop the process."""
        with contextlib.suppress(Exception):
            self.result()
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._conn.close()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def _write_loop(conn: Connection, out: OutputDir, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops this process
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        refusals, dacs = job
        reply: object = None
        try:
            out.write_errs(refusals)
            out.write_pems(dacs)
            out.barrier()
        except MatterPkiError as e:
            reply = (type(e), e.code, e.message)
        except BaseException as e:  # noqa: BLE001 - handed to the issuing process, which raises it
            reply = e
        try:
            try:
                conn.send(reply)
            except (TypeError, AttributeError, pickle.PicklingError):  # an exception that does not pickle: what it was
                conn.send((StorageError, "storage.write_failed", f"writing the answers failed: {reply!r}"))
        except OSError:
            return  # the issuing process is gone (killed, or interrupted and no longer waiting)
        if isinstance(reply, BaseException):
            return


def err_code(data: bytes | None) -> str | None:
    """The code of a whole ``.err`` file (a JSON object with a code); None for anything else (a torn one is no answer)."""
    if not data:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


class _Earlier(MatterPkiError):
    """The refusal an earlier run wrote (``.err``): a skipped CSR's outcome carries its code."""


# -- the factory bundle ------------------------------------------------------------------------
BUNDLE_COLUMNS = ("name", "serial", "vid", "pid", "csr_sha256", "dac_pem", "dac_der_hex")


class Bundle:
    """One manifest for a whole batch, ``<name>.csv`` and ``<name>.jsonl``: every DAC delivered, streamed to disk.

    Rows are written to temporary files as DACs are delivered (memory does not grow), and the files
    take their names at ``finish``, after the run's last barrier made them durable.
    """

    def __init__(self, dir_fd: int, name: str, *, vid: int) -> None:
        for suffix in (".csv", ".jsonl"):
            if not name or "/" in name or name.startswith(".") or name.endswith((PEM_SUFFIX, ERR_SUFFIX, CSR_SUFFIX)):
                raise InputError("input.bundle_name", f"{name!r} is not a usable bundle name")
            if exists_at(dir_fd, name + suffix):
                raise InputError("input.exists", f"{name + suffix!r} exists in the output folder; refusing to replace it")
        self.dir_fd, self.name, self.vid = dir_fd, name, f"{vid:04X}"
        self.rows = 0
        self._tmp = {s: f".{name}{s}.tmp-{uuid.uuid4().hex[:12]}" for s in (".csv", ".jsonl")}
        self._fds: dict[str, int] = {}
        try:
            for suffix, tmp in self._tmp.items():
                self._fds[suffix] = os.open(
                    tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=dir_fd
                )
        except OSError as e:
            self.abort()
            raise storage_error(e, f"the bundle {name!r}") from e
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(BUNDLE_COLUMNS)
        self._write(".csv", header.getvalue().encode())

    def add(self, rows: list[tuple[str, str, int | None, str | None, bytes]]) -> None:
        """Rows of (name, serial, pid, CSR SHA-256, DAC DER)."""
        text, lines = io.StringIO(), []
        writer = csv.writer(text, lineterminator="\n")
        for name, serial, pid, csr_sha, der in rows:
            pem = der_to_pem(der).decode()
            values = (name, serial, self.vid, f"{pid:04X}" if pid is not None else "", csr_sha or "", pem, der.hex())
            writer.writerow(values)
            lines.append(json.dumps(dict(zip(BUNDLE_COLUMNS, values, strict=True)), separators=(",", ":")))
        self._write(".csv", text.getvalue().encode())
        self._write(".jsonl", "".join(line + "\n" for line in lines).encode())
        self.rows += len(rows)

    def _write(self, suffix: str, data: bytes) -> None:
        try:
            write_all(self._fds[suffix], data)
        except OSError as e:
            raise storage_error(e, f"the bundle {self.name}{suffix}") from e

    def finish(self) -> list[str]:
        """One barrier, then both files take their names; returns them."""
        try:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            sync_filesystem(self.dir_fd)
            for suffix, tmp in self._tmp.items():
                os.link(tmp, self.name + suffix, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                os.unlink(tmp, dir_fd=self.dir_fd)
            fsync_dir(self.dir_fd)
        except FileExistsError as e:
            self.abort()
            raise InputError("input.exists", f"the bundle {self.name!r} appeared meanwhile; refusing to replace it") from e
        except OSError as e:
            self.abort()
            raise storage_error(e, f"the bundle {self.name!r}") from e
        return [self.name + suffix for suffix in self._tmp]

    def abort(self) -> None:
        """Drop the temporary files."""
        for fd in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()
        for tmp in self._tmp.values():
            try:
                os.unlink(tmp, dir_fd=self.dir_fd)
            except OSError:
                pass


# -- intake ------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Item:
    """One CSR on its way: intake facts, then a decision."""

    src: CsrInput
    sha: str | None = None
    key_id: str | None = None
    #: The existing answer's DER when the CSR already has a ``.pem`` (re-checked against the ledger).
    answered_der: bytes | None = None
    #: A ``.pem`` or ``.err`` exists for this name (to be replaced when it is not a valid answer).
    had_answer: bool = False


@dataclass(slots=True)
class _Pending:
    """An answer waiting for its group commit."""

    item: _Item
    kind: Literal["refuse", "reuse", "new", "skip", "retry"]
    error: MatterPkiError | None = None
    entry: LedgerEntry | None = None
    result: BatchResult | None = None
    #: The new DAC's serial, in the ledger's form.
    serial: str = ""
    #: Serials of certificates the release gate withheld while answering this CSR (recorded and announced).
    withheld: tuple[int, ...] = ()


@dataclass(slots=True)
class _Written:
    """A group whose answers are written, waiting for its barrier before it is reported."""

    outcomes: list[Outcome]
    bundle_rows: list[tuple[str, str, int | None, str | None, bytes]]
    stale: list[str]


@dataclass
class RunTotals:
    """Counts of one run and its first refusals (memory stays bounded)."""

    counts: dict[str, int] = field(default_factory=lambda: {"issued": 0, "reused": 0, "skipped": 0, "refused": 0})
    refusals: list[Outcome] = field(default_factory=list)
    bundle: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one outcome."""
        self.counts[outcome.status] += 1
        if outcome.status == "refused" and len(self.refusals) < MAX_LISTED:
            self.refusals.append(outcome)

    def merge(self, other: RunTotals) -> None:
        """Add another run's totals."""
        for status, n in other.counts.items():
            self.counts[status] += n
        self.refusals.extend(other.refusals[: MAX_LISTED - len(self.refusals)])
        self.bundle.extend(other.bundle)


class DacIssuer:
    """One PAI issuing DACs of one PID; the chain, key, validity and checks are fixed when it opens.

    The issuing CA is checked here, once, for every path (``dac issue``, ``inbox run``, a server):
    a revoked or expired PAI (or PAA) refuses (``issue.ca_revoked`` / ``issue.ca_expired``); each
    group commit checks the PAI's revocation again, so a long-running issuer stops when it is revoked.

    Long-running callers::

        with DacIssuer.open(home, pai_id="pai-1", pid=0x8000, secrets=secrets) as issuer:
            for outcome in issuer.issue_csrs([("dev-1", csr_bytes), ...]):
                ...  # outcome.name, .status (issued | reused | refused), .serial, .der, .code, .message
    """

    def __init__(
        self,
        home: PkiHome,
        state: CaState,
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
        reissue_reason: str | None = None,
        signer: SignerFactory | None = None,
        first_group: int = FIRST_GROUP,
    ) -> None:
        # ``signer``: a key the caller already opened and recorded as accessed (a long-running service
        # keeps its keys open); by default the PAI's key is opened here (once) and its access audited.
        # ``first_group``: the size of the first group commit (each next one doubles, up to ``group_size``).
        info = home.ca_info(pai_id)
        if info.role != "pai":
            raise ConfigError("config.unknown_ca", f"{pai_id!r} is not a PAI")
        if reissue_reason is not None and not reissue_reason.strip():
            raise InputError("input.reissue_reason", "a re-issue needs a reason")
        self.pai = home.load_cert(pai_id)
        self.paa = home.load_cert(PAA_ID)
        state.check_can_issue(pai_id, now)
        validity = validity_from(start_under(self.pai, now), validity_days)
        profile = DacProfile.for_issuer(self.pai, pid=pid, validity=validity, common_name=common_name)
        # Checked once for the whole run: PID allowed by the PAI, validity inside the PAI's.
        profile.check_issuer(self.pai)
        factory = signer if signer is not None else _OpenOnce(signer_factory(home, pai_id, secrets))
        factory()  # fail now (wrong passphrase, missing token) rather than once per CSR; kept open
        from cryptography.hazmat.primitives.serialization import Encoding

        self.ctx = BatchContext(
            paa_der=self.paa.public_bytes(Encoding.DER),
            pai_der=self.pai.public_bytes(Encoding.DER),
            signer_factory=factory,
            pid=pid,
            validity=validity,
            common_name=common_name,
        )
        self.home, self.state = home, state
        self.pai_id, self.pid, self.now, self.request_id = pai_id, pid, now, request_id
        assert profile.vid is not None  # a DAC profile always has the PAI's VID
        self.vid: int = profile.vid
        self.jobs, self.serials, self.group_size = jobs, serials, max(1, group_size)
        self.reissue_reason = reissue_reason
        self.subject = profile.subject().rfc4514_string()
        self._pid_text = f"{pid:04X}"
        self.not_before, self.not_after = iso(validity.not_before), iso(validity.not_after)
        self._owns_state = False
        self._group_limit = max(1, min(first_group, self.group_size))
        if signer is None:
            state.record(
                "key.accessed", ca=pai_id, purpose="dac.issue", key_store=info.key.store if info.key else None,
                request_id=request_id,
            )
        self._out: OutputDir | None = None
        self._bundle: Bundle | None = None
        self._writer: _Writer | None = None
        self._waiting: _Written | None = None
        self._emit: Callable[[Outcome], None] = lambda _o: None

    @classmethod
    def open(
        cls,
        home: PkiHome,
        *,
        pai_id: str,
        secrets: Secrets,
        pid: int | None = None,
        now: datetime | None = None,
        validity_days: int | None = None,
        common_name: str | None = "Matter DAC",
        jobs: int = 1,
        reissue_reason: str | None = None,
        request_id: str | None = None,
    ) -> DacIssuer:
        """Open the home (ledger and audit log cross-checked) and an issuer for in-memory CSRs; close it after."""
        from datetime import UTC
        from datetime import datetime as _datetime

        state = CaState.open(home, secrets)
        try:
            issuer = cls(
                home, state, pai_id=pai_id, pid=_pid_for(home, pai_id, pid), validity_days=validity_days,
                secrets=secrets, now=now or _datetime.now(UTC).replace(microsecond=0),
                request_id=request_id or uuid.uuid4().hex, common_name=common_name, jobs=jobs,
                reissue_reason=reissue_reason,
            )
        except BaseException:
            state.close()
            raise
        issuer._owns_state = True
        return issuer

    def __enter__(self) -> DacIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the home's ledger if this issuer opened it."""
        if self._owns_state:
            self.state.close()

    @property
    def chain_pem(self) -> tuple[bytes, bytes]:
        """(PAI PEM, PAA PEM)."""
        return der_to_pem(self.ctx.pai_der), der_to_pem(self.ctx.paa_der)

    # -- entry points --------------------------------------------------------------------------
    def issue_csrs(self, csrs: Iterable[tuple[str, bytes] | CsrInput]) -> Iterator[Outcome]:
        """Answer in-memory CSRs (name, bytes): one outcome per CSR, matched by name (not necessarily in order).

        Each outcome is yielded once its DAC is recorded in the ledger and announced in the audit log.
        A ``CsrInput`` also names the requester (its ``key``, the audit records' ``csr`` field).
        """
        results: deque[Outcome] = deque()
        self._out, self._bundle, self._emit = None, None, results.append
        source = iter(csrs)
        # In slices, so that outcomes waiting to be yielded stay bounded whatever the input.
        while block := [c if isinstance(c, CsrInput) else CsrInput(c[0], c[0], c[1]) for c in islice(source, SLICE)]:
            for _ in self._pipeline(block):
                while results:
                    yield results.popleft()
            while results:
                yield results.popleft()

    def run(
        self,
        inputs: Iterable[CsrInput],
        out: OutputDir,
        on_result: Callable[[Outcome], None] | None = None,
        *,
        bundle: Bundle | None = None,
    ) -> RunTotals:
        """Answer every input into ``out``; ``on_result`` sees each outcome as it is delivered."""
        totals = RunTotals()
        callback = on_result or (lambda _o: None)

        def emit(outcome: Outcome) -> None:
            totals.add(outcome)
            callback(outcome)

        self._out, self._bundle, self._emit = out, bundle, emit
        try:
            for _ in self._pipeline(inputs):
                pass
            self._delivered()
        finally:
            self._waiting = None
            if self._writer is not None:
                self._writer.close()  # no write outlives the run
                self._writer = None
        return totals

    def _delivered(self) -> None:
        """Wait for the previous group's files and barrier (a failure stops the run here), then report that group."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            if self._writer is not None:
                self._writer.result()
            self._complete(waiting)

    def _start_writer(self) -> None:
        """Fork the process that writes the answers (once, before the signing workers; only from one thread)."""
        self._delivered()
        if self._writer is None and self._out is not None and threading.active_count() == 1:
            self._writer = _Writer(self._out)

    # -- the pipeline --------------------------------------------------------------------------
    def _pipeline(self, inputs: Iterable[CsrInput]) -> Iterator[None]:
        pending: list[_Pending] = []
        to_sign: deque[_Item] = deque()
        retry: list[_Item] = []

        def decided() -> Iterator[_Item]:
            nonlocal pending
            for block in _blocks(iter(inputs), INTAKE_BLOCK):
                for p in self._intake(block):
                    if p.kind == "new":
                        yield p.item
                    else:
                        pending.append(p)
                if len(pending) >= self._group_limit:
                    # Answers that need no signature (re-deliveries, refusals) are committed as they
                    # come: memory stays bounded even when nothing is signed.
                    retry.extend(self._commit(pending))
                    pending = []

        def items(source: Iterable[_Item]) -> Iterator[BatchItem]:
            for item in source:
                to_sign.append(item)
                yield BatchItem(item.src.name, item.src.data or b"")

        attempt = 1
        source: Iterable[_Item] = decided()
        while True:
            stream = iter(source)
            first = next(stream, None)
            if first is not None:
                batch = items(chain([first], stream))
                self._start_writer()
                # Enough chunks in flight that the workers keep signing while a whole group commits.
                window = 2 * (self.jobs or os.cpu_count() or 1) + -(-self.group_size // DEFAULT_CHUNK)
                if attempt == 1 and self.serials is not None:
                    results = issue_batch(batch, self.ctx, jobs=self.jobs, serials=self.serials, window=window)
                else:
                    # The batch engine's own serial source (random, drawn where the DAC is signed).
                    results = issue_batch(batch, self.ctx, jobs=self.jobs if attempt == 1 else 1, window=window)
                for result in results:
                    item = to_sign.popleft()
                    if result.name != item.src.name:
                        raise IssuanceError("issue.batch_order", "the batch engine returned results out of order")
                    if not result.ok:
                        code = result.error_code or "issue.failed"
                        message = result.error_message or "issuance failed"
                        # A release-gate refusal names the certificate it withheld (in the .err and the audit log).
                        error = MatterPkiError(code, message) if result.refused_serial is None else IssuanceError(
                            code, message, serial=serial_hex(result.refused_serial)
                        )
                        pending.append(_Pending(item, "refuse", error=error, withheld=result.withheld))
                    elif result.csr_sha256 != item.sha:
                        raise IssuanceError("issue.batch_order", f"the batch engine hashed CSR {item.src.key!r} differently")
                    else:
                        pending.append(_Pending(
                            item, "new", result=result, serial=serial_hex(result.serial or 0), withheld=result.withheld
                        ))
                    if len(pending) >= self._group_limit:
                        retry += self._commit(pending)
                        pending = []
                        yield None
                if to_sign:
                    raise IssuanceError("issue.batch_order", f"the batch engine left {len(to_sign)} CSR(s) unanswered")
            if pending:
                retry += self._commit(pending)
                pending = []
                yield None
            if not retry:
                return
            if attempt >= SERIAL_ATTEMPTS:
                for item in retry:
                    error = IssuanceError("issue.serial_collision", f"no unused serial number after {attempt} attempts")
                    pending.append(_Pending(item, "refuse", error=error))
                source, retry = [], []
                continue
            attempt += 1
            source, retry = retry, []

    def _intake(self, block: list[CsrInput]) -> list[_Pending]:
        """Decide what needs no signature (refusals, existing answers, re-deliveries) for a block of CSRs."""
        out: list[_Pending] = []
        items: list[_Item] = []
        for src in block:
            item = _Item(src)
            if src.name in RESERVED_NAMES:
                # Checked before the existing answers: pai.pem / paa.pem are the chain, not an answer.
                earlier = err_code(self._out.answer(src.name)[1]) if self._out is not None else None
                if earlier is not None:
                    out.append(_Pending(item, "skip", error=_Earlier(earlier, "refused by an earlier run")))
                else:
                    error = InputError("input.reserved_name", f"{src.name!r} is reserved for the chain files")
                    out.append(_Pending(item, "refuse", error=error))
                continue
            if self._out is not None:
                pem, err = self._out.answer(src.name)
                item.had_answer = self._out.had_answer(src.name)
                if pem is not None:
                    item.answered_der = pem_to_der(pem) or b""
                elif (earlier := err_code(err)) is not None:
                    out.append(_Pending(item, "skip", error=_Earlier(earlier, "refused by an earlier run")))
                    continue
            if src.error is not None or src.data is None:
                out.append(_Pending(item, "refuse", error=src.error or StorageError("storage.unreadable", "no data")))
                continue
            try:
                item.sha, item.key_id = _csr_identity(src.data)
            except CsrError as e:
                out.append(_Pending(item, "refuse", error=e))
                continue
            items.append(item)
        if not items:
            return out
        ledger = self.state.ledger
        keys = [i.key_id for i in items if i.key_id]
        existing = ledger.find_keys(keys)
        revoked = ledger.revoked_keys(keys)
        for item in items:
            assert item.key_id is not None and item.src.data is not None
            entries = existing.get(item.key_id, [])
            if item.answered_der is not None:
                # An answer stands only if it is this run's DAC for the key: same PAI and PID (the chain files
                # beside it are this PAI's), and the key not revoked since (then it is answered key_revoked);
                # a DAC of another PAI or PID is foreign here.
                if item.key_id not in revoked and any(
                    e.der == item.answered_der and e.der_intact() for e in entries
                    if e.kind == "dac" and e.ca == self.pai_id and e.pid == self.pid
                ):
                    out.append(_Pending(item, "skip", entry=next(e for e in entries if e.der == item.answered_der)))
                    continue
                item.answered_der = None  # torn, emptied or foreign: answered again below
            out.append(self._decide(item, entries, item.key_id in revoked))
        return out

    def _decide(self, item: _Item, entries: list[LedgerEntry], revoked: bool) -> _Pending:
        assert item.src.data is not None
        if revoked:
            return _Pending(item, "refuse", error=IssuanceError(
                "issue.key_revoked", "a certificate of this device key was revoked; the key is never certified again",
            ))
        mine = next((e for e in entries if e.kind == "dac" and e.ca == self.pai_id and e.pid == self.pid), None)
        if mine is not None:
            if item.sha != mine.csr_sha256:
                # CSR bytes the ledger has not seen: they must still prove possession of the key.
                try:
                    load_device_csr(item.src.data)
                except CsrError as e:
                    return _Pending(item, "refuse", error=e)
            return _Pending(item, "reuse", entry=mine)
        other = self._conflict(entries)
        if other is not None:
            return _Pending(item, "refuse", error=other)
        return _Pending(item, "new")

    def _conflict(self, entries: list[LedgerEntry]) -> IssuanceError | None:
        """Why a key with these certificates may not get a DAC here (None: it may)."""
        for e in entries:
            if e.kind != "dac":
                what = "CRL signer certificate" if e.kind == "crl_signer" else "CA certificate"
                return IssuanceError("issue.key_reused", f"this key is the key of {what} {e.serial} ({e.kind})")
        if entries and self.reissue_reason is None:
            e = entries[0]
            return IssuanceError(
                "issue.key_reused",
                f"this device key already has DAC {e.serial} from {e.ca} for PID {e.pid or 0:04X}; a DAC for another "
                "PAI or PID needs an explicit re-issue (--reissue-reason)",
            )
        return None

    # -- the group commit ------------------------------------------------------------------------
    def _commit(self, group: list[_Pending]) -> list[_Item]:
        """Ledger transaction + audit append for the group, then its answers with one barrier."""
        retry: list[_Item] = []
        time_text = iso(self.now)

        def write(txn: Transaction, session: AuditSession) -> Records:
            self.state.check_can_issue(self.pai_id, self.now)
            news = [p for p in group if p.kind == "new"]
            if news:
                self._settle_new(txn, news, retry)
            records: Records = []
            announced: list[tuple[_Pending, str]] = []
            for p in group:
                if p.kind != "new":
                    continue
                assert p.result is not None and p.result.serial is not None and p.item.key_id is not None
                dac_sha = hashlib.sha256(p.result.dac_der or b"").hexdigest()  # once: the record and the row
                records.append(("dac.issued", {
                    "ca": self.pai_id, "serial": p.serial, "pid": self._pid_text,
                    "csr": p.item.src.key, "csr_sha256": p.item.sha, "key_id": p.item.key_id,
                    "dac_sha256": dac_sha,
                    "reissue_reason": self.reissue_reason if p.entry is not None else None,
                    "request_id": self.request_id,
                }))
                announced.append((p, dac_sha))
            for p in group:
                if p.kind == "refuse":
                    assert p.error is not None
                    records.append(("dac.refused", {
                        "ca": self.pai_id, "csr": p.item.src.key, "code": p.error.code,
                        "csr_sha256": p.item.sha if not p.error.code.startswith(("csr.", "storage.", "input.")) else None,
                        "certificate_serial": p.error.context.get("serial"), "request_id": self.request_id,
                    }))
            # The announcements come first in the append: their seqs are known before it is written.
            seqs = session.seqs_for(len(announced))
            rows = []
            for (p, dac_sha), seq in zip(announced, seqs, strict=True):
                assert p.result is not None and p.result.serial is not None and p.item.key_id is not None
                rows.append(CertRow(
                    "dac", self.pai_id, p.serial, self.subject, self.pid, p.item.key_id, p.item.sha,
                    p.result.dac_der or b"", self.not_before, self.not_after, time_text, self.state.operator,
                    self.reissue_reason if p.entry is not None else None, seq, known_sha256=dac_sha,
                ))
            if rows:
                txn.add_certs(rows)
            records += self._withhold(txn, group, time_text)
            return records

        self.state.commit("issue", write, now=self.now)
        self._group_limit = min(self._group_limit * 2, self.group_size)
        # The previous group's barrier ran meanwhile; a failure (a full disk) stops the run here, with
        # this group recorded and announced but not delivered: a re-run delivers it, as after a kill.
        self._delivered()
        self._deliver(group)
        return retry

    def _withhold(self, txn: Transaction, group: list[_Pending], at: str) -> Records:
        """Record every serial the release gate withheld in the group (never used again) and announce it."""
        records: Records = []
        for p in group:
            for number in p.withheld:
                serial = serial_hex(number)
                refused = p.error is not None and p.error.context.get("serial") == serial
                code = p.error.code if refused and p.error is not None else ""
                if txn.withhold(self.pai_id, serial, code, at):
                    records.append(("dac.withheld", {
                        "ca": self.pai_id, "serial": serial, "code": code or None, "csr": p.item.src.key,
                        "request_id": self.request_id,
                    }))
        return records

    def _settle_new(self, txn: Transaction, news: list[_Pending], retry: list[_Item]) -> None:
        """Inside the transaction: the key and serial checks again, against the ledger as it is now."""
        ledger = self.state.ledger
        for p in news:
            assert p.result is not None and p.result.dac_der is not None
            # The key of the DAC itself (the release gate checked it is the CSR's key).
            p.item.key_id = key_id_of_der(p.result.dac_der)
        keys = [p.item.key_id for p in news if p.item.key_id]
        existing = ledger.find_keys(keys)
        revoked = ledger.revoked_keys(keys)
        taken = txn.serials_taken(self.pai_id, [p.serial for p in news])
        fresh: dict[str, _Pending] = {}
        for p in news:
            assert p.result is not None and p.item.key_id is not None
            entries = existing.get(p.item.key_id, [])
            if p.item.key_id in revoked:
                p.kind, p.error = "refuse", IssuanceError(
                    "issue.key_revoked", "a certificate of this device key was revoked; the key is never certified again"
                )
                continue
            mine = next((e for e in entries if e.kind == "dac" and e.ca == self.pai_id and e.pid == self.pid), None)
            if mine is not None:
                p.kind, p.entry = "reuse", mine  # another run (or name) got there first: its DAC, not a second one
                continue
            first = fresh.get(p.item.key_id)
            if first is not None:
                # The same key twice in this group: the first one's DAC; this signature is discarded.
                p.kind, p.entry, p.result, p.serial = "reuse", None, first.result, first.serial
                continue
            conflict = self._conflict(entries)
            if conflict is not None:
                p.kind, p.error = "refuse", conflict
                continue
            serial = p.serial
            if serial in taken:
                p.kind = "retry"
                retry.append(p.item)
                continue
            taken.add(serial)
            p.entry = entries[0] if entries else None  # set: a re-issue (with its reason)
            fresh[p.item.key_id] = p

    def _deliver(self, group: list[_Pending]) -> None:
        """Write the group's answers and start their barrier; the group is reported once it returned."""
        errs: list[tuple[str, bytes]] = []
        pems: list[tuple[str, bytes]] = []
        outcomes: list[Outcome] = []
        bundle_rows: list[tuple[str, str, int | None, str | None, bytes]] = []
        stale: list[str] = []
        for p in group:
            src = p.item.src
            if p.kind == "retry":
                continue  # signed again (serial collision) and answered by a later group
            if p.kind == "skip":
                entry = p.entry
                # A CSR refused by an earlier run keeps that refusal's code (see --retry-refused).
                outcomes.append(Outcome(src.name, src.key, "skipped", serial=entry.serial if entry else None,
                                        code=p.error.code if p.error is not None else None,
                                        der=entry.der if entry else None))
                if entry is not None:
                    bundle_rows.append((src.name, entry.serial, entry.pid, entry.csr_sha256, entry.der))
                continue
            if p.kind == "refuse":
                assert p.error is not None
                sha = p.item.sha if not p.error.code.startswith(("csr.", "storage.", "input.")) else None
                record = err_record(p.error, csr_key=src.key, request_id=self.request_id, time=iso(self.now), csr_sha256=sha)
                if p.error.context.get("serial"):
                    # The certificate the release gate signed and withheld (never released; recorded in the ledger).
                    record["certificate_serial"] = str(p.error.context["serial"])
                errs.append((src.name, dumps_err(record)))
                if p.item.had_answer:
                    stale.append(CsrKey.named(src.name).pem)
                outcomes.append(Outcome(src.name, src.key, "refused", code=p.error.code, message=p.error.message))
                continue
            status: Status = "issued" if p.kind == "new" else "reused"
            if p.entry is not None and p.kind == "reuse":
                if not p.entry.der_intact():
                    raise LedgerError(
                        "ledger.corrupt", f"the DER of DAC {p.entry.serial} in the ledger was altered; see `matter-pki ledger verify`"
                    )
                der, serial, csr_sha, pid = p.entry.der, p.entry.serial, p.entry.csr_sha256, p.entry.pid
            else:
                assert p.result is not None and p.result.serial is not None
                der, serial, csr_sha, pid = p.result.dac_der or b"", p.serial, p.item.sha, self.pid
            pems.append((src.name, der))
            if p.item.had_answer:
                stale.append(CsrKey.named(src.name).err)
            outcomes.append(Outcome(src.name, src.key, status, serial=serial, der=der))
            bundle_rows.append((src.name, serial, pid, csr_sha, der))
        written = _Written(outcomes, bundle_rows, stale)
        if self._writer is not None:
            # Written and made durable by the writer process while this one collects and commits the
            # next group; reported (and superseded answers removed) once that returned (``_delivered``).
            self._writer.submit(errs, pems)
            self._waiting = written
            return
        if self._out is not None:
            self._out.write_errs(errs)
            self._out.write_pems(pems)
            self._out.barrier()
        self._complete(written)

    def _complete(self, written: _Written) -> None:
        """After the group's barrier: drop superseded answers, add the bundle rows, report the outcomes."""
        if self._out is not None:
            for filename in written.stale:
                self._out.remove(filename)
        if self._bundle is not None and written.bundle_rows:
            self._bundle.add(written.bundle_rows)
        for outcome in written.outcomes:
            self._emit(outcome)


class _OpenOnce:
    """A signer factory that opens the key once per process and keeps it (a worker process opens its own)."""

    def __init__(self, factory: SignerFactory) -> None:
        self.factory = factory
        self._key: tuple[int, ec.EllipticCurvePrivateKey] | None = None

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        if self._key is None or self._key[0] != os.getpid():
            self._key = (os.getpid(), self.factory())
        return self._key[1]

    def __getstate__(self) -> dict[str, Any]:
        return {"factory": self.factory, "_key": None}  # the opened key never leaves this process


def certified_dac(state: CaState, pai_id: str, pid: int, csr: bytes) -> LedgerEntry | None:
    """The DAC this CSR's device key already has from ``pai_id`` for ``pid`` (not revoked), if any.

    What a second request for the same device would get again (a service can skip its quota).
    """
    try:
        _sha, key_id = _csr_identity(csr)
    except CsrError:
        return None
    entries = state.ledger.find_keys([key_id]).get(key_id, [])
    if state.ledger.revoked_keys([key_id]):
        return None
    return next((e for e in entries if e.kind == "dac" and e.ca == pai_id and e.pid == pid), None)


def _csr_identity(data: bytes) -> tuple[str, str]:
    """(CSR SHA-256, device key id) without verifying the signature (the batch engine does, once).

    The common shape (DER or one plain PEM block, a P-256 key right after the subject) is read
    directly; anything else goes through full intake, which also gives the exact refusal. What is
    decided from this key id before signing is checked again against the DAC's own key.
    """
    body = csr_der(data)
    if body is not None:
        try:
            info = header_end(body, 0)
            version = header_end(body, info)
            name = version + 3
            spki = name + element_length(body, name)
            if body[version : version + 3] == b"\x02\x01\x00" and body.startswith(P256_SPKI_PREFIX, spki):
                point = body[spki + len(P256_SPKI_PREFIX) - 1 : spki + len(P256_SPKI_PREFIX) + 64]
                if len(point) == 65:
                    return hashlib.sha256(body).hexdigest(), key_id_of_point(point)
        except IndexError:
            pass
    sha = csr_digest(data)  # the envelope refusals (empty, size, multiple, PEM)
    device = load_device_csr(data)
    return sha, key_id_of_point(device.public_point)


def _blocks(source: Iterator[CsrInput], size: int) -> Iterator[list[CsrInput]]:
    while block := list(islice(source, size)):
        yield block


def _pid_for(home: PkiHome, pai_id: str, pid: int | None) -> int:
    if pid is not None:
        return pid
    pai_pid = home.ca_info(pai_id).pid
    if pai_pid is None:
        raise InputError("input.pid_required", f"PAI {pai_id!r} is not product-scoped: give the DAC PID with --pid")
    return pai_pid


# -- CSR files for `dac issue` -----------------------------------------------------------------
def check_name(filename: str) -> str:
    """The output base name of a ``<name>.csr`` file, with the inbox naming rules."""
    return parse_csr_key(f"local/0000/{filename}", cloud=False).name


def read_csr_file(path: Path) -> CsrInput:
    """One CSR named explicitly on the command line (a symlink is followed: the user chose the path).

    Never blocks: a FIFO or a device is refused (``input.not_a_file``), as is a file over 4 KiB.
    """
    name = check_name(f"{path.stem}.csr")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as e:
        raise InputError("input.not_a_file", f"CSR {str(path)!r} does not exist") from e
    except OSError as e:
        raise InputError("input.unreadable", f"cannot read CSR {str(path)!r}: {e.strerror}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InputError("input.not_a_file", f"CSR {str(path)!r} is not a regular file")
        data = os.read(fd, MAX_CSR_BYTES + 1)
    except OSError as e:
        raise InputError("input.unreadable", f"cannot read CSR {str(path)!r}: {e.strerror}") from e
    finally:
        os.close(fd)
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


def csr_filenames(dir_fd: int, where: str, notes: list[str]) -> list[str]:
    """The ``*.csr`` names of an open folder, sorted; other spellings of the extension are noted, not read."""
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries if e.name.lower().endswith(".csr"))
    out = []
    for filename in names:
        if not filename.endswith(".csr"):
            notes.append(f"ignored {where}{filename}: the extension must be '.csr' (lower case)")
            continue
        out.append(filename)
    return out


def scan_csr_folder(folder: Path) -> tuple[CsrFiles, list[str]]:
    """Every ``*.csr`` directly in ``folder`` (sorted, read lazily); symlinks and non-files become refusals."""
    notes: list[str] = []
    fd = open_dir(folder)
    try:
        names = csr_filenames(fd, f"{str(folder)}/", notes)
    finally:
        os.close(fd)
    prefix = f"{folder}{os.sep}"
    # Names were checked below, once: the output name is the file name without ".csr".
    inputs = CsrFiles(lambda filename: (filename[: -len(CSR_SUFFIX)], prefix + filename), folder=folder)
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
    """Outcome of one ``dac issue``: counts, the first refusals, notes (nothing grows per CSR)."""

    totals: RunTotals
    notes: list[str]
    out_dir: Path

    def count(self, status: str) -> int:
        """How many CSRs ended with this status."""
        return self.totals.counts.get(status, 0)

    @property
    def refusals(self) -> list[Outcome]:
        """The first refusals (up to ``MAX_LISTED``)."""
        return self.totals.refusals


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
    reissue_reason: str | None = None,
    bundle: str | None = None,
    group_size: int = GROUP_SIZE,
    retry_refused: bool = False,
) -> IssueReport:
    """Issue DACs for one CSR file or every ``*.csr`` in a folder into ``out_dir`` (+ ``pai.pem``, ``paa.pem``).

    ``bundle``: also write ``<bundle>.csv`` and ``<bundle>.jsonl`` in ``out_dir``, one manifest of
    every DAC of the batch.
    """
    home.require()
    home.refuse_inside(out_dir, "the output folder")
    pid = _pid_for(home, pai_id, pid)
    inputs: list[CsrInput] | CsrFiles
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
        raise storage_error(e, f"the folder {str(out_dir)!r}") from e
    fd = open_dir(out_dir)
    lock_name = "out-" + hashlib.sha256(os.path.realpath(out_dir).encode()).hexdigest()[:16]
    try:
        with home.try_lock(lock_name), CaState.open(home, secrets) as state:
            remove_stale_temps(fd)  # left by a killed run; the folder lock is held
            issuer = DacIssuer(
                home, state, pai_id=pai_id, pid=pid, validity_days=validity_days, secrets=secrets, now=now,
                request_id=uuid.uuid4().hex, common_name=common_name, jobs=jobs, serials=serials,
                reissue_reason=reissue_reason, group_size=group_size,
            )
            out = OutputDir(fd, retry_refused=retry_refused)
            pai_pem, paa_pem = issuer.chain_pem
            out.write_if_changed("pai.pem", pai_pem)
            out.write_if_changed("paa.pem", paa_pem)
            manifest = Bundle(fd, bundle, vid=issuer.vid) if bundle is not None else None
            if on_start is not None:
                on_start(len(inputs))
            try:
                totals = issuer.run(inputs, out, on_result, bundle=manifest)
                if manifest is not None:
                    totals.bundle = manifest.finish()
            except BaseException:
                if manifest is not None:
                    manifest.abort()
                raise
    finally:
        os.close(fd)
    return IssueReport(totals, notes, out_dir)
