"""Validate a PAA → PAI → DAC chain the way the Matter SDK does, with its verdict codes.

Policy: the verdict and the code are chip's on Linux, where chip-cert and chip-tool link OpenSSL 3,
in chip's own check order. Two orders are offered (matter-rules.md §0):

* ``chip-cert`` (default): ``chip-cert validate-att-cert`` (src/tools/chip-cert/Cmd_ValidateAttCert.cpp):
  format of PAA, PAI, DAC (each read as OpenSSL reads it, the read being part of its format check);
  DAC valid at the validation time; VID/PID extraction and relations; chain verification.
* ``commissioner``: the certificate part of ``DefaultDACVerifier::VerifyAttestationInformation``
  (src/credentials/attestation_verifier/DefaultDeviceAttestationVerifier.cpp): PAI and DAC format, VID/PID
  rules (DAC PID mandatory), the PAA found by PAI AKID == PAA SKID in a file trust store that only keeps
  PAAs of at most 600 bytes passing the PAA format check (FileAttestationTrustStore.cpp), DAC valid now,
  chain verification.

A certificate over 600 bytes (kMaxDERCertLength) is invalid in every mode: chip-cert reads each file
into a 600-byte buffer, a device's certificate chain response carries at most 600 bytes, and the trust
store skips larger PAA files.

Where a commissioner built on BoringSSL (the SDK wheel, Android, Home Assistant) would decide
differently, the result says so (``divergences``, ``boringssl_result``) without changing the verdict.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from matter_pki import chip
from matter_pki.attestation import FORMAT_CODE_BY_ROLE, AttestationResult
from matter_pki.certparse import RawCertificate, parse_certificate
from matter_pki.der import DerError
from matter_pki.divergence import Divergence, boringssl_parse_problem, certificate_divergences
from matter_pki.findings import Finding, finding
from matter_pki.vidpid import VidPid, VidPidError, extract_vid_pid

Mode = Literal["chip-cert", "commissioner"]
MAX_DER = chip.MAX_DER


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict: an SDK ``AttestationResult``, the finer reason code, and a one-line reason.

    ``divergences`` lists the places where a BoringSSL-based commissioner reads these certificates
    differently (``findings`` holds them as findings; ``lint`` lists every finding of a certificate);
    ``boringssl_result`` is the verdict such a commissioner would reach, when that differs from ``result``.
    """

    result: AttestationResult
    code: str | None
    reason: str
    findings: tuple[Finding, ...] = field(default=())
    divergences: tuple[Divergence, ...] = field(default=())
    boringssl_result: AttestationResult | None = None

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
            "divergences": [d.to_dict() for d in self.divergences],
            "boringssl_result": None if self.boringssl_result is None else self.boringssl_result.name,
            "boringssl_result_code": None if self.boringssl_result is None else int(self.boringssl_result),
        }


class _Fail(Exception):
    def __init__(self, result: AttestationResult, code: str, reason: str) -> None:
        super().__init__(reason)
        self.result, self.code, self.reason = result, code, reason


@dataclass
class _Input:
    """One certificate as given: its bytes, and its parse once read."""

    role: str
    data: bytes
    raw: RawCertificate | None = None
    error: str | None = None

    def read(self, flavour: chip.Flavour = "openssl") -> RawCertificate:
        """The parsed certificate, or the role's format failure."""
        if self.raw is None and self.error is None:
            try:
                self.raw = parse_certificate(self.data)
            except (DerError, IndexError) as e:
                self.error = str(e) or type(e).__name__
        if self.raw is None:
            raise _Fail(FORMAT_CODE_BY_ROLE[self.role], "cert.der_malformed", f"{self.role.upper()}: OpenSSL cannot read it: {self.error}")
        if flavour == "boringssl":
            problem = boringssl_parse_problem(self.raw)
            if problem:
                raise _Fail(FORMAT_CODE_BY_ROLE[self.role], "cert.der_malformed", f"{self.role.upper()}: {problem}")
        return self.raw


def _fail_format(role: str, problem: chip.Problem) -> _Fail:
    return _Fail(FORMAT_CODE_BY_ROLE[role], problem.code, f"{role.upper()}: {problem.message}")


