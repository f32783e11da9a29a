"""Encrypted PKCS#8 key files (matter_pki.backends.keyfile)."""

from __future__ import annotations

import pickle
import stat
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki.backends.keyfile import FileKeySigner, generate_key_file, load_key, write_key
from matter_pki.errors import KeyStoreError, StorageError

if TYPE_CHECKING:
    from pathlib import Path

PW = b"s3cret passphrase"


def test_key_file_is_encrypted_pkcs8_mode_0600(tmp_path: Path) -> None:
    # GIVEN a generated key file
    path = tmp_path / "key.pem"
    public = generate_key_file(path, PW)
    data = path.read_bytes()
    # THEN it is an encrypted PKCS#8 PEM, never the plain form, with mode 0600
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"BEGIN PRIVATE KEY" not in data and b"BEGIN EC PRIVATE KEY" not in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # AND it opens with the passphrase to the same key
    assert load_key(path, PW).public_key() == public


def test_wrong_passphrase_is_a_coded_key_error(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generate_key_file(path, PW)
    with pytest.raises(KeyStoreError) as err:
        load_key(path, b"not it")
    assert err.value.code == "key.passphrase_wrong"
    assert "not it" not in str(err.value)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as err:
        generate_key_file(tmp_path / "key.pem", b"")
    assert err.value.code == "key.passphrase_empty"
    assert not (tmp_path / "key.pem").exists()


def test_unencrypted_key_file_is_refused(tmp_path: Path) -> None:
    # GIVEN a plain PKCS#8 key written by someone else with mode 0600
    path = tmp_path / "plain.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    # THEN loading refuses it
    with pytest.raises(KeyStoreError) as err:
        load_key(path, PW)
    assert err.value.code == "key.not_encrypted"


def test_group_readable_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generate_key_file(path, PW)
    path.chmod(0o640)
    with pytest.raises(KeyStoreError) as err:
        load_key(path, PW)
    assert err.value.code == "key.permissions"


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError) as err:
        load_key(tmp_path / "none.pem", PW)
    assert err.value.code == "key.missing"


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    generate_key_file(path, PW)
    before = path.read_bytes()
    with pytest.raises(StorageError) as err:
        write_key(path, ec.generate_private_key(ec.SECP256R1()), PW)
    assert err.value.code == "storage.exists"
    assert path.read_bytes() == before


def test_file_signer_factory_pickles_without_showing_the_passphrase(tmp_path: Path) -> None:
    # GIVEN a signer factory for a key file
    path = tmp_path / "key.pem"
    public = generate_key_file(path, PW)
    factory = FileKeySigner(str(path), PW)
    # THEN its repr hides the passphrase, and a pickled copy opens the same key
    assert PW.decode() not in repr(factory)
    assert pickle.loads(pickle.dumps(factory))().public_key() == public
