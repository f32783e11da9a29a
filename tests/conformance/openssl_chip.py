"""chip's attestation checks on OpenSSL 3, rebuilt from the system libcrypto through ctypes.

The Matter SDK wheel (chip_sdk.py) links BoringSSL. chip-cert and chip-tool on Linux link OpenSSL 3,
and the two libraries read some certificates differently. This module is the OpenSSL reference: each
function follows the SDK's OpenSSL crypto layer (src/crypto/CHIPCryptoPALOpenSSL.cpp) call by call,
but every X.509 decision is made by the real libcrypto (d2i_X509, X509_get_key_usage,
X509_get0_subject_key_id, X509_cmp_time, X509_verify_cert with X509_V_FLAG_X509_STRICT). Only the
parts the SDK implements itself are ported: the VID/PID string rules (src/crypto/CHIPCryptoPAL.cpp,
ExtractVIDPIDFromAttributeString / Find16BitUpperCaseHexAfterPrefix) and the notBefore import used to
pin the chain-check time (src/lib/asn1/ASN1Time.cpp, src/lib/support/TimeUtils.cpp).

Where chip itself would dereference a NULL pointer (X509_get0_subject_key_id(x)->length when the
SKID did not decode; an AKID without keyIdentifier), the function reports ``CRASH`` instead of a code.

The check orders are those of ``chip-cert validate-att-cert`` (src/tools/chip-cert/Cmd_ValidateAttCert.cpp,
with ReadCertDER: each input is re-serialised by i2d_X509 into a 600-byte buffer) and of the
commissioner (src/credentials/attestation_verifier/DefaultDeviceAttestationVerifier.cpp,
VerifyAttestationInformation, with the PAA coming from FileAttestationTrustStore.cpp).
"""

from __future__ import annotations

import calendar
import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["CRASH", "NO_VERDICT", "OpenSSLChip", "RefVerdict", "openssl_available"]

CRASH = "crash"  # chip would dereference NULL here
NO_VERDICT = "no-verdict"  # chip-cert stops before any check (unreadable input, over 600 bytes)

_NID_ECDSA_SHA256 = 794
_NID_PRIME256V1 = 415
_EVP_PKEY_EC = 408
_NID_BC, _NID_KU, _NID_SKID, _NID_AKID = 87, 83, 82, 90
_EXFLAG_CA = 0x10
_KU_DIGITAL_SIGNATURE, _KU_KEY_CERT_SIGN, _KU_CRL_SIGN = 0x80, 0x04, 0x02
_X509_V_FLAG_X509_STRICT = 0x20
_MAX_DER = 600  # kMaxDERCertLength (src/credentials/CHIPCert.h)
_CHAIN_MAP = {100: 105, 101: 106, 200: 203, 201: 204, 300: 303, 301: 304, 400: 301, 500: 700, 600: 702}
_CN, _VID, _PID = b"2.5.4.3", b"1.3.6.1.4.1.37244.2.1", b"1.3.6.1.4.1.37244.2.2"


@dataclass(frozen=True)
class RefVerdict:
    """An AttestationVerificationResult code, or CRASH / NO_VERDICT, with the deciding step."""

    code: int | str
    detail: str

    @property
    def decided(self) -> bool:
        """True when chip would print a code (not a crash, not an unreadable input)."""
        return isinstance(self.code, int)