def _format(cert: _Input, size: int | None, flavour: chip.Flavour) -> RawCertificate:
    """Size, read and VerifyAttestationCertificateFormat of one certificate."""
    if size is not None and size > MAX_DER:
        raise _Fail(FORMAT_CODE_BY_ROLE[cert.role], "cert.der_too_large", f"{cert.role.upper()}: {size} bytes, over the {MAX_DER}-byte limit")
    raw = cert.read(flavour)
    problem = chip.format_check(raw, cert.role, flavour)
    if problem is not None:
        raise _fail_format(cert.role, problem)
    return raw


def _chip_cert_size(cert: _Input) -> int:
    """chip-cert re-serialises each file (i2d_X509) into a 600-byte buffer; that length counts."""
    try:
        return cert.read().reencoded_length
    except _Fail:
        return len(cert.data)


def _ids(raw: RawCertificate, role: str) -> VidPid:
    try:
        return extract_vid_pid(raw.subject)
    except VidPidError as e:
        raise _Fail(FORMAT_CODE_BY_ROLE[role], "subject.vidpid_malformed", f"{role.upper()}: {e}") from e


def _hex(value: int | None) -> str:
    return "none" if value is None else f"{value:04X}"


def _unix(at: datetime) -> int:
    return calendar.timegm(at.utctimetuple())


def _valid_now(dac: RawCertificate, at: datetime) -> None:
    if not chip.valid_at(dac, _unix(at)):
        raise _Fail(
            AttestationResult.kDacExpired,
            "chain.dac_not_valid_at_time",
            f"DAC is not valid at {at:%Y-%m-%dT%H:%M:%SZ} (notBefore {dac.not_before.text!r}, notAfter {dac.not_after.text!r})",
        )


def _chain(paa: RawCertificate, pai: RawCertificate, dac: RawCertificate, flavour: chip.Flavour) -> None:
    problem = chip.verify_chain(paa, pai, dac, flavour)
    if problem is not None:
        result = AttestationResult.kDacFormatInvalid if problem.code == "chain.dac_time_unsupported" else AttestationResult.kDacSignatureInvalid
        raise _Fail(result, problem.code, problem.message)


def _chip_cert_order(paa_in: _Input, pai_in: _Input, dac_in: _Input, at: datetime, flavour: chip.Flavour) -> None:
    paa, pai, dac = (_format(c, _chip_cert_size(c), flavour) for c in (paa_in, pai_in, dac_in))
    _valid_now(dac, at)
    dac_ids, pai_ids, paa_ids = _ids(dac, "dac"), _ids(pai, "pai"), _ids(paa, "paa")
    if dac_ids.vid is None or dac_ids.vid != pai_ids.vid:
        raise _Fail(AttestationResult.kDacVendorIdMismatch, "chain.vid_mismatch", f"DAC VID {_hex(dac_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}")
    if paa_ids.vid is not None and paa_ids.vid != dac_ids.vid:
        raise _Fail(AttestationResult.kPaiVendorIdMismatch, "chain.paa_vid_mismatch", f"PAA VID {_hex(paa_ids.vid)} vs DAC VID {_hex(dac_ids.vid)}")
    if pai_ids.pid is not None and pai_ids.pid != dac_ids.pid:
        raise _Fail(AttestationResult.kDacProductIdMismatch, "chain.pid_mismatch", f"DAC PID {_hex(dac_ids.pid)} vs PAI PID {_hex(pai_ids.pid)}")
    if paa_ids.pid is not None:
        raise _Fail(AttestationResult.kPaaFormatInvalid, "chain.paa_has_pid", f"PAA carries PID {_hex(paa_ids.pid)}")
    _chain(paa, pai, dac, flavour)


