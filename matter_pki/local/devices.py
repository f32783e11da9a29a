"""Factory device key pairs and CSRs (``matter-pki csr generate``): P-256, one key per device.

File store: ``<name>.csr`` and ``<name>.key``, a device key file (format below, mode 0600) sealed
with AES-256-GCM under a key derived once per run from the device-key passphrase (scrypt). One
KDF per run instead of one per key is what makes thousands of keys a second possible; a guess at
the passphrase still costs an attacker one full scrypt, as it did before (every key of a run
shares the passphrase, so per-key salts only ever multiplied the legitimate user's cost).

PKCS#11 store: the key pair is generated on the token (label ``<name>``); only ``<name>.csr`` is
written, plus ``pkcs11-keys.json`` mapping names to token key ids.

Crash safety (file store): devices are made in chunks. A chunk's files are written to temporary
names, one file-system barrier (``syncfs``) makes them durable, then each key and then each CSR
is linked to its final name (``link``, which never replaces a file) and the folder is synced.
So a final name only ever holds a whole, durable file, and a CSR never exists without its key. A
journal (``.matter-pki-csr-generate.json``) lives in the folder while a run is unfinished; the
same command run again finishes that run (same salt, same passphrase), anything else refuses.

Device key file, version 1: PEM armour ``MATTER-PKI ENCRYPTED DEVICE KEY`` around
``header || nonce(12) || point(65) || len(1) || name || AES-256-GCM(PKCS#8 DER) || tag(16)``,
with ``header = "MPDK" || 01 || 01 (scrypt) || log2 N || r || p || salt(16) || check(16)``. The
scrypt output (64 bytes) is the AES key and an HMAC key; ``check`` is the first 16 bytes of
HMAC-SHA256(HMAC key, "matter-pki device key v1"), which tells a wrong passphrase from a
tampered file. The GCM associated data is everything before the ciphertext, so the header, the
device name and the public key are all authenticated.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import hmac
import json
import multiprocessing
import os
import signal
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_der_private_key,
)

from matter_pki import der
from matter_pki.backends.keyfile import check_passphrase, read_key_file
from matter_pki.backends.pkcs11 import Pkcs11Config, generate_keypair, load_private_key
from matter_pki.batch import _exit_with_parent
from matter_pki.csr import MAX_CSR_BYTES, load_device_csr
from matter_pki.errors import CsrError, InputError, KeyStoreError, MatterPkiError, StorageError
from matter_pki.local.issue import check_name
from matter_pki.storage.local import (
    atomic_write,
    atomic_write_at,
    exists_at,
    fsync_dir,
    open_dir,
    read_regular_at,
    sync_filesystem,
    write_temp_at,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Future

MAX_COUNT = 1_000_000
MAX_NAME = 64
MANIFEST = "pkcs11-keys.json"
JOURNAL = ".matter-pki-csr-generate.json"
CHUNK = 1024
KEY_MODE, CSR_MODE = 0o600, 0o644
PEM_LABEL = b"MATTER-PKI ENCRYPTED DEVICE KEY"
MAGIC, VERSION, KDF_SCRYPT = b"MPDK", 1, 1
HEADER_LEN = 41
_CHECK_INFO = b"matter-pki device key v1"
_NONCE, _POINT, _TAG = 12, 65, 16
_MAX_SCRYPT_MEMORY = 1 << 30
_ECDSA = ec.ECDSA(hashes.SHA256())


# -- the per-run key and the device key file format ----------------------------------------------
@dataclass(frozen=True, slots=True)
class KdfParams:
    """scrypt cost of a run: N = 2**log2_n, r, p (default: N = 2**17, r = 8, p = 1, 128 MiB)."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not (14 <= self.log2_n <= 20 and 1 <= self.r <= 16 and 1 <= self.p <= 4) or self.memory > _MAX_SCRYPT_MEMORY:
            raise KeyStoreError("key.malformed", f"scrypt parameters out of range (log2 N {self.log2_n}, r {self.r}, p {self.p})")

    @property
    def memory(self) -> int:
        """Bytes scrypt needs (128 * r * N)."""
        return 128 * self.r << self.log2_n


