"""The service's one bridge to the local CA's issuing path: CSRs in memory in, per-CSR outcomes out.

Every DAC the service hands out is made by ``matter_pki.local.issue.DacIssuer``, exactly as for
``matter-pki dac issue``: the PAI's checks at the start of issuance, CSR intake, the batch engine and
its release check, the ledger (one DAC per device key and PAI: a CSR seen before gets its DAC again),
the audit log (``dac.issued`` / ``dac.refused``) and the durable order of effects (ledger
transaction, then audit append, then the answer). Nothing else in the service signs or records DACs.

What differs from the CLI, and why:

* answers go to memory (``_Collected``), not to ``<name>.pem`` files: the HTTP response is the answer,
  sent only after the ledger and audit writes of its group returned;
* each PAI's key is opened once, when the service starts (``open_keys``), and handed to every
  ``DacIssuer`` through its ``signer`` argument, so a batch never re-opens the key (file or token);
  its opening is recorded once (``key.accessed``, purpose ``serve``);
* a new ``DacIssuer`` is made for every batch, with the current time, so its start-of-issuance checks
  and the DAC validity are those of the moment the batch is signed;
* ``group_size`` is the whole batch: one ledger transaction and one audit append per batch;
* the audit record's ``csr`` field names the requester (``station:<name>/<request id>#<index>``).

One ``IssuingEngine`` is used from one thread only (it owns a ledger connection).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.csr import csr_digest
from matter_pki.errors import CsrError, MatterPkiError
from matter_pki.local.ca import operator
from matter_pki.local.home import PAA_ID
from matter_pki.local.issue import CsrInput, DacIssuer, OutputDir, der_to_pem
from matter_pki.local.keys import signer_factory
from matter_pki.local.ledger import Ledger, LedgerEntry, iso, serial_hex

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
    not start, e.g. the PAI cannot issue this PID): the caller records those.
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


class _Collected(OutputDir):
    """Answers kept in memory: the DER of each DAC delivered, by input name."""

    def __init__(self) -> None:
        super().__init__(-1)
        self.dacs: dict[str, bytes] = {}

    def answered(self, name: str) -> bool:
        """Nothing is answered before the request (the ledger decides re-delivery)."""
        return False

    def write_pem(self, name: str, der: bytes) -> None:
        """Keep the DAC."""
        self.dacs[name] = der

    def write_pems(self, dacs: list[tuple[str, bytes]]) -> None:
        """Keep several DACs."""
        self.dacs.update(dacs)

    def write_err(self, name: str, data: bytes) -> None:
        """Refusals travel in the outcome (code and message)."""

    def write_if_changed(self, name: str, data: bytes) -> None:
        """No chain files: the response carries the PAI."""


class IssuingEngine:
    """DACs for groups of in-memory CSRs of one (PAI, PID), through ``DacIssuer``; one thread only."""

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
        self._ledger: Ledger | None = None

    def open_keys(self) -> list[str]:
        """Open the key of every active PAI of the home now (start-up); returns their ids."""
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
            self.audit.record(
                "key.accessed", ca=pai_id, purpose="serve", key_store=info.key.store if info.key else None,
                operator=operator(),
            )
            self._keys[pai_id] = OpenKey(key)
        return self._keys[pai_id]

    def ledger(self) -> Ledger:
        """This thread's ledger connection."""
        if self._ledger is None:
            self._ledger = Ledger(self.home.ledger_path)
        return self._ledger

    def close(self) -> None:
        """Close the ledger connection (keys are dropped with the engine)."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        self._keys.clear()

    def issue(
        self, pai_id: str, pid: int, items: Sequence[CsrRequest], *, batch_id: str | None = None, now: datetime | None = None
    ) -> list[CsrOutcome]:
        """One outcome per item, in order; errors that stop the whole batch (ledger, audit) are raised."""
        if not items:
            return []
        moment = now or datetime.now(UTC).replace(microsecond=0)
        try:
            issuer = DacIssuer(
                self.home, self.ledger(), self.audit, pai_id=pai_id, pid=pid, validity_days=self.validity_days,
                secrets=self.secrets, now=moment, request_id=batch_id or uuid.uuid4().hex,
                common_name=self.common_name, jobs=1, group_size=len(items), signer=self.key(pai_id),
            )
        except MatterPkiError as e:
            # The batch cannot start (unknown PAI, PID not allowed, expired issuer, key unavailable):
            # every CSR of it gets the same coded refusal.
            return [CsrOutcome("refused", code=e.code, message=e.message, audited=False) for _ in items]
        sink = _Collected()
        inputs = [CsrInput(name=f"csr-{i}", key=item.ref, data=item.csr) for i, item in enumerate(items)]
        by_name = {o.name: o for o in issuer.run(inputs, sink)}
        outcomes = []
        for item in inputs:
            o = by_name[item.name]
            if o.status in ("issued", "reused"):
                outcomes.append(CsrOutcome(o.status, serial=o.serial, dac_der=sink.dacs[item.name]))
            else:
                outcomes.append(CsrOutcome("refused", code=o.code, message=o.message))
        return outcomes

    def already_certified(self, pai_id: str, pid: int, csr: bytes) -> bool:
        """True when this CSR would get a DAC from the ledger again (a station's retry costs no quota)."""
        try:
            sha = csr_digest(csr)
        except CsrError:
            return False
        entry = self.ledger().find_csr(pai_id, sha)
        return entry is not None and entry.status == "issued" and entry.pid == pid


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
