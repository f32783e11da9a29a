"""The service's own small PKI, kept in ``<home>/serve/``: a service CA, the server certificate, station certificates.

This CA has nothing to do with Matter: it only authenticates the HTTPS connection both ways. The
server certificate (EKU serverAuth) and every station certificate (EKU clientAuth) are issued by it;
stations trust ``ca.pem``, the server accepts only client certificates that chain to it *and* are
listed, active, in the station registry (``matter_pki.serve.stations``). Keys are P-256, written
encrypted with the home's passphrase (``ca-key.pem``, ``server-key.pem``, mode 0600).

Layout::

    serve/ca.pem, serve/ca-key.pem          the service CA (20 years)
    serve/server.pem, serve/server-key.pem  the server certificate (397 days, renewed at start)
    serve/stations.sqlite                   the station registry and quota counters
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from matter_pki.backends.keyfile import encrypt_key, load_key
from matter_pki.errors import ConfigError, InputError
from matter_pki.storage.local import atomic_write, ensure_private_dir

if TYPE_CHECKING:
    from pathlib import Path

    from matter_pki.audit import AuditLog
    from matter_pki.local.home import PkiHome

CA_YEARS = 20
SERVER_DAYS = 397
SERVER_RENEW_BEFORE = timedelta(days=30)
BACKDATE = timedelta(hours=1)
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
KEY_MODE = 0o600


@dataclass(frozen=True, slots=True)
class ServePaths:
    """Files of the service in a home."""

    root: Path

    @classmethod
    def of(cls, home: PkiHome) -> ServePaths:
        """``<home>/serve``."""
        return cls(home.path / "serve")

    @property
    def ca_cert(self) -> Path:
        """The service CA certificate (the stations' trust anchor)."""
        return self.root / "ca.pem"

    @property
    def ca_key(self) -> Path:
        """The service CA key, encrypted."""
        return self.root / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        """The server certificate."""
        return self.root / "server.pem"

    @property
    def server_key(self) -> Path:
        """The server key, encrypted."""
        return self.root / "server-key.pem"

    @property
    def stations_db(self) -> Path:
        """The station registry."""
        return self.root / "stations.sqlite"


def cert_sha256(cert: x509.Certificate | bytes) -> str:
    """SHA-256 (hex) of a certificate's DER: how the registry recognises a station."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def general_name(text: str) -> x509.GeneralName:
    """A server name for the subjectAltName: an IP address, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.strip().lower()
    if not name or len(name) > 253 or any(not (c.isalnum() or c in "-.*") for c in name):
        raise InputError("input.server_name", f"{text!r} is neither an IP address nor a DNS name")
    return x509.DNSName(name)


def _name(cn: str, organization: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, start: datetime, end: datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def _leaf_usage(builder: x509.CertificateBuilder, ca: x509.Certificate, eku: x509.ObjectIdentifier) -> x509.CertificateBuilder:
    ca_public = ca.public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public), critical=False)
    )


def make_ca(home_id: str, now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new service CA (CA:TRUE, pathlen 0, keyCertSign), valid for ``CA_YEARS``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("matter-pki serve CA", f"matter-pki home {home_id[:12]}")
    start = now - BACKDATE
    builder = (
        _builder(name, name, key.public_key(), start, start + timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    )
    return key, builder.sign(key, hashes.SHA256())


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, names: list[str], now: datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate (serverAuth) for ``names`` (DNS names or IP addresses)."""
    if not names:
        raise InputError("input.server_name", "the server certificate needs at least one name")
    key = ec.generate_private_key(ec.SECP256R1())
    start = max(now - BACKDATE, ca.not_valid_before_utc)
    end = min(start + timedelta(days=SERVER_DAYS), ca.not_valid_after_utc)
    builder = _leaf_usage(
        _builder(_name(names[0], "matter-pki serve"), ca.subject, key.public_key(), start, end),
        ca,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ).add_extension(x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def make_station_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, name: str, now: datetime, days: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A station's client certificate (clientAuth), CN = the station name."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = max(now - BACKDATE, ca.not_valid_before_utc)
    try:
        end = min(start + timedelta(days=days), ca.not_valid_after_utc)
    except OverflowError as e:
        raise InputError("input.validity", f"{days} days is out of range") from e
    builder = _leaf_usage(
        _builder(_name(name, "matter-pki station"), ca.subject, key.public_key(), start, end),
        ca,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    atomic_write(path, encrypt_key(key, passphrase), mode=KEY_MODE)


def _load_cert(path: Path, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError("config.corrupt", f"{what} {str(path)!r} cannot be read: {e}") from e


def load_ca(paths: ServePaths, passphrase: bytes) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The service CA key and certificate (``serve.ca_missing`` before the first ``station add``)."""
    if not paths.ca_cert.is_file():
        raise ConfigError("serve.ca_missing", "the service has no CA yet: add a station first ('matter-pki station add')")
    return load_key(paths.ca_key, passphrase), _load_cert(paths.ca_cert, "service CA certificate")


def ensure_ca(
    home: PkiHome, paths: ServePaths, passphrase: bytes, now: datetime, audit: AuditLog
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The service CA, created on first use (the caller holds the home lock)."""
    if paths.ca_cert.is_file():
        return load_ca(paths, passphrase)
    ensure_private_dir(paths.root)
    # A key without its certificate was never used to sign anything: replace it.
    with contextlib.suppress(FileNotFoundError):
        paths.ca_key.unlink()
    key, cert = make_ca(home.home_id(), now)
    _write_key(paths.ca_key, key, passphrase)
    atomic_write(paths.ca_cert, cert.public_bytes(Encoding.PEM), mode=0o644)
    audit.record("serve.ca_created", serial=f"{cert.serial_number:X}", subject=cert.subject.rfc4514_string(), sha256=cert_sha256(cert))
    return key, cert


def _covers(cert: x509.Certificate, names: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = set(san)
    return all(general_name(n) in present for n in names)


def server_cert_current(paths: ServePaths, ca: x509.Certificate, passphrase: bytes, names: list[str], now: datetime) -> bool:
    """True when the server certificate exists, matches its key, is issued by ``ca``, covers ``names`` and is not expiring."""
    if not (paths.server_cert.is_file() and paths.server_key.is_file()):
        return False
    cert = _load_cert(paths.server_cert, "server certificate")
    key = load_key(paths.server_key, passphrase)
    return (
        cert.public_key() == key.public_key()
        and cert.issuer == ca.subject
        and cert.not_valid_after_utc - now > SERVER_RENEW_BEFORE
        and _covers(cert, names)
    )


def ensure_server_cert(
    home: PkiHome, paths: ServePaths, passphrase: bytes, names: list[str], now: datetime, audit: AuditLog
) -> x509.Certificate:
    """A current server certificate for ``names``, (re)issued when absent, expiring or not covering them."""
    ca_key, ca = ensure_ca(home, paths, passphrase, now, audit)
    if server_cert_current(paths, ca, passphrase, names, now):
        return _load_cert(paths.server_cert, "server certificate")
    key, cert = make_server_cert(ca_key, ca, names, now)
    _write_key(paths.server_key, key, passphrase)
    atomic_write(paths.server_cert, cert.public_bytes(Encoding.PEM), mode=0o644)
    audit.record(
        "serve.server_cert", serial=f"{cert.serial_number:X}", names=list(names), sha256=cert_sha256(cert),
        not_after=cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    return cert
