"""The revocation CLI on files: ``revocation check`` (SDK vectors), ``crl check`` (hostile input, --fetch, the DCL's
other points), ``lint --role crl|crl-signer`` and ``codes``."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.cli import main
from matter_pki.revocation import dcl
from matter_pki.revocation.crl import CrlParams, Revocation, build_direct_crl
from tests.unit.revocation_fixtures import (
    GUIDE_CODES,
    NOW,
    der,
    make_chain,
    provider_vector,
    sdk_revocation_set_path,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def _run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("vector", sorted(GUIDE_CODES))
def test_revocation_check_on_the_sdk_vectors(vector: str, tmp_path: Path) -> None:
    # GIVEN a DAC-provider vector written as files
    dac, pai = provider_vector(vector)
    (tmp_path / "dac.der").write_bytes(dac)
    (tmp_path / "pai.der").write_bytes(pai)
    # WHEN revocation check runs against the committed set
    code, out, _err = _run(["revocation", "check", "--revocation-set", str(sdk_revocation_set_path()), "--dac", str(tmp_path / "dac.der"),
                            "--pai", str(tmp_path / "pai.der"), "--format", "json"])  # fmt: skip
    # THEN it prints the guide's code and exits 1 (revoked)
    assert code == 1 and json.loads(out)["code"] == GUIDE_CODES[vector]


def test_revocation_check_chain_first_and_not_revoked(tmp_path: Path) -> None:
    chain = make_chain(dacs=1)
    for name, cert in (("paa", chain.paa), ("pai", chain.pai), ("dac", chain.dacs[0])):
        (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / "set.json").write_text("[]")
    base = ["revocation", "check", "--revocation-set", str(tmp_path / "set.json"), "--pai", str(tmp_path / "pai.pem")]
    code, out, _ = _run([*base, "--dac", str(tmp_path / "dac.pem"), "--paa", str(tmp_path / "paa.pem")])
    assert code == 0 and out.startswith("not revoked: kSuccess (0)")
    # A broken chain is reported before revocation (the commissioner's order)
    other = make_chain(dacs=0)
    (tmp_path / "other-paa.pem").write_bytes(other.paa.public_bytes(Encoding.PEM))
    code, out, _ = _run([*base, "--dac", str(tmp_path / "dac.pem"), "--paa", str(tmp_path / "other-paa.pem"), "--format", "json"])
    assert code == 1 and json.loads(out)["stage"] == "chain"
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    code, _out, err = _run(["revocation", "check", "--revocation-set", str(tmp_path / "bad.json"), "--dac", str(tmp_path / "dac.pem"),
                            "--pai", str(tmp_path / "pai.pem")])  # fmt: skip
    assert code == 2 and "error[input.revocation_set]" in err


@pytest.fixture
def published(tmp_path: Path) -> dict[str, Path]:
    """A PAI CRL revoking one DAC, its point and the PAA, as files."""
    chain = make_chain(dacs=2)
    url = "http://127.0.0.1:1/pai.crl"
    crl = build_direct_crl(chain.pai, chain.pai_key, [Revocation(chain.dacs[0].serial_number, NOW)],
                           CrlParams(this_update=NOW - timedelta(minutes=1), next_update=NOW + timedelta(days=1), crl_number=1))  # fmt: skip
    point = dcl.build_revocation_point(signer=chain.pai, delegator=None, paa=chain.paa, is_paa=False, data_url=url)
    files = {"crl": tmp_path / "pai.crl", "point": tmp_path / "point.json", "paa": tmp_path / "paa.pem", "dac": tmp_path / "dac.pem",
             "pai": tmp_path / "pai.pem"}  # fmt: skip
    files["crl"].write_bytes(crl)
    files["point"].write_text(dcl.point_json(point))
    files["paa"].write_bytes(chain.paa.public_bytes(Encoding.PEM))
    files["pai"].write_bytes(chain.pai.public_bytes(Encoding.PEM))
    files["dac"].write_bytes(chain.dacs[0].public_bytes(Encoding.PEM))
    return files


def test_crl_check_passes_and_writes_the_set(published: dict[str, Path], tmp_path: Path) -> None:
    code, out, _ = _run(["crl", "check", "--point", str(published["point"]), "--crl", str(published["crl"]), "--paa", str(published["paa"]),
                         "--revocation-set-out", str(tmp_path / "set.json")])  # fmt: skip
    assert code == 0 and "kept by the SDK's algorithm" in out and "FAIL" not in out
    code, out, _ = _run(["revocation", "check", "--revocation-set", str(tmp_path / "set.json"), "--dac", str(published["dac"]),
                         "--pai", str(published["pai"])])  # fmt: skip
    assert code == 1 and "kDacRevoked (302)" in out


def test_crl_check_reports_pem_and_garbage_with_step_numbers(published: dict[str, Path], tmp_path: Path) -> None:
    from cryptography import x509

    pem = tmp_path / "pai.pem.crl"
    pem.write_bytes(x509.load_der_x509_crl(published["crl"].read_bytes()).public_bytes(Encoding.PEM))
    for bad in (pem, tmp_path / "garbage.crl"):
        if bad.name == "garbage.crl":
            bad.write_bytes(b"\x00" * 100)
        code, out, _ = _run(["crl", "check", "--point", str(published["point"]), "--crl", str(bad), "--paa", str(published["paa"])])
        assert code == 1 and "step 6" in out and "FAIL" in out and "revset.crl_unavailable" in out


def test_crl_check_with_the_dcls_other_points_applies_step_7b(published: dict[str, Path], tmp_path: Path) -> None:
    # GIVEN another point of the same VID whose issuer SKID is this CRL's AKID (a second CRL of the same PAI)
    point = json.loads(published["point"].read_text())
    sibling = {**point, "label": "second partition", "dataURL": "https://x.example/pai-2.crl"}
    (tmp_path / "dcl.json").write_text(json.dumps({"PkiRevocationDistributionPoint": [point, sibling]}))
    # WHEN the check knows the DCL THEN the CRL without IDP is dropped at step 7b
    code, out, _ = _run(["crl", "check", "--point", str(published["point"]), "--crl", str(published["crl"]), "--paa", str(published["paa"]),
                         "--dcl-points", str(tmp_path / "dcl.json"), "--format", "json"])  # fmt: skip
    report = json.loads(out)
    assert code == 1 and [s["step"] for s in report["points"][0]["steps"] if not s["ok"]] == ["7b"]


@pytest.fixture
def server(published: dict[str, Path]) -> Iterator[str]:
    """A local HTTP server serving the CRL directory."""
    directory = str(published["crl"].parent)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_crl_check_fetches_the_data_url(published: dict[str, Path], server: str, tmp_path: Path) -> None:
    point = json.loads(published["point"].read_text())
    point["dataURL"] = f"{server}/pai.crl"
    (tmp_path / "p.json").write_text(json.dumps(point))
    code, out, _ = _run(["crl", "check", "--point", str(tmp_path / "p.json"), "--fetch", "--paa", str(published["paa"])])
    assert code == 0, out
    point["dataURL"] = f"{server}/missing.crl"
    (tmp_path / "p.json").write_text(json.dumps(point))
    code, out, _err = _run(["crl", "check", "--point", str(tmp_path / "p.json"), "--fetch", "--paa", str(published["paa"])])
    assert code == 1 and "step 6" in out and "HTTP Error 404" in out
    code, _out, err = _run(["crl", "check", "--point", str(tmp_path / "p.json"), "--paa", str(published["paa"])])
    assert code == 2 and "error[input.crl_source]" in err


def test_lint_roles_crl_and_crl_signer(published: dict[str, Path], tmp_path: Path) -> None:
    code, out, _ = _run(["lint", str(published["crl"]), "--role", "crl", "--issuer", str(published["pai"])])
    assert code == 0 and out.strip() == "no findings"
    chain = make_chain(dacs=0)
    signer, _key = chain.signer()
    (tmp_path / "signer.der").write_bytes(der(signer))
    (tmp_path / "issuer.pem").write_bytes(chain.pai.public_bytes(Encoding.PEM))
    code, out, _ = _run(["lint", str(tmp_path / "signer.der"), "--role", "crl-signer", "--issuer", str(tmp_path / "issuer.pem")])
    assert code == 0 and out.strip() == "no findings"
    code, out, _ = _run(["lint", str(published["dac"]), "--role", "crl-signer", "--format", "json"])
    assert code == 1 and "signer.key_usage_bits" in {f["code"] for f in json.loads(out)}


def test_codes_lists_the_revocation_codes() -> None:
    code, out, _ = _run(["codes", "--format", "json"])
    codes = {r["code"] for r in json.loads(out)}
    assert code == 0 and {"crl.akid_missing", "signer.key_usage_bits", "dcl.delegator_missing", "revset.idp_mismatch"} <= codes