class RunKey:
    """The AES-256-GCM key every device key of one run is sealed under: one scrypt per run."""

    __slots__ = ("_aead", "_secret", "header")

    def __init__(self, header: bytes, secret: bytes) -> None:
        self.header, self._secret, self._aead = header, secret, AESGCM(secret)

    def __repr__(self) -> str:
        return f"RunKey(salt={self.header[9:25].hex()})"

    def __reduce__(self) -> tuple[type[RunKey], tuple[bytes, bytes]]:
        return (RunKey, (self.header, self._secret))

    @classmethod
    def new(cls, passphrase: bytes, params: KdfParams | None = None) -> RunKey:
        """A fresh salt and the key derived from it."""
        params = params or KdfParams()
        salt = os.urandom(16)
        secret, check = _derive(check_passphrase(passphrase), params, salt)
        header = MAGIC + bytes([VERSION, KDF_SCRYPT, params.log2_n, params.r, params.p]) + salt + check
        return cls(header, secret)

    @classmethod
    def open(cls, header: bytes, passphrase: bytes) -> RunKey:
        """The key of an existing run (``key.passphrase_wrong`` when the check value disagrees)."""
        params, salt, check = _parse_header(header)
        secret, expected = _derive(check_passphrase(passphrase), params, salt)
        if not hmac.compare_digest(check, expected):
            raise KeyStoreError("key.passphrase_wrong", "wrong device-key passphrase (the key files' check value differs)")
        return cls(header, secret)

    def seal(self, name: str, point: bytes, pkcs8: bytes) -> bytes:
        """A device key file (PEM) holding ``pkcs8`` for device ``name`` whose public point is ``point``."""
        label = name.encode()
        aad = self.header + os.urandom(_NONCE) + point + bytes([len(label)]) + label
        return _armour(aad + self._aead.encrypt(aad[HEADER_LEN : HEADER_LEN + _NONCE], pkcs8, aad))

    def unseal(self, sealed: SealedKey, where: str) -> ec.EllipticCurvePrivateKey:
        """The private key of a parsed device key file of this run (``key.tampered`` if anything was altered)."""
        if sealed.header != self.header:
            raise KeyStoreError("key.tampered", f"{where} was not sealed by this run (its header differs)")
        try:
            pkcs8 = self._aead.decrypt(sealed.nonce, sealed.ciphertext, sealed.aad)
            key = load_der_private_key(pkcs8, None)
        except (InvalidTag, ValueError) as e:
            raise KeyStoreError("key.tampered", f"{where} fails authentication: it was altered or damaged") from e
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyStoreError("key.not_p256", f"{where} does not hold an EC P-256 key")
        if key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) != sealed.point:
            raise KeyStoreError("key.tampered", f"{where}: the private key does not match the recorded public key")
        return key


def _derive(passphrase: bytes, params: KdfParams, salt: bytes) -> tuple[bytes, bytes]:
    out = Scrypt(salt=salt, length=64, n=1 << params.log2_n, r=params.r, p=params.p).derive(passphrase)
    return out[:32], hmac.new(out[32:], _CHECK_INFO, hashlib.sha256).digest()[:16]


def _parse_header(header: bytes) -> tuple[KdfParams, bytes, bytes]:
    if len(header) != HEADER_LEN or header[:4] != MAGIC:
        raise KeyStoreError("key.malformed", "not a matter-pki device key (bad magic)")
    if header[4] != VERSION or header[5] != KDF_SCRYPT:
        raise KeyStoreError("key.malformed", f"unsupported device key format {header[4]}/{header[5]}")
    return KdfParams(header[6], header[7], header[8]), header[9:25], header[25:41]


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A parsed device key file: header, nonce, public point, device name, ciphertext with tag."""

    header: bytes
    nonce: bytes
    point: bytes
    name: str
    ciphertext: bytes
    aad: bytes = field(repr=False)


def parse_device_key(data: bytes, where: str = "device key") -> SealedKey:
    """Parse a device key file's bytes (``key.malformed`` for anything that is not the format above)."""
    raw = _unarmour(data, where)
    name_at = HEADER_LEN + _NONCE + _POINT
    if len(raw) < name_at + 1:
        raise KeyStoreError("key.malformed", f"{where} is truncated")
    _parse_header(raw[:HEADER_LEN])
    size = raw[name_at]
    body = name_at + 1 + size
    if not 1 <= size <= MAX_NAME or len(raw) < body + _TAG + 1 or len(raw) > body + _TAG + 256:
        raise KeyStoreError("key.malformed", f"{where} has an impossible length")
    try:
        name = raw[name_at + 1 : body].decode("ascii")
    except UnicodeDecodeError as e:
        raise KeyStoreError("key.malformed", f"{where} holds a device name that is not ASCII") from e
    return SealedKey(
        header=raw[:HEADER_LEN], nonce=raw[HEADER_LEN : HEADER_LEN + _NONCE], point=raw[HEADER_LEN + _NONCE : name_at],
        name=name, ciphertext=raw[body:], aad=raw[:body],
    )


