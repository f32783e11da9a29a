"""The signing service attacked as a station would: a real server in a child process, real mutual-TLS HTTPS."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from matter_pki.local import ca as ca_ops
from matter_pki.local.ledger import Ledger
from tests.functional.serve_helpers import Server, StationFiles, chain_of, der, make_station, start_server
from tests.review import crafted
from tests.review.conftest import CLI, Home
from tests.unit.test_local_fixtures import PASSPHRASE, Pki, make_pki

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import httpx

PKCS10 = {"content-type": "application/pkcs10"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pki, Server, dict[str, StationFiles], Home]]:
    """pai-1 (PID 8000), pai-2 (any PID); stations for pai-1/8000 and pai-2/8000+8001; one server for the module."""
    root = tmp_path_factory.mktemp("serve-review")
    pki = make_pki(root / "home")
    ca_ops.create_pai(pki.home, secrets=pki.secrets, now=datetime.now(UTC))
    stations = {
        "one": make_station(pki, root, "one"),
        "two": make_station(pki, root, "two", pai="pai-2", pids=(0x8000, 0x8001)),
    }
    (root / "state").mkdir()
    cli = Home(pki.home.path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(root), "MATTER_PKI_HOME": str(pki.home.path),
                               "MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_LOG_DIR": str(root / "state")})
    assert CLI
    server = start_server(pki.home, root / "serve.log")
    try:
        yield pki, server, stations, cli
    finally:
        assert server.stop() == 0


def _post(client: httpx.Client, body: bytes, *, pai: str = "pai-1", pid: str = "8000", **headers: str) -> httpx.Response:
    return client.post(f"/v1/pais/{pai}/dacs", params={"pid": pid}, content=body, headers={**PKCS10, **headers})


def _dac_serials(pki: Pki) -> list[int]:
    with Ledger(pki.home.ledger_path) as ledger:
        return [int(e.serial, 16) for e in ledger.entries(kind="dac")]


def _problem(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return str(response.json()["code"])


def test_a_flipped_resigned_or_pem_copy_of_a_served_csr_gets_the_same_dac(service: tuple[Pki, Server, dict[str, StationFiles], Home]) -> None:
    """GIVEN a DAC served for a device key WHEN the s→n−s flip, a PEM copy and a re-signed CSR of that key arrive, from
    either station THEN 200 with the same DAC or a coded 4xx problem; never a second serial for that key. A CSR with
    the key but a broken signature gets no DAC (the DAC is public, but proof of possession is the rule)."""
    pki, server, stations, _ = service
    k = crafted.key()
    original = crafted.csr(k)
    with server.client(stations["one"]) as client:
        first = _post(client, original)
        assert first.status_code == 201, first.text
        dac = chain_of(first.content)[0]
        variants = [crafted.flip_s(original), crafted.pem(original), crafted.csr(k, cn="again"), crafted.long_form_length(original)]
        for body in variants:
            again = _post(client, body)
            if again.status_code == 200:
                assert der(chain_of(again.content)[0]) == der(dac)
            else:
                assert 400 <= again.status_code < 500, again.text
                _problem(again)
        info, alg, bits = crafted.parts(crafted.csr(k, cn="forged"))
        forged = _post(client, crafted.tlv(0x30, info + alg + bits[:-1] + bytes([bits[-1] ^ 1])))
        assert forged.status_code in (400, 422) and _problem(forged) == "csr.signature_invalid", forged.text
    with server.client(stations["two"]) as other:
        for pid in ("8000", "8001"):
            response = _post(other, crafted.flip_s(original), pai="pai-2", pid=pid)
            assert response.status_code == 409 and _problem(response) == "issue.key_reused", response.text
    assert _dac_serials(pki).count(dac.serial_number) == 1
    assert sum(1 for s in _dac_serials(pki) if s == dac.serial_number) == 1


def test_hostile_bodies_and_parameters_get_problem_details_never_a_500(service: tuple[Pki, Server, dict[str, StationFiles], Home]) -> None:
    """GIVEN hostile CSR bodies, PAI ids and PIDs WHEN a station posts them THEN each answer is a 4xx RFC 9457 problem
    with a code (413 for an oversized body), never a 5xx, and no DAC is added to the ledger."""
    pki, server, stations, _ = service
    before = _dac_serials(pki)
    good = crafted.csr(crafted.key())
    bodies = [b"", os.urandom(5000), crafted.nested(900), good + b"\x00", good + crafted.csr(crafted.key()),
              crafted.compressed_point_csr(crafted.key()), good[:-1] + bytes([good[-1] ^ 1]), b"\x30\x80" * 100,
              crafted.pem(good) + crafted.pem(crafted.csr(crafted.key()))]
    with server.client(stations["one"]) as client:
        for body in bodies:
            response = _post(client, body)
            assert 400 <= response.status_code < 500, (body[:20], response.status_code, response.text)
            assert _problem(response).startswith(("csr.", "input.", "request.", "serve.")), response.text
        for pai, pid in (("..%2F..%2Fetc", "8000"), ("pai-2", "8000"), ("pai-1", "0000"), ("pai-1", "zzzz"),
                         ("pai-1", "80000"), ("pai-1", "8001"), ("pai-1", "-1"), ("pai-1", "8000\x00"), ("paa", "8000")):
            response = _post(client, crafted.csr(crafted.key()), pai=pai, pid=pid)
            assert 400 <= response.status_code < 500, (pai, pid, response.status_code, response.text)
            _problem(response)
        big = client.post("/v1/pais/pai-1/dacs", params={"pid": "8000"}, content=os.urandom(64 * 1024), headers=PKCS10)
        assert big.status_code == 413, big.text
    assert _dac_serials(pki) == before


def test_a_key_revoked_while_serving_and_a_pai_revoked_while_serving_issue_nothing(
    service: tuple[Pki, Server, dict[str, StationFiles], Home],
) -> None:
    """GIVEN a running server WHEN a served DAC is revoked keyCompromise with the CLI, then pai-2 is revoked by the PAA
    THEN the key's next CSR, and a station retry of the very first CSR, are refused (issue.key_revoked) and pai-2's next new CSR gets issue.ca_revoked, without a restart."""
    pki, server, stations, cli = service
    k = crafted.key()
    first_csr = crafted.csr(k)
    with server.client(stations["two"]) as client:
        first = _post(client, first_csr, pai="pai-2")
        assert first.status_code == 201, first.text
        serial = format(chain_of(first.content)[0].serial_number, "X")
        run = cli.run("revoke", "--serial", serial, "--pai", "pai-2", "--reason", "keyCompromise")
        assert run.code == 0, run
        again = _post(client, crafted.csr(k, cn="again"), pai="pai-2")
        assert again.status_code == 409 and _problem(again) == "issue.key_revoked", again.text
        retry = _post(client, first_csr, pai="pai-2")
        assert retry.status_code == 409 and _problem(retry) == "issue.key_revoked", retry.text
        pai_serial = format(x509.load_pem_x509_certificate((pki.home.path / "ca" / "pai-2" / "cert.pem").read_bytes()).serial_number, "X")
        run = cli.run("revoke", "--paa", "--serial", pai_serial, "--reason", "cACompromise")
        assert run.code == 0, run
        before = _dac_serials(pki)
        late = _post(client, crafted.csr(crafted.key()), pai="pai-2", pid="8001")
        assert 400 <= late.status_code < 500 and _problem(late) == "issue.ca_revoked", late.text
        assert _dac_serials(pki) == before


def test_a_station_cannot_reach_another_stations_pai_or_read_dacs_by_path_tricks(
    service: tuple[Pki, Server, dict[str, StationFiles], Home], tmp_path: Path,
) -> None:
    """GIVEN station one (pai-1) WHEN it posts to pai-2, reads a DAC of pai-2 by serial, reads /v1/dacs/ with a
    traversal or a huge serial THEN 403 / 404 ledger.serial_unknown / 4xx problems, never a 5xx."""
    pki, server, stations, _ = service
    with Ledger(pki.home.ledger_path) as ledger:
        theirs = [e.serial for e in ledger.entries(kind="dac") if e.ca == "pai-2"]
    assert theirs, "an earlier test of the module issues through pai-2"
    serial = theirs[0]
    with server.client(stations["one"]) as client:
        response = _post(client, crafted.csr(crafted.key()), pai="pai-2", pid="8000")
        assert response.status_code == 403, response.text
        hidden = client.get(f"/v1/dacs/{serial}")
        assert hidden.status_code == 404 and _problem(hidden) == "ledger.serial_unknown", hidden.text
        for path in ("/v1/dacs/..%2F..%2Fledger.sqlite", "/v1/dacs/" + "F" * 5000, "/v1/dacs/-1", "/v1/dacs/%00"):
            got = client.get(path)
            assert 400 <= got.status_code < 500, (path, got.status_code, got.text)


def test_one_key_many_times_in_one_batch_request_gives_one_dac(service: tuple[Pki, Server, dict[str, StationFiles], Home]) -> None:
    """GIVEN one batch request holding a CSR, its s-flip, a re-signed CSR of the same key (PEM and base64 DER), a CSR
    with a hostile subject, and junk WHEN posted THEN every entry of the key answers the same serial (or a coded
    refusal), the ledger gains exactly one DAC for the key (plus one for the other key), junk is a coded refusal,
    and the hostile subject never reaches a DAC."""
    import base64
    import json

    pki, server, stations, _ = service
    k = crafted.key()
    original = crafted.csr(k)
    evil = crafted.csr(crafted.key(), subject=x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "EVIL-BATCH")]))
    entries = [crafted.pem(original).decode(), base64.b64encode(crafted.flip_s(original)).decode(),
               crafted.pem(crafted.csr(k, cn="again")).decode(), base64.b64encode(evil).decode(), "junk", "", "%%%"]
    before = len(_dac_serials(pki))
    with server.client(stations["one"]) as client:
        response = client.post("/v1/pais/pai-1/dacs/batch", params={"pid": "8000"}, content=json.dumps({"csrs": entries}),
                               headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(entries)))
    serials = {r["serial"] for r in results[:3] if r["status"] in ("issued", "reused")}
    assert len(serials) == 1, results[:3]
    for r in results[4:]:
        assert r["status"] == "refused" and r["problem"]["code"], r
    assert b"EVIL" not in der(x509.load_pem_x509_certificate(results[3]["dac"].encode()))
    assert len(_dac_serials(pki)) == before + 2
