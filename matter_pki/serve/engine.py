"""The service's one bridge to the local CA's issuing path: CSRs in memory in, per-CSR outcomes out.

Every DAC the service hands out is made by ``matter_pki.local.issue.DacIssuer``, exactly as for
``matter-pki dac issue``: the issuing CA's checks at the start of issuance and at every commit (a
revoked or expired PAI issues nothing: ``issue.ca_revoked`` / ``issue.ca_expired``), CSR intake, the
batch engine and its release gate, the device-key rules of the ledger (a key certified by this PAI
for this PID gets its DAC again; a revoked key, or one certified elsewhere, is refused:
``issue.key_revoked`` / ``issue.key_reused``), and the commit protocol of ``matter_pki.local.state``
(ledger transaction, then audit append naming it, then the answer). Nothing else in the service
signs or records DACs.

What differs from the CLI, and why:

* the home is opened once, on the signing thread (``CaState.open``: the ledger checked deeply and
  cross-checked with the signed audit log before the first DAC), and stays open;
* answers go to memory (``DacIssuer.issue_csrs``), not to ``<name>.pem`` files: the HTTP response
  is the answer, sent only after the ledger and audit writes of its group returned;
* each PAI's key is opened once, when the service starts (``open_keys``), and handed to every
  ``DacIssuer`` through its ``signer`` argument, so a batch never re-opens the key (file or token);
  its opening is recorded once (``key.accessed``, purpose ``serve``);
* a new ``DacIssuer`` is made for every batch, with the current time, so its start-of-issuance checks
  and the DAC validity are those of the moment the batch is signed;
* the first group commit is the whole batch: one ledger transaction and one audit append per batch;
* the audit record's ``csr`` field names the requester (``station:<name>/<request id>#<index>``).

One ``IssuingEngine`` is used from one thread only (it owns a ledger connection and its audit log
instance, which the same thread's other records must use).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.errors import AuditError, LedgerError, MatterPkiError, StorageError
from matter_pki.local.home import PAA_ID
from matter_pki.local.issue import CsrInput, DacIssuer, certified_dac, der_to_pem
from matter_pki.local.keys import signer_factory
from matter_pki.local.ledger import Ledger, LedgerEntry, iso, serial_hex
from matter_pki.local.state import CaState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography.hazmat.primitives.asymmetric import ec

    from matter_pki.audit import AuditLog
    from matter_pki.local.home import PkiHome
    from matter_pki.local.keys import Secrets

Status = Literal["issued", "reused", "refused"]


@dataclass(frozen=True, slots=True)
class CsrRequest:
    """One CSR to answer and who asked for it (the audit record's ``csr`` field)."""

    ref: str
    csr: bytes


@dataclass(frozen=True, slots=True)
class CsrOutcome:
    """The answer for one CSR: a DAC (new or from the ledger) or a coded refusal.

    ``audited`` is False only for refusals the issuing path did not record itself (the batch could
    not start, e.g. the PAI cannot issue this PID, or was revoked): the caller records those.
    """

    status: Status
    serial: str | None = None
    dac_der: bytes | None = None
    code: str | None = None
    message: str | None = None
    audited: bool = True


@dataclass(frozen=True, slots=True)
class OpenKey:
    """A signer factory that returns a key opened once (``batch.SignerFactory``)."""

    key: ec.EllipticCurvePrivateKey

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """The open key."""
        return self.key


class IssuingEngine:
    """DACs for groups of in-memory CSRs of one (PAI, PID), through ``DacIssuer``; one thread only.

    ``audit``: the home's audit log (signing with its audit key), used by this engine's thread only.
    """

    def __init__(
        self,
        home: PkiHome,
        secrets: Secrets,
        audit: AuditLog,
        *,
        validity_days: int | None = None,
        common_name: str | None = "Matter DAC",
    ) -> None:
        self.home, self.secrets, self.audit = home, secrets, audit
        self.validity_days, self.common_name = validity_days, common_name
        self._keys: dict[str, OpenKey] = {}
        self._state: CaState | None = None

    def state(self) -> CaState:
        """The home's ledger and audit log, opened (and cross-checked) on first use by this thread."""
        if self._state is None:
            self._state = CaState.open(self.home, self.secrets, audit=self.audit)
        return self._state

    def open_keys(self) -> list[str]:
        """Open the home and the key of every active PAI now (start-up); returns the PAIs' ids."""
        self.state()
        opened = []
        for pai_id in self.home.pai_ids():
            info = self.home.ca_info(pai_id)
            if info.state == "active" and info.key is not None:
                self.key(pai_id)
                opened.append(pai_id)
        return opened

    def key(self, pai_id: str) -> OpenKey:
        """The PAI's key, opened on first use and kept open (its opening is audited once)."""
        if pai_id not in self._keys:
            info = self.home.ca_info(pai_id)
            key = signer_factory(self.home, pai_id, self.secrets)()
            self.state().record("key.accessed", ca=pai_id, purpose="serve", key_store=info.key.store if info.key else None)
            self._keys[pai_id] = OpenKey(key)
        return self._keys[pai_id]

    def ledger(self) -> Ledger:
        """This thread's ledger connection."""
        return self.state().ledger

    def close(self) -> None:
        """Close the ledger connection (keys are dropped with the engine)."""
        if self._state is not None:
            self._state.close()
            self._state = None
        self._keys.clear()

    def issue(
        self, pai_id: str, pid: int, items: Sequence[CsrRequest], *, batch_id: str | None = None, now: datetime | None = None
    ) -> list[CsrOutcome]:
        """One outcome per item, in order; errors that stop the whole batch (ledger, audit, storage) are raised."""
        if not items:
            return []
        moment = now or datetime.now(UTC).replace(microsecond=0)
        state = self.state()
        try:
            issuer = DacIssuer(
                self.home, state, pai_id=pai_id, pid=pid, validity_days=self.validity_days, secrets=self.secrets,
                now=moment, request_id=batch_id or uuid.uuid4().hex, common_name=self.common_name, jobs=1,
                group_size=len(items), first_group=len(items), signer=self.key(pai_id),
            )
        except (LedgerError, AuditError, StorageError):
            raise
        except MatterPkiError as e:
            # The batch cannot start (unknown PAI, PID not allowed, revoked or expired issuer, key
            # unavailable): every CSR of it gets the same coded refusal.
            return [CsrOutcome("refused", code=e.code, message=e.message, audited=False) for _ in items]
        inputs = [CsrInput(name=f"csr-{i}", key=item.ref, data=item.csr) for i, item in enumerate(items)]
        by_name = {o.name: o for o in issuer.issue_csrs(inputs)}
        outcomes = []
        for item in inputs:
            o = by_name[item.name]
            if o.status in ("issued", "reused") and o.der is not None:
                outcomes.append(CsrOutcome("issued" if o.status == "issued" else "reused", serial=o.serial, dac_der=o.der))
            else:
                outcomes.append(CsrOutcome("refused", code=o.code, message=o.message))
        return outcomes

    def already_certified(self, pai_id: str, pid: int, csr: bytes) -> bool:
        """True when this CSR's device key would get its DAC from the ledger again (a station's retry costs no quota)."""
        return certified_dac(self.state(), pai_id, pid, csr) is not None


class LedgerReader:
    """Read-only questions the API answers from the ledger and the home; one thread only."""

    def __init__(self, home: PkiHome) -> None:
        self.home = home
        self._ledger: Ledger | None = None
        self._chain: dict[str, tuple[bytes, bytes]] = {}

    def dac(self, serial: int, pai_id: str) -> LedgerEntry | None:
        """The DAC with this serial issued by this PAI, if any."""
        if self._ledger is None:
            self._ledger = Ledger(self.home.ledger_path)
        for entry in self._ledger.find_serial(serial_hex(serial), pai_id):
            if entry.kind == "dac":
                return entry
        return None

    def chain(self, pai_id: str) -> tuple[bytes, bytes]:
        """(PAI DER, PAA DER)."""
        if pai_id not in self._chain:
            pai = self.home.load_cert(pai_id).public_bytes(Encoding.DER)
            paa = self.home.load_cert(PAA_ID).public_bytes(Encoding.DER)
            self._chain[pai_id] = (pai, paa)
        return self._chain[pai_id]

    def describe_pai(self, pai_id: str) -> dict[str, Any]:
        """JSON-ready facts about a PAI: ids, subject, serial, validity, and its chain as PEM."""
        info = self.home.ca_info(pai_id)
        cert = self.home.load_cert(pai_id)
        pai_der, paa_der = self.chain(pai_id)
        return {
            "id": pai_id,
            "vid": f"{info.vid:04X}" if info.vid is not None else None,
            "pid": f"{info.pid:04X}" if info.pid is not None else None,
            "subject": cert.subject.rfc4514_string(),
            "serial": serial_hex(cert.serial_number),
            "not_before": iso(cert.not_valid_before_utc),
            "not_after": iso(cert.not_valid_after_utc),
            "certificate": der_to_pem(pai_der).decode(),
            "paa_certificate": der_to_pem(paa_der).decode(),
        }

    def close(self) -> None:
        """Close the ledger connection."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
