"""Ask the Matter SDK's compiled attestation checks (home-assistant-chip-core wheel) for a verdict."""

from __future__ import annotations

import base64
import binascii
import functools
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "SDK_WHEEL",
    "SdkUnavailable",
    "SdkCrashed",
    "SdkVerdict",
    "sdk_available",
    "sdk_validate_att_cert",
    "sdk_validate_many",
    "sdk_commissioner_many",
    "sdk_format_check",
    "sdk_format_check_many",
    "sdk_vidpid",
    "sdk_vidpid_many",
    "sdk_akid",
    "sdk_skid",
    "sdk_valid_now",
    "sdk_valid_at_issuance",
    "pem_to_der",
]

SDK_WHEEL = "home-assistant-chip-core==2025.7.0"
_LIB_NAME = "_ChipDeviceCtrl.so"

# Mangled names in namespace chip::Crypto (from `nm -D _ChipDeviceCtrl.so`).
_SYMBOLS = {
    "format": "_ZN4chip6Crypto34VerifyAttestationCertificateFormatERKNS_4SpanIKhEENS0_19AttestationCertTypeE",
    "vidpid": "_ZN4chip6Crypto25ExtractVIDPIDFromX509CertERKNS_4SpanIKhEERNS0_21AttestationCertVidPidE",
    "akid": "_ZN4chip6Crypto23ExtractAKIDFromX509CertERKNS_4SpanIKhEERNS1_IhEE",
    "skid": "_ZN4chip6Crypto23ExtractSKIDFromX509CertERKNS_4SpanIKhEERNS1_IhEE",
    "issuance": "_ZN4chip6Crypto28IsCertificateValidAtIssuanceERKNS_4SpanIKhEES5_",
    "now": "_ZN4chip6Crypto31IsCertificateValidAtCurrentTimeERKNS_4SpanIKhEE",
    "chain": "_ZN4chip6Crypto24ValidateCertificateChainEPKhmS2_mS2_mRNS0_32CertificateChainValidationResultE",
}

_ROLES = {"paa": 0, "pai": 1, "dac": 2}

# CertificateChainValidationResult -> AttestationVerificationResult (matter-rules.md §7.2).
_CHAIN_MAP = {100: 105, 101: 106, 200: 203, 201: 204, 300: 303, 301: 304, 400: 301, 500: 700, 600: 702}

_CRASHED = "sdk crashed"


class SdkUnavailable(RuntimeError):
    """The optional SDK wheel or its system libraries are not usable here."""


class SdkCrashed(RuntimeError):
    """The native SDK code crashed (or hung) on this input."""


@dataclass(frozen=True)
class SdkVerdict:
    """The SDK's AttestationVerificationResult for one chain (code None when the SDK crashed)."""

    code: int | None
    detail: str

    @property
    def crashed(self) -> bool:
        """True when the native code died before giving a verdict."""
        return self.code is None


