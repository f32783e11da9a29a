"""Output files from hostile names and hostile output folders: nothing written outside, nothing followed, never a hang."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from cryptography import x509

from tests.review import crafted
from tests.review.conftest import write

if TYPE_CHECKING:
    from pathlib import Path

    from tests.review.conftest import Home


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_symlinks_planted_in_the_output_folder_are_never_followed(home: Home, tmp_path: Path) -> None:
    """GIVEN an output folder whose dev.pem, pai.pem and paa.pem are symlinks to a victim file, and whose other.pem is a
    symlink to /dev/zero WHEN `dac issue` writes there (twice) THEN the victim is untouched, the run ends (no hang),
    and every answer is a regular file or a coded refusal."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("dev.pem", "pai.pem", "paa.pem"):
        (out / name).symlink_to(victim)
    (out / "other.pem").symlink_to("/dev/zero")
    folder = tmp_path / "csrs"
    write(folder, "dev.csr", crafted.csr(crafted.key()))
    write(folder, "other.csr", crafted.csr(crafted.key()))
    for _ in range(2):
        run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out), timeout=60)
        assert "Traceback" not in run.err, run
        assert run.code in (0, 1, 2), run
        assert victim.read_bytes() == b"precious"
    for name in ("dev", "other"):
        pem, err = out / f"{name}.pem", out / f"{name}.err"
        if not pem.is_symlink() and pem.exists():
            x509.load_pem_x509_certificate(pem.read_bytes())
        else:
            assert run.code != 0 and ("storage.symlink" in run.err + run.out or err.exists()), run


def test_a_fifo_in_place_of_an_answer_never_hangs_a_rerun(home: Home, tmp_path: Path) -> None:
    """GIVEN an answered CSR whose .pem was replaced by a FIFO WHEN the same `dac issue` runs again THEN it ends
    within the timeout with a regular .pem (re-written from the ledger) or a coded refusal."""
    folder = tmp_path / "csrs"
    write(folder, "dev.csr", crafted.csr(crafted.key()))
    out = tmp_path / "out"
    assert home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out)).code == 0
    serial = x509.load_pem_x509_certificate((out / "dev.pem").read_bytes()).serial_number
    (out / "dev.pem").unlink()
    os.mkfifo(out / "dev.pem")
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out), timeout=60)
    assert "Traceback" not in run.err, run
    if run.code == 0:
        assert x509.load_pem_x509_certificate((out / "dev.pem").read_bytes()).serial_number == serial
    else:
        assert run.error_code is not None or (out / "dev.err").exists(), run


def test_hostile_csr_file_names_stay_inside_the_output_folder(home: Home, tmp_path: Path) -> None:
    """GIVEN CSRs named with a leading dash, spaces, a newline, dots, non-ASCII and 250 characters WHEN `dac issue`
    runs THEN nothing is written outside the output folder, each name is answered or reported, never a traceback."""
    folder = tmp_path / "csrs"
    names = ["-rf.csr", "a b.csr", "x\ny.csr", "..csr", "...csr", "é.csr", "a" * 250 + ".csr", "pai.csr", "paa.csr", "X.CSR"]
    for name in names:
        write(folder, name, crafted.csr(crafted.key()))
    out = tmp_path / "work" / "out"
    before = _tree(tmp_path) - {"work"}
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out), "--format", "json")
    assert "Traceback" not in run.err, run
    json.loads(run.out) if run.code in (0, 1) else json.loads(run.err)
    after = _tree(tmp_path)
    assert {p for p in after - before if not p.startswith("work/out") and p not in ("work",) and not p.startswith(("state", "home/locks"))} == set()
    assert run.code == 1, run
    assert "input.reserved_name" in run.out


def test_the_single_csr_named_pai_is_refused_and_the_chain_file_is_not_overwritten(home: Home, tmp_path: Path) -> None:
    """GIVEN one CSR file named pai.csr WHEN `dac issue --csr pai.csr` runs THEN input.reserved_name, exit 1 or 2,
    and no pai.pem holding a DAC."""
    path = write(tmp_path / "in", "pai.csr", crafted.csr(crafted.key()))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(path), "--out", str(tmp_path / "out"))
    assert run.code in (1, 2) and "input.reserved_name" in run.err + run.out, run
    pai_pem = tmp_path / "out" / "pai.pem"
    if pai_pem.exists():
        cert = x509.load_pem_x509_certificate(pai_pem.read_bytes())
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_an_output_folder_inside_the_home_or_the_csr_folder_itself_is_handled(home: Home, tmp_path: Path) -> None:
    """GIVEN --out pointing at the CSR folder itself WHEN `dac issue` runs THEN every CSR is answered beside it or the run
    is refused with a code; the CSRs are never overwritten."""
    folder = tmp_path / "csrs"
    data = crafted.csr(crafted.key())
    write(folder, "dev.csr", data)
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(folder))
    assert "Traceback" not in run.err
    assert (folder / "dev.csr").read_bytes() == data
    assert run.code == 0 or run.error_code is not None, run