class _Libcrypto:
    """Prototypes of the libcrypto 3 functions chip calls."""

    def __init__(self, path: str) -> None:
        c = ctypes
        lib = c.CDLL(path)
        vp, i, L, ul = c.c_void_p, c.c_int, c.c_long, c.c_ulong
        protos: dict[str, tuple[Any, list[Any]]] = {
            "OpenSSL_version_num": (ul, []),
            "d2i_X509": (vp, [vp, c.POINTER(vp), L]),
            "i2d_X509": (i, [vp, c.POINTER(vp)]),
            "X509_free": (None, [vp]),
            "X509_up_ref": (i, [vp]),
            "X509_get_version": (L, [vp]),
            "X509_get_serialNumber": (vp, [vp]),
            "X509_get_signature_nid": (i, [vp]),
            "X509_get_issuer_name": (vp, [vp]),
            "X509_get_subject_name": (vp, [vp]),
            "X509_get0_notBefore": (vp, [vp]),
            "X509_get0_notAfter": (vp, [vp]),
            "X509_get_pubkey": (vp, [vp]),
            "EVP_PKEY_get_base_id": (i, [vp]),
            "EVP_PKEY_get_bits": (i, [vp]),
            "EVP_PKEY_get1_EC_KEY": (vp, [vp]),
            "EVP_PKEY_free": (None, [vp]),
            "EC_KEY_get0_group": (vp, [vp]),
            "EC_GROUP_get_curve_name": (i, [vp]),
            "EC_KEY_free": (None, [vp]),
            "i2d_PublicKey": (i, [vp, vp]),
            "X509_get_ext_count": (i, [vp]),
            "X509_get_ext": (vp, [vp, i]),
            "X509_EXTENSION_get_object": (vp, [vp]),
            "X509_EXTENSION_get_critical": (i, [vp]),
            "OBJ_obj2nid": (i, [vp]),
            "X509_get_extension_flags": (c.c_uint32, [vp]),
            "X509_get_pathlen": (L, [vp]),
            "X509_get_key_usage": (c.c_uint32, [vp]),
            "X509_get0_subject_key_id": (vp, [vp]),
            "X509_get0_authority_key_id": (vp, [vp]),
            "ASN1_STRING_length": (i, [vp]),
            "ASN1_STRING_get0_data": (vp, [vp]),
            "X509_cmp_time": (i, [vp, c.POINTER(c.c_int64)]),
            "X509_NAME_entry_count": (i, [vp]),
            "X509_NAME_get_entry": (vp, [vp, i]),
            "X509_NAME_ENTRY_get_object": (vp, [vp]),
            "X509_NAME_ENTRY_get_data": (vp, [vp]),
            "OBJ_txt2obj": (vp, [c.c_char_p, i]),
            "OBJ_cmp": (i, [vp, vp]),
            "ASN1_OBJECT_free": (None, [vp]),
            "X509_STORE_new": (vp, []),
            "X509_STORE_free": (None, [vp]),
            "X509_STORE_add_cert": (i, [vp, vp]),
            "X509_STORE_CTX_new": (vp, []),
            "X509_STORE_CTX_free": (None, [vp]),
            "X509_STORE_CTX_init": (i, [vp, vp, vp, vp]),
            "X509_STORE_CTX_get0_param": (vp, [vp]),
            "X509_STORE_CTX_get_error": (i, [vp]),
            "X509_verify_cert_error_string": (c.c_char_p, [L]),
            "X509_VERIFY_PARAM_set_time": (None, [vp, c.c_int64]),
            "X509_VERIFY_PARAM_set_flags": (i, [vp, ul]),
            "X509_verify_cert": (i, [vp]),
            "OPENSSL_sk_new_null": (vp, []),
            "OPENSSL_sk_push": (i, [vp, vp]),
            "OPENSSL_sk_free": (None, [vp]),
            "ERR_clear_error": (None, []),
            "CRYPTO_free": (None, [vp, c.c_char_p, i]),
        }
        for name, (restype, argtypes) in protos.items():
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes
            setattr(self, name, fn)
        self.version: int = self.OpenSSL_version_num()  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=1)
def _load() -> _Libcrypto | None:
    for candidate in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if not candidate:
            continue
        try:
            lib = _Libcrypto(candidate)
        except (OSError, AttributeError):
            continue
        if 0x30000000 <= lib.version < 0x40000000:
            return lib
    return None


def openssl_available() -> tuple[bool, str]:
    """Whether an OpenSSL 3 libcrypto is loadable here, with a reason."""
    lib = _load()
    if lib is None:
        return False, "no OpenSSL 3 libcrypto (libcrypto.so.3) on this machine"
    return True, f"OpenSSL 0x{lib.version:08x}"


# -- the parts chip implements itself -----------------------------------------------------------
def _upper_hex16(data: bytes) -> int | None:
    """Encoding::UppercaseHexToUint16 over exactly 4 characters."""
    if len(data) != 4 or any(ch not in b"0123456789ABCDEF" for ch in data):
        return None
    return int(data, 16)


