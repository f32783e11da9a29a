"""Validate a PAA → PAI → DAC chain the way the Matter SDK does, with its verdict codes.

Two check orders are offered (matter-rules.md §0):

* ``chip-cert`` (default): ``chip-cert validate-att-cert`` — format of PAA, PAI, DAC; DAC valid at
  the validation time; VID/PID extraction; VID/PID relations; OpenSSL strict chain verification
  at the DAC's notBefore.
* ``commissioner``: the certificate part of ``DefaultDACVerifier`` — no PAA format check, DAC PID
  mandatory, PAA looked up by PAI AKID == PAA SKID.

The first failing step decides the ``AttestationResult``; the result also carries a fine-grained
finding code and every finding collected on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from matter_pki.attestation import FORMAT_CODE_BY_ROLE, AttestationResult
from matter_pki.der import DerError
from matter_pki.findings import Finding, catalogue
from matter_pki.lint import (
    _BC,
    _KU,
    KU_KEY_CERT_SIGN,
    MAX_DER,
    CertView,
    decode_basic_constraints,
    decode_key_usage,
    format_failures,
    issuer_findings,
    load_view,
    run_rules,
)
from matter_pki.profiles import Role
from matter_pki.vidpid import VidPid, VidPidError, extract_vid_pid

Mode = Literal["chip-cert", "commissioner"]


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict: an SDK ``AttestationResult``, the finer reason code, and a one-line reason."""

    result: AttestationResult
    code: str | None
    reason: str
    findings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the chain is valid."""
        return self.result is AttestationResult.kSuccess

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for ``--format json``."""
        return {
            "valid": self.ok,
            "result": self.result.name,
            "result_code": int(self.result),
            "reason_code": self.code,
            "reason": self.reason,
            "findings": [f.to_dict() for f in self.findings],
        }


class _Fail(Exception):
    def __init__(self, result: AttestationResult, code: str, reason: str) -> None:
        super().__init__(reason)
        self.result, self.code, self.reason = result, code, reason


def _load(data: bytes, role: Role) -> CertView:
    try:
        return load_view(data, role)
    except DerError as e:
        raise _Fail(FORMAT_CODE_BY_ROLE[role], "cert.der_malformed", f"{role.upper()}: {e}") from e


def _format(view: CertView, collected: list[Finding], rules: dict[Role, list[Finding]]) -> None:
    findings = rules[view.role] = run_rules(view)
    collected.extend(findings)
    bad = format_failures(findings)
    if bad:
        raise _Fail(FORMAT_CODE_BY_ROLE[view.role], bad[0].code, f"{view.role.upper()}: {bad[0].message}")


def _ids(view: CertView) -> VidPid:
    try:
        return extract_vid_pid(view.raw.subject)
    except VidPidError as e:
        raise _Fail(FORMAT_CODE_BY_ROLE[view.role], "subject.vidpid_malformed", f"{view.role.upper()}: {e}") from e