def _armour(raw: bytes) -> bytes:
    body = base64.b64encode(raw)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN " + PEM_LABEL + b"-----\n" + lines + b"\n-----END " + PEM_LABEL + b"-----\n"


def _unarmour(data: bytes, where: str) -> bytes:
    lines = data.strip().split(b"\n")
    if len(lines) < 3 or lines[0].strip() != b"-----BEGIN " + PEM_LABEL + b"-----" or lines[-1].strip() != b"-----END " + PEM_LABEL + b"-----":
        raise KeyStoreError("key.malformed", f"{where} is not a matter-pki device key file ({PEM_LABEL.decode()} PEM)")
    try:
        return binascii.a2b_base64(b"".join(line.strip() for line in lines[1:-1]), strict_mode=True)
    except binascii.Error as e:
        raise KeyStoreError("key.malformed", f"{where} has broken base64") from e


class DeviceKeyReader:
    """Opens device key files with one passphrase; the scrypt of each run is done once and kept."""

    def __init__(self, passphrase: bytes) -> None:
        self._passphrase = check_passphrase(passphrase)
        self._runs: dict[bytes, RunKey] = {}

    def __repr__(self) -> str:
        return f"DeviceKeyReader({len(self._runs)} runs)"

    def load(self, path: str | Path, *, check_name: bool = True) -> ec.EllipticCurvePrivateKey:
        """The private key in ``<name>.key``; ``check_name``: the name sealed inside must be the file's."""
        p = Path(path)
        sealed = parse_device_key(read_key_file(p), repr(str(p)))
        if check_name and sealed.name != p.stem:
            raise KeyStoreError("key.tampered", f"{str(p)!r} holds the key of {sealed.name!r}: renamed or swapped")
        run = self._runs.get(sealed.header)
        if run is None:
            run = self._runs[sealed.header] = RunKey.open(sealed.header, self._passphrase)
        return run.unseal(sealed, repr(str(p)))


