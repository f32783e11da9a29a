"""Keys on a PKCS#11 token (HSM, SoftHSM2) behind an ``ec.EllipticCurvePrivateKey`` adapter.

Keys are generated on the token (sensitive, non-extractable, sign-only). ``Pkcs11EcPrivateKey.sign``
hashes locally, asks the token for a raw ECDSA signature (r||s) and returns it DER-encoded, so
``CertificateBuilder.sign``, ``CertificateSigningRequestBuilder.sign`` and
``CertificateRevocationListBuilder.sign`` work exactly as with a file key. ``Pkcs11SignerFactory``
is picklable: each batch worker process opens its own session (re-initialising the library after
a fork, as PKCS#11 requires).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from matter_pki.backends.signonly import SignOnlyP256Key
from matter_pki.errors import KeyStoreError, extra_hint

PIN_ENV = "MATTER_PKI_PKCS11_PIN"
MODULE_ENV = "MATTER_PKI_PKCS11_MODULE"
TOKEN_ENV = "MATTER_PKI_PKCS11_TOKEN"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
_P256_OID = "1.2.840.10045.3.1.7"
_COORD = 32

_libs: dict[str, tuple[int, Any]] = {}
_sessions: dict[tuple[str, str], tuple[int, Any]] = {}
_guard = threading.Lock()


@dataclass(frozen=True, slots=True)
class Pkcs11Config:
    """Which module and token to use, and the user PIN (never shown in reprs)."""

    module: str
    token: str
    pin: str = field(repr=False)

    @classmethod
    def from_env(cls, module: str | None, token: str | None, pin: str | None = None) -> Pkcs11Config:
        """Fill unset values from ``MATTER_PKI_PKCS11_MODULE``/``_TOKEN``/``_PIN``."""
        module, token = resolve_module_token(module, token)
        pin = pin if pin is not None else os.environ.get(PIN_ENV)
        if not pin:
            raise KeyStoreError("key.pkcs11_pin", f"no PKCS#11 user PIN: set {PIN_ENV}")
        return cls(module=module, token=token, pin=pin)


def resolve_module_token(module: str | None, token: str | None) -> tuple[str, str]:
    """Module path and token label from the arguments, else the environment; coded errors when missing."""
    module = module or os.environ.get(MODULE_ENV)
    token = token or os.environ.get(TOKEN_ENV)
    if not module:
        raise KeyStoreError("key.pkcs11_module", f"no PKCS#11 module: pass --pkcs11-module or set {MODULE_ENV}")
    if not token:
        raise KeyStoreError("key.pkcs11_token", f"no PKCS#11 token label: pass --pkcs11-token or set {TOKEN_ENV}")
    return module, token


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError as e:
        raise KeyStoreError(
            "key.pkcs11_unavailable", f"python-pkcs11 is not installed ({extra_hint('pkcs11')})"
        ) from e
    return pkcs11


def _wrap(e: Exception, what: str) -> KeyStoreError:
    return KeyStoreError("key.pkcs11_error", f"PKCS#11 {what} failed: {type(e).__name__} {e}".strip())


def _library(module: str) -> Any:
    pkcs11 = _pkcs11()
    pid = os.getpid()
    cached = _libs.get(module)
    if cached is not None and cached[0] == pid:
        return cached[1]
    if not Path(module).is_file():
        raise KeyStoreError("key.pkcs11_module", f"PKCS#11 module {module!r} not found")
    try:
        lib = pkcs11.lib(module)
        if cached is not None:
            # Forked child: PKCS#11 requires C_Initialize again in the new process.
            lib.reinitialize()
    except pkcs11.PKCS11Error as e:
        raise _wrap(e, f"loading {module!r}") from e
    _libs[module] = (pid, lib)
    return lib


def open_session(config: Pkcs11Config) -> Any:
    """A logged-in read-write session on the configured token (one per process and token)."""
    pkcs11 = _pkcs11()
    key = (config.module, config.token)
    with _guard:
        cached = _sessions.get(key)
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        lib = _library(config.module)
        try:
            token = lib.get_token(token_label=config.token)
        except pkcs11.NoSuchToken as e:
            raise KeyStoreError("key.pkcs11_token", f"no PKCS#11 token labelled {config.token!r}") from e
        except pkcs11.MultipleTokensReturned as e:
            raise KeyStoreError("key.pkcs11_token", f"several PKCS#11 tokens are labelled {config.token!r}") from e
        except pkcs11.PKCS11Error as e:
            raise _wrap(e, "token lookup") from e
        try:
            session = token.open(user_pin=config.pin, rw=True)
        except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange) as e:
            raise KeyStoreError("key.pkcs11_pin", f"PKCS#11 login to {config.token!r} failed: wrong PIN") from e
        except pkcs11.PKCS11Error as e:
            raise _wrap(e, "login") from e
        _sessions[key] = (os.getpid(), session)
        return session


def _public_from_point(encoded: bytes) -> ec.EllipticCurvePublicKey:
    point = encoded
    # CKA_EC_POINT is a DER OCTET STRING per PKCS#11 v2.40; some tokens return the bare point.
    if len(point) == 2 + 2 * _COORD + 1 and point[0] == 0x04 and point[1] == len(point) - 2:
        point = point[2:]
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError as e:
        raise KeyStoreError("key.pkcs11_error", "token returned an unusable EC public point") from e


def generate_keypair(config: Pkcs11Config, label: str) -> tuple[bytes, ec.EllipticCurvePublicKey]:
    """Generate a P-256 key pair on the token (private half sensitive and non-extractable); returns (CKA_ID, public key)."""
    pkcs11 = _pkcs11()
    from pkcs11 import Attribute, KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    session = open_session(config)
    key_id = secrets.token_bytes(16)
    try:
        params = session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_P256_OID)}, local=True
        )
        public, _private = params.generate_keypair(
            store=True,
            label=label,
            id=key_id,
            public_template={Attribute.VERIFY: True},
            private_template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,
                Attribute.SIGN: True,
                Attribute.DERIVE: False,
                Attribute.DECRYPT: False,
            },
        )
        point = public[Attribute.EC_POINT]
    except pkcs11.PKCS11Error as e:
        raise _wrap(e, "key generation") from e
    return key_id, _public_from_point(point)


class Pkcs11EcPrivateKey(SignOnlyP256Key):
    """A P-256 private key that lives on a token; only ``sign`` and ``public_key`` are usable."""

    algorithm_code = "key.pkcs11_algorithm"

    def __init__(self, handle: Any, public: ec.EllipticCurvePublicKey, label: str) -> None:
        self._handle = handle
        self._public = public
        self._label = label
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Pkcs11EcPrivateKey label={self._label!r}>"

    def sign(self, data: bytes | bytearray | memoryview, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        """ECDSA on the token: hash here, raw CKM_ECDSA there, DER-encode r||s."""
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise KeyStoreError("key.pkcs11_algorithm", "the token key only signs with ECDSA")
        algorithm = signature_algorithm.algorithm
        if isinstance(algorithm, Prehashed):
            digest = bytes(data)
        else:
            h = hashes.Hash(algorithm)
            h.update(data)
            digest = h.finalize()
        pkcs11 = _pkcs11()
        try:
            with self._lock:
                raw = self._handle.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)
        except pkcs11.PKCS11Error as e:
            raise _wrap(e, "signing") from e
        if len(raw) != 2 * _COORD:
            raise KeyStoreError("key.pkcs11_error", f"token returned a {len(raw)}-byte ECDSA signature, expected 64")
        return encode_dss_signature(int.from_bytes(raw[:_COORD], "big"), int.from_bytes(raw[_COORD:], "big"))

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public half, read from the token."""
        return self._public

    def describe(self) -> str:
        """``token key '<label>'``."""
        return f"token key {self._label!r}"


