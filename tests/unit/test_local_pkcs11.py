"""The PKCS#11 key adapter on SoftHSM2 (matter_pki.backends.pkcs11); skipped without SoftHSM2."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from matter_pki.backends.pkcs11 import Pkcs11Config, Pkcs11SignerFactory, generate_keypair, open_session
from matter_pki.errors import KeyStoreError
from tests.unit.test_local_fixtures import PIN, Token


def _config(token: Token, pin: str = PIN, label: str | None = None) -> Pkcs11Config:
    return Pkcs11Config(module=token.module, token=label or token.label, pin=pin)


def _sign_in_worker(factory: Pkcs11SignerFactory) -> bytes:
    return factory().sign(b"from a worker", ec.ECDSA(hashes.SHA256()))


def test_token_key_signs_like_a_cryptography_key(softhsm_token: Token) -> None:  # noqa: F811
    # GIVEN a key pair generated on the token
    config = _config(softhsm_token)
    key_id, public = generate_keypair(config, "unit-sign")
    key = Pkcs11SignerFactory(config, key_id, "unit-sign")()
    # WHEN data is signed through the EllipticCurvePrivateKey interface
    signature = key.sign(b"hello", ec.ECDSA(hashes.SHA256()))
    # THEN it is a DER ECDSA signature that verifies with the token's public key
    public.verify(signature, b"hello", ec.ECDSA(hashes.SHA256()))
    assert signature[0] == 0x30
    assert key.public_key() == public and key.key_size == 256 and isinstance(key.curve, ec.SECP256R1)


def test_token_private_key_is_sensitive_and_not_extractable(softhsm_token: Token) -> None:  # noqa: F811
    import pkcs11
    from pkcs11 import Attribute, ObjectClass

    config = _config(softhsm_token)
    key_id, _public = generate_keypair(config, "unit-attrs")
    handle = open_session(config).get_key(object_class=ObjectClass.PRIVATE_KEY, id=key_id)
    assert handle[Attribute.SENSITIVE] is True
    assert handle[Attribute.EXTRACTABLE] is False
    assert handle[Attribute.TOKEN] is True
    with pytest.raises(pkcs11.PKCS11Error):
        handle[Attribute.VALUE]
    adapter = Pkcs11SignerFactory(config, key_id)()
    with pytest.raises(KeyStoreError) as err:
        adapter.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    assert err.value.code == "key.not_extractable"


@pytest.mark.parametrize("method", ["fork", "fresh-process"])
def test_signer_factory_pickles_and_works_in_a_worker(softhsm_token: Token, method: str) -> None:  # noqa: F811
    # GIVEN a factory used in this process already (the library is initialised here)
    config = _config(softhsm_token)
    key_id, public = generate_keypair(config, "unit-fork")
    factory = Pkcs11SignerFactory(config, key_id, "unit-fork")
    factory().sign(b"parent", ec.ECDSA(hashes.SHA256()))
    # WHEN another process unpickles it and signs
    assert PIN not in repr(pickle.loads(pickle.dumps(factory)))
    if method == "fork":
        if threading.active_count() > 1:
            # Forking a threaded process can deadlock in any library; issue_batch spawns then.
            pytest.skip("fork is only used from a single-threaded process")
        with multiprocessing.get_context("fork").Pool(1) as pool:
            signature = pool.apply_async(_sign_in_worker, (factory,)).get(timeout=60)
    else:
        code = (
            "import pickle, sys\n"
            "from cryptography.hazmat.primitives import hashes\n"
            "from cryptography.hazmat.primitives.asymmetric import ec\n"
            "factory = pickle.loads(sys.stdin.buffer.read())\n"
            "sys.stdout.buffer.write(factory().sign(b'from a worker', ec.ECDSA(hashes.SHA256())))\n"
        )
        done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(factory), capture_output=True, timeout=60, check=True)
        signature = done.stdout
    # THEN the worker re-initialised PKCS#11 and its signature verifies
    public.verify(signature, b"from a worker", ec.ECDSA(hashes.SHA256()))


def test_wrong_pin_unknown_token_and_missing_module_are_coded(softhsm_token: Token) -> None:  # noqa: F811
    # Unknown token and missing module, in this process.
    with pytest.raises(KeyStoreError) as token:
        open_session(_config(softhsm_token, label=softhsm_token.label + "-absent"))
    assert token.value.code == "key.pkcs11_token"
    with pytest.raises(KeyStoreError) as module:
        open_session(Pkcs11Config(module="/nonexistent/libp11.so", token="t", pin=PIN))
    assert module.value.code == "key.pkcs11_module"
    # A wrong PIN, in a fresh process (PKCS#11 login state is shared by every session of a process).
    code = (
        "from matter_pki.backends.pkcs11 import Pkcs11Config, open_session\n"
        "from matter_pki.errors import KeyStoreError\n"
        "try:\n"
        f"    open_session(Pkcs11Config({softhsm_token.module!r}, {softhsm_token.label!r}, '0000'))\n"
        "except KeyStoreError as e:\n"
        "    print(e.code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **softhsm_token.env()},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "key.pkcs11_pin", done.stderr