def load_device_key(path: str | Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Decrypt one device key file made by ``csr generate`` (for a flashing step)."""
    return DeviceKeyReader(passphrase).load(path)


# -- naming and CSRs ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DevicePlan:
    """The devices of one run: ``<prefix><n>`` for n in start .. start + count - 1, at least five digits."""

    prefix: str
    start: int
    count: int
    width: int = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_COUNT:
            raise InputError("input.count", f"--count must be 1..{MAX_COUNT}")
        if self.start < 0:
            raise InputError("input.count", "--start must not be negative")
        object.__setattr__(self, "width", max(5, len(str(self.start + self.count - 1))))
        # Every name has the same length and differs only in digits: the first and last stand for all.
        check_name(f"{self.name(self.start)}.csr")
        check_name(f"{self.last}.csr")
        if len(self.last) > MAX_NAME:
            raise InputError("key.name", f"device names must be at most {MAX_NAME} characters (the CSR's CN holds the name, X.520)")

    def name(self, n: int) -> str:
        """The name of device number ``n``."""
        return f"{self.prefix}{n:0{self.width}d}"

    @property
    def first(self) -> str:
        """The first device name."""
        return self.name(self.start)

    @property
    def last(self) -> str:
        """The last device name."""
        return self.name(self.start + self.count - 1)

    def owns(self, filename: str) -> bool:
        """True when ``filename`` is a ``.csr`` or ``.key`` of one of this plan's devices."""
        stem, dot, ext = filename.rpartition(".")
        digits = stem[len(self.prefix) :]
        return (
            dot == "." and ext in ("csr", "key") and stem.startswith(self.prefix) and len(digits) == self.width
            and digits.isdigit() and self.start <= int(digits) < self.start + self.count
        )

    def journal(self, header: bytes) -> dict[str, object]:
        """The journal of an unfinished run of this plan."""
        return {
            "format": 1, "prefix": self.prefix, "start": self.start, "count": self.count, "header": header.hex(),
            "started": datetime.now(UTC).replace(microsecond=0).isoformat(),
        }


_CN = der.encode_oid("2.5.4.3")
_UTF8_STRING = 0x0C
_SPKI_P256 = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")
_ECDSA_SHA256 = der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.840.10045.4.3.2"))
# OpenSSL's PKCS#8 form of a P-256 key ends with [1] { BIT STRING 00 || the 65-byte point }.
_PKCS8_POINT_TAG = bytes.fromhex("a144034200")


def csr_info(name: str, point: bytes) -> bytes:
    """CertificationRequestInfo: version 0, subject CN=<name>, the P-256 key, no attributes."""
    label = name.encode()
    return _info_head(len(label)) + label + _SPKI_P256 + point + b"\xa0\x00"


@functools.lru_cache(maxsize=16)
def _info_head(size: int) -> bytes:
    """The bytes before the CN value: only the name's length changes them (the point is 65 bytes)."""
    cn = der.encode_tlv(der.SEQUENCE, _CN + der.encode_tlv(_UTF8_STRING, bytes(size)))
    subject = der.encode_tlv(der.SEQUENCE, der.encode_tlv(der.SET, cn))
    info = der.encode_tlv(der.SEQUENCE, b"\x02\x01\x00" + subject + _SPKI_P256 + bytes(65) + b"\xa0\x00")
    return info[: len(info) - size - len(_SPKI_P256) - 65 - 2]


def device_csr(key: ec.EllipticCurvePrivateKey, name: str, point: bytes | None = None) -> bytes:
    """The PEM CSR of a device key (the subject is informative: the DAC subject comes from the profile)."""
    if point is None:
        point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    info = csr_info(name, point)
    body = der.encode_tlv(der.SEQUENCE, info + _ECDSA_SHA256 + der.encode_tlv(der.BIT_STRING, b"\0" + key.sign(info, _ECDSA)))
    b64 = base64.b64encode(body)
    lines = b"\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + lines + b"\n-----END CERTIFICATE REQUEST-----\n"


def _new_device(run: RunKey, name: str) -> tuple[bytes, bytes, bytes]:
    """(sealed key file, CSR PEM, public point) of a fresh key."""
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
    if len(pkcs8) == 138 and pkcs8[-70:-65] == _PKCS8_POINT_TAG:
        point = pkcs8[-65:]
    else:
        point = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return run.seal(name, point, pkcs8), device_csr(key, name, point), point


# -- durable publication of a chunk ---------------------------------------------------------------
_libc = None
with contextlib.suppress(OSError):
    _libc = ctypes.CDLL(None, use_errno=True)
_RENAME_NOREPLACE = 1


def _rename_noreplace(dir_fd: int, tmp: str, name: str) -> None:
    """Give a temporary file its final name, never replacing a file (FileExistsError if ``name`` exists)."""
    renameat2 = getattr(_libc, "renameat2", None)
    if renameat2 is not None:
        if renameat2(dir_fd, tmp.encode(), dir_fd, name.encode(), _RENAME_NOREPLACE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # unsupported here: link + unlink below
            raise OSError(err, os.strerror(err), tmp, None, name)
    os.link(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    with contextlib.suppress(OSError):
        os.unlink(tmp, dir_fd=dir_fd)


def publish(dir_fd: int, keys: list[tuple[str, bytes]], csrs: list[tuple[str, bytes]]) -> None:
    """Write files so that each final name holds a whole durable file and no CSR appears before its key."""
    temps: list[tuple[str, str]] = []
    done = 0
    try:
        try:
            for files, mode in ((keys, KEY_MODE), (csrs, CSR_MODE)):
                for name, data in files:
                    temps.append((write_temp_at(dir_fd, name, data, mode, sync=False), name))
            sync_filesystem(dir_fd)
            for tmp, name in temps:
                _rename_noreplace(dir_fd, tmp, name)
                done += 1
                if done == len(keys):
                    fsync_dir(dir_fd)  # keys are durable under their names before any CSR shows up
            fsync_dir(dir_fd)
        except FileExistsError as e:
            raise StorageError("storage.exists", f"{e.filename2 or e.filename!r} already exists; refusing to overwrite it") from e
        except OSError as e:
            raise StorageError("storage.write_failed", f"cannot write device files: {e.strerror}") from e
    finally:
        for tmp, _name in temps[done:]:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)


# -- one chunk of devices (in a worker or in the caller) ------------------------------------------
@dataclass(frozen=True, slots=True)
class ChunkResult:
    """How a chunk's devices were handled: made now, found complete, or CSR re-made from a kept key."""

    made: int = 0
    kept: int = 0
    rebuilt: int = 0


class _Maker:
    """Makes and publishes the devices of chunks in one process."""

    def __init__(self, out_dir: str, plan: DevicePlan, run: RunKey, resume: bool) -> None:
        self.dir_fd = open_dir(out_dir)
        self.plan, self.run, self.resume = plan, run, resume
        self.checked = False

    def close(self) -> None:
        os.close(self.dir_fd)

    def chunk(self, lo: int, hi: int) -> ChunkResult:
        """Make (or, resuming, check and complete) devices ``lo`` .. ``hi - 1`` and publish them."""
        try:
            return self._chunk(lo, hi)
        except OSError as e:
            raise StorageError("storage.write_failed", f"cannot work in the output folder: {e.strerror}") from e

    def _chunk(self, lo: int, hi: int) -> ChunkResult:
        keys: list[tuple[str, bytes]] = []
        csrs: list[tuple[str, bytes]] = []
        kept = rebuilt = 0
        for n in range(lo, hi):
            name = self.plan.name(n)
            if self.resume:
                has_key, has_csr = exists_at(self.dir_fd, f"{name}.key"), exists_at(self.dir_fd, f"{name}.csr")
                if has_key and has_csr:
                    self._verify_pair(name)
                    kept += 1
                    continue
                if has_csr:
                    raise StorageError("storage.exists", f"{name}.csr exists without its key {name}.key; move it away and re-run")
                if has_key:
                    key = self._open(name)
                    csrs.append((f"{name}.csr", device_csr(key, name)))
                    rebuilt += 1
                    continue
            sealed, csr, point = _new_device(self.run, name)
            if not self.checked:
                self._self_check(name, sealed, csr, point)
            keys.append((f"{name}.key", sealed))
            csrs.append((f"{name}.csr", csr))
        if csrs:
            publish(self.dir_fd, keys, csrs)
        return ChunkResult(made=len(keys), kept=kept, rebuilt=rebuilt)

    def _self_check(self, name: str, sealed: bytes, csr: bytes, point: bytes) -> None:
        """The first device of each process goes through CSR intake and a full unseal."""
        key = self.run.unseal(parse_device_key(sealed), name)
        if load_device_csr(csr).public_point != point or key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) != point:
            raise KeyStoreError("key.tampered", f"self-check of {name} failed: key and CSR differ")
        self.checked = True

    def _open(self, name: str) -> ec.EllipticCurvePrivateKey:
        data = read_regular_at(self.dir_fd, f"{name}.key", max_bytes=4096)
        sealed = parse_device_key(data, f"{name}.key")
        if sealed.name != name:
            raise KeyStoreError("key.tampered", f"{name}.key holds the key of {sealed.name!r}: renamed or swapped")
        return self.run.unseal(sealed, f"{name}.key")

    def _verify_pair(self, name: str) -> None:
        key = self._open(name)
        try:
            csr = load_device_csr(read_regular_at(self.dir_fd, f"{name}.csr", max_bytes=MAX_CSR_BYTES))
        except CsrError as e:
            raise StorageError("storage.exists", f"{name}.csr is not a valid CSR ({e.code}); move it away and re-run") from e
        if csr.public_point != key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint):
            raise StorageError("storage.exists", f"{name}.csr does not belong to {name}.key; move them away and re-run")


