"""What a newcomer hits beyond the happy path: every misuse ends as one coded line, the documented exit
status (README, "Exit status") and no traceback; nothing is a silent no-op."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from matter_pki.cli import aws as aws_cli
from matter_pki.cli import main
from matter_pki.errors import KeyStoreError
from matter_pki.local.devices import DeviceKeyReader
from tests.unit.test_local_fixtures import (
    CLI_PREFIX,
    PASSPHRASE,
    Token,
    cli_env,
    good_csr,
    make_pki,
    run_cli,
    write_csrs,
)

if TYPE_CHECKING:
    from pathlib import Path

    from click.testing import Result

ONE_LINE = re.compile(r"error\[(?P<code>[a-z0-9_.-]+)\]: [^\n]+\n")
PAI_ARN = "arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def assert_one_line(result: Result | subprocess.CompletedProcess[str], code: str, status: int) -> str:
    """The misuse ended with exactly ``error[code]: ...`` on stderr, exit ``status``, and no traceback."""
    stderr = result.stderr
    exit_code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    out = (result.stdout or "") + stderr
    assert "Traceback" not in out, out
    assert exit_code == status, out
    match = ONE_LINE.fullmatch(stderr)
    assert match is not None and match["code"] == code, stderr
    return stderr


# -- AWS configuration -----------------------------------------------------------------------------
AWS_COMMANDS = {
    "aws issue-dac": ["aws", "issue-dac", "--pai-arn", PAI_ARN, "--pid", "8000", "--csr", "{csr}", "--out", "{out}"],
    "aws submit": ["aws", "submit", "--bucket", "csr-bucket", "--pai-arn", PAI_ARN, "--pid", "8000", "--csr", "{csr}"],
    "audit query --aws": ["audit", "query", "--aws", "--log-group", "MatterAudit"],
    "audit report --aws": ["audit", "report", "--aws", "--ca", PAI_ARN, "--bucket", "reports", "--out", "{out}"],
    "aws crl-signer": ["aws", "crl-signer", "--pai-arn", PAI_ARN, "--kms-key-id", "alias/crl-signer", "-o", "{out}"],
    "aws publish-crl": ["aws", "publish-crl", "--pai-arn", PAI_ARN, "--kms-key-id", "alias/crl-signer", "--signer-cert", "{csr}",
                        "--audit-report", "{csr}", "--bucket", "crl-bucket", "--url", "https://crl.example.com/delegated-crl/a.crl"],
    "aws revocation-point": ["aws", "revocation-point", "--ca-arn", PAI_ARN, "--url", "https://crl.example.com/crl/a.crl"],
}


@pytest.fixture
def no_aws(tmp_path: Path) -> dict[str, str | None]:
    """An environment with no AWS configuration at all (no region, profile or credentials)."""
    (tmp_path / "aws-empty").write_text("")
    env: dict[str, str | None] = {
        "AWS_CONFIG_FILE": str(tmp_path / "aws-empty"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-empty"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    }  # fmt: skip
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE"):  # fmt: skip
        env[var] = None
    return env


def _aws_args(name: str, tmp_path: Path) -> list[str]:
    (tmp_path / "d.csr").write_bytes(good_csr())
    out = tmp_path / "out.pem" if "issue" in name or "crl-signer" in name else tmp_path
    return [a.format(csr=tmp_path / "d.csr", out=out) for a in AWS_COMMANDS[name]]


FAKE_KEYS = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}


AWS_MISCONFIGURATIONS = [
    (FAKE_KEYS, [], "config.aws_region"),  # NoRegionError
    ({}, ["--profile", "nope"], "config.aws_profile"),  # ProfileNotFound
    ({"AWS_PROFILE": "nope"}, [], "config.aws_profile"),
    ({"AWS_DEFAULT_REGION": "eu-west-1"}, [], "config.aws_credentials"),  # no credentials anywhere
]


@pytest.mark.parametrize(
    ("name", "extra_env", "extra_args", "code"),
    [
        (name, *case)
        for name in AWS_COMMANDS for case in AWS_MISCONFIGURATIONS
        if not (name == "aws submit" and case[2] == "config.aws_region")  # S3 clients need no region
    ],
)
def test_aws_configuration_problems_are_one_coded_line(
    name: str, extra_env: dict[str, str], extra_args: list[str], code: str, tmp_path: Path, no_aws: dict[str, str | None]
) -> None:
    # GIVEN no usable AWS configuration WHEN an AWS command runs
    result = CliRunner().invoke(main, [*_aws_args(name, tmp_path), *extra_args], env={**no_aws, **extra_env})
    # THEN one coded line, exit 2 (configuration), no traceback
    assert_one_line(result, code, 2)


def test_bad_aws_credentials_are_one_coded_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN S3 answering InvalidAccessKeyId (keys that do not exist)
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")
    stubber = Stubber(s3)
    stubber.add_client_error("list_objects_v2", "InvalidAccessKeyId", "The AWS Access Key Id does not exist", 403)
    stubber.activate()
    monkeypatch.setattr(aws_cli, "make_client", lambda service, region, profile: s3)
    # WHEN submitting THEN config.aws_credentials, exit 2
    result = CliRunner().invoke(main, _aws_args("aws submit", tmp_path))
    assert_one_line(result, "config.aws_credentials", 2)


SHADOW = "raise ImportError('blocked by the test: {name} is not installed')\n"


@pytest.mark.parametrize("name", AWS_COMMANDS)
def test_without_boto3_every_aws_command_says_how_to_install_it(name: str, tmp_path: Path) -> None:
    # GIVEN boto3 and botocore unimportable (shadowed on PYTHONPATH)
    shadow = tmp_path / "shadow"
    for module in ("boto3", "botocore"):
        (shadow / module).mkdir(parents=True)
        (shadow / module / "__init__.py").write_text(SHADOW.format(name=module))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow), os.environ.get("PYTHONPATH", "")])}
    # WHEN the command runs in a fresh interpreter
    result = subprocess.run([*CLI_PREFIX, *_aws_args(name, tmp_path)], env=env, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    # THEN config.boto3_missing, exit 2, with the clone-based install (never a package index name)
    line = assert_one_line(result, "config.boto3_missing", 2)
    assert "pip install '.[aws]'" in line and "clone" in line
    assert "matter-pki[" not in line


# -- silent no-ops ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home (PAA FFF1, pai-1 scoped to PID 8000) for the local misuse tests."""
    home = tmp_path_factory.mktemp("misuse") / "home"
    make_pki(home)
    return home


