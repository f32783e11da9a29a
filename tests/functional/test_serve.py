"""The signing service as a station sees it: a real server in a child process, real HTTPS with client certificates."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from matter_pki.audit import AuditLog
from matter_pki.local import ca as ca_ops
from matter_pki.local.home import PAA_ID
from matter_pki.local.ledger import Ledger
from matter_pki.local.state import open_audit
from matter_pki.serve.app import ROUTES, openapi_document
from matter_pki.serve.stations import revoke_station
from matter_pki.validate import validate_att_cert
from tests.functional.serve_helpers import (
    STATION_PASSPHRASE,
    Server,
    StationFiles,
    chain_of,
    der,
    make_station,
    start_server,
)
from tests.unit.test_local_fixtures import BAD_CSRS, PASSPHRASE, Pki, good_csr, make_pki

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PKCS10 = {"content-type": "application/pkcs10"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pki, Server, dict[str, StationFiles]]]:
    """One home (pai-1 for PID 8000, pai-2 for 8001), five stations, one running server for the module."""
    root = tmp_path_factory.mktemp("serve")
    pki = make_pki(root / "home")
    ca_ops.create_pai(pki.home, pid=0x8001, secrets=pki.secrets, now=datetime.now(UTC))
    stations = {
        name: make_station(pki, root, name, **kwargs)  # type: ignore[arg-type]
        for name, kwargs in {
            "line-1": {}, "line-2": {"pai": "pai-2", "pids": (0x8001,)}, "quota-2": {"quota": 2},
            "to-revoke": {}, "slow": {},
        }.items()
    }
    server = start_server(
        pki.home, root / "serve.log", "--header-timeout", "1.5", "--body-timeout", "1.5", "--handshake-timeout", "1.5"
    )
    try:
        yield pki, server, stations
    finally:
        assert server.stop() == 0


def _der_csr(pem: bytes) -> bytes:
    return x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)


def _issue(client: httpx.Client, csr: bytes, *, pai: str = "pai-1", pid: str = "8000", **headers: str) -> httpx.Response:
    return client.post(f"/v1/pais/{pai}/dacs", params={"pid": pid}, content=csr, headers={**PKCS10, **headers})


def _dac_count(pki: Pki) -> int:
    with Ledger(pki.home.ledger_path) as ledger:
        return sum(1 for e in ledger.entries(kind="dac"))


def _chain_validates(pki: Pki, dac: x509.Certificate, pai: x509.Certificate) -> bool:
    paa = der(pki.home.load_cert(PAA_ID))
    return validate_att_cert(paa=paa, pai=der(pai), dac=der(dac), at=datetime.now(UTC), mode="commissioner").ok


# -- happy path --------------------------------------------------------------------------------------
def test_one_der_csr_gets_a_valid_dac_and_the_pai_as_a_pem_chain(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a registered station and a device CSR in DER
    pki, server, stations = setup
    pem = good_csr()
    # WHEN it posts the CSR
    with server.client(stations["line-1"]) as client:
        response = _issue(client, _der_csr(pem))
    # THEN 201, a PEM chain DAC then PAI, the DAC certifies the CSR's key and validates like a commissioner would
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/pem-certificate-chain"
    dac, pai = chain_of(response.content)
    assert der(pai) == der(pki.home.load_cert("pai-1"))
    assert dac.public_key() == x509.load_pem_x509_csr(pem).public_key()
    assert _chain_validates(pki, dac, pai)
    assert int(response.headers["location"].rsplit("/", 1)[1], 16) == dac.serial_number


def test_json_answer_and_the_dac_read_back_by_serial(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a PEM CSR and Accept: application/json
    pki, server, stations = setup
    with server.client(stations["line-1"]) as client:
        response = _issue(client, good_csr(), accept="application/json")
        # WHEN the DAC is read back by serial, as PEM and as JSON
        body = response.json()
        again = client.get(f"/v1/dacs/{body['serial']}")
        entry = client.get(f"/v1/dacs/{body['serial']}", headers={"accept": "application/json"}).json()
    # THEN the same certificate everywhere, and the ledger entry says issued
    assert response.status_code == 201
    assert body["status"] == "issued" and body["pai"] == "pai-1" and body["pid"] == "8000"
    assert chain_of(again.content)[0] == x509.load_pem_x509_certificate(body["dac"].encode())
    assert again.headers["x-dac-status"] == "issued"
    assert entry["status"] == "issued" and entry["serial"] == body["serial"] and entry["dac"] == body["dac"]


def test_a_retry_of_the_same_csr_returns_the_same_dac_not_a_new_one(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a CSR already answered once (as PEM)
    pki, server, stations = setup
    pem = good_csr()
    with server.client(stations["line-1"]) as client:
        first = _issue(client, pem)
        before = _dac_count(pki)
        # WHEN the station sends it again (as DER this time, and from another station of the same PAI)
        second = _issue(client, _der_csr(pem))
    with server.client(stations["to-revoke"]) as other:
        third = _issue(other, pem, accept="application/json")
    # THEN 200 with the very same DAC bytes, and no new ledger row
    assert first.status_code == 201 and second.status_code == 200
    assert chain_of(second.content)[0] == chain_of(first.content)[0]
    assert third.status_code == 200 and third.json()["status"] == "reused"
    assert x509.load_pem_x509_certificate(third.json()["dac"].encode()) == chain_of(first.content)[0]
    assert _dac_count(pki) == before


def test_pais_lists_the_station_scope_and_quota(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station with a quota
    pki, server, stations = setup
    # WHEN it asks for its PAIs
    with server.client(stations["quota-2"]) as client:
        body = client.get("/v1/pais").json()
    # THEN only its PAI, with the chain, its PIDs and its quota
    assert body["station"] == "quota-2"
    [pai] = body["pais"]
    assert pai["id"] == "pai-1" and pai["pid"] == "8000" and pai["station_pids"] == ["8000"]
    assert x509.load_pem_x509_certificate(pai["certificate"].encode()) == pki.home.load_cert("pai-1")
    assert pai["quota"]["per_day"] == 2


# -- who may call ------------------------------------------------------------------------------------
def _tls_answer(server: Server, ctx: ssl.SSLContext) -> bytes | Exception:
    """What a raw TLS client gets for one HTTP request: the reply bytes, or the error that ended the connection."""
    try:
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
            return reply
    except (ssl.SSLError, OSError) as e:
        return e


def _foreign_context(tmp_path: Path, server: Server, **versions: ssl.TLSVersion) -> ssl.SSLContext:
    """A client presenting a self-made certificate named like a real station."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "line-1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now.replace(year=now.year + 1)).sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(cafile=str(server.ca))
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    for attr, version in versions.items():
        setattr(ctx, attr, version)
    return ctx


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_a_client_without_a_certificate_gets_no_http_answer(setup: tuple[Pki, Server, dict[str, StationFiles]], tls: str) -> None:
    # GIVEN a client that trusts the server but presents no certificate
    _pki, server, _stations = setup
    ctx = ssl.create_default_context(cafile=str(server.ca))
    version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = ctx.maximum_version = version
    # WHEN it sends a request THEN the TLS layer ends the connection: an error or EOF, never an HTTP reply
    answer = _tls_answer(server, ctx)
    assert isinstance(answer, Exception) or answer == b"", answer
    with httpx.Client(base_url=server.url, verify=ctx) as client, pytest.raises(httpx.TransportError):
        client.get("/healthz")