@dataclass(frozen=True, slots=True)
class _Raised:
    """A MatterPkiError raised in a worker (its constructor does not round-trip through pickle)."""

    cls: type[MatterPkiError]
    code: str
    message: str


_maker: _Maker | None = None


def _worker_init(out_dir: str, plan: DevicePlan, run: RunKey, resume: bool) -> None:
    # A forked worker keeps its copy of the folder lock on purpose: until the last worker of a
    # killed run has left (within half a second), a re-run gets storage.busy instead of racing it.
    # Ctrl-C is the parent's to handle: it stops handing out chunks and leaves a resumable run.
    global _maker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _maker = _Maker(out_dir, plan, run, resume)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _worker_chunk(lo: int, hi: int) -> ChunkResult | _Raised:
    assert _maker is not None
    try:
        return _maker.chunk(lo, hi)
    except MatterPkiError as e:
        return _Raised(type(e), e.code, e.message)


# -- runs ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GenerateReport:
    """What a ``csr generate`` run did."""

    out_dir: Path
    first: str
    last: str
    key_store: str
    made: int
    kept: int = 0
    rebuilt: int = 0
    resumed: bool = False


def generate_device_csrs(
    out_dir: Path,
    *,
    count: int,
    prefix: str = "device-",
    start: int = 1,
    passphrase: bytes | None = None,
    pkcs11: Pkcs11Config | None = None,
    jobs: int = 0,
    kdf: KdfParams | None = None,
    start_method: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateReport:
    """Make ``count`` key pairs and CSRs in ``out_dir`` (file keys need ``passphrase``; HSM keys ``pkcs11``).

    ``jobs``: worker processes for file keys (0: one per core). ``on_progress`` gets the number of
    devices finished since its last call.
    """
    plan = DevicePlan(prefix, start, count)
    if pkcs11 is None:
        if passphrase is None:
            raise InputError("input.passphrase", "file keys need a device-key passphrase")
        check_passphrase(passphrase)
    if jobs < 0:
        raise InputError("input.jobs", "--jobs must not be negative")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot create {str(out_dir)!r}: {e.strerror}") from e
    lock_fd = open_dir(out_dir)
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise StorageError("storage.busy", f"another matter-pki process is generating into {str(out_dir)!r}") from e
        if pkcs11 is not None:
            return _generate_on_token(out_dir, plan, pkcs11, on_start, on_progress)
        assert passphrase is not None
        return _generate_files(out_dir, lock_fd, plan, passphrase, kdf, jobs, start_method, on_start, on_progress)
    finally:
        os.close(lock_fd)


def _refuse_existing(out_dir: Path, plan: DevicePlan) -> None:
    with os.scandir(out_dir) as entries:
        for entry in entries:
            if plan.owns(entry.name):
                raise StorageError("storage.exists", f"{str(out_dir / entry.name)!r} exists; choose another --prefix or --start")


def _read_journal(dir_fd: int, out_dir: Path) -> dict[str, object] | None:
    if not exists_at(dir_fd, JOURNAL):
        return None
    where = str(out_dir / JOURNAL)
    try:
        data = json.loads(read_regular_at(dir_fd, JOURNAL, max_bytes=4096))
    except ValueError as e:
        raise StorageError("storage.unreadable", f"run journal {where!r} is damaged: {e}") from e
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("header"), str):
        raise StorageError("storage.unreadable", f"run journal {where!r} is not a csr generate journal")
    return data