def test_fixing_a_refusal_and_rerunning_is_not_a_silent_no_op(pki: Path, tmp_path: Path) -> None:
    # GIVEN two CSR files refused (truncated uploads)
    env = cli_env(pki)
    paths = write_csrs(tmp_path / "csrs", 2)
    good = [p.read_bytes() for p in paths]
    for p in paths:
        p.write_bytes(p.read_bytes()[:100])
    args = ["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")]
    first = run_cli(args, env)
    assert first.exit_code == 1 and len(list((tmp_path / "out").glob("*.err"))) == 2
    # WHEN the cause is fixed (the full CSRs uploaded) and the same command re-runs without the flag
    for p, data in zip(paths, good, strict=True):
        p.write_bytes(data)
    again = run_cli([*args, "--pid", "8000", "--format", "json"], env)
    # THEN nothing is re-examined, and the run says so (not silent)
    report = json.loads(again.stdout)
    assert again.exit_code == 0 and report["counts"]["skipped"] == 2 and report["refused_earlier"] == 2
    assert any("--retry-refused" in n for n in report["notes"])
    text = run_cli([*args, "--pid", "8000"], env)
    assert "re-examine them with --retry-refused" in text.stderr
    # WHEN re-run with --retry-refused
    retried = run_cli([*args, "--pid", "8000", "--retry-refused", "--format", "json"], env)
    # THEN both are issued, and each CSR has exactly one answer
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["counts"]["issued"] == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dev-0000.pem", "dev-0001.pem", "paa.pem", "pai.pem"]


