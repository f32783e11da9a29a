"""Shared helpers for the local CA tests: CSRs (good and bad), PKI homes, a SoftHSM2 token, the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from matter_pki.audit import AuditLog
from matter_pki.audit.seal import AuditKey
from matter_pki.cli import main
from matter_pki.local import ca as ca_ops
from matter_pki.local.home import KeyStoreSettings, PkiHome
from matter_pki.local.keys import Secrets

PASSPHRASE = "correct horse battery staple"
PIN = "1234"
SO_PIN = "5678"
SOFTHSM_MODULE = os.environ.get("MATTER_PKI_TEST_SOFTHSM", "/usr/lib/softhsm/libsofthsm2.so")
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


# -- CSRs ----------------------------------------------------------------------------------------
def csr_for(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, cn: str = "device") -> bytes:
    """A PEM CSR signed by ``key``."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM
    )


def good_csr() -> bytes:
    """P-256, ecdsa-with-SHA256."""
    return csr_for(ec.generate_private_key(ec.SECP256R1()))


def p384_csr() -> bytes:
    """Wrong curve."""
    return csr_for(ec.generate_private_key(ec.SECP384R1()))


def rsa_csr() -> bytes:
    """Not EC."""
    return csr_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))


def bad_signature_csr() -> bytes:
    """P-256 CSR whose self-signature does not verify (last signature byte changed)."""
    der = x509.load_pem_x509_csr(good_csr()).public_bytes(serialization.Encoding.DER)
    return _pem(der[:-1] + bytes([der[-1] ^ 0x01]))


def truncated_csr() -> bytes:
    """The first half of a DER CSR."""
    der = x509.load_pem_x509_csr(good_csr()).public_bytes(serialization.Encoding.DER)
    return der[: len(der) // 2]


def oversized_csr() -> bytes:
    """A valid P-256 CSR over 4 KiB (a long subject)."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"unit {i:03d} " + "x" * 50) for i in range(80)]
    key = ec.generate_private_key(ec.SECP256R1())
    pem = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs)).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM
    )
    assert len(pem) > 4096
    return pem


def multi_csr() -> bytes:
    """Two CSRs in one file."""
    return good_csr() + good_csr()


def _pem(der: bytes) -> bytes:
    import base64

    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + lines + b"\n-----END CERTIFICATE REQUEST-----\n"


BAD_CSRS = {
    "rsa": (rsa_csr, "csr.key_not_ec"),
    "p384": (p384_csr, "csr.key_curve"),
    "badsig": (bad_signature_csr, "csr.signature_invalid"),
    "truncated": (truncated_csr, "csr.malformed"),
    "oversized": (oversized_csr, "csr.too_large"),
    "multi": (multi_csr, "csr.multiple"),
}


def write_csrs(folder: Path, count: int, prefix: str = "dev-") -> list[Path]:
    """``count`` good CSR files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"{prefix}{i:04d}.csr"
        p.write_bytes(good_csr())
        paths.append(p)
    return paths


# -- audit logs ----------------------------------------------------------------------------------
def new_audit_log(home: Path, passphrase: str | None = None, **kwargs: object) -> AuditLog:
    """A fresh audit folder with its key (as ``init`` makes it), and the log (passphrase from the env by default)."""
    secret = (passphrase or os.environ.get("MATTER_PKI_PASSPHRASE") or PASSPHRASE).encode()
    (home / "audit").mkdir(mode=0o700, parents=True, exist_ok=True)
    AuditKey(home / "audit", secret).create()
    return AuditLog(home, passphrase=secret, **kwargs)  # type: ignore[arg-type]


# -- homes ---------------------------------------------------------------------------------------
@dataclass
class Pki:
    """A home with a PAA and one PAI."""

    home: PkiHome
    pai_id: str
    secrets: Secrets


def make_pki(
    path: Path, *, vid: int | None = 0xFFF1, pai_vid: int | None = None, pid: int | None = 0x8000,
    settings: KeyStoreSettings | None = None, secrets: Secrets | None = None,
) -> Pki:
    """init + pai create through the library (real clock: DACs must validate 'now')."""
    home = PkiHome(path)
    secrets = secrets or Secrets.fixed(PASSPHRASE.encode(), PIN)
    now = datetime.now(UTC)
    ca_ops.init_paa(home, vid=vid, settings=settings or KeyStoreSettings(), secrets=secrets, now=now)
    info = ca_ops.create_pai(home, pid=pid, vid=pai_vid, secrets=secrets, now=now)
    return Pki(home, info.id, secrets)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for CLI runs against ``home``."""
    env = {"MATTER_PKI_HOME": str(home), "MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_OPERATOR": "tester"}
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str]) -> Result:
    """Run ``matter-pki`` in-process."""
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


CLI_PREFIX = [sys.executable, "-c", "from matter_pki.cli import main; main()"]


def run_cli_process(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``matter-pki`` in a child process (for exit codes that involve the interpreter)."""
    return subprocess.run(
        [*CLI_PREFIX, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )


# -- SoftHSM2 ------------------------------------------------------------------------------------
@dataclass
class Token:
    """A SoftHSM2 token for this test session."""

    module: str
    label: str
    conf: Path

    def env(self) -> dict[str, str]:
        """Variables that select it."""
        return {
            "SOFTHSM2_CONF": str(self.conf),
            "MATTER_PKI_PKCS11_MODULE": self.module,
            "MATTER_PKI_PKCS11_TOKEN": self.label,
            "MATTER_PKI_PKCS11_PIN": PIN,
        }


def softhsm_skip_reason() -> str | None:
    """Why SoftHSM2 tests cannot run here, or None."""
    if not Path(SOFTHSM_MODULE).is_file():
        return f"SoftHSM2 module not found at {SOFTHSM_MODULE} (apt install softhsm2)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not on PATH (apt install softhsm2)"
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        return "python-pkcs11 not installed (pip install '.[pkcs11]')"
    return None


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Token:
    """One token per session: SoftHSM reads SOFTHSM2_CONF once per process, at C_Initialize."""
    reason = softhsm_skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = "matter-pki-test"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    return Token(SOFTHSM_MODULE, label, conf)