def _generate_files(
    out_dir: Path, lock_fd: int, plan: DevicePlan, passphrase: bytes, kdf: KdfParams | None, jobs: int,
    start_method: str | None, on_start: Callable[[int], None] | None, on_progress: Callable[[int], None] | None,
) -> GenerateReport:
    journal = _read_journal(lock_fd, out_dir)
    if journal is None:
        _refuse_existing(out_dir, plan)
        run = RunKey.new(passphrase, kdf)
        atomic_write_at(lock_fd, JOURNAL, (json.dumps(plan.journal(run.header), indent=2) + "\n").encode(), exclusive=True)
    elif (journal.get("prefix"), journal.get("start"), journal.get("count")) == (plan.prefix, plan.start, plan.count):
        try:
            header = bytes.fromhex(str(journal["header"]))
        except ValueError as e:
            raise StorageError("storage.unreadable", f"run journal {str(out_dir / JOURNAL)!r} is damaged") from e
        run = RunKey.open(header, passphrase)
        _remove_plan_temps(lock_fd, plan)
    else:
        raise StorageError(
            "storage.incomplete_run",
            f"an interrupted run is unfinished in {str(out_dir)!r}: finish it first with the same options "
            f"(--prefix {journal.get('prefix')} --start {journal.get('start')} --count {journal.get('count')})",
        )
    if on_start is not None:
        on_start(plan.count)
    total = ChunkResult()
    for result in _run_chunks(str(out_dir), plan, run, journal is not None, jobs, start_method):
        total = ChunkResult(total.made + result.made, total.kept + result.kept, total.rebuilt + result.rebuilt)
        if on_progress is not None:
            on_progress(result.made + result.kept + result.rebuilt)
    try:
        os.unlink(JOURNAL, dir_fd=lock_fd)
    except OSError as e:
        raise StorageError("storage.write_failed", f"cannot remove the run journal: {e.strerror}") from e
    fsync_dir(lock_fd)
    return GenerateReport(out_dir, plan.first, plan.last, "file", total.made, total.kept, total.rebuilt, journal is not None)