@pytest.mark.parametrize("tls", ["1.2", "1.3"])
def test_a_certificate_from_another_ca_gets_no_http_answer(
    tmp_path: Path, setup: tuple[Pki, Server, dict[str, StationFiles]], tls: str
) -> None:
    # GIVEN a self-made client certificate named like a real station
    _pki, server, _stations = setup
    version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx = _foreign_context(tmp_path, server, minimum_version=version, maximum_version=version)
    # WHEN it sends a request THEN the connection ends without an HTTP reply
    answer = _tls_answer(server, ctx)
    assert isinstance(answer, Exception) or answer == b"", answer


def test_the_server_certificate_cannot_be_used_as_a_station(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN the server's own certificate and key (issued by the same CA, but for serverAuth only)
    pki, server, _stations = setup
    serve_dir = pki.home.path / "serve"
    ctx = ssl.create_default_context(cafile=str(server.ca))
    ctx.load_cert_chain(serve_dir / "server.pem", serve_dir / "server-key.pem", password=PASSPHRASE)
    # WHEN it is presented as a client certificate THEN TLS refuses it (purpose sslclient): no HTTP reply
    answer = _tls_answer(server, ctx)
    assert isinstance(answer, Exception) or answer == b"", answer


def test_revoking_a_station_takes_effect_on_the_next_request_without_restart(
    setup: tuple[Pki, Server, dict[str, StationFiles]],
) -> None:
    # GIVEN a station with an open keep-alive connection that just got a DAC
    pki, server, stations = setup
    with server.client(stations["to-revoke"]) as client:
        assert _issue(client, good_csr()).status_code == 201
        before = _dac_count(pki)
        # WHEN the station is revoked (another process, the server keeps running)
        revoke_station(pki.home, "to-revoke", reason="stolen laptop", audit=open_audit(pki.home, pki.secrets), now=datetime.now(UTC))
        on_same_connection = _issue(client, good_csr())
    with server.client(stations["to-revoke"]) as fresh:
        on_new_connection = fresh.get("/healthz")
    # THEN both are refused with serve.station_revoked, no DAC is issued, and the refusal is audited
    for response in (on_same_connection, on_new_connection):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "serve.station_revoked"
    assert _dac_count(pki) == before
    refused = [r for r in AuditLog(pki.home.path).records() if r.event == "serve.refused" and r.fields.get("station") == "to-revoke"]
    assert refused and refused[-1].fields["code"] == "serve.station_revoked"


@pytest.mark.parametrize(
    ("pai", "pid", "code"),
    [("pai-2", "8001", "serve.pai_not_allowed"), ("pai-1", "8001", "serve.pid_not_allowed"), ("pai-1", "zz", "input.pid")],
)
def test_another_pai_or_pid_is_refused_and_audited(
    setup: tuple[Pki, Server, dict[str, StationFiles]], pai: str, pid: str, code: str
) -> None:
    # GIVEN a station for pai-1 / PID 8000
    pki, server, stations = setup
    before = _dac_count(pki)
    # WHEN it asks for another PAI or PID
    with server.client(stations["line-1"]) as client:
        response = _issue(client, good_csr(), pai=pai, pid=pid)
    # THEN refused with the code, no DAC
    assert response.status_code == (400 if code.startswith("input.") else 403)
    assert response.json()["code"] == code
    assert _dac_count(pki) == before
    if code.startswith("serve."):
        records = [r for r in AuditLog(pki.home.path).records() if r.event == "serve.refused"]
        assert any(r.fields["code"] == code and r.fields["station"] == "line-1" for r in records)


def test_over_quota_is_refused_but_a_retry_still_gets_its_dac(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station allowed 2 new DACs a day
    pki, server, stations = setup
    csrs = [good_csr() for _ in range(3)]
    with server.client(stations["quota-2"]) as client:
        # WHEN it asks for three different devices, then retries the first
        answers = [_issue(client, c) for c in csrs]
        retry = _issue(client, csrs[0])
    # THEN two DACs, the third is 429 serve.quota_exceeded with Retry-After, the retry is free
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[2].json()["code"] == "serve.quota_exceeded"
    assert 0 < int(answers[2].headers["retry-after"]) <= 86400
    assert retry.status_code == 200 and chain_of(retry.content)[0] == chain_of(answers[0].content)[0]


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BAD_CSRS))
def test_bad_csrs_get_problem_details_and_no_dac(setup: tuple[Pki, Server, dict[str, StationFiles]], kind: str) -> None:
    # GIVEN a hostile or broken CSR
    pki, server, stations = setup
    make, code = BAD_CSRS[kind]
    before = _dac_count(pki)
    # WHEN a station posts it
    with server.client(stations["line-1"]) as client:
        response = _issue(client, make())
    # THEN a problem with the CLI's code, no certificate in the answer, none in the ledger
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["type"] == f"urn:matter-pki:code:{code}"
    assert response.status_code == (413 if code == "csr.too_large" else 422)
    assert body["status"] == response.status_code and body["request_id"] == response.headers["x-request-id"]
    assert b"BEGIN CERTIFICATE" not in response.content
    assert _dac_count(pki) == before


