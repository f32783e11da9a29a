"""CLI conventions under misuse, expired CAs, and two processes at once: coded one-line errors, documented statuses."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cryptography import x509

from tests.review import crafted
from tests.review.conftest import CLI, Home, write

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def exit_of(template_home: Home) -> dict[str, int]:
    """Every error code's documented exit status (`codes --kind error --format json`)."""
    run = template_home.run("codes", "--kind", "error", "--format", "json")
    assert run.code == 0, run
    return {row["code"]: int(row["exit"]) for row in json.loads(run.out)}


def _misuses(home: Home, tmp: Path) -> list[tuple[str, ...]]:
    fifo = tmp / "fifo.csr"
    os.mkfifo(fifo)
    write(tmp / "empty", "README", b"x")
    return [
        ("dac", "issue", "--pai", "pai-9", "--csr", str(write(tmp, "a.csr", crafted.csr(crafted.key()))), "--out", str(tmp / "o1")),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(fifo), "--out", str(tmp / "o2")),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "empty"), "--out", str(tmp / "o3")),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o4"), "--validity-days", "3000000"),
        ("dac", "issue", "--pai", "pai-1", "--pid", "0000", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o5")),
        ("dac", "issue", "--pai", "pai-1", "--pid", "8001", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o6")),
        ("dac", "issue", "--pai", "../../etc", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o7")),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "a.csr")),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o8"), "--jobs", "-3"),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o9"), "--bundle", "../x"),
        ("dac", "issue", "--pai", "pai-1", "--csr", str(tmp / "a.csr"), "--out", str(tmp / "o10"), "--reissue-reason", ""),
        ("revoke", "--serial", "ZZ", "--reason", "keyCompromise"),
        ("revoke", "--serial", "01", "--reason", "because"),
        ("revoke", "--serial", "0123456789ABCDEF", "--reason", "keyCompromise"),
        ("pai", "create", "--pid", "0000"),
        ("pai", "create", "--id", "../evil"),
        ("pai", "create", "--validity-days", "99999999"),
        ("crl", "publish", "--pai", "pai-1", "--next-update-days", "-5"),
        ("crl", "publish", "--pai", "nope"),
        ("dac", "show", "not-hex"),
        ("dac", "list", "--since", "yesterday-ish"),
        ("audit", "query", "--since", "forever"),
        ("inbox", "run", "--dir", str(tmp / "missing")),
        ("init", "--vid", "FFF1"),
        ("validate-att-cert", "-a", str(tmp / "a.csr"), "-i", str(tmp / "a.csr"), "-d", str(tmp / "a.csr")),
        ("lint", str(tmp / "a.csr"), "--role", "dac"),
        ("csr", "export-key", str(tmp / "a.csr")),
        ("station", "add", "x/../y", "--pai", "pai-1", "--pid", "8000", "--out", str(tmp / "st")),
    ]


def test_every_misuse_is_one_coded_line_with_the_documented_status_and_json_stays_json(
    home: Home, tmp_path: Path, exit_of: dict[str, int],
) -> None:
    """GIVEN misuses of every command WHEN run in text and in json mode THEN no traceback; text: the first stderr line
    is `error[code]: ...` (or a verdict) and the exit status is the code's documented one; json: stdout or stderr
    is one JSON document whose error carries that code and status."""
    failures = []
    for n, args in enumerate(_misuses(home, tmp_path)):
        text = home.run(*args, timeout=60)
        both = text.out + text.err
        if "Traceback" in both or text.code == 0:
            failures.append((args, "text", text))
            continue
        if text.error_code is not None:
            if exit_of.get(text.error_code) not in (text.code, None) or text.error_code not in exit_of:
                failures.append((args, "status", text))
            if len(text.err.strip().splitlines()) != 1 and not any(ln.startswith(("note", "hint", "next")) for ln in text.err.splitlines()[1:]):
                failures.append((args, "lines", text))
        if n % 2:
            continue  # json mode on every other misuse keeps the run short; both halves cover every command group
        jargs = [*args, "--format", "json"]
        js = home.run(*jargs, timeout=60)
        if "Traceback" in js.out + js.err:
            failures.append((args, "json-traceback", js))
            continue
        if "--format" in jargs and js.code != 0:
            try:
                doc = json.loads(js.err) if js.err.strip() else json.loads(js.out)
            except ValueError:
                try:
                    doc = json.loads(js.out)
                except ValueError:
                    failures.append((args, "json-invalid", js))
                    continue
            if isinstance(doc, dict) and "error" in doc:
                if doc["error"]["exit_status"] != js.code:
                    failures.append((args, "json-status", js))
    assert failures == [], "\n".join(f"{a} [{k}] {r.code} {r.err.strip()[:300]!r} {r.out.strip()[:200]!r}" for a, k, r in failures)