def _point(pem: bytes) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    return x509.load_pem_x509_certificate(pem).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_a_foreign_dac_planted_under_a_csrs_name_is_never_delivered_as_its_answer(home: Home, tmp_path: Path) -> None:
    """GIVEN an output folder where dev.pem already holds a valid DAC of ANOTHER device key (same CA), and where
    old.pem holds another key's DAC for an already answered old.csr WHEN `dac issue` runs (first run and re-run)
    THEN each .pem ends up certifying its own CSR's key, or the name gets a coded refusal; never the foreign DAC."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    other = tmp_path / "other"
    write(other, "x.csr", crafted.csr(crafted.key()))
    write(other, "y.csr", crafted.csr(crafted.key()))
    assert home.run("dac", "issue", "--pai", "pai-1", "--csr", str(other), "--out", str(tmp_path / "other-out")).code == 0
    foreign = (tmp_path / "other-out" / "x.pem").read_bytes()
    folder = tmp_path / "csrs"
    k_dev, k_old = crafted.key(), crafted.key()
    write(folder, "old.csr", crafted.csr(k_old))
    out = tmp_path / "out"
    assert home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out)).code == 0
    (out / "old.pem").write_bytes((tmp_path / "other-out" / "y.pem").read_bytes())
    write(folder, "dev.csr", crafted.csr(k_dev))
    (out / "dev.pem").write_bytes(foreign)
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out))
    assert "Traceback" not in run.err, run
    for name, k in (("dev", k_dev), ("old", k_old)):
        mine = k.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        pem = out / f"{name}.pem"
        if pem.exists():
            assert _point(pem.read_bytes()) == mine, (name, run)
        else:
            assert (out / f"{name}.err").exists() or run.code != 0, (name, run)


def test_an_output_folder_inside_the_home_never_replaces_a_ca_key(home: Home, tmp_path: Path) -> None:
    """GIVEN CSRs named key.csr and cert.csr WHEN `dac issue --out <home>/ca/pai-1` (or the home, the PAA folder, also
    through a symlink, audit/, crl/, serve/) and `inbox run --dir <home>` run THEN input.output_in_home, exit 2, and
    every file of the home is unchanged: a CA key is never replaced by a DAC. A folder of the operator's own inside
    the home (the demo's) is allowed."""
    folder = tmp_path / "csrs"
    write(folder, "key.csr", crafted.csr(crafted.key()))
    write(folder, "cert.csr", crafted.csr(crafted.key()))
    before = {p: p.read_bytes() for p in home.path.rglob("*") if p.is_file() and "locks" not in p.parts}
    (tmp_path / "alias").symlink_to(home.path / "ca")
    for out in (home.path / "ca" / "pai-1", home.path, home.path / "ca" / "paa", tmp_path / "alias" / "pai-1",
                home.path / "audit", home.path / "crl", home.path / "serve"):
        run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out))
        assert run.code == 2 and run.error_code == "input.output_in_home", (out, run)
        run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder / "key.csr"), "--out", str(out))
        assert run.code == 2 and run.error_code == "input.output_in_home", (out, run)
    run = home.run("inbox", "run", "--dir", str(home.path))
    assert run.code == 2 and run.error_code == "input.output_in_home", run
    after = {p: p.read_bytes() for p in home.path.rglob("*") if p.is_file() and "locks" not in p.parts}
    changed = [str(p) for p in before if after.get(p) != before[p]]
    assert changed == [], changed
    assert {p for p in after if p not in before and "audit" not in p.parts} == set()
    assert home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(home.path / "demo" / "out")).code == 0


def test_a_folder_answered_by_one_pai_is_not_taken_as_answered_by_another(home: Home, tmp_path: Path) -> None:
    """GIVEN CSRs answered by pai-1 (PID 8000) in a folder WHEN `dac issue --pai pai-3 --pid 8001` runs into the same
    folder THEN input.output_other_ca (exit 2) and the folder is untouched; with pai.pem/paa.pem removed first, never
    "already answered" with pai-1's DACs: issue.key_reused (exit 1), then with --reissue-reason pai-3 DACs; every
    .pem left chains to the pai.pem beside it."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.serialization import Encoding

    from matter_pki.validate import validate_att_cert

    def der(path: Path) -> bytes:
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)

    def chains_valid() -> None:
        for i in range(2):
            assert not (out / f"d{i}.err").exists()
            result = validate_att_cert(paa=der(out / "paa.pem"), pai=der(out / "pai.pem"), dac=der(out / f"d{i}.pem"),
                                       at=datetime.now(UTC), mode="commissioner")
            assert result.ok, result

    folder = tmp_path / "csrs"
    for i in range(2):
        write(folder, f"d{i}.csr", crafted.csr(crafted.key()))
    out = tmp_path / "out"
    assert home.run("dac", "issue", "--pai", "pai-1", "--csr", str(folder), "--out", str(out)).code == 0
    run = home.run("dac", "issue", "--pai", "pai-3", "--pid", "8001", "--csr", str(folder), "--out", str(out),
                   "--reissue-reason", "moved to 8001")
    assert run.code == 2 and run.error_code == "input.output_other_ca", run
    chains_valid()
    (out / "pai.pem").unlink()
    (out / "paa.pem").unlink()
    run = home.run("dac", "issue", "--pai", "pai-3", "--pid", "8001", "--csr", str(folder), "--out", str(out), "--format", "json")
    assert run.code == 1, run
    assert {r["code"] for r in json.loads(run.out)["results"]} == {"issue.key_reused"}
    run = home.run("dac", "issue", "--pai", "pai-3", "--pid", "8001", "--csr", str(folder), "--out", str(out),
                   "--reissue-reason", "moved to 8001", "--retry-refused")
    assert run.code == 0, run
    chains_valid()
