"""Encrypted PKCS#8 key files (matter_pki.backends.keyfile)."""

from __future__ import annotations

import base64
import os
import pickle
import re
import shutil
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from matter_pki import der
from matter_pki.backends import keyfile
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


# -- the key derivation ----------------------------------------------------------------------------
NEEDS_OPENSSL = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")
_REAL_KDF = (
    "import sys; from matter_pki.backends.keyfile import generate_key_file; from cryptography.hazmat.primitives "
    "import serialization as s; k = generate_key_file(sys.argv[1], sys.argv[2].encode()); "
    "print(k.public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode(), end='')"
)


def _real_key_file(tmp_path: Path) -> tuple[Path, str]:
    """A key file written with the product's defaults (a process without the suite's cheap-KDF shim), and its public PEM."""
    path = tmp_path / "key.pem"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    made = subprocess.run([sys.executable, "-c", _REAL_KDF, str(path), PW.decode()], capture_output=True, text=True,
                          env=env, cwd=tmp_path, check=True)  # fmt: skip
    return path, made.stdout


def test_new_key_files_use_pbkdf2_sha256_at_600000_iterations(tmp_path: Path) -> None:
    # GIVEN a key file written by the product's defaults
    path, public = _real_key_file(tmp_path)
    # THEN it is PBES2 / PBKDF2-HMAC-SHA256 at 600,000 iterations, and cryptography's loader opens it to the same key
    assert keyfile.key_file_kdf(path.read_bytes()) == keyfile.KeyFileKdf("pbkdf2", "hmacWithSHA256", 600_000)
    key = serialization.load_pem_private_key(path.read_bytes(), PW)
    assert key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode() == public


