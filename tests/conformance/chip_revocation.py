"""Ask the Matter SDK's compiled revocation delegate (TestDACRevocationDelegateImpl) whether a certificate is revoked.

The home-assistant-chip-core wheel's ``_ChipDeviceCtrl.so`` exports the class's members. A child
process (``python chip_revocation.py --worker``) constructs one delegate per request in a zeroed
buffer, points it at the revocation-set file (``SetDeviceAttestationRevocationSetPath``, a
``std::string_view`` passed by value) and calls ``IsCertificateRevoked(const ByteSpan &)`` for each
certificate. ``CheckForRevokedDACChain`` combines two such answers (DAC first, then PAI) into
302 / 202 / 208; ``sdk_chain_code`` does the same with the SDK's booleans.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))

from tests.conformance.chip_sdk import _library_path, sdk_available  # noqa: E402

_PREFIX = "_ZN4chip11Credentials29TestDACRevocationDelegateImpl"
_CTOR = _PREFIX + "C1Ev"
_SET_PATH = _PREFIX + "37SetDeviceAttestationRevocationSetPathESt17basic_string_viewIcSt11char_traitsIcEE"
_IS_REVOKED = _PREFIX + "20IsCertificateRevokedERKNS_4SpanIKhEE"
_OBJECT_BYTES = 4096  # far above sizeof(TestDACRevocationDelegateImpl): vtable, string_view, std::string


def available() -> tuple[bool, str]:
    """Whether the compiled delegate can be called here, with a reason."""
    ok, reason = sdk_available()
    if not ok:
        return ok, reason
    lib = _library_path()
    try:
        handle = ctypes.CDLL(str(lib))
        for name in (_CTOR, _SET_PATH, _IS_REVOKED):
            getattr(handle, name)
    except (OSError, AttributeError) as e:
        return False, f"revocation delegate symbols not found: {e}"
    return True, f"TestDACRevocationDelegateImpl in {lib}"


def sdk_is_revoked_many(requests: list[tuple[Path, list[bytes]]]) -> list[list[bool]]:
    """IsCertificateRevoked for each (set file, DER certificates) request, all in one child process."""
    payload = [{"set": str(path), "certs": [c.hex() for c in certs]} for path, certs in requests]
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
        input=json.dumps(payload).encode(), capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("[")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"SDK revocation worker failed (exit {proc.returncode}): {proc.stderr.decode()[-300:]}")
    answers: list[list[bool]] = json.loads(lines[-1])
    return answers


def sdk_is_revoked(revocation_set: Path, certificates: list[bytes]) -> list[bool]:
    """The SDK delegate's IsCertificateRevoked for each DER certificate, against one set file."""
    return sdk_is_revoked_many([(revocation_set, certificates)])[0]


def sdk_chain_code(revocation_set: Path, *, dac: bytes, pai: bytes) -> int:
    """CheckForRevokedDACChain's result from the SDK's own IsCertificateRevoked answers."""
    dac_revoked, pai_revoked = sdk_is_revoked(revocation_set, [dac, pai])
    if dac_revoked and pai_revoked:
        return 208
    if pai_revoked:
        return 202
    return 302 if dac_revoked else 0


class _StringView(ctypes.Structure):
    _fields_ = [("size", ctypes.c_size_t), ("data", ctypes.c_char_p)]


class _Span(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("size", ctypes.c_size_t)]


class _ChipError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint32), ("file", ctypes.c_char_p), ("line", ctypes.c_uint32)]


def _worker() -> None:
    requests: list[dict[str, Any]] = json.loads(sys.stdin.read())
    lib = ctypes.CDLL(str(_library_path()))
    ctor = getattr(lib, _CTOR)
    ctor.restype, ctor.argtypes = None, [ctypes.c_void_p]
    set_path = getattr(lib, _SET_PATH)
    set_path.restype, set_path.argtypes = _ChipError, [ctypes.c_void_p, _StringView]
    is_revoked = getattr(lib, _IS_REVOKED)
    is_revoked.restype, is_revoked.argtypes = ctypes.c_bool, [ctypes.c_void_p, ctypes.POINTER(_Span)]
    keep: list[Any] = []  # buffers the delegates point into stay alive until exit
    results: list[list[bool]] = []
    for request in requests:
        delegate = ctypes.create_string_buffer(_OBJECT_BYTES)
        ctor(delegate)
        path = request["set"].encode()
        path_buffer = ctypes.create_string_buffer(path)
        keep += [delegate, path_buffer]
        error = set_path(delegate, _StringView(len(path), ctypes.cast(path_buffer, ctypes.c_char_p)))
        if error.code:
            raise SystemExit(f"SetDeviceAttestationRevocationSetPath failed: {error.code:#x}")
        answers = []
        for text in request["certs"]:
            der = bytes.fromhex(text)
            buffer = ctypes.create_string_buffer(der, len(der))
            keep.append(buffer)
            span = _Span(ctypes.cast(buffer, ctypes.c_void_p), len(der))
            answers.append(bool(is_revoked(delegate, ctypes.byref(span))))
        results.append(answers)
    sys.stdout.write(json.dumps(results) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if "--worker" in sys.argv:
        _worker()
    else:
        print(available())