def _find_after_prefix(buf: bytes, prefix: bytes) -> int | str | None:
    """Find16BitUpperCaseHexAfterPrefix: value, "wrong" (prefix without digits) or None (not found)."""
    seen = False
    for start in range(len(buf)):
        if len(buf) - start < len(prefix):
            break
        if buf[start : start + len(prefix)] != prefix:
            continue
        seen = True
        rest = buf[start + len(prefix) :]
        if len(rest) < 4:
            break
        value = _upper_hex16(rest[:4])
        if value is not None:
            return value
    return "wrong" if seen else None


def _chip_time_to_unix(text: bytes) -> int | None:
    """ASN1UniversalTime::ImportFrom_ASN1_TIME_string then ExportTo_UnixTime (1970..2105)."""
    if len(text) not in (13, 15) or text[-1:] != b"Z" or not all(48 <= ch <= 57 for ch in text[:-1]):
        return None
    digits = text[:-1].decode()
    if len(text) == 15:
        year, rest = int(digits[:4]), digits[4:]
    else:
        year, rest = int(digits[:2]), digits[2:]
        year += 1900 if year >= 50 else 2000
    month, day, hour, minute, second = (int(rest[i : i + 2]) for i in range(0, 10, 2))
    if not (0 < month <= 12 and 0 < day <= 31 and hour < 24 and minute < 60 and second < 60):
        return None
    if not 1970 <= year <= 2105:  # CalendarTimeToSecondsSinceUnixEpoch
        return None
    # CalendarDateToDaysSinceUnixEpoch does not check the day against the month: day 31 of a
    # 30-day month rolls into the next one, as timegm does.
    return calendar.timegm((year, month, 1, hour, minute, second)) + (day - 1) * 86400


