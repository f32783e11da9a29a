"""Property tests: mutated and truncated DER/PEM never make intake, validation or lint crash.

CSR intake may only raise CsrError (coded ``csr.*``); the validator and lint never raise and
always return a verdict or findings with catalogued codes.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matter_pki.attestation import AttestationResult
from matter_pki.certparse import certificate_der_from_bytes
from matter_pki.csr import load_device_csr
from matter_pki.der import DerError
from matter_pki.errors import CsrError
from matter_pki.findings import catalogue
from matter_pki.lint import lint
from matter_pki.testing.negative import generate
from matter_pki.validate import validate_att_cert

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CHAIN = next(c for c in generate(NOW) if c.name == "baseline")
CSR_DER = (
    x509.CertificateSigningRequestBuilder()
    .subject_name(x509.Name([]))
    .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    .public_bytes(Encoding.DER)
)
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """Flip, insert, delete or truncate bytes of ``data``; sometimes wrap it in PEM."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "set"]))
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            buf[i] = draw(st.sampled_from([0x00, 0x80, 0x81, 0x82, 0xFF, 0x30, 0x03]))
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del buf[i]
        else:
            del buf[i:]
    out = bytes(buf)
    if draw(st.booleans()):
        label = draw(st.sampled_from(["CERTIFICATE", "CERTIFICATE REQUEST"]))
        out = f"-----BEGIN {label}-----\n{base64.encodebytes(out).decode()}-----END {label}-----\n".encode()
    return out


@PROFILE
@given(mutated(CSR_DER))
def test_csr_intake_only_raises_coded_errors(data: bytes) -> None:
    try:
        load_device_csr(data)
    except CsrError as e:
        assert e.code.startswith("csr.")


@PROFILE
@given(st.sampled_from(["paa", "pai", "dac"]), st.data())
def test_validator_always_returns_a_verdict(role: str, data) -> None:
    certs = {"paa": CHAIN.paa, "pai": CHAIN.pai, "dac": CHAIN.dac}
    raw = data.draw(mutated(certs[role]))
    try:
        certs[role] = certificate_der_from_bytes(raw)
    except DerError:
        return  # the CLI reports unreadable input as a usage error
    result = validate_att_cert(at=NOW, **certs)
    assert isinstance(result.result, AttestationResult)
    assert result.code is None or result.code in catalogue()


@PROFILE
@given(st.sampled_from(["paa", "pai", "dac"]), st.data())
def test_lint_always_returns_catalogued_findings(role: str, data) -> None:
    raw = data.draw(mutated({"paa": CHAIN.paa, "pai": CHAIN.pai, "dac": CHAIN.dac}[role]))
    try:
        der = certificate_der_from_bytes(raw)
    except DerError:
        return
    for f in lint(der, role, CHAIN.pai if role == "dac" else None):
        assert f.code in catalogue()
        assert f.code != "internal.unhandled_exception", f.message


@PROFILE
@given(st.binary(max_size=700))
def test_random_bytes(data: bytes) -> None:
    try:
        load_device_csr(data)
    except CsrError:
        pass
    assert all(f.code in catalogue() for f in lint(data, "dac"))