@NEEDS_OPENSSL
def test_openssl_reads_a_key_file_written_with_the_real_count(tmp_path: Path) -> None:
    # GIVEN a key file written by the product's defaults, and the passphrase in a file
    path, public = _real_key_file(tmp_path)
    (tmp_path / "pw").write_bytes(PW + b"\n")
    # THEN openssl sees PBES2 / PBKDF2 with hmacWithSHA256, 600,000 iterations, AES-256-CBC
    parsed = subprocess.run(["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True).stdout
    assert ":PBES2" in parsed and ":PBKDF2" in parsed and ":hmacWithSHA256" in parsed and ":aes-256-cbc" in parsed
    assert int(re.search(r"prim: INTEGER\s+:([0-9A-F]+)", parsed).group(1), 16) == 600_000  # type: ignore[union-attr]
    # AND `openssl pkey -passin` opens it to the same key
    pub = subprocess.run(["openssl", "pkey", "-in", str(path), "-passin", f"file:{tmp_path / 'pw'}", "-pubout"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert pub == public


def test_the_suite_writes_key_files_with_the_same_structure(tmp_path: Path) -> None:
    # GIVEN a key file written here (the suite lowers only the count, see tests/kdf_shim)
    path = tmp_path / "key.pem"
    generate_key_file(path, PW)
    # THEN its KDF is what load checks, and a fresh loader opens it
    assert keyfile.key_file_kdf(path.read_bytes()) == keyfile.KeyFileKdf("pbkdf2", "hmacWithSHA256", keyfile.PBKDF2_ITERATIONS)
    assert isinstance(serialization.load_pem_private_key(path.read_bytes(), PW), ec.EllipticCurvePrivateKey)


def _openssl_pkcs8(tmp_path: Path, *options: str) -> Path:
    """A P-256 key re-encrypted by openssl pkcs8 with ``options``, mode 0600."""
    plain, out = tmp_path / "plain.pem", tmp_path / "other.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    plain.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    subprocess.run(["openssl", "pkcs8", "-topk8", "-in", str(plain), "-out", str(out), "-passout", f"pass:{PW.decode()}",
                    *options], check=True, capture_output=True)  # fmt: skip
    out.chmod(0o600)
    return out


def _with_kdf(tmp_path: Path, kdf: bytes) -> Path:
    """An EncryptedPrivateKeyInfo with the given PBES2 keyDerivationFunc (the ciphertext is never reached)."""
    seq = lambda *parts: der.encode_tlv(der.SEQUENCE, b"".join(parts))  # noqa: E731
    cipher = seq(der.encode_oid("2.16.840.1.101.3.4.1.42"), der.encode_tlv(der.OCTET_STRING, bytes(16)))
    info = seq(seq(der.encode_oid("1.2.840.113549.1.5.13"), seq(kdf, cipher)), der.encode_tlv(der.OCTET_STRING, bytes(144)))
    path = tmp_path / "crafted.pem"
    body = base64.encodebytes(info).decode()
    path.write_text(f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}-----END ENCRYPTED PRIVATE KEY-----\n")
    path.chmod(0o600)
    return path


def _pbkdf2(iterations: int, prf: str | None) -> bytes:
    seq = lambda *parts: der.encode_tlv(der.SEQUENCE, b"".join(parts))  # noqa: E731
    prf_alg = seq(der.encode_oid(prf), der.encode_tlv(der.NULL, b"")) if prf else b""
    params = seq(der.encode_tlv(der.OCTET_STRING, bytes(16)), der.encode_integer(iterations), prf_alg)
    return seq(der.encode_oid("1.2.840.113549.1.5.12"), params)


def _scrypt(n: int, r: int, p: int) -> bytes:
    seq = lambda *parts: der.encode_tlv(der.SEQUENCE, b"".join(parts))  # noqa: E731
    params = seq(der.encode_tlv(der.OCTET_STRING, bytes(16)), *(der.encode_integer(v) for v in (n, r, p)))
    return seq(der.encode_oid("1.3.6.1.4.1.11591.4.11"), params)


WEAK_KDFS = {
    "pbkdf2-sha256-under-the-floor": _pbkdf2(keyfile.PBKDF2_MIN_ITERATIONS - 1, "1.2.840.113549.2.9"),
    "pbkdf2-default-prf-sha1": _pbkdf2(5_000_000, None),
    "pbkdf2-sha1": _pbkdf2(5_000_000, "1.2.840.113549.2.7"),
    "scrypt-cheap": _scrypt(2**14, 8, 1),
    "unknown-kdf": der.encode_tlv(der.SEQUENCE, der.encode_oid("1.2.3.4")),
}


@pytest.mark.parametrize("name", sorted(WEAK_KDFS))
def test_a_key_file_with_a_weak_or_unknown_kdf_is_refused_before_any_decryption(tmp_path: Path, name: str) -> None:
    # GIVEN an encrypted PKCS#8 key file whose KDF is under the floor (hostile or old)
    path = _with_kdf(tmp_path, WEAK_KDFS[name])
    # WHEN it is loaded THEN key.kdf_weak names the fix (home rekey)
    with pytest.raises(KeyStoreError) as err:
        load_key(path, PW)
    assert err.value.code == "key.kdf_weak" and "home rekey" in err.value.message


def test_old_key_files_are_refused_but_open_for_re_encryption(tmp_path: Path) -> None:
    # GIVEN a key file as earlier versions wrote it (BestAvailableEncryption: PBKDF2 x 2048)
    path = tmp_path / "old.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PW)))  # fmt: skip
    path.chmod(0o600)
    assert "x 2048" in keyfile.key_file_kdf(path.read_bytes()).describe()  # type: ignore[union-attr]
    # THEN loading refuses it, and so does a worker's signer factory
    for opener in (lambda: load_key(path, PW), FileKeySigner(str(path), PW)):
        with pytest.raises(KeyStoreError) as err:
            opener()
        assert err.value.code == "key.kdf_weak"
    # AND only the re-encryption path opens it
    assert load_key(path, PW, allow_weak_kdf=True).private_numbers() == key.private_numbers()


@NEEDS_OPENSSL
def test_openssl_pbes1_is_weak_and_an_owasp_scrypt_file_loads(tmp_path: Path) -> None:
    # GIVEN openssl's PBES1 (SHA1 + 3DES) and scrypt at OWASP's N=2^14 r=8 p=5 (what OpenSSL 3.0 can still read)
    pbes1 = _openssl_pkcs8(tmp_path, "-v1", "PBE-SHA1-3DES")
    with pytest.raises(KeyStoreError) as err:
        load_key(pbes1, PW)
    assert err.value.code == "key.kdf_weak"
    scrypt = _openssl_pkcs8(tmp_path, "-scrypt", "-scrypt_N", "16384", "-scrypt_r", "8", "-scrypt_p", "5")
    # THEN the scrypt file is strong enough and opens
    assert keyfile.key_file_kdf(scrypt.read_bytes()).strong  # type: ignore[union-attr]
    assert isinstance(load_key(scrypt, PW), ec.EllipticCurvePrivateKey)


@pytest.mark.parametrize("body", [b"not base64 !", base64.b64encode(b"\x30\x03\x02\x01\x01"), base64.b64encode(bytes(40))])
def test_a_damaged_encrypted_key_file_is_malformed_not_weak(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "damaged.pem"
    path.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + body + b"\n-----END ENCRYPTED PRIVATE KEY-----\n")
    path.chmod(0o600)
    with pytest.raises(KeyStoreError) as err:
        load_key(path, PW)
    assert err.value.code == "key.malformed"


def test_a_key_file_asking_for_an_absurd_iteration_count_is_refused_unread(tmp_path: Path) -> None:
    # GIVEN a key file whose PBKDF2 count would keep a load busy for days (hostile or damaged)
    path = _with_kdf(tmp_path, _pbkdf2(2**40, "1.2.840.113549.2.9"))
    # WHEN it is loaded THEN it is refused at once as malformed, never derived
    with pytest.raises(KeyStoreError) as err:
        load_key(path, PW)
    assert err.value.code == "key.malformed" and str(keyfile.PBKDF2_MAX_ITERATIONS) in err.value.message