class OpenSSLChip:
    """chip's certificate checks, each on its own d2i_X509 of the bytes, as in the SDK."""

    def __init__(self) -> None:
        lib = _load()
        if lib is None:
            raise RuntimeError(openssl_available()[1])
        self.lib = lib
        self._objs = {k: lib.OBJ_txt2obj(k, 1) for k in (_CN, _VID, _PID)}  # type: ignore[attr-defined]
        self._cache: dict[bytes, int] = {}

    # -- helpers -----------------------------------------------------------------------------------
    def _d2i(self, der: bytes) -> tuple[int | None, Any]:
        """d2i_X509 of the bytes, as a new reference the caller frees.

        OpenSSL 3.0's d2i_X509 is slow (provider key decoding), and chip parses the same bytes once per
        check; parsing is deterministic, so one parsed object per input is shared (X509_up_ref).
        """
        cached = self._cache.get(der)
        if cached is not None:
            self.lib.X509_up_ref(cached)  # type: ignore[attr-defined]
            return cached, None
        buf = ctypes.create_string_buffer(der, max(len(der), 1))
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        x = self.lib.d2i_X509(None, ctypes.byref(ptr), len(der))  # type: ignore[attr-defined]
        if x:
            if len(self._cache) >= 64:
                self.lib.X509_free(self._cache.pop(next(iter(self._cache))))  # type: ignore[attr-defined]
            self._cache[der] = x
            self.lib.X509_up_ref(x)  # type: ignore[attr-defined]
        return x, buf

    def _string(self, asn1: int) -> bytes:
        n = self.lib.ASN1_STRING_length(asn1)  # type: ignore[attr-defined]
        data = self.lib.ASN1_STRING_get0_data(asn1)  # type: ignore[attr-defined]
        return ctypes.string_at(data, n) if n > 0 and data else b""

    def parses(self, der: bytes) -> bool:
        """d2i_X509 accepts the bytes."""
        x, _ = self._d2i(der)
        self.lib.X509_free(x)  # type: ignore[attr-defined]
        return bool(x)

    def reserialise(self, der: bytes) -> bytes | None:
        """chip-cert ReadCertDER: d2i_X509 then i2d_X509 (None when OpenSSL cannot read it)."""
        lib = self.lib
        x, _ = self._d2i(der)
        if not x:
            return None
        try:
            out = ctypes.c_void_p()
            n = lib.i2d_X509(x, ctypes.byref(out))  # type: ignore[attr-defined]
            if n <= 0 or not out.value:
                return None
            data = ctypes.string_at(out.value, n)
            lib.CRYPTO_free(out, b"", 0)  # type: ignore[attr-defined]
            return data
        finally:
            lib.X509_free(x)  # type: ignore[attr-defined]

    # -- chip::Crypto functions --------------------------------------------------------------------
    def pubkey_ok(self, der: bytes) -> bool:
        """ExtractPubkeyFromX509Cert: P-256 EC key whose i2d_PublicKey form is 65 bytes."""
        lib = self.lib
        x, _ = self._d2i(der)
        if not x:
            return False
        pkey = ec = None
        try:
            pkey = lib.X509_get_pubkey(x)  # type: ignore[attr-defined]
            if not pkey or lib.EVP_PKEY_get_base_id(pkey) != _EVP_PKEY_EC or lib.EVP_PKEY_get_bits(pkey) != 256:  # type: ignore[attr-defined]
                return False
            ec = lib.EVP_PKEY_get1_EC_KEY(pkey)  # type: ignore[attr-defined]
            if not ec or lib.EC_GROUP_get_curve_name(lib.EC_KEY_get0_group(ec)) != _NID_PRIME256V1:  # type: ignore[attr-defined]
                return False
            return int(lib.i2d_PublicKey(pkey, None)) == 65  # type: ignore[attr-defined]
        finally:
            lib.EC_KEY_free(ec)  # type: ignore[attr-defined]
            lib.EVP_PKEY_free(pkey)  # type: ignore[attr-defined]
            lib.X509_free(x)  # type: ignore[attr-defined]

    def format_check(self, der: bytes, role: str) -> tuple[int | str, str]:
        """VerifyAttestationCertificateFormat: 0, 0x2F (empty), 0xAC (any rule) or CRASH; with the rule."""
        lib = self.lib
        if not der:
            return 0x2F, "empty input"
        x, _ = self._d2i(der)
        if not x:
            return 0xAC, "d2i_X509 fails"
        try:
            if lib.X509_get_version(x) != 2:  # type: ignore[attr-defined]
                return 0xAC, "version"
            if lib.X509_get_signature_nid(x) != _NID_ECDSA_SHA256:  # type: ignore[attr-defined]
                return 0xAC, "signature nid"
            if not self.pubkey_ok(der):
                return 0xAC, "public key"
            seen: set[int] = set()
            for idx in range(lib.X509_get_ext_count(x)):  # type: ignore[attr-defined]
                ext = lib.X509_get_ext(x, idx)  # type: ignore[attr-defined]
                nid = lib.OBJ_obj2nid(lib.X509_EXTENSION_get_object(ext))  # type: ignore[attr-defined]
                critical = lib.X509_EXTENSION_get_critical(ext) == 1  # type: ignore[attr-defined]
                if nid == _NID_BC:
                    if not critical or nid in seen:
                        return 0xAC, "basicConstraints critical/once"
                    is_ca = bool(lib.X509_get_extension_flags(x) & _EXFLAG_CA)  # type: ignore[attr-defined]
                    path = lib.X509_get_pathlen(x)  # type: ignore[attr-defined]
                    ok = {"dac": not is_ca and path == -1, "pai": is_ca and path == 0}.get(role, is_ca and path in (-1, 1))
                    if not ok:
                        return 0xAC, f"basicConstraints ca={is_ca} pathlen={path}"
                elif nid == _NID_KU:
                    if not critical or nid in seen:
                        return 0xAC, "keyUsage critical/once"
                    ku = lib.X509_get_key_usage(x)  # type: ignore[attr-defined]
                    if role == "dac":
                        ok = ku == _KU_DIGITAL_SIGNATURE
                    else:
                        ca_bits = _KU_KEY_CERT_SIGN | _KU_CRL_SIGN
                        ok = ku & ca_bits == ca_bits and not ku & ~(ca_bits | _KU_DIGITAL_SIGNATURE)
                    if not ok:
                        return 0xAC, f"keyUsage 0x{ku:x}"
                elif nid in (_NID_SKID, _NID_AKID):
                    if critical or nid in seen:
                        return 0xAC, "key identifier not critical/once"
                    getter = lib.X509_get0_subject_key_id if nid == _NID_SKID else lib.X509_get0_authority_key_id  # type: ignore[attr-defined]
                    kid = getter(x)
                    if not kid:
                        return CRASH, "NULL key identifier dereferenced"
                    if lib.ASN1_STRING_length(kid) != 20:  # type: ignore[attr-defined]
                        return 0xAC, "key identifier length"
                seen.add(nid)
            required = {_NID_BC, _NID_KU, _NID_SKID} | ({_NID_AKID} if role != "paa" else set())
            if not required <= seen:
                return 0xAC, "mandatory extension missing"
            return 0, "ok"
        finally:
            lib.X509_free(x)  # type: ignore[attr-defined]

    def key_id(self, der: bytes, which: str) -> bytes | int:
        """ExtractSKIDFromX509Cert / ExtractAKIDFromX509Cert: 20 bytes, or the CHIP_ERROR code."""
        lib = self.lib
        x, _ = self._d2i(der)
        if not x:
            return 0x0B  # CHIP_ERROR_NO_MEMORY
        try:
            getter = lib.X509_get0_subject_key_id if which == "skid" else lib.X509_get0_authority_key_id  # type: ignore[attr-defined]
            kid = getter(x)
            if not kid:
                return 0xD8  # CHIP_ERROR_NOT_FOUND
            value = self._string(kid)
            return value if len(value) == 20 else 0x9D  # CHIP_ERROR_WRONG_CERT_TYPE
        finally:
            lib.X509_free(x)  # type: ignore[attr-defined]

    def vidpid(self, der: bytes) -> tuple[int | None, int | None] | str:
        """ExtractVIDPIDFromX509Cert: (vid, pid) or an error name."""
        lib = self.lib
        x, _ = self._d2i(der)
        if not x:
            return "no memory"
        try:
            subject = lib.X509_get_subject_name(x)  # type: ignore[attr-defined]
            matter: dict[str, int] = {}
            from_cn: dict[str, int] = {}
            for idx in range(lib.X509_NAME_entry_count(subject)):  # type: ignore[attr-defined]
                entry = lib.X509_NAME_get_entry(subject, idx)  # type: ignore[attr-defined]
                obj = lib.X509_NAME_ENTRY_get_object(entry)  # type: ignore[attr-defined]
                kind = next((k for k, o in self._objs.items() if lib.OBJ_cmp(obj, o) == 0), None)  # type: ignore[attr-defined]
                if kind is None:
                    continue
                value = self._string(lib.X509_NAME_ENTRY_get_data(entry))  # type: ignore[attr-defined]
                if not value:
                    return "invalid argument"
                if kind in (_VID, _PID):
                    number = _upper_hex16(value)
                    label = "vid" if kind == _VID else "pid"
                    if number is None or label in matter:
                        return "wrong cert dn"
                    matter[label] = number
                elif not from_cn:
                    scan = value[:64]  # kMax_CommonNameAttr_Length
                    for label, prefix in (("vid", b"Mvid:"), ("pid", b"Mpid:")):
                        found = _find_after_prefix(scan, prefix)
                        if found == "wrong":
                            return "wrong cert dn"
                        if isinstance(found, int):
                            from_cn[label] = found
            ids = matter or from_cn
            return ids.get("vid"), ids.get("pid")
        finally:
            lib.X509_free(x)  # type: ignore[attr-defined]

    def _cmp_time(self, asn1_time: int, at: int) -> int:
        t = ctypes.c_int64(at)
        return int(self.lib.X509_cmp_time(asn1_time, ctypes.byref(t)))  # type: ignore[attr-defined]

    def valid_at(self, der: bytes, at: int) -> bool:
        """IsCertificateValidAtCurrentTime with ``at`` as the current time (unix seconds)."""
        lib = self.lib
        x, _ = self._d2i(der)
        if not x:
            return False
        try:
            before = self._cmp_time(lib.X509_get0_notBefore(x), at)  # type: ignore[attr-defined]
            after = self._cmp_time(lib.X509_get0_notAfter(x), at)  # type: ignore[attr-defined]
            return before == -1 and after == 1
        finally:
            lib.X509_free(x)  # type: ignore[attr-defined]

    def chain(self, paa: bytes, pai: bytes, dac: bytes) -> tuple[int, str]:
        """ValidateCertificateChain: the CertificateChainValidationResult and the OpenSSL reason."""
        lib = self.lib
        if not paa:
            return 101, "empty root"
        if not dac:
            return 301, "empty leaf"
        store = lib.X509_STORE_new()  # type: ignore[attr-defined]
        ctx = lib.X509_STORE_CTX_new()  # type: ignore[attr-defined]
        stack = lib.OPENSSL_sk_new_null()  # type: ignore[attr-defined]
        certs: list[int] = []
        bufs: list[Any] = []
        try:
            root, b = self._d2i(paa)
            bufs.append(b)
            if not root:
                return 100, "root does not parse"
            certs.append(root)
            lib.X509_STORE_add_cert(store, root)  # type: ignore[attr-defined]
            if pai:
                ca, b = self._d2i(pai)
                bufs.append(b)
                if not ca:
                    return 200, "CA does not parse"
                certs.append(ca)
                lib.OPENSSL_sk_push(stack, ca)  # type: ignore[attr-defined]
            leaf, b = self._d2i(dac)
            bufs.append(b)
            if not leaf:
                return 300, "leaf does not parse"
            certs.append(leaf)
            lib.X509_STORE_CTX_init(ctx, store, leaf, stack)  # type: ignore[attr-defined]
            param = lib.X509_STORE_CTX_get0_param(ctx)  # type: ignore[attr-defined]
            nb = lib.X509_get0_notBefore(leaf)  # type: ignore[attr-defined]
            # chip reads notBefore->data as a C string (strlen), so an embedded NUL ends it.
            text = self._string(nb).split(b"\x00", 1)[0]
            when = _chip_time_to_unix(text)
            if when is None:
                return 300, f"leaf notBefore {text!r} not importable"
            lib.X509_VERIFY_PARAM_set_time(param, when)  # type: ignore[attr-defined]
            lib.X509_VERIFY_PARAM_set_flags(param, _X509_V_FLAG_X509_STRICT)  # type: ignore[attr-defined]
            if lib.X509_verify_cert(ctx) != 1:  # type: ignore[attr-defined]
                err = lib.X509_STORE_CTX_get_error(ctx)  # type: ignore[attr-defined]
                return 400, lib.X509_verify_cert_error_string(err).decode()  # type: ignore[attr-defined]
            return 0, "ok"
        finally:
            for x in certs:
                lib.X509_free(x)  # type: ignore[attr-defined]
            lib.OPENSSL_sk_free(stack)  # type: ignore[attr-defined]
            lib.X509_STORE_CTX_free(ctx)  # type: ignore[attr-defined]
            lib.X509_STORE_free(store)  # type: ignore[attr-defined]
            lib.ERR_clear_error()  # type: ignore[attr-defined]

    # -- the two check orders ----------------------------------------------------------------------
    def _format_step(self, der: bytes, role: str, code: int) -> RefVerdict | None:
        err, why = self.format_check(der, role)
        if err == CRASH:
            return RefVerdict(CRASH, f"VerifyAttestationCertificateFormat({role.upper()}): {why}")
        if err:
            return RefVerdict(code, f"VerifyAttestationCertificateFormat({role.upper()}): {why}")
        return None

    def _chain_step(self, paa: bytes, pai: bytes, dac: bytes) -> RefVerdict:
        result, why = self.chain(paa, pai, dac)
        if result:
            return RefVerdict(_CHAIN_MAP.get(result, 702), f"ValidateCertificateChain {result}: {why}")
        return RefVerdict(0, "valid")

    def chip_cert(self, paa: bytes, pai: bytes, dac: bytes, at: datetime) -> RefVerdict:
        """``chip-cert validate-att-cert`` (ReadCertDER, then the checks in Cmd_ValidateAttCert order)."""
        read: list[bytes] = []
        for der, role in ((dac, "dac"), (pai, "pai"), (paa, "paa")):
            out = self.reserialise(der)
            if out is None:
                return RefVerdict(NO_VERDICT, f"ReadCertDER({role.upper()}) fails")
            if len(out) > _MAX_DER:
                return RefVerdict(NO_VERDICT, f"ReadCertDER({role.upper()}): {len(out)} bytes overflow the 600-byte buffer")
            read.append(out)
        dac, pai, paa = read
        for der, role, code in ((paa, "paa", 105), (pai, "pai", 203), (dac, "dac", 303)):
            step = self._format_step(der, role, code)
            if step:
                return step
        if not self.valid_at(dac, calendar.timegm(at.utctimetuple())):
            return RefVerdict(300, "IsCertificateValidAtCurrentTime(DAC)")
        ids = {}
        for der, role, code in ((dac, "dac", 303), (pai, "pai", 203), (paa, "paa", 105)):
            got = self.vidpid(der)
            if isinstance(got, str):
                return RefVerdict(code, f"ExtractVIDPIDFromX509Cert({role.upper()}): {got}")
            ids[role] = got
        (dvid, dpid), (ivid, ipid), (avid, apid) = ids["dac"], ids["pai"], ids["paa"]
        if dvid is None or dvid != ivid:
            return RefVerdict(305, f"DAC VID {dvid} vs PAI VID {ivid}")
        if avid is not None and avid != dvid:
            return RefVerdict(205, f"PAA VID {avid} vs DAC VID {dvid}")
        if ipid is not None and ipid != dpid:
            return RefVerdict(306, f"PAI PID {ipid} vs DAC PID {dpid}")
        if apid is not None:
            return RefVerdict(105, "PAA carries a PID")
        return self._chain_step(paa, pai, dac)

    def _trust_store_paa(self, paa: bytes) -> bool:
        """FileAttestationTrustStore keeps a PAA file of at most 600 bytes that passes the PAA format check."""
        if not paa or len(paa) > _MAX_DER:
            return False
        return self.format_check(paa, "paa")[0] == 0 and isinstance(self.key_id(paa, "skid"), bytes)

    def commissioner(self, paa: bytes, pai: bytes, dac: bytes, at: datetime) -> RefVerdict:
        """The certificate part of DefaultDACVerifier::VerifyAttestationInformation."""
        if not dac:
            return RefVerdict(701, "empty DAC")
        if not pai:
            return RefVerdict(207, "no PAI")
        for der, role in ((pai, "PAI"), (dac, "DAC")):
            if len(der) > _MAX_DER:
                # CertificateChainResponse carries at most 600 bytes (kMaxDERCertLength).
                return RefVerdict(NO_VERDICT, f"{role} of {len(der)} bytes cannot be sent")
        for der, role, code in ((pai, "pai", 203), (dac, "dac", 303)):
            step = self._format_step(der, role, code)
            if step:
                return step
        ids = {}
        for der, role, code in ((dac, "dac", 303), (pai, "pai", 203)):
            got = self.vidpid(der)
            if isinstance(got, str):
                return RefVerdict(code, f"ExtractVIDPIDFromX509Cert({role.upper()}): {got}")
            ids[role] = got
        (dvid, dpid), (ivid, ipid) = ids["dac"], ids["pai"]
        if ivid is None or ivid != dvid:
            return RefVerdict(305, f"PAI VID {ivid} vs DAC VID {dvid}")
        if dpid is None:
            return RefVerdict(306, "DAC without PID")
        if ipid is not None and ipid != dpid:
            return RefVerdict(306, f"PAI PID {ipid} vs DAC PID {dpid}")
        if not self.pubkey_ok(dac):
            return RefVerdict(303, "ExtractPubkeyFromX509Cert(DAC)")
        akid = self.key_id(pai, "akid")
        if not isinstance(akid, bytes):
            return RefVerdict(203, f"ExtractAKIDFromX509Cert(PAI): 0x{akid:x}")
        if not self._trust_store_paa(paa) or self.key_id(paa, "skid") != akid:
            return RefVerdict(101, "no trusted PAA with that SKID")
        got = self.vidpid(paa)
        if isinstance(got, str):
            return RefVerdict(105, f"ExtractVIDPIDFromX509Cert(PAA): {got}")
        avid, apid = got
        if avid is not None and avid != ivid:
            return RefVerdict(205, f"PAA VID {avid} vs PAI VID {ivid}")
        if apid is not None:
            return RefVerdict(105, "PAA carries a PID")
        if not self.valid_at(dac, calendar.timegm(at.utctimetuple())):
            return RefVerdict(300, "IsCertificateValidAtCurrentTime(DAC)")
        step = self._chain_step(paa, pai, dac)
        if step.code != 0:
            return step
        if not isinstance(self.key_id(paa, "skid"), bytes):
            return RefVerdict(105, "PAA SKID")
        return step