def load_private_key(config: Pkcs11Config, key_id: bytes, label: str = "") -> Pkcs11EcPrivateKey:
    """Find a key pair on the token by CKA_ID and wrap its private half."""
    pkcs11 = _pkcs11()
    from pkcs11 import Attribute, ObjectClass

    session = open_session(config)
    try:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
        public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=key_id)
        point = public[Attribute.EC_POINT]
    except pkcs11.NoSuchKey as e:
        raise KeyStoreError("key.missing", f"no key {label or key_id.hex()!r} on token {config.token!r}") from e
    except pkcs11.MultipleObjectsReturned as e:
        raise KeyStoreError("key.pkcs11_error", f"several keys share id {key_id.hex()} on {config.token!r}") from e
    except pkcs11.PKCS11Error as e:
        raise _wrap(e, "key lookup") from e
    return Pkcs11EcPrivateKey(private, _public_from_point(point), label or key_id.hex())


@dataclass(frozen=True, slots=True)
class Pkcs11SignerFactory:
    """Picklable signer factory: opens (per process) a session and returns the key adapter."""

    config: Pkcs11Config
    key_id: bytes
    label: str = ""

    def __call__(self) -> ec.EllipticCurvePrivateKey:
        """Open the key."""
        return load_private_key(self.config, self.key_id, self.label)