def test_inbox_retry_refused_reexamines_err_answers(pki: Path, tmp_path: Path) -> None:
    # GIVEN an inbox CSR refused because it is not a CSR WHEN replaced by a good one and re-run with the flag
    env = cli_env(pki)
    folder = tmp_path / "inbox" / "pai-1" / "8000"
    folder.mkdir(parents=True)
    (folder / "d.csr").write_bytes(b"not a csr")
    args = ["inbox", "run", "--dir", str(tmp_path / "inbox")]
    assert run_cli(args, env).exit_code == 0 and (folder / "d.err").exists()
    (folder / "d.csr").write_bytes(good_csr())
    assert json.loads(run_cli([*args, "--format", "json"], env).stdout)["refused_earlier"] == 1
    result = run_cli([*args, "--retry-refused", "--format", "json"], env)
    # THEN the .err is replaced by the DAC
    assert json.loads(result.stdout)["counts"]["issued"] == 1
    assert (folder / "d.pem").exists() and not (folder / "d.err").exists()


def test_empty_batch_says_so_and_exits_non_zero(pki: Path, tmp_path: Path) -> None:
    # GIVEN a folder without *.csr WHEN issuing from it THEN input.no_csr, exit 2, nothing written
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no CSR here")
    result = run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "empty"), "--out", str(tmp_path / "out")],
                     cli_env(pki))  # fmt: skip
    assert_one_line(result, "input.no_csr", 2)
    assert not (tmp_path / "out").exists()
    # AND an inbox with no CSR at all
    (tmp_path / "inbox").mkdir()
    assert_one_line(run_cli(["inbox", "run", "--dir", str(tmp_path / "inbox")], cli_env(pki)), "input.no_csr", 2)


def test_environment_conflicting_with_the_home_is_refused(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    # GIVEN a home whose keys live on a token
    env = cli_env(tmp_path / "home", **softhsm_token.env())
    del env["MATTER_PKI_PASSPHRASE"]
    assert run_cli(["init", "--vid", "FFF1", "--key-store", "pkcs11"], env).exit_code == 0
    # WHEN MATTER_PKI_PKCS11_TOKEN names another token
    result = run_cli(["pai", "create", "--pid", "8000"], {**env, "MATTER_PKI_PKCS11_TOKEN": "nope"})
    # THEN refused (not silently ignored), and nothing was created
    line = assert_one_line(result, "config.env_conflict", 2)
    assert "MATTER_PKI_PKCS11_TOKEN='nope'" in line
    assert not (tmp_path / "home" / "ca" / "pai-1").exists()
    assert run_cli(["pai", "create", "--pid", "8000"], env).exit_code == 0


# -- values ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["init", "--vid", "0000"], "profile.vid_reserved"),
        (["init", "--vid", "FFFF"], "profile.vid_reserved"),
        (["pai", "create", "--pid", "0000"], "profile.pid_reserved"),
        (["pai", "create", "--vid", "0"], "profile.vid_reserved"),
        (["dac", "issue", "--pai", "pai-1", "--pid", "0000", "--csr", "{csr}", "--out", "{out}"], "profile.pid_reserved"),
        (["aws", "create-pai", "--paa-arn", PAI_ARN, "--vid", "0000"], "profile.vid_reserved"),
        (["aws", "issue-dac", "--pai-arn", PAI_ARN, "--pid", "0", "--csr", "{csr}", "--out", "{out}"], "profile.pid_reserved"),
    ],
)
def test_vid_and_pid_0000_are_refused_everywhere(args: list[str], code: str, tmp_path: Path) -> None:
    # GIVEN a fresh (or initialised) home WHEN 0000 is given as VID or PID THEN refused before anything is made
    home = tmp_path / "home"
    if args[0] != "init":
        make_pki(home)
    (tmp_path / "d.csr").write_bytes(good_csr())
    argv = [a.format(csr=tmp_path / "d.csr", out=tmp_path / "out") for a in args]
    result = run_cli(argv, cli_env(home))
    assert_one_line(result, code, 2)
    assert not (tmp_path / "out").exists()
    if args[0] == "init":
        assert not (home / "config.json").exists()


def test_test_vendor_ids_are_accepted_with_a_development_note(tmp_path: Path) -> None:
    result = run_cli(["init", "--vid", "FFF1"], cli_env(tmp_path / "home"))
    assert result.exit_code == 0 and "FFF1 is a Matter test vendor ID" in result.stderr
    data = json.loads(run_cli(["pai", "create", "--pid", "8000", "--format", "json"], cli_env(tmp_path / "home")).stdout)
    assert any("development only" in n for n in data["notes"])