def _remove_plan_temps(dir_fd: int, plan: DevicePlan) -> None:
    """Temporary files of this plan's devices left by a killed run (the folder is locked)."""
    with os.scandir(dir_fd) as entries:
        stale = [e.name for e in entries if e.name.startswith(".") and ".tmp-" in e.name and plan.owns(e.name[1:].rsplit(".tmp-", 1)[0])]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)


def _chunks(plan: DevicePlan) -> Iterator[tuple[int, int]]:
    end = plan.start + plan.count
    for lo in range(plan.start, end, CHUNK):
        yield lo, min(lo + CHUNK, end)


def _run_chunks(
    out_dir: str, plan: DevicePlan, run: RunKey, resume: bool, jobs: int, start_method: str | None
) -> Iterator[ChunkResult]:
    jobs = jobs or len(os.sched_getaffinity(0))
    if jobs == 1 or plan.count <= CHUNK:
        maker = _Maker(out_dir, plan, run, resume)
        try:
            for lo, hi in _chunks(plan):
                yield maker.chunk(lo, hi)
        finally:
            maker.close()
        return
    method = start_method or ("fork" if threading.active_count() == 1 else "spawn")
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context(method),
        initializer=_worker_init, initargs=(out_dir, plan, run, resume),
    )
    pending: deque[Future[ChunkResult | _Raised]] = deque()
    try:
        for lo, hi in _chunks(plan):
            pending.append(pool.submit(_worker_chunk, lo, hi))
            if len(pending) >= 2 * jobs:
                yield _collect(pending.popleft())
        while pending:
            yield _collect(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(future: Future[ChunkResult | _Raised]) -> ChunkResult:
    try:
        outcome = future.result()
    except BrokenProcessPool as e:
        raise StorageError("storage.write_failed", f"a key-generation worker died ({e}); re-run the same command to finish") from e
    if isinstance(outcome, _Raised):
        raise outcome.cls(outcome.code, outcome.message)
    return outcome


def _generate_on_token(
    out_dir: Path, plan: DevicePlan, pkcs11: Pkcs11Config,
    on_start: Callable[[int], None] | None, on_progress: Callable[[int], None] | None,
) -> GenerateReport:
    """Keys on the token, one at a time (the token is the bound); a re-run after a kill refuses clearly."""
    _refuse_existing(out_dir, plan)
    manifest_path = out_dir / MANIFEST
    manifest: dict[str, dict[str, str]] = {}
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_bytes())
        except (OSError, ValueError) as e:
            raise StorageError("storage.unreadable", f"{str(manifest_path)!r} cannot be read: {e}") from e
        if not isinstance(loaded, dict):
            raise StorageError("storage.unreadable", f"{str(manifest_path)!r} is not a JSON object")
        manifest = loaded
    if on_start is not None:
        on_start(plan.count)
    made = 0
    try:
        for n in range(plan.start, plan.start + plan.count):
            name = plan.name(n)
            key_id, _public = generate_keypair(pkcs11, name)
            token_key = load_private_key(pkcs11, key_id, name)
            atomic_write(out_dir / f"{name}.csr", device_csr(token_key, name), exclusive=True)
            manifest[name] = {"label": name, "key_id": key_id.hex(), "token": pkcs11.token}
            made += 1
            if on_progress is not None:
                on_progress(1)
    finally:
        if made:
            atomic_write(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return GenerateReport(out_dir, plan.first, plan.last, "pkcs11", made)
