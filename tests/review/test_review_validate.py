"""validate_att_cert on hostile bytes: always a verdict (never an exception), never valid for a broken chain."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from matter_pki.validate import validate_att_cert
from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home

NOW = datetime.now(UTC)


def _der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def chain(template_home: Home, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """PAA, PAI and a DAC issued through the CLI (on a copy of the template home)."""
    import shutil

    from tests.review.conftest import Home as H

    root = tmp_path_factory.mktemp("chain")
    shutil.copytree(template_home.path, root / "home")
    (root / "state").mkdir()
    home = H(root / "home", {**template_home.env, "MATTER_PKI_HOME": str(root / "home"), "MATTER_PKI_LOG_DIR": str(root / "state")})
    path = write(root / "in", "dev.csr", crafted.csr(crafted.key()))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(path), "--out", str(root / "out"))
    assert run.code == 0, run
    return {"paa": _der(root / "out" / "paa.pem"), "pai": _der(root / "out" / "pai.pem"), "dac": _der(root / "out" / "dev.pem")}


@pytest.mark.parametrize("mode", ["chip-cert", "commissioner"])
def test_the_issued_chain_is_valid_and_every_single_byte_flip_of_the_dac_is_never_an_exception(chain: dict[str, bytes], mode: str) -> None:
    """GIVEN the CLI's chain WHEN each DAC byte is flipped THEN validate_att_cert returns a result (no exception), and
    every flip inside the signed part or the signature gives ok False."""
    assert validate_att_cert(paa=chain["paa"], pai=chain["pai"], dac=chain["dac"], at=NOW, mode=mode).ok  # type: ignore[arg-type]
    dac = chain["dac"]
    accepted = []
    for i in range(len(dac)):
        mutated = dac[:i] + bytes([dac[i] ^ 0x01]) + dac[i + 1:]
        result = validate_att_cert(paa=chain["paa"], pai=chain["pai"], dac=mutated, at=NOW, mode=mode)  # type: ignore[arg-type]
        assert isinstance(int(result.result), int) and isinstance(result.reason, str)
        if result.ok:
            accepted.append(i)
    # Only bytes outside the TBS and signature values could flip without breaking the chain (none in DER).
    assert accepted == [], accepted


def test_hostile_blobs_in_every_position_give_a_verdict_not_an_exception(chain: dict[str, bytes]) -> None:
    """GIVEN empty, huge, deeply nested, truncated, random and PEM-instead-of-DER blobs WHEN each replaces the PAA,
    the PAI or the DAC THEN validate_att_cert returns ok False with a code, in both modes. (Bytes after a whole DER
    certificate are ignored, as OpenSSL's d2i_X509 does: certparse.py documents it.)"""
    rng = random.Random(1234)
    deep = b"\x05\x00"
    for _ in range(5000):
        deep = crafted.tlv(0x30, deep)
    blobs = {
        "empty": b"",
        "zero": b"\x00",
        "huge": b"\x30\x83\x01\x00\x00" + bytes(0x10000),
        "deep": deep,
        "indefinite": b"\x30\x80" * 5000,
        "long-length": b"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff",
        "truncated": chain["dac"][:100],
        "random": bytes(rng.randrange(256) for _ in range(500)),
        "pem": crafted.pem(chain["dac"], "CERTIFICATE"),
    }
    for role in ("paa", "pai", "dac"):
        for name, blob in blobs.items():
            for mode in ("chip-cert", "commissioner"):
                args = {**chain, role: blob}
                result = validate_att_cert(**args, at=NOW, mode=mode)  # type: ignore[arg-type]
                assert not result.ok, (role, name, mode)
                assert int(result.result) != 0 and result.code, (role, name, mode)


def test_a_chain_with_roles_swapped_or_out_of_time_is_invalid(chain: dict[str, bytes]) -> None:
    """GIVEN the chain WHEN PAI and DAC swap, the PAA stands for the PAI, or the time is before the DAC's notBefore
    THEN ok False."""
    for args in ({"paa": chain["paa"], "pai": chain["dac"], "dac": chain["pai"]},
                 {"paa": chain["paa"], "pai": chain["paa"], "dac": chain["dac"]},
                 {"paa": chain["pai"], "pai": chain["pai"], "dac": chain["dac"]}):
        assert not validate_att_cert(**args, at=NOW).ok
    assert not validate_att_cert(**chain, at=NOW - timedelta(days=2)).ok


def test_the_cli_validator_on_hostile_files_gives_one_line_and_its_exit_status(chain: dict[str, bytes], tmp_path: Path,
                                                                             template_home: Home) -> None:
    """GIVEN a DAC file that is a FIFO, a folder, 2 MB of zeros, or absent WHEN `validate-att-cert` runs (text and json)
    THEN exit 1 or 2, one error/verdict line, valid JSON in json mode, no traceback."""
    import json
    import os

    paa = write(tmp_path, "paa.der", chain["paa"])
    pai = write(tmp_path, "pai.der", chain["pai"])
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    write(tmp_path, "zeros", bytes(2_000_000))
    for dac in ("fifo", "dir", "zeros", "absent"):
        for fmt in ("text", "json"):
            run = template_home.run("validate-att-cert", "-a", str(paa), "-i", str(pai), "-d", str(tmp_path / dac),
                                    "--format", fmt, timeout=30)
            assert run.code in (1, 2), (dac, fmt, run)
            assert "Traceback" not in run.err
            if fmt == "json":
                json.loads(run.out if run.out.strip() else run.err)
            else:
                assert len((run.out + run.err).strip().splitlines()) == 1, (dac, run)