def _expired_home(tmp_path: Path) -> Home:
    from matter_pki.local import ca as ca_ops
    from matter_pki.local.home import PkiHome
    from matter_pki.local.keys import KeyStoreSettings, Secrets
    from tests.review.conftest import PASSPHRASE

    path = tmp_path / "home"
    home = PkiHome(path)
    secrets = Secrets.fixed(PASSPHRASE.encode(), None)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    ca_ops.init_paa(home, vid=0xFFF1, settings=KeyStoreSettings(), secrets=secrets, now=long_ago)
    ca_ops.create_pai(home, pid=0x8000, validity_days=30, secrets=secrets, now=long_ago)
    ca_ops.create_pai(home, pid=0x8001, secrets=secrets, now=datetime.now(UTC) - timedelta(days=1))
    (tmp_path / "state").mkdir()
    return Home(path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(tmp_path), "MATTER_PKI_HOME": str(path),
                       "MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_LOG_DIR": str(tmp_path / "state")})


def test_an_expired_pai_issues_nothing_on_dac_issue_or_the_inbox(tmp_path: Path) -> None:
    """GIVEN pai-1 whose notAfter passed WHEN `dac issue` and `inbox run` ask it for DACs THEN issue.ca_expired (the
    command's status; .err in the inbox) and no DAC; pai-2 (valid) still answers in the same inbox run."""
    home = _expired_home(tmp_path)
    path = write(tmp_path / "in", "dev.csr", crafted.csr(crafted.key()))
    run = home.run("dac", "issue", "--pai", "pai-1", "--csr", str(path), "--out", str(tmp_path / "out"))
    assert run.code != 0 and "issue.ca_expired" in run.err + run.out, run
    assert not (tmp_path / "out" / "dev.pem").exists()
    inbox = tmp_path / "inbox"
    write(inbox / "pai-1" / "8000", "a.csr", crafted.csr(crafted.key()))
    write(inbox / "pai-2" / "8001", "b.csr", crafted.csr(crafted.key()))
    home.run("inbox", "run", "--dir", str(inbox))
    assert json.loads((inbox / "pai-1" / "8000" / "a.err").read_text())["code"] == "issue.ca_expired"
    assert not (inbox / "pai-1" / "8000" / "a.pem").exists()
    assert (inbox / "pai-2" / "8001" / "b.pem").exists()


def test_two_processes_issuing_one_key_at_once_give_one_dac(home: Home, tmp_path: Path) -> None:
    """GIVEN the same device key in two CSR files (one s-flipped) WHEN two `dac issue` processes run at the same
    time into two output folders THEN both answers carry one serial (or one is refused) and the ledger has one DAC."""
    k = crafted.key()
    original = crafted.csr(k)
    a = write(tmp_path / "a", "dev.csr", original)
    b = write(tmp_path / "b", "dev.csr", crafted.flip_s(original))
    procs = [subprocess.Popen([*CLI, "dac", "issue", "--pai", "pai-1", "--csr", str(p), "--out", str(tmp_path / f"out-{i}")],
                              env=home.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i, p in enumerate((a, b))]
    codes = [p.wait(timeout=120) for p in procs]
    for p in procs:
        _, err = p.communicate()
        assert b"Traceback" not in err
    serials = {x509.load_pem_x509_certificate(f.read_bytes()).serial_number for f in tmp_path.glob("out-*/dev.pem")}
    assert len(serials) == 1, codes
    assert len(json.loads(home.run("dac", "list", "--format", "json").out)) == 1


def test_two_crl_publications_at_once_never_share_a_number(home: Home, tmp_path: Path) -> None:
    """GIVEN a PAI WHEN two `crl publish` run at the same time, then a third THEN the final CRL's number is the
    number of successful publications and `ledger verify` passes."""
    procs = [subprocess.Popen([*CLI, "crl", "publish", "--pai", "pai-1"], env=home.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    ok = sum(1 for p in procs if p.wait(timeout=120) == 0)
    for p in procs:
        p.communicate()
    assert home.run("crl", "publish", "--pai", "pai-1").code == 0
    crl = x509.load_der_x509_crl((home.path / "crl" / "pai-1.crl").read_bytes())
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == ok + 1
    assert home.run("ledger", "verify").code == 0


def test_an_inbox_with_symlinks_never_reads_or_writes_outside(home: Home, tmp_path: Path) -> None:
    """GIVEN an inbox whose PID folder is a symlink to an outside folder and whose CSR is a symlink to an outside CSR
    WHEN `inbox run` runs THEN nothing is written outside the inbox and the symlinked CSR is not certified."""
    outside = tmp_path / "outside"
    write(outside, "x.csr", crafted.csr(crafted.key()))
    inbox = tmp_path / "inbox"
    (inbox / "pai-1").mkdir(parents=True)
    (inbox / "pai-1" / "8000").symlink_to(outside)
    write(inbox / "pai-3" / "8001", "ok.csr", crafted.csr(crafted.key()))
    (inbox / "pai-3" / "8001" / "link.csr").symlink_to(outside / "x.csr")
    run = home.run("inbox", "run", "--dir", str(inbox))
    assert "Traceback" not in run.err
    assert sorted(p.name for p in outside.iterdir()) == ["x.csr"]
    assert not (inbox / "pai-3" / "8001" / "link.pem").exists()
    assert (inbox / "pai-3" / "8001" / "ok.pem").exists()