def _trusted_paa(paa_in: _Input, akid: bytes, flavour: chip.Flavour) -> RawCertificate:
    """The file trust store's answer for the PAI AKID: a PAA file of at most 600 bytes that passes the PAA format check."""
    reason = None
    if len(paa_in.data) > MAX_DER:
        code, reason = "cert.der_too_large", f"the PAA file is {len(paa_in.data)} bytes, over {MAX_DER}: the trust store skips it"
    else:
        try:
            paa = _format(paa_in, None, flavour)
        except _Fail as f:
            code, reason = f.code, f"the trust store skips the PAA: {f.reason}"
        else:
            if paa.v3.skid == akid:
                return paa
            code = "chain.paa_not_found"
    raise _Fail(AttestationResult.kPaaNotFound, code, reason or f"no trusted PAA with SKID {akid.hex().upper()}")


def _commissioner_order(paa_in: _Input, pai_in: _Input, dac_in: _Input, at: datetime, flavour: chip.Flavour) -> None:
    pai = _format(pai_in, len(pai_in.data), flavour)
    dac = _format(dac_in, len(dac_in.data), flavour)
    dac_ids, pai_ids = _ids(dac, "dac"), _ids(pai, "pai")
    if pai_ids.vid is None or dac_ids.vid != pai_ids.vid:
        raise _Fail(AttestationResult.kDacVendorIdMismatch, "chain.vid_mismatch", f"DAC VID {_hex(dac_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}")
    if dac_ids.pid is None or (pai_ids.pid is not None and pai_ids.pid != dac_ids.pid):
        raise _Fail(AttestationResult.kDacProductIdMismatch, "chain.pid_mismatch", f"DAC PID {_hex(dac_ids.pid)} vs PAI PID {_hex(pai_ids.pid)}")
    akid = pai.v3.akid.keyid if pai.v3.akid else None
    if akid is None or len(akid) != 20:
        raise _Fail(AttestationResult.kPaiFormatInvalid, "ext.akid_missing", "PAI AKID cannot be extracted")
    paa = _trusted_paa(paa_in, akid, flavour)
    paa_ids = _ids(paa, "paa")
    if paa_ids.vid is not None and paa_ids.vid != pai_ids.vid:
        raise _Fail(AttestationResult.kPaiVendorIdMismatch, "chain.paa_vid_mismatch", f"PAA VID {_hex(paa_ids.vid)} vs PAI VID {_hex(pai_ids.vid)}")
    if paa_ids.pid is not None:
        raise _Fail(AttestationResult.kPaaFormatInvalid, "chain.paa_has_pid", f"PAA carries PID {_hex(paa_ids.pid)}")
    _valid_now(dac, at)
    _chain(paa, pai, dac, flavour)


def _run(mode: str, paa: _Input, pai: _Input, dac: _Input, at: datetime, flavour: chip.Flavour = "openssl") -> ValidationResult:
    try:
        if mode == "chip-cert":
            _chip_cert_order(paa, pai, dac, at, flavour)
        elif mode == "commissioner":
            _commissioner_order(paa, pai, dac, at, flavour)
        else:
            raise ValueError(f"unknown mode {mode!r}")
    except _Fail as f:
        return ValidationResult(f.result, f.code, f.reason)
    return ValidationResult(AttestationResult.kSuccess, None, "chain is valid")


def validate_att_cert(
    *, paa: bytes, pai: bytes, dac: bytes, at: datetime, mode: Mode = "chip-cert"
) -> ValidationResult:
    """Validate DER certificates; ``at`` (tz-aware) is the time the DAC must be valid at."""
    if at.tzinfo is None:
        raise ValueError("validation time must be timezone-aware")
    at = at.astimezone(UTC)
    inputs = (_Input("paa", paa), _Input("pai", pai), _Input("dac", dac))
    verdict = _run(mode, *inputs, at)
    divergences = tuple(d for c in inputs if c.raw is not None for d in certificate_divergences(c.raw, c.role))
    bssl: AttestationResult | None = None
    if divergences:
        # BoringSSL-based commissioners read at least one certificate differently: say what they decide.
        other = _run(mode, *inputs, at, "boringssl").result
        bssl = other if other is not verdict.result else None
    findings = tuple(finding(d.code, d.message, d.role) for d in divergences)
    return ValidationResult(verdict.result, verdict.code, verdict.reason, findings, divergences, bssl)