# -- conventions -----------------------------------------------------------------------------------
def _chain(pki: Path, tmp_path: Path) -> Path:
    (tmp_path / "d.csr").write_bytes(good_csr())
    assert run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "d.csr"), "--out", str(tmp_path / "out")],
                   cli_env(pki)).exit_code == 0  # fmt: skip
    return tmp_path / "out"


def test_validate_att_cert_takes_chip_cert_short_options_inline_and_stdin(pki: Path, tmp_path: Path) -> None:
    out = _chain(pki, tmp_path)
    paa, pai, dac = (str(out / n) for n in ("paa.pem", "pai.pem", "d.pem"))
    # short options, as chip-cert validate-att-cert -a/-i/-d
    assert run_cli(["validate-att-cert", "-a", paa, "-i", pai, "-d", dac], {}).stdout == "valid: kSuccess (0)\n"
    # the PAI given inline, the DAC on stdin
    inline = (out / "pai.pem").read_text()
    result = CliRunner().invoke(main, ["validate-att-cert", "-a", paa, "-i", inline, "-d", "-"], input=(out / "d.pem").read_bytes())
    assert result.exit_code == 0 and result.stdout == "valid: kSuccess (0)\n", result.output
    # hex DER inline works too (chip-cert reads hex files)
    der_hex = x509.load_pem_x509_certificate((out / "paa.pem").read_bytes()).public_bytes(serialization.Encoding.DER).hex()
    assert run_cli(["validate-att-cert", "-a", der_hex, "-i", pai, "-d", dac], {}).exit_code == 0
    # stdin twice is refused
    twice = CliRunner().invoke(main, ["validate-att-cert", "-a", "-", "-i", "-", "-d", dac], input=b"x")
    assert_one_line(twice, "input.stdin", 2)


def test_dash_o_writes_the_one_output_file_to_stdout(tmp_path: Path) -> None:
    # GIVEN a home under an imported PAA (PAIs go through a CSR)
    src = tmp_path / "src"
    make_pki(src)
    env = cli_env(tmp_path / "home")
    assert run_cli(["init", "--import-paa", str(src / "ca" / "paa" / "cert.pem")], env).exit_code == 0
    # WHEN the PAI CSR goes to stdout
    result = run_cli(["pai", "create", "--pid", "8000", "--csr-out", "-"], env)
    # THEN stdout is exactly the CSR and the id/hints are on stderr
    assert result.exit_code == 0, result.output
    csr = x509.load_pem_x509_csr(result.stdout.encode())
    assert csr.is_signature_valid and result.stdout.startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert "pai import --pai pai-1" in result.stderr
    # AND -o - with --format json (both want stdout) is refused
    clash = run_cli(["pai", "create", "--csr-out", "-", "--format", "json"], env)
    assert clash.exit_code == 2 and clash.stdout == ""
    assert json.loads(clash.stderr)["error"]["code"] == "input.usage"


def test_passphrase_file_and_a_separate_device_passphrase(tmp_path: Path) -> None:
    # GIVEN the CA passphrase in a 0600 file and no MATTER_PKI_PASSPHRASE
    secret = tmp_path / "pass"
    secret.write_text("ca-pass-from-file\n")
    secret.chmod(0o600)
    env = {"MATTER_PKI_HOME": str(tmp_path / "home"), "MATTER_PKI_PASSPHRASE": None}
    # WHEN init and pai create read it
    assert run_cli(["init", "--vid", "FFF1", "--passphrase-file", str(secret)], env).exit_code == 0  # type: ignore[arg-type]
    assert run_cli(["pai", "create", "--passphrase-file", str(secret)], env).exit_code == 0  # type: ignore[arg-type]
    # THEN the key is encrypted with it
    key = (tmp_path / "home" / "ca" / "pai-1" / "key.pem").read_bytes()
    serialization.load_pem_private_key(key, b"ca-pass-from-file")
    # AND a world-readable file is refused
    secret.chmod(0o644)
    assert_one_line(run_cli(["pai", "create", "--passphrase-file", str(secret)], env), "input.passphrase_file", 2)  # type: ignore[arg-type]
    # AND device keys take their own passphrase, never the CA's (not even as a fallback)
    out = tmp_path / "csrs"
    alone = run_cli(["csr", "generate", "--count", "1", "--out", str(out)], {"MATTER_PKI_PASSPHRASE": PASSPHRASE})
    assert_one_line(alone, "key.device_passphrase_missing", 2)
    assert not out.exists()
    gen = run_cli(["csr", "generate", "--count", "1", "--out", str(out)],
                  {"MATTER_PKI_PASSPHRASE": PASSPHRASE, "MATTER_PKI_DEVICE_PASSPHRASE": "device-pass"})  # fmt: skip
    assert gen.exit_code == 0, gen.output
    [device_key] = out.glob("*.key")
    DeviceKeyReader(b"device-pass").load(device_key)
    with pytest.raises(KeyStoreError) as wrong:
        DeviceKeyReader(PASSPHRASE.encode()).load(device_key)
    assert wrong.value.code == "key.passphrase_wrong"