def test_wrong_media_type_and_accept_are_coded(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station
    _pki, server, stations = setup
    with server.client(stations["line-1"]) as client:
        # WHEN it sends a form, asks for XML, or uses a wrong method or path
        form = client.post("/v1/pais/pai-1/dacs", content=good_csr(), headers={"content-type": "application/x-www-form-urlencoded"})
        xml = _issue(client, good_csr(), accept="application/xml")
        method = client.get("/v1/pais/pai-1/dacs")
        path = client.get("/v1/nothing")
    # THEN each a problem with its code
    assert (form.status_code, form.json()["code"]) == (415, "serve.media_type")
    assert (xml.status_code, xml.json()["code"]) == (406, "serve.not_acceptable")
    assert (method.status_code, method.json()["code"]) == (405, "serve.method")
    assert (path.status_code, path.json()["code"]) == (404, "serve.not_found")


def test_reading_an_unknown_or_foreign_serial_is_coded(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a DAC issued by pai-2 for another station
    _pki, server, stations = setup
    with server.client(stations["line-2"]) as other:
        serial = other.post(
            "/v1/pais/pai-2/dacs", params={"pid": "8001"}, content=good_csr(), headers={**PKCS10, "accept": "application/json"}
        ).json()["serial"]
    # WHEN a pai-1 station asks for it, for a serial never issued, and for something that is not a serial
    with server.client(stations["line-1"]) as client:
        foreign = client.get(f"/v1/dacs/{serial}")
        unknown = client.get("/v1/dacs/0A0B0C")
        garbage = client.get("/v1/dacs/xyz")
    # THEN 404 ledger.serial_unknown (a station sees its own PAI's DACs only), and 400 input.serial
    assert (foreign.status_code, foreign.json()["code"]) == (404, "ledger.serial_unknown")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "ledger.serial_unknown")
    assert (garbage.status_code, garbage.json()["code"]) == (400, "input.serial")


def test_batch_answers_each_csr_in_order(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN good CSRs (PEM and base64 DER), a bad one and a duplicate
    pki, server, stations = setup
    a, b = good_csr(), good_csr()
    entries = [a.decode(), base64.b64encode(_der_csr(b)).decode(), BAD_CSRS["p384"][0]().decode(), a.decode(), "not base64!"]
    # WHEN they are sent in one batch request
    with server.client(stations["line-1"]) as client:
        response = client.post("/v1/pais/pai-1/dacs/batch", params={"pid": "8000"}, json={"csrs": entries})
    # THEN one result per CSR, in order; the duplicate gets the first one's DAC
    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["issued", "issued", "refused", "reused", "refused"]
    assert body["results"][2]["problem"]["code"] == "csr.key_curve"
    assert body["results"][4]["problem"]["code"] == "csr.malformed"
    assert body["results"][3]["serial"] == body["results"][0]["serial"]
    assert body["counts"] == {"issued": 2, "reused": 1, "refused": 2}
    pai = x509.load_pem_x509_certificate(body["pai_certificate"].encode())
    for r in body["results"][:2]:
        assert _chain_validates(pki, x509.load_pem_x509_certificate(r["dac"].encode()), pai)


def test_batch_request_limits_are_coded(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station
    _pki, server, stations = setup
    with server.client(stations["line-1"]) as client:
        # WHEN the batch is not JSON, empty, or too long
        garbage = client.post("/v1/pais/pai-1/dacs/batch", content=b"{", headers={"content-type": "application/json"})
        empty = client.post("/v1/pais/pai-1/dacs/batch", json={"csrs": []})
        many = client.post("/v1/pais/pai-1/dacs/batch", json={"csrs": ["x"] * 101})
    # THEN 400 serve.batch_invalid each time
    for response in (garbage, empty, many):
        assert (response.status_code, response.json()["code"]) == (400, "serve.batch_invalid")


# -- a slow or hostile client ----------------------------------------------------------------------
def _raw_tls(server: Server, station: StationFiles) -> ssl.SSLSocket:
    ctx = station.ssl_context()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname="127.0.0.1")


def test_a_slow_client_does_not_block_others_and_is_cut_off(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station that sends half a request line and stalls, and one that stalls in its body
    _pki, server, stations = setup
    stalled_headers = _raw_tls(server, stations["slow"])
    stalled_headers.sendall(b"POST /v1/pais/pai-1/dacs?pid=8000 HTTP/1.1\r\nHost: x\r\n")
    stalled_body = _raw_tls(server, stations["slow"])
    stalled_body.sendall(
        b"POST /v1/pais/pai-1/dacs?pid=8000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\n"
        b"Content-Length: 400\r\n\r\n0123456789"
    )
    try:
        # WHEN other stations work meanwhile
        started = time.monotonic()

        def work(station: str) -> httpx.Response:
            with server.client(stations[station]) as client:
                if station == "line-2":
                    return _issue(client, good_csr(), pai="pai-2", pid="8001")
                return _issue(client, good_csr())

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(work, ["line-1", "line-2"] * 2))
        elapsed = time.monotonic() - started
        # THEN they are served at once, while the stalled ones are still waiting
        assert [a.status_code for a in answers] == [201] * 4
        assert elapsed < 1.5
        # AND the stalled body gets 408 serve.timeout, the stalled headers get the connection closed
        stalled_body.settimeout(10)
        reply = b""
        while chunk := stalled_body.recv(65536):
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["code"] == "serve.timeout"
        stalled_headers.settimeout(10)
        assert stalled_headers.recv(65536) == b""
        server.wait_log(lambda e: e.get("event") == "request headers not received in time")
    finally:
        stalled_headers.close()
        stalled_body.close()


def test_a_connection_that_never_completes_tls_is_dropped(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a TCP connection that starts no TLS handshake (and one that sends half a ClientHello)
    _pki, server, _stations = setup
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    partial = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    partial.sendall(bytes.fromhex("160301020001"))
    started = time.monotonic()
    try:
        # WHEN they wait THEN the server closes both after the handshake timeout, long before asyncio's 60 s
        for sock in (silent, partial):
            try:
                assert sock.recv(1024) == b""
            except ConnectionResetError:
                pass
    finally:
        silent.close()
        partial.close()
    assert time.monotonic() - started < 8


def test_an_oversized_body_is_refused_before_it_is_read(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN a station announcing a 10 MB CSR
    _pki, server, stations = setup
    sock = _raw_tls(server, stations["slow"])
    try:
        # WHEN only the headers are sent
        sock.sendall(
            b"POST /v1/pais/pai-1/dacs?pid=8000 HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\n"
            b"Content-Length: 10000000\r\n\r\n"
        )
        sock.settimeout(10)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    finally:
        sock.close()
    # THEN 413 csr.too_large at once, and the connection is closed
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["code"] == "csr.too_large"


# -- operations ------------------------------------------------------------------------------------
def test_openapi_served_is_the_checked_in_document_and_matches_the_routes(
    setup: tuple[Pki, Server, dict[str, StationFiles]],
) -> None:
    # GIVEN the running server
    _pki, server, stations = setup
    # WHEN the document is fetched
    with server.client(stations["line-1"]) as client:
        served = client.get("/v1/openapi.json")
    # THEN it is the checked-in file, and its operations are exactly the server's routes
    assert served.content == openapi_document()
    doc = json.loads(served.content)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    routed = {(route.path, method) for route in ROUTES for method in (route.methods or ()) if method != "HEAD"}
    assert documented == routed
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for status, answer in op["responses"].items():
                if status.startswith(("4", "5")) and path.startswith("/v1/pais/"):
                    assert "application/problem+json" in answer["content"], (path, status)


def test_metrics_are_prometheus_text_with_issued_refused_latency_and_queue(
    setup: tuple[Pki, Server, dict[str, StationFiles]],
) -> None:
    # GIVEN a server that issued and refused
    _pki, server, stations = setup
    with server.client(stations["line-1"]) as client:
        _issue(client, good_csr())
        _issue(client, BAD_CSRS["rsa"][0]())
        text = client.get("/metrics").text
    # WHEN the exposition is parsed with the Prometheus parser
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    # THEN it counts issued DACs, refusals by code, latency buckets and the queue depth
    assert samples[("matter_pki_serve_dacs_issued_total", (("pai", "pai-1"), ("pid", "8000")))] >= 1
    assert samples[("matter_pki_serve_refused_total", (("code", "csr.key_not_ec"),))] >= 1
    assert samples[("matter_pki_serve_request_seconds_count", (("endpoint", "/v1/pais/{pai}/dacs"),))] >= 2
    assert ("matter_pki_serve_request_seconds_bucket", (("endpoint", "/v1/pais/{pai}/dacs"), ("le", "+Inf"))) in samples
    assert ("matter_pki_serve_queue_depth", ()) in samples


def test_healthz_and_json_logs(setup: tuple[Pki, Server, dict[str, StationFiles]]) -> None:
    # GIVEN the running server
    _pki, server, stations = setup
    # WHEN a station checks its health
    with server.client(stations["line-1"]) as client:
        response = client.get("/healthz")
    # THEN ok, and every log line is one JSON object; request lines name the station, never a key or CSR
    assert response.status_code == 200 and response.json()["status"] == "ok"
    rid = response.headers["x-request-id"]
    line = server.wait_log(lambda e: e.get("event") == "request" and e.get("request_id") == rid)
    assert (line["station"], line["path"], line["status"]) == ("line-1", "/healthz", 200)
    assert all(entry.get("event") != "<not json>" for entry in server.log())
    text = server.log_path.read_text()
    assert "BEGIN" not in text and PASSPHRASE not in text and STATION_PASSPHRASE not in text