def _valid_at(view: CertView, at: datetime) -> None:
    cert = view.cert
    if cert is None or not cert.not_valid_before_utc < at < cert.not_valid_after_utc:
        when = "unreadable validity" if cert is None else (
            f"valid {cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} .. {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
        raise _Fail(AttestationResult.kDacExpired, "chain.dac_not_valid_at_time", f"DAC is not valid at {at:%Y-%m-%dT%H:%M:%SZ} ({when})")


def _hex(value: int | None) -> str:
    return "none" if value is None else f"{value:04X}"


def _chain(paa: CertView, pai: CertView, dac: CertView, rules: dict[Role, list[Finding]]) -> None:
    """OpenSSL ``X509_verify_cert`` with X509_V_FLAG_X509_STRICT, evaluated at the DAC's notBefore."""
    table = catalogue()

    def fail(message: str) -> _Fail:
        return _Fail(AttestationResult.kDacSignatureInvalid, "chain.invalid", message)

    for view in (paa, pai, dac):
        if view.cert is None:
            raise fail(f"{view.role.upper()} cannot be loaded: {view.strict_error}")
        for f in rules[view.role] if view.role in rules else run_rules(view):
            if table[f.code].chip == "chain":
                raise fail(f"{view.role.upper()}: {f.message}")
    if paa.raw.issuer.canonical() != paa.raw.subject.canonical():
        raise fail("PAA is not self-issued")
    for child, parent in ((pai, paa), (dac, pai)):
        for f in issuer_findings(child, parent):
            if table[f.code].chip == "chain" and f.code != "issuer.validity":
                raise fail(f"{child.role.upper()}: {f.message}")
    for ca in (paa, pai):
        bc_ext = ca.single(_BC)
        ku_ext = ca.single(_KU)
        bc = decode_basic_constraints(bc_ext.value) if bc_ext else None
        if bc is None or not bc.ca or not bc_ext or not bc_ext.critical:
            raise fail(f"{ca.role.upper()} is not a CA with critical basicConstraints")
        if ku_ext is None or KU_KEY_CERT_SIGN not in decode_key_usage(ku_ext.value).bits:
            raise fail(f"{ca.role.upper()} keyUsage lacks keyCertSign")
        if ca.skid() is None:
            raise fail(f"{ca.role.upper()} has no subjectKeyIdentifier")
    paa_bc = decode_basic_constraints(paa.single(_BC).value)  # type: ignore[union-attr]
    if paa_bc.path_length is not None and paa_bc.path_length < 1:
        raise fail("PAA pathLenConstraint 0 forbids the PAI")
    for view in (pai, dac):
        if view.akid() is None:
            raise fail(f"{view.role.upper()} has no authorityKeyIdentifier")
    assert dac.cert is not None
    at = dac.cert.not_valid_before_utc
    for view in (paa, pai, dac):
        assert view.cert is not None
        if not view.cert.not_valid_before_utc <= at <= view.cert.not_valid_after_utc:
            raise fail(f"{view.role.upper()} is not valid at the DAC's notBefore {at:%Y-%m-%dT%H:%M:%SZ}")


def validate_att_cert(
    *, paa: bytes, pai: bytes, dac: bytes, at: datetime, mode: Mode = "chip-cert"
) -> ValidationResult:
    """Validate DER certificates; ``at`` (tz-aware) is the time the DAC must be valid at."""
    if at.tzinfo is None:
        raise ValueError("validation time must be timezone-aware")
    at = at.astimezone(UTC)
    collected: list[Finding] = []
    try:
        if mode == "chip-cert":
            _chip_cert_order(paa, pai, dac, at, collected)
        elif mode == "commissioner":
            _commissioner_order(paa, pai, dac, at, collected)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    except _Fail as f:
        return ValidationResult(f.result, f.code, f.reason, tuple(collected))
    return ValidationResult(AttestationResult.kSuccess, None, "chain is valid", tuple(collected))


def _chip_cert_order(paa_der: bytes, pai_der: bytes, dac_der: bytes, at: datetime, collected: list[Finding]) -> None:
    rules: dict[Role, list[Finding]] = {}  # each certificate's rules run once, for format and chain checks
    paa, pai, dac = _load(paa_der, Role.PAA), _load(pai_der, Role.PAI), _load(dac_der, Role.DAC)
    for view in (paa, pai, dac):
        _format(view, collected, rules)
    _valid_at(dac, at)
    dac_ids, pai_ids, paa_ids = _ids(dac), _ids(pai), _ids(paa)
    if dac_ids.vid is None or dac_ids.vid != pai_ids.vid:
        raise _Fail(
            AttestationResult.kDacVendorIdMismatch,
            "chain.vid_mismatch",
            f"DAC VID {_hex(dac_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}",
        )
    if paa_ids.vid is not None and paa_ids.vid != dac_ids.vid:
        raise _Fail(
            AttestationResult.kPaiVendorIdMismatch,
            "chain.paa_vid_mismatch",
            f"PAA VID {_hex(paa_ids.vid)} vs DAC VID {_hex(dac_ids.vid)}",
        )
    if pai_ids.pid is not None and pai_ids.pid != dac_ids.pid:
        raise _Fail(
            AttestationResult.kDacProductIdMismatch,
            "chain.pid_mismatch",
            f"DAC PID {_hex(dac_ids.pid)} vs PAI PID {_hex(pai_ids.pid)}",
        )
    if paa_ids.pid is not None:
        raise _Fail(AttestationResult.kPaaFormatInvalid, "chain.paa_has_pid", f"PAA carries PID {_hex(paa_ids.pid)}")
    _chain(paa, pai, dac, rules)


def _commissioner_order(paa_der: bytes, pai_der: bytes, dac_der: bytes, at: datetime, collected: list[Finding]) -> None:
    rules: dict[Role, list[Finding]] = {}
    pai, dac = _load(pai_der, Role.PAI), _load(dac_der, Role.DAC)
    _format(pai, collected, rules)
    _format(dac, collected, rules)
    dac_ids, pai_ids = _ids(dac), _ids(pai)
    if pai_ids.vid is None or dac_ids.vid != pai_ids.vid:
        raise _Fail(
            AttestationResult.kDacVendorIdMismatch,
            "chain.vid_mismatch",
            f"DAC VID {_hex(dac_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}",
        )
    if dac_ids.pid is None or (pai_ids.pid is not None and pai_ids.pid != dac_ids.pid):
        raise _Fail(
            AttestationResult.kDacProductIdMismatch,
            "chain.pid_mismatch",
            f"DAC PID {_hex(dac_ids.pid)} vs PAI PID {_hex(pai_ids.pid)}",
        )
    akid = pai.akid()
    if akid is None or len(akid) != 20:
        raise _Fail(AttestationResult.kPaiFormatInvalid, "ext.akid_missing", "PAI AKID cannot be extracted")
    # The trust store only loads PAAs of at most 600 bytes that pass the format check
    # (FileAttestationTrustStore).
    try:
        paa = load_view(paa_der, Role.PAA)
    except DerError:
        paa = None
    if paa is not None:
        rules[Role.PAA] = run_rules(paa)
    if paa is None or len(paa.raw.der) > MAX_DER or format_failures(rules[Role.PAA]) or paa.skid() != akid:
        raise _Fail(AttestationResult.kPaaNotFound, "chain.paa_not_found", f"no trusted PAA with SKID {akid.hex().upper()}")
    paa_ids = _ids(paa)
    if paa_ids.vid is not None and paa_ids.vid != pai_ids.vid:
        raise _Fail(
            AttestationResult.kPaiVendorIdMismatch,
            "chain.paa_vid_mismatch",
            f"PAA VID {_hex(paa_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}",
        )
    if paa_ids.pid is not None:
        raise _Fail(AttestationResult.kPaaFormatInvalid, "chain.paa_has_pid", f"PAA carries PID {_hex(paa_ids.pid)}")
    _valid_at(dac, at)
    _chain(paa, pai, dac, rules)
