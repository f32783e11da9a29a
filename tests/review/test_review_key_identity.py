"""One DAC per device key, through the real CLI: flipped signatures, re-encodings, PEM/DER, other PIDs and PAIs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home, Run


def _issue(home: Home, csr_path: Path, out: Path, *extra: str, pai: str = "pai-1", pid: str = "8000") -> tuple[Run, dict]:
    run = home.run("dac", "issue", "--pai", pai, "--pid", pid, "--csr", str(csr_path), "--out", str(out), "--format", "json", *extra)
    return run, (json.loads(run.out) if run.out.strip() else {})


def _serial(pem_path: Path) -> str:
    text = format(x509.load_pem_x509_certificate(pem_path.read_bytes()).serial_number, "X")
    return text.zfill(len(text) + len(text) % 2)  # the ledger's form: even-length upper-case hex


def _dacs(home: Home) -> list[dict]:
    run = home.run("dac", "list", "--format", "json")
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_every_other_encoding_of_a_certified_key_gets_the_same_dac_never_a_second(home: Home, tmp_path: Path) -> None:
    """GIVEN a DAC for a device key WHEN the s→n−s flip, a PEM copy, a re-signed CSR with another subject and a
    BER-length CSR of that key are sent THEN each gets the same serial or a coded refusal, and the ledger holds one DAC."""
    k = crafted.key()
    original = crafted.csr(k)
    run, first = _issue(home, write(tmp_path / "a", "dev.csr", original), tmp_path / "out-a")
    assert run.code == 0, run.err
    serial = first["results"][0]["serial"]
    variants = {
        "flipped": crafted.flip_s(original),
        "pem": crafted.pem(original),
        "flipped-pem": crafted.pem(crafted.flip_s(original)),
        "resigned": crafted.csr(k, cn="another subject"),
        "ber": crafted.long_form_length(original),
    }
    for name, data in variants.items():
        out = tmp_path / f"out-{name}"
        run, doc = _issue(home, write(tmp_path / name, "dev.csr", data), out)
        result = doc["results"][0] if doc.get("results") else {}
        if result.get("status") in ("issued", "reused"):
            assert run.code == 0, (name, run.err)
            assert result["serial"] == serial, name
            assert _serial(out / "dev.pem") == serial, name
        else:
            assert run.code in (1, 2), (name, run)
            assert not (out / "dev.pem").exists(), name
    assert [d["serial"] for d in _dacs(home)] == [serial]


def test_a_forged_signature_over_a_certified_key_gets_nothing(home: Home, tmp_path: Path) -> None:
    """GIVEN a certified key WHEN a CSR carrying that public key with a broken signature is sent (no proof of possession)
    THEN it is refused with csr.signature_invalid, not answered with the existing DAC."""
    k = crafted.key()
    original = crafted.csr(k)
    assert _issue(home, write(tmp_path / "a", "dev.csr", original), tmp_path / "out-a")[0].code == 0
    info, alg, bits = crafted.parts(crafted.csr(k, cn="forged"))
    forged = crafted.tlv(0x30, info + alg + bits[:-1] + bytes([bits[-1] ^ 1]))
    run, doc = _issue(home, write(tmp_path / "b", "dev.csr", forged), tmp_path / "out-b")
    assert run.code == 1, run
    assert doc["results"][0]["code"] == "csr.signature_invalid"
    assert not (tmp_path / "out-b" / "dev.pem").exists()
    assert (tmp_path / "out-b" / "dev.err").exists()


def test_the_same_key_under_another_pid_or_pai_is_refused_unless_a_reason_is_given(home: Home, tmp_path: Path) -> None:
    """GIVEN a DAC from pai-1/8000 WHEN the same key asks pai-2 for PID 8001 or pai-3 for 8001 THEN issue.key_reused,
    exit 1, no .pem; WITH --reissue-reason a second DAC is issued, and the reason is in the ledger."""
    k = crafted.key()
    assert _issue(home, write(tmp_path / "a", "dev.csr", crafted.csr(k)), tmp_path / "out-a")[0].code == 0
    for pai, pid in (("pai-2", "8001"), ("pai-2", "8000"), ("pai-3", "8001")):
        out = tmp_path / f"out-{pai}-{pid}"
        run, doc = _issue(home, write(tmp_path / f"{pai}{pid}", "dev.csr", crafted.csr(k, cn=pai)), out, pai=pai, pid=pid)
        assert run.code == 1, (pai, pid, run)
        assert doc["results"][0]["code"] == "issue.key_reused", (pai, pid)
        assert not (out / "dev.pem").exists()
    run, doc = _issue(home, tmp_path / "pai-38001" / "dev.csr", tmp_path / "out-re", "--reissue-reason", "new product line",
                      pai="pai-3", pid="8001")
    assert run.code == 0, run.err
    rows = _dacs(home)
    assert len(rows) == 2
    assert [r["reissue_reason"] for r in rows] == [None, "new product line"]


def test_the_ca_keys_cannot_be_certified_as_a_device(home: Home, tmp_path: Path) -> None:
    """GIVEN the PAI's own public key in a CSR (signed by another key) WHEN it is sent THEN it is refused
    (issue.key_reused or csr.signature_invalid), exit 1, no DAC in the ledger."""
    pai_cert = x509.load_pem_x509_certificate((home.path / "ca" / "pai-1" / "cert.pem").read_bytes())
    point = pai_cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    k = crafted.key()
    mine = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    info, _, _ = crafted.parts(crafted.csr(k))
    swapped = crafted.resign(k, info.replace(mine, point))
    run, doc = _issue(home, write(tmp_path / "a", "dev.csr", swapped), tmp_path / "out")
    assert run.code == 1, run
    assert doc["results"][0]["code"] in ("issue.key_reused", "csr.signature_invalid")
    assert not (tmp_path / "out" / "dev.pem").exists()
    assert _dacs(home) == []


def test_two_files_with_one_key_in_one_batch_give_one_dac(home: Home, tmp_path: Path) -> None:
    """GIVEN a folder with a CSR and its s-flipped twin WHEN one `dac issue --jobs 2` runs THEN both names are
    answered with the same serial (or one refused), and the ledger holds one DAC."""
    k = crafted.key()
    original = crafted.csr(k)
    folder = tmp_path / "csrs"
    write(folder, "a.csr", original)
    write(folder, "b.csr", crafted.flip_s(original))
    write(folder, "c.csr", crafted.csr(k, cn="third"))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(tmp_path / "out"), "--jobs", "2")
    assert run.code in (0, 1), run
    serials = {_serial(p) for p in (tmp_path / "out").glob("[abc].pem")}
    assert len(serials) == 1
    assert len(_dacs(home)) == 1
    for name in "abc":
        assert (tmp_path / "out" / f"{name}.pem").exists() != (tmp_path / "out" / f"{name}.err").exists()


def test_a_forged_csr_for_a_certified_key_gets_nothing_in_folder_mode_or_the_inbox(home: Home, tmp_path: Path) -> None:
    """GIVEN a certified key WHEN CSRs carrying that key with a broken signature come through `dac issue DIR --jobs 2`
    and `inbox run` (the parent reads keys without verifying) THEN each is refused csr.signature_invalid, no .pem."""
    k = crafted.key()
    assert _issue(home, write(tmp_path / "a", "dev.csr", crafted.csr(k)), tmp_path / "out-a")[0].code == 0
    info, alg, bits = crafted.parts(crafted.csr(k, cn="forged"))
    forged = crafted.tlv(0x30, info + alg + bits[:-1] + bytes([bits[-1] ^ 1]))
    folder = tmp_path / "many"
    write(folder, "forged.csr", forged)
    write(folder, "other.csr", crafted.csr(crafted.key()))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(tmp_path / "out-b"), "--jobs", "2")
    assert run.code == 1, run
    assert not (tmp_path / "out-b" / "forged.pem").exists()
    assert json.loads((tmp_path / "out-b" / "forged.err").read_text())["code"] == "csr.signature_invalid"
    inbox = tmp_path / "inbox"
    write(inbox / "pai-1" / "8000", "forged.csr", forged)
    home.run("inbox", "run", "--dir", str(inbox))
    assert not (inbox / "pai-1" / "8000" / "forged.pem").exists()
    assert json.loads((inbox / "pai-1" / "8000" / "forged.err").read_text())["code"] == "csr.signature_invalid"
