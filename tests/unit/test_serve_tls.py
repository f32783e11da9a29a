"""The service's own certificates: CA, server certificate names and renewal, purposes."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from matter_pki.errors import MatterPkiError
from matter_pki.local.state import open_audit
from matter_pki.serve.tls import ServePaths, ensure_server_cert, general_name, make_ca, make_server_cert
from tests.unit.test_local_fixtures import PASSPHRASE, make_pki

if TYPE_CHECKING:
    from pathlib import Path


def test_ca_and_server_certificate_profiles() -> None:
    # GIVEN a service CA
    now = datetime.now(UTC)
    ca_key, ca = make_ca("0123456789abcdef", now)
    # WHEN a server certificate is made for a name and two addresses
    _key, cert = make_server_cert(ca_key, ca, ["ca.factory.example", "10.1.2.3", "::1"], now)
    # THEN the CA may only sign end entities, and the server certificate is for serverAuth with those names
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca and bc.path_length == 0
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ca.factory.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("::1")]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)


@pytest.mark.parametrize("text", ["", "a b", "x/y", "a" * 300])
def test_bad_server_names_are_coded(text: str) -> None:
    # GIVEN/WHEN a name that is neither an address nor a DNS name THEN input.server_name
    with pytest.raises(MatterPkiError) as caught:
        general_name(text)
    assert caught.value.code == "input.server_name"


def test_the_server_certificate_is_kept_while_current_and_renewed_when_not(tmp_path: Path) -> None:
    # GIVEN a home whose service has a server certificate for localhost
    pki = make_pki(tmp_path / "home")
    paths = ServePaths.of(pki.home)
    audit = open_audit(pki.home, pki.secrets)
    now = datetime.now(UTC)
    first = ensure_server_cert(pki.home, paths, PASSPHRASE.encode(), ["localhost"], now, audit)
    # WHEN it is asked for again, for another name, and close to its expiry
    same = ensure_server_cert(pki.home, paths, PASSPHRASE.encode(), ["localhost"], now, audit)
    wider = ensure_server_cert(pki.home, paths, PASSPHRASE.encode(), ["localhost", "ca.example"], now, audit)
    late = ensure_server_cert(pki.home, paths, PASSPHRASE.encode(), ["localhost"], wider.not_valid_after_utc - timedelta(days=5), audit)
    # THEN kept, then re-issued for the new name, then renewed; the key file stays encrypted 0600
    assert same == first and wider != first and late != wider
    assert paths.server_key.stat().st_mode & 0o777 == 0o600
    assert paths.server_key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert sum(1 for r in audit.records() if r.event == "serve.server_cert") == 3
