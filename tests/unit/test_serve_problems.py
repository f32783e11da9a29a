"""Problem details, HTTP statuses of codes, content negotiation, batch parsing, and the docs listing every code."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from matter_pki.errorcodes import ExitClass, registry
from matter_pki.errors import MatterPkiError
from matter_pki.serve.app import JSON_TYPE, PEM_CHAIN, negotiate, openapi_document, parse_batch
from matter_pki.serve.problems import RETRY_STATUSES, SERVER_SIDE, SERVICE_CODES, problem, status_of

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("csr.key_curve", 422), ("csr.too_large", 413), ("issue.key_revoked", 409), ("issue.key_reused", 409),
        ("issue.ca_revoked", 409), ("issue.ca_expired", 409),
        ("profile.pid_not_allowed", 422), ("input.pid", 400), ("key.passphrase_wrong", 503), ("storage.busy", 503),
        ("serve.station_revoked", 403), ("serve.quota_exceeded", 429), ("serve.timeout", 408), ("ledger.serial_unknown", 404),
        ("issue.validation_failed", 500), ("something.new", 500), ("issue.batch_order", 500), ("input.serial", 400),
        ("config.home_missing", 503), ("serve.busy", 503), ("issue.worker_died", 503),
    ],
)
def test_each_code_has_one_http_status(code: str, status: int) -> None:
    # GIVEN/WHEN a code THEN its status
    assert status_of(code)[0] == status


def test_http_statuses_agree_with_the_exit_classes() -> None:
    # GIVEN every registered code WHEN it becomes an HTTP problem
    for code, info in registry().items():
        status = status_of(code)[0]
        server_side = any(code.startswith(prefix) for prefix, _title in SERVER_SIDE)
        # THEN "retry later" (or "re-run to finish") at the CLI is "retry later" over HTTP (408 / 429 / 503), and
        # nothing else is, except the service's own resources (503: the operator fixes them, the station retries)
        if info.exit in (ExitClass.RETRY, ExitClass.INTERRUPTED):
            assert status in RETRY_STATUSES, (code, status)
        elif not server_side:
            assert status not in RETRY_STATUSES, (code, info.exit, status)
        # AND a bug is a 5xx, a refusal or a usage error a 4xx (or the release check's 500: the CA's own DAC)
        if info.exit is ExitClass.INTERNAL:
            assert status >= 500, code
        elif info.exit in (ExitClass.REFUSED, ExitClass.USAGE) and not server_side and code != "issue.validation_failed":
            assert 400 <= status < 500, (code, info.exit, status)


def test_a_problem_is_rfc9457_with_the_cli_code() -> None:
    # GIVEN a CSR refusal
    body = problem("csr.key_curve", "CSR key is on secp384r1,\n must be P-256", request_id="5f0e3c9a-0000-4000-8000-000000000000")
    # THEN the RFC 9457 members, the stable code, one line of detail
    assert body == {
        "type": "urn:matter-pki:code:csr.key_curve", "title": "CSR refused", "status": 422,
        "detail": "CSR key is on secp384r1, must be P-256", "code": "csr.key_curve",
        "instance": "urn:uuid:5f0e3c9a-0000-4000-8000-000000000000", "request_id": "5f0e3c9a-0000-4000-8000-000000000000",
    }


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, PEM_CHAIN), ("*/*", PEM_CHAIN), ("application/json", JSON_TYPE), ("application/pem-certificate-chain", PEM_CHAIN),
        ("application/json;q=0.5, application/pem-certificate-chain", PEM_CHAIN), ("text/html, application/json;q=0.1", JSON_TYPE),
        ("application/json;q=0, */*;q=0.1", PEM_CHAIN), ("application/*", PEM_CHAIN), ("application/json;q=x, */*", PEM_CHAIN),
    ],
)
def test_accept_negotiation(accept: str | None, chosen: str) -> None:
    # GIVEN/WHEN an Accept header THEN the answer type
    assert negotiate(accept) == chosen


@pytest.mark.parametrize("accept", ["text/html", "application/xml, text/plain", "application/json;q=0"])
def test_unacceptable_accept_is_coded(accept: str) -> None:
    # GIVEN/WHEN nothing we can produce is acceptable THEN serve.not_acceptable
    with pytest.raises(MatterPkiError) as caught:
        negotiate(accept)
    assert caught.value.code == "serve.not_acceptable"


def test_batch_entries_are_pem_or_base64_der_and_garbage_goes_to_csr_intake() -> None:
    # GIVEN PEM, base64 DER and something that is neither
    pem = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
    body = json.dumps({"csrs": [pem, base64.b64encode(b"\x30\x03abc").decode(), "%%%"]}).encode()
    # WHEN parsed THEN PEM as text, DER decoded, garbage passed on for intake to refuse with its own code
    assert parse_batch(body, 10) == [pem.encode(), b"\x30\x03abc", b"%%%"]


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"csrs": "x"}', b'{"csrs": []}', b'{"csrs": [1]}', json.dumps({"csrs": ["x" * 7000]}).encode(),
     json.dumps({"csrs": ["x"] * 11}).encode(), b"\xff\xfe"],
)
def test_malformed_batches_are_coded(body: bytes) -> None:
    # GIVEN/WHEN a malformed batch body THEN serve.batch_invalid
    with pytest.raises(MatterPkiError) as caught:
        parse_batch(body, 10)
    assert caught.value.code == "serve.batch_invalid"


def test_every_service_code_is_documented() -> None:
    # GIVEN the service's own codes (the registry's serve.*), the docs and the API document
    docs = (REPO / "docs" / "serve.md").read_text()
    api = openapi_document().decode()
    service_codes = {code for code in registry() if code.startswith("serve.")}
    # THEN each code appears in docs/serve.md, each HTTP one is registered, and each documented one is a code or event
    missing = [code for code in service_codes if code not in docs]
    assert not missing, missing
    assert set(SERVICE_CODES) <= service_codes
    documented = set(re.findall(r"`(serve\.[a-z_]+)`", docs))
    audit_events = {"serve.ca_created", "serve.server_cert", "serve.started", "serve.stopped", "serve.refused"}
    assert documented <= service_codes | audit_events
    assert json.loads(api)["openapi"].startswith("3.1")