def test_dac_list_is_the_ledger_filterable_as_csv_and_json(pki: Path, tmp_path: Path) -> None:
    # GIVEN two DACs, one revoked
    env = cli_env(pki)
    write_csrs(tmp_path / "csrs", 2, prefix="list-")
    run_cli(["dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out")], env)
    serials = [f"{x509.load_pem_x509_certificate(p.read_bytes()).serial_number:X}" for p in sorted((tmp_path / "out").glob("list-*.pem"))]
    assert run_cli(["revoke", "--serial", serials[0], "--reason", "superseded"], env).exit_code == 0
    # WHEN listing
    rows = json.loads(run_cli(["dac", "list", "--format", "json"], env).stdout)
    revoked = json.loads(run_cli(["dac", "list", "--status", "revoked", "--format", "json"], env).stdout)
    recent = json.loads(run_cli(["dac", "list", "--since", "1h", "--pid", "8000", "--format", "json"], env).stdout)
    future = json.loads(run_cli(["dac", "list", "--since", "2999-01-01", "--format", "json"], env).stdout)
    csv_text = run_cli(["dac", "list", "--format", "csv"], env).stdout
    # THEN JSON is a list of ledger rows, filters apply, CSV has a header and one line per DAC
    assert {serials[0].zfill(len(serials[0]) + len(serials[0]) % 2)} <= {r["serial"] for r in revoked}
    assert all(r["status"] == "revoked" for r in revoked)
    assert len(rows) >= 2 and len(recent) >= 2 and future == []
    lines = csv_text.splitlines()
    assert lines[0].startswith("serial,ca,pid,status,issued_at") and len(lines) == len(rows) + 1


# -- Ctrl-C ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ctrl_c_during_a_batch_is_one_line_exit_130_and_a_rerun_finishes(pki: Path, tmp_path: Path) -> None:
    # GIVEN a batch large enough to be interrupted, run with 2 workers in its own process group
    count = 2000
    write_csrs(tmp_path / "csrs", count)
    out = tmp_path / "out"
    argv = [*CLI_PREFIX, "dac", "issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(out), "--jobs", "2"]
    env = {**os.environ, **cli_env(pki)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # WHEN Ctrl-C reaches the process group (parent and workers, as a terminal sends it) mid-batch,
    # three times in a row (an impatient user)
    deadline = time.monotonic() + 120
    while not any(out.glob("dev-*.pem")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    for _ in range(3):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.02)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the batch finished before the interrupt arrived (machine too fast for this count)")
    # THEN one line, exit 130, no worker traceback
    assert proc.returncode == 130, stderr
    assert stderr == "error[cli.interrupted]: interrupted; re-run to finish: every CSR already answered stays answered\n"
    answered = len(list(out.glob("dev-*.pem")))
    assert 0 < answered < count
    # AND the re-run answers every CSR exactly once
    rerun = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(out.glob("dev-*.pem"))) == count and not list(out.glob("*.err"))


def test_pip_hints_never_name_a_package_index_name() -> None:
    # GIVEN the package source WHEN searched THEN no hint says pip install 'matter-pki[...]'
    from pathlib import Path as _Path

    root = _Path(__file__).resolve().parents[2] / "matter_pki"
    offenders = [str(p) for p in root.rglob("*.py") if re.search(r"pip install '?matter-pki", p.read_text())]
    assert offenders == []