def pem_to_der(data: bytes | str) -> bytes:
    """Return the DER of the first CERTIFICATE block (base64 only, no ASN.1 parsing); DER passes through."""
    raw = data.encode("ascii") if isinstance(data, str) else data
    m = re.search(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", raw, re.S)
    if m is None:
        return raw
    return base64.b64decode(b"".join(m.group(1).split()))


# ----------------------------------------------------------------------------------------------------
# Parent side


def _library_path() -> Path | None:
    """Locate chip/_ChipDeviceCtrl.so without importing the chip package."""
    try:
        spec = importlib.util.find_spec("chip")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / _LIB_NAME
        if p.is_file():
            return p
    return None


@functools.lru_cache(maxsize=1)
def sdk_available() -> tuple[bool, str]:
    """Whether the SDK library loads and exports every needed symbol, with a reason; never raises."""
    try:
        lib = _library_path()
        if lib is None:
            return False, f"Matter SDK wheel not installed (pip install --no-deps {SDK_WHEEL})"
        try:
            out = _spawn([{"op": "ping"}], timeout=60.0)
        except SdkUnavailable as exc:
            return False, str(exc)
        if out.results and out.results[0].get("ok"):
            return True, f"Matter SDK library at {lib}"
        return False, f"SDK worker failed to start: {out.failure or out.results}"
    except Exception as exc:  # noqa: BLE001 - the contract is to never raise
        return False, f"SDK availability check failed: {exc!r}"


@dataclass
class _SpawnOutcome:
    results: list[dict[str, Any]]
    failure: str | None  # None when every request got an answer


def _spawn(requests: list[dict[str, Any]], timeout: float) -> _SpawnOutcome:
    """Run one worker process over the requests; return the answers it managed to give."""
    payload = "".join(json.dumps(r) + "\n" for r in requests)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    try:
        proc = subprocess.run(cmd, input=payload.encode(), capture_output=True, timeout=timeout, check=False)
        stdout, stderr, rc = proc.stdout, proc.stderr, proc.returncode
        failure = None
    except subprocess.TimeoutExpired as exc:
        stdout, stderr, rc = exc.stdout or b"", exc.stderr or b"", None
        failure = f"timed out after {timeout:.0f} s"
    results: list[dict[str, Any]] = []
    for line in stdout.decode(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut short by the crash
        if "fatal" in msg:
            raise SdkUnavailable(msg["fatal"])
        results.append(msg)
    if failure is None and (rc != 0 or len(results) < len(requests)):
        # The SDK's own log lines ("[ts][pid:tid] CHIP:...") are noise here; keep anything else.
        lines = [
            ln for ln in stderr.decode(errors="replace").splitlines() if ln.strip() and "CHIP:" not in ln
        ]
        if rc is not None and rc < 0:
            how = (
                f"killed by {signal.Signals(-rc).name}" if -rc in signal.valid_signals() else f"signal {-rc}"
            )
        else:
            how = f"exit status {rc}"
        failure = f"worker {how}" + (f"; stderr: {lines[-1][-200:]}" if lines else "")
    return _SpawnOutcome(results, failure)


def _run_requests(requests: list[dict[str, Any]], per_request_timeout: float = 5.0) -> list[dict[str, Any]]:
    """Answer requests in as few processes as possible; a crashing input loses only its own answer."""
    ok, reason = sdk_available()
    if not ok:
        raise SdkUnavailable(reason)
    answers: list[dict[str, Any] | None] = [None] * len(requests)
    pending = list(range(len(requests)))
    while pending:
        batch = pending
        out = _spawn([requests[i] for i in batch], timeout=30.0 + per_request_timeout * len(batch))
        for i, res in zip(batch, out.results, strict=False):  # a crash leaves a short list
            answers[i] = res
        rest = batch[len(out.results) :]
        if out.failure is None or not rest:
            pending = rest
            continue
        culprit, pending = rest[0], rest[1:]
        if len(batch) == 1:
            answers[culprit] = {"crashed": f"{_CRASHED}: {out.failure}"}
            continue
        # Re-run the input that was in flight on its own, so a crash caused by an earlier input's
        # corrupted state is not blamed on it.
        alone = _spawn([requests[culprit]], timeout=30.0 + per_request_timeout)
        answers[culprit] = alone.results[0] if alone.results else {"crashed": f"{_CRASHED}: {alone.failure}"}
    return [a if a is not None else {"crashed": _CRASHED} for a in answers]


def _hex(der: bytes) -> str:
    return bytes(der).hex()


def _verdict(answer: dict[str, Any]) -> SdkVerdict:
    if "crashed" in answer:
        return SdkVerdict(None, answer["crashed"])
    if "error" in answer:
        return SdkVerdict(None, f"harness error: {answer['error']}")
    return SdkVerdict(int(answer["code"]), str(answer["detail"]))


def sdk_validate_many(chains: list[tuple[bytes, bytes, bytes]]) -> list[SdkVerdict]:
    """Verdicts for many (paa, pai, dac) DER triples, in the order of `chip-cert validate-att-cert`."""
    reqs = [{"op": "chain", "paa": _hex(a), "pai": _hex(i), "dac": _hex(d)} for a, i, d in chains]
    return [_verdict(a) for a in _run_requests(reqs)]


def sdk_commissioner_many(chains: list[tuple[bytes, bytes, bytes]]) -> list[SdkVerdict]:
    """Verdicts for many (paa, pai, dac) DER triples, in the commissioner's order (PAA as trust store)."""
    reqs = [{"op": "commissioner", "paa": _hex(a), "pai": _hex(i), "dac": _hex(d)} for a, i, d in chains]
    return [_verdict(a) for a in _run_requests(reqs)]


def sdk_validate_att_cert(paa: bytes, pai: bytes, dac: bytes) -> SdkVerdict:
    """Verdict for one PAA/PAI/DAC DER chain, in the order of `chip-cert validate-att-cert`."""
    return sdk_validate_many([(paa, pai, dac)])[0]


def _single(answer: dict[str, Any]) -> dict[str, Any]:
    if "crashed" in answer:
        raise SdkCrashed(answer["crashed"])
    if "error" in answer:
        raise RuntimeError(f"harness error: {answer['error']}")
    return answer


def _role(role: str | int) -> int:
    if isinstance(role, int):
        return role
    return _ROLES[role.lower()]


def sdk_format_check_many(items: list[tuple[bytes, str | int]]) -> list[int | None]:
    """VerifyAttestationCertificateFormat for many (der, role) pairs: 0, a ChipError code, or None on crash."""
    reqs = [{"op": "format", "der": _hex(d), "role": _role(r)} for d, r in items]
    return [None if "crashed" in a else int(_single(a)["err"]) for a in _run_requests(reqs)]


def sdk_format_check(der: bytes, role: str | int) -> int:
    """VerifyAttestationCertificateFormat: 0 or the ChipError code (role paa/pai/dac); SdkCrashed on crash."""
    return int(_single(_run_requests([{"op": "format", "der": _hex(der), "role": _role(role)}])[0])["err"])


def _vidpid_result(answer: dict[str, Any]) -> tuple[int | None, int | None] | str:
    a = _single(answer)
    if a["err"]:
        return f"0x{a['err']:x} at {a['where']}"
    return a["vid"], a["pid"]


def sdk_vidpid_many(ders: list[bytes]) -> list[tuple[int | None, int | None] | str]:
    """ExtractVIDPIDFromX509Cert for many certificates ("sdk crashed: ..." string on crash)."""
    answers = _run_requests([{"op": "vidpid", "der": _hex(d)} for d in ders])
    return [a["crashed"] if "crashed" in a else _vidpid_result(a) for a in answers]


def sdk_vidpid(der: bytes) -> tuple[int | None, int | None] | str:
    """ExtractVIDPIDFromX509Cert: (vid, pid) with None for absent, or an error string "0x59 at file:line"."""
    return _vidpid_result(_run_requests([{"op": "vidpid", "der": _hex(der)}])[0])


def _kid(op: str, der: bytes) -> bytes | str:
    a = _single(_run_requests([{"op": op, "der": _hex(der)}])[0])
    return bytes.fromhex(a["kid"]) if not a["err"] else f"0x{a['err']:x} at {a['where']}"


def sdk_akid(der: bytes) -> bytes | str:
    """ExtractAKIDFromX509Cert: the key id bytes, or an error string."""
    return _kid("akid", der)


def sdk_skid(der: bytes) -> bytes | str:
    """ExtractSKIDFromX509Cert: the key id bytes, or an error string."""
    return _kid("skid", der)


def sdk_valid_now(der: bytes) -> int:
    """IsCertificateValidAtCurrentTime: 0 or the ChipError code (0x4e when expired/not yet valid)."""
    return int(_single(_run_requests([{"op": "now", "der": _hex(der)}])[0])["err"])


def sdk_valid_at_issuance(candidate: bytes, issuer: bytes) -> int:
    """IsCertificateValidAtIssuance: 0 or the ChipError code."""
    req = {"op": "issuance", "der": _hex(candidate), "issuer": _hex(issuer)}
    return int(_single(_run_requests([req])[0])["err"])


# ----------------------------------------------------------------------------------------------------
# Worker side (runs in a child process; only the standard library)


class _Sdk:
    """ctypes bindings to the chip::Crypto functions."""

    def __init__(self, path: Path) -> None:
        import ctypes

        c = ctypes

        class ChipError(c.Structure):
            _fields_ = [("code", c.c_uint32), ("file", c.c_char_p), ("line", c.c_uint32)]

        class Span(c.Structure):
            _fields_ = [("data", c.c_void_p), ("size", c.c_size_t)]

        class OptU16(c.Structure):
            _fields_ = [("has_value", c.c_bool), ("value", c.c_uint16)]

        class VidPid(c.Structure):
            _fields_ = [("vid", OptU16), ("pid", OptU16)]

        # ChipError is 24 bytes in this build (source tracking compiled in): returned via hidden pointer.
        assert c.sizeof(ChipError) == 24 and c.sizeof(VidPid) == 8
        self.c, self.ChipError, self.Span, self.VidPid = c, ChipError, Span, VidPid
        lib = c.CDLL(str(path))
        span_p = c.POINTER(Span)
        sig: dict[str, list[Any]] = {
            "format": [span_p, c.c_int],
            "vidpid": [span_p, c.POINTER(VidPid)],
            "akid": [span_p, span_p],
            "skid": [span_p, span_p],
            "issuance": [span_p, span_p],
            "now": [span_p],
            "chain": [c.c_void_p, c.c_size_t] * 3 + [c.POINTER(c.c_int)],
        }
        self.fn: dict[str, Any] = {}
        for key, name in _SYMBOLS.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = ChipError, sig[key]
            self.fn[key] = f

    def _span(self, der: bytes) -> tuple[Any, Any]:
        buf = self.c.create_string_buffer(der, max(len(der), 1))
        return buf, self.Span(self.c.cast(buf, self.c.c_void_p), len(der))

    @staticmethod
    def _err(e: Any) -> tuple[int, str]:
        f = e.file.decode(errors="replace") if e.file else "?"
        return int(e.code), f"{f}:{e.line}"

    def format(self, der: bytes, role: int) -> tuple[int, str]:
        buf, s = self._span(der)
        return self._err(self.fn["format"](self.c.byref(s), role))

    def now(self, der: bytes) -> tuple[int, str]:
        buf, s = self._span(der)
        return self._err(self.fn["now"](self.c.byref(s)))

    def issuance(self, der: bytes, issuer: bytes) -> tuple[int, str]:
        b1, s1 = self._span(der)
        b2, s2 = self._span(issuer)
        return self._err(self.fn["issuance"](self.c.byref(s1), self.c.byref(s2)))

    def vidpid(self, der: bytes) -> tuple[int, str, int | None, int | None]:
        buf, s = self._span(der)
        out = self.VidPid()  # zeroed: a non-empty Optional makes extraction fail with WRONG_CERT_DN
        err, where = self._err(self.fn["vidpid"](self.c.byref(s), self.c.byref(out)))
        vid = int(out.vid.value) if out.vid.has_value else None
        pid = int(out.pid.value) if out.pid.has_value else None
        return err, where, vid, pid

    def kid(self, which: str, der: bytes) -> tuple[int, str, bytes]:
        buf, s = self._span(der)
        kbuf = self.c.create_string_buffer(64)
        ks = self.Span(self.c.cast(kbuf, self.c.c_void_p), 64)
        err, where = self._err(self.fn[which](self.c.byref(s), self.c.byref(ks)))
        return err, where, kbuf.raw[: ks.size] if err == 0 else b""

    def chain(self, paa: bytes, pai: bytes, dac: bytes) -> tuple[int, str, int]:
        bufs = [self._span(x) for x in (paa, pai, dac)]
        result = self.c.c_int(-1)
        args: list[Any] = []
        for (_, s), der in zip(bufs, (paa, pai, dac), strict=True):
            args += [s.data, len(der)]
        err, where = self._err(self.fn["chain"](*args, self.c.byref(result)))
        return err, where, int(result.value)


def _fail(code: int, fn: str, err: int, where: str) -> dict[str, Any]:
    return {"code": code, "detail": f"{fn}: CHIP_ERROR 0x{err:x} at {where}"}


def _check_chain(sdk: _Sdk, paa: bytes, pai: bytes, dac: bytes) -> dict[str, Any]:
    """The check order of `chip-cert validate-att-cert` (matter-rules.md §0.1)."""
    for der, role, name, code in ((paa, 0, "PAA", 105), (pai, 1, "PAI", 203), (dac, 2, "DAC", 303)):
        err, where = sdk.format(der, role)
        if err:
            return _fail(code, f"VerifyAttestationCertificateFormat({name})", err, where)
    err, where = sdk.now(dac)
    if err:
        return _fail(300, "IsCertificateValidAtCurrentTime(DAC)", err, where)
    ids: dict[str, tuple[int | None, int | None]] = {}
    for der, name, code in ((dac, "DAC", 303), (pai, "PAI", 203), (paa, "PAA", 105)):
        err, where, vid, pid = sdk.vidpid(der)
        if err:
            return _fail(code, f"ExtractVIDPIDFromX509Cert({name})", err, where)
        ids[name] = (vid, pid)
    (dvid, dpid), (ivid, ipid), (avid, apid) = ids["DAC"], ids["PAI"], ids["PAA"]
    if dvid is None or dvid != ivid:
        return {"code": 305, "detail": f"VID rule: DAC VID {dvid} vs PAI VID {ivid}"}
    if avid is not None and avid != dvid:
        return {"code": 205, "detail": f"VID rule: PAA VID {avid} vs DAC VID {dvid}"}
    if ipid is not None and ipid != dpid:
        return {"code": 306, "detail": f"PID rule: PAI PID {ipid} vs DAC PID {dpid}"}
    if apid is not None:
        return {"code": 105, "detail": f"PID rule: PAA carries PID {apid}"}
    err, where, result = sdk.chain(paa, pai, dac)
    if err or result != 0:
        code = _CHAIN_MAP.get(result, 301)
        return {
            "code": code,
            "detail": f"ValidateCertificateChain: CHIP_ERROR 0x{err:x} at {where}, "
            f"CertificateChainValidationResult {result}",
        }
    return {"code": 0, "detail": "all chip-cert validate-att-cert checks passed"}


def _check_commissioner(sdk: _Sdk, paa: bytes, pai: bytes, dac: bytes) -> dict[str, Any]:
    """The certificate part of DefaultDACVerifier::VerifyAttestationInformation (matter-rules.md §0.2).

    The PAA plays the file trust store: it is found only if it is at most 600 bytes, passes the PAA
    format check and its SKID equals the PAI AKID (FileAttestationTrustStore.cpp).
    """
    if not dac:
        return {"code": 701, "detail": "empty DAC"}
    if not pai:
        return {"code": 207, "detail": "no PAI"}
    for der, role, name, code in ((pai, 1, "PAI", 203), (dac, 2, "DAC", 303)):
        err, where = sdk.format(der, role)
        if err:
            return _fail(code, f"VerifyAttestationCertificateFormat({name})", err, where)
    ids: dict[str, tuple[int | None, int | None]] = {}
    for der, name, code in ((dac, "DAC", 303), (pai, "PAI", 203)):
        err, where, vid, pid = sdk.vidpid(der)
        if err:
            return _fail(code, f"ExtractVIDPIDFromX509Cert({name})", err, where)
        ids[name] = (vid, pid)
    (dvid, dpid), (ivid, ipid) = ids["DAC"], ids["PAI"]
    if ivid is None or ivid != dvid:
        return {"code": 305, "detail": f"VID rule: PAI VID {ivid} vs DAC VID {dvid}"}
    if dpid is None:
        return {"code": 306, "detail": "PID rule: DAC without PID"}
    if ipid is not None and ipid != dpid:
        return {"code": 306, "detail": f"PID rule: PAI PID {ipid} vs DAC PID {dpid}"}
    err, where, akid = sdk.kid("akid", pai)
    if err:
        return _fail(203, "ExtractAKIDFromX509Cert(PAI)", err, where)
    found = False
    if 0 < len(paa) <= 600 and sdk.format(paa, 0)[0] == 0:
        skid_err, _, skid = sdk.kid("skid", paa)
        found = not skid_err and skid == akid
    if not found:
        return {"code": 101, "detail": "trust store: no PAA with SKID == PAI AKID"}
    err, where, avid, apid = sdk.vidpid(paa)
    if err:
        return _fail(105, "ExtractVIDPIDFromX509Cert(PAA)", err, where)
    if avid is not None and avid != ivid:
        return {"code": 205, "detail": f"VID rule: PAA VID {avid} vs PAI VID {ivid}"}
    if apid is not None:
        return {"code": 105, "detail": f"PID rule: PAA carries PID {apid}"}
    err, where = sdk.now(dac)
    if err:
        return _fail(300, "IsCertificateValidAtCurrentTime(DAC)", err, where)
    err, where, result = sdk.chain(paa, pai, dac)
    if err or result != 0:
        return {
            "code": _CHAIN_MAP.get(result, 301),
            "detail": f"ValidateCertificateChain: CHIP_ERROR 0x{err:x} at {where}, "
            f"CertificateChainValidationResult {result}",
        }
    return {"code": 0, "detail": "all commissioner certificate checks passed"}


def _handle(sdk: _Sdk, req: dict[str, Any]) -> dict[str, Any]:
    op = req["op"]
    der = bytes.fromhex(req.get("der", ""))
    if op == "ping":
        return {"ok": True}
    if op == "chain":
        return _check_chain(sdk, *(bytes.fromhex(req[k]) for k in ("paa", "pai", "dac")))
    if op == "commissioner":
        return _check_commissioner(sdk, *(bytes.fromhex(req[k]) for k in ("paa", "pai", "dac")))
    if op == "format":
        err, where = sdk.format(der, int(req["role"]))
        return {"err": err, "where": where}
    if op == "now":
        err, where = sdk.now(der)
        return {"err": err, "where": where}
    if op == "issuance":
        err, where = sdk.issuance(der, bytes.fromhex(req["issuer"]))
        return {"err": err, "where": where}
    if op == "vidpid":
        err, where, vid, pid = sdk.vidpid(der)
        return {"err": err, "where": where, "vid": vid, "pid": pid}
    if op in ("akid", "skid"):
        err, where, kid = sdk.kid(op, der)
        return {"err": err, "where": where, "kid": kid.hex()}
    if op == "_abort":  # test hook: simulate a native crash
        os.abort()
    raise ValueError(f"unknown op {op!r}")


def _worker() -> int:
    """Read JSON requests on stdin, write one JSON answer per line on the original stdout."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the SDK logs to stdout; keep the answer channel clean
    path = _library_path()
    try:
        if path is None:
            raise OSError(f"Matter SDK wheel not installed (pip install --no-deps {SDK_WHEEL})")
        sdk = _Sdk(path)
    except (OSError, AttributeError, AssertionError) as exc:
        out.write(json.dumps({"fatal": f"cannot load the Matter SDK library: {exc}"}) + "\n")
        return 3
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _handle(sdk, json.loads(line))
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            answer = {"error": repr(exc)}
        out.write(json.dumps(answer) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker())
    print(sdk_available()[1])
