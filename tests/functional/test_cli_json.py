"""``--format json``: one JSON document on stdout per command, always the same shape (a list stays a list,
whatever the number of items), nothing else on stdout or stderr.

Every command that has ``--format`` must be listed in ``SHAPES`` below (or in ``SHAPES_ELSEWHERE`` with
the test that checks its JSON); a new command with ``--format`` fails the coverage test until it is.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from matter_pki.cli import main
from matter_pki.profiles import PaaProfile, PaiProfile, Validity, sign
from tests.lambdas.fakes import ModelPrivateCa
from tests.unit.test_audit_pca_report import BUCKET, CA, KEY, REPORT, expect_report, pca, s3  # noqa: F401 - fixtures
from tests.unit.test_aws_crl import BUCKET as CRL_BUCKET
from tests.unit.test_aws_crl import URL as CRL_URL
from tests.unit.test_aws_crl import _report, aws  # noqa: F401 - fixture
from tests.unit.test_cli_aws import _use, fake_waiter_delay
from tests.unit.test_local_fixtures import cli_env, good_csr, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

# Command -> (JSON type, the keys of the object or of each list item).
SHAPES: dict[str, tuple[type, set[str]]] = {
    "init": (dict, {"id", "role", "state", "home", "vid", "pid", "imported", "certificate", "csr", "notes"}),
    "pai create": (dict, {"id", "role", "state", "home", "vid", "pid", "imported", "certificate", "csr", "notes"}),
    "pai import": (dict, {"id", "role", "state", "home", "vid", "pid", "imported", "certificate", "csr", "notes"}),
    "pai list": (list, {"id", "vid", "pid", "state", "key_store"}),
    "dac issue": (dict, {"output", "counts", "refused_earlier", "notes", "results"}),
    "inbox run": (dict, {"inbox", "counts", "refused_earlier", "notes", "results"}),
    "dac show": (list, {"kind", "ca", "serial", "subject", "pid", "csr_sha256", "not_before", "not_after", "issued_at",
                        "operator", "status", "revocation_reason", "revoked_at"}),
    "dac list": (list, {"kind", "ca", "serial", "subject", "pid", "csr_sha256", "not_before", "not_after", "issued_at",
                        "operator", "status", "revocation_reason", "revoked_at"}),
    "revoke": (dict, {"kind", "ca", "serial", "key_id", "status", "revocation_reason", "revoked_at", "already"}),
    "crl publish": (dict, {"ca", "crl_number", "revoked", "crl", "pem", "revocation_set"}),
    "csr generate": (dict, {"out", "count", "first", "last", "key_store", "token", "kept", "rebuilt", "resumed"}),
    "csr export-key": (dict, {"key", "name", "out", "key_format", "dac_checked"}),
    "csr check": (dict, {"accepted", "sha256"}),
    "validate-att-cert": (dict, {"valid", "result", "result_code", "reason_code", "reason", "findings", "divergences",
                                 "boringssl_result", "boringssl_result_code"}),
    "lint": (list, {"severity", "code", "message"}),
    "codes": (list, {"code", "kind", "severity", "exit", "chip", "clause", "description"}),
    "audit query": (list, {"seq", "event", "time"}),
    "audit verify": (dict, {"ok", "records"}),
    "audit seal": (dict, {"sealed", "first", "last", "seal_seq", "tail"}),
    # The ledger and the home: cross-check, rebuild from the audit log, upgrade.
    "ledger verify": (dict, {"ok", "problems", "notes", "counts"}),
    "ledger rebuild": (dict, {"certificates", "crl_signers", "revocations", "crl_numbers", "kept", "chain"}),
    "home upgrade": (dict, {"upgraded", "done"}),
    "home rekey": (dict, {"rekeyed", "kdf", "files"}),
    "audit queries": (list, {"name", "title"}),
    "aws create-pai": (dict, {"pai_arn", "out"}),
    "audit report": (dict, {"report_id", "bucket", "key", "path", "size"}),
    # Revocation: delegated CRL signers, DCL points, the SDK's dry run, the commissioner's check, AWS.
    "crl-signer create": (dict, {"id", "issuer", "certificate", "key_store"}),
    "crl-signer list": (list, {"id", "issuer", "serial", "subject", "not_before", "not_after", "issued_at", "operator",
                               "status", "revocation_reason", "revoked_at", "key_store"}),
    "crl-signer revoke": (dict, {"id", "issuer", "serial", "subject", "status", "revocation_reason", "revoked_at",
                                 "already"}),
    "dcl revocation-point": (dict, {"ok", "point", "dcld", "findings"}),
    "crl check": (dict, {"ok", "points"}),
    "revocation check": (dict, {"stage", "code", "result", "reason", "dac_revoked", "pai_revoked", "dac_notes",
                                "pai_notes", "warnings"}),
    "aws revocation-point": (dict, {"ok", "point", "dcld", "findings"}),
    "aws crl-signer": (dict, {"serial", "pai_arn", "kms_key_arn", "not_after", "out"}),
    "aws publish-crl": (dict, {"bucket", "key", "url", "crl_number", "revoked"}),
    # The signing service's stations.
    "station add": (dict, {"name", "pai", "pids", "quota_per_day", "status", "serial", "cert_sha256", "not_after",
                           "created_at", "revoked_at", "revocation_reason", "out"}),
    "station list": (list, {"name", "pai", "pids", "quota_per_day", "status", "serial", "not_after", "revoked_at",
                            "used_today"}),
    "station revoke": (dict, {"name", "pai", "pids", "status", "serial", "revoked_at", "revocation_reason"}),
}
# Commands whose JSON is checked by another test (AWS pipelines with moto / Stubber).
SHAPES_ELSEWHERE = {
    "aws issue-dac": "tests/unit/test_cli_aws.py::test_issue_dac_writes_a_validated_dac",
    "aws submit": "tests/unit/test_cli_aws.py::test_submit_uploads_waits_and_downloads",
    "audit verify-trail": "tests/unit/test_audit_trail.py (cli --format json)",
}


def _commands_with_format(group: click.Group, path: tuple[str, ...] = ()) -> set[str]:
    found = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found |= _commands_with_format(cmd, (*path, name))
        elif any("--format" in getattr(p, "opts", []) for p in cmd.params):
            found.add(" ".join((*path, name)))
    return found


def test_every_command_with_format_has_a_json_shape_test() -> None:
    missing = _commands_with_format(main) - set(SHAPES) - set(SHAPES_ELSEWHERE)
    assert not missing, f"add a JSON shape for {sorted(missing)} to SHAPES in {__file__}"


def check(command: str, result: Any) -> Any:
    """The run succeeded (or was a documented refusal), printed only JSON of the command's shape."""
    assert result.exit_code in (0, 1), result.output
    assert result.stderr == "", result.stderr  # json mode: no notes on stderr
    data = json.loads(result.stdout)
    kind, keys = SHAPES[command]
    assert isinstance(data, kind), (command, data)
    items = data if isinstance(data, list) else [data]
    assert items, command
    for item in items:
        assert keys <= set(item), (command, keys - set(item))
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A home built with the CLI in JSON mode, recording each command's shape as it goes."""
    root = tmp_path_factory.mktemp("json")
    env = cli_env(root / "home", MATTER_PKI_DEVICE_PASSPHRASE="device-pass")

    def run(command: str, *args: str, **kwargs: Any) -> Any:
        result = CliRunner().invoke(main, [*command.split(), *args, "--format", "json"], env=env, **kwargs)
        return check(command, result)

    out: dict[str, Any] = {"root": root, "env": env, "run": run}
    out["init"] = run("init", "--vid", "FFF1")
    out["pai create"] = run("pai create", "--pid", "8000")
    out["csr generate"] = run("csr generate", "--count", "2", "--out", str(root / "gen"))
    write_csrs(root / "csrs", 2)
    out["dac issue"] = run("dac issue", "--pai", "pai-1", "--csr", str(root / "csrs"), "--out", str(root / "out"))
    write_csrs(root / "inbox" / "pai-1" / "8000", 1)
    out["inbox run"] = run("inbox run", "--dir", str(root / "inbox"))
    return out


def test_init_and_pai_create(world: dict[str, Any]) -> None:
    assert world["init"]["role"] == "paa" and world["init"]["vid"] == "FFF1" and world["init"]["notes"]
    assert world["pai create"]["id"] == "pai-1" and world["pai create"]["pid"] == "8000"


def test_batch_commands(world: dict[str, Any]) -> None:
    assert world["dac issue"]["counts"]["issued"] == 2 and len(world["dac issue"]["results"]) == 2
    assert world["inbox run"]["counts"]["issued"] == 1
    assert world["csr generate"]["count"] == 2 and world["csr generate"]["key_store"] == "file"
    assert (world["csr generate"]["first"], world["csr generate"]["last"]) == ("device-00001", "device-00002")
    assert world["csr generate"]["resumed"] is False and world["csr generate"]["token"] is None


def test_csr_export_key_json(world: dict[str, Any]) -> None:
    # GIVEN a device key made by csr generate WHEN exported encrypted to a file in JSON mode
    run, root = world["run"], world["root"]
    key, target = root / "gen" / "device-00001.key", root / "flash-00001.pem"
    data = run("csr export-key", str(key), "--key-format", "encrypted-pem", "-o", str(target))
    # THEN the document names the key and the file, which holds it
    assert data == {"key": str(key), "name": "device-00001", "out": str(target), "key_format": "encrypted-pem",
                    "dac_checked": False}  # fmt: skip
    assert target.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # AND JSON with the key on stdout (-o -, the default) is refused: both would write stdout
    clash = CliRunner().invoke(main, ["csr", "export-key", str(key), "--format", "json"], env=world["env"])
    assert clash.exit_code == 2 and clash.stdout == ""
    assert json.loads(clash.stderr)["error"]["code"] == "input.usage"


def test_ledger_commands_keep_lists_lists(world: dict[str, Any]) -> None:
    run = world["run"]
    [entry] = run("dac show", world["dac issue"]["results"][0]["serial"])  # one match: still a list
    assert entry["status"] == "issued"
    assert len(run("dac list", "--pai", "pai-1")) == 3
    assert run("pai list")[0]["id"] == "pai-1"
    revoked = run("revoke", "--serial", entry["serial"], "--reason", "keyCompromise")
    assert revoked["status"] == "revoked"
    assert run("crl publish", "--pai", "pai-1")["revoked"] == 1


def test_validation_commands(world: dict[str, Any]) -> None:
    run, out = world["run"], world["root"] / "out"
    name = world["dac issue"]["results"][0]["name"]
    verdict = run("validate-att-cert", "-a", str(out / "paa.pem"), "-i", str(out / "pai.pem"), "-d", str(out / f"{name}.pem"))
    assert verdict["valid"] is True
    assert (verdict["divergences"], verdict["boringssl_result"], verdict["boringssl_result_code"]) == ([], None, None)
    findings = run("lint", str(out / f"{name}.pem"), "--role", "pai")  # a DAC linted as a PAI: findings, exit 1
    assert "ext.basic_constraints_ca" in {f["code"] for f in findings}
    (world["root"] / "c.csr").write_bytes(good_csr())
    assert run("csr check", str(world["root"] / "c.csr"))["accepted"] is True
    rows = run("codes")
    assert {r["kind"] for r in rows} == {"finding", "error"}


def test_audit_commands(world: dict[str, Any]) -> None:
    run = world["run"]
    home = str(world["root"] / "home")
    assert run("audit query", "--home", home, "--event", "dac.*")
    assert run("audit seal", "--home", home)["sealed"] in (True, False)
    assert run("audit verify", "--home", home)["ok"] is True
    assert {q["name"] for q in run("audit queries")} >= {"ca-lifecycle"}


def test_ledger_and_home_commands_json(tmp_path: Path) -> None:
    # GIVEN a home with one DAC
    env = cli_env(tmp_path / "home")

    def run(command: str, *args: str) -> Any:
        return check(command, CliRunner().invoke(main, [*command.split(), *args, "--format", "json"], env=env))

    run("init", "--vid", "FFF1")
    run("pai create", "--pid", "8000")
    write_csrs(tmp_path / "csrs", 1)
    run("dac issue", "--pai", "pai-1", "--csr", str(tmp_path / "csrs"), "--out", str(tmp_path / "out"))
    # WHEN it is verified, upgraded (nothing to do) and its ledger rebuilt THEN each answers its one shape
    verified = run("ledger verify")
    assert verified["ok"] is True and verified["problems"] == [] and verified["counts"]["ledger_dacs"] == 1
    assert run("home upgrade") == {"upgraded": False, "done": []}
    rekeyed = run("home rekey")
    assert rekeyed["rekeyed"] == [] and {f["path"] for f in rekeyed["files"]} >= {"ca/paa/key.pem", "audit/audit-key.pem"}
    rebuilt = run("ledger rebuild", "--from", str(tmp_path / "out"), "--reason", "json shape")
    assert (rebuilt["certificates"], rebuilt["crl_signers"], rebuilt["revocations"]) == (3, 0, 0)
    assert rebuilt["kept"] and run("ledger verify")["ok"] is True


def test_pai_import_json(tmp_path: Path) -> None:
    # GIVEN a home under an imported PAA and a pending PAI whose CSR the PAA owner signs
    paa_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    paa = sign(PaaProfile(vid=0xFFF1, validity=Validity.no_expiry(start)).builder(paa_key.public_key(), serial=0x77), paa_key)
    (tmp_path / "paa.pem").write_bytes(paa.public_bytes(Encoding.PEM))
    env = cli_env(tmp_path / "home")
    assert CliRunner().invoke(main, ["init", "--import-paa", str(tmp_path / "paa.pem")], env=env).exit_code == 0
    requested = CliRunner().invoke(main, ["pai", "create", "--pid", "8000", "--csr-out", "-"], env=env)
    csr = x509.load_pem_x509_csr(requested.stdout.encode())
    profile = PaiProfile(vid=0xFFF1, pid=0x8000, validity=Validity.no_expiry(start + timedelta(hours=1)))
    pai = sign(profile.builder(csr.public_key(), serial=0x99, issuer=paa), paa_key)  # type: ignore[arg-type]
    # WHEN the certificate is imported from stdin in JSON mode THEN the CA shape, now active
    result = CliRunner().invoke(main, ["pai", "import", "--pai", "pai-1", "--cert", "-", "--format", "json"], env=env,
                                input=pai.public_bytes(Encoding.PEM))  # fmt: skip
    data = check("pai import", result)
    assert data["state"] == "active" and data["id"] == "pai-1" and data["pid"] == "8000"


def test_aws_create_pai_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ModelPrivateCa()
    paa = fake.add_paa()
    _use(monkeypatch, fake)
    fake_waiter_delay(monkeypatch)
    result = CliRunner().invoke(main, ["aws", "create-pai", "--paa-arn", paa, "--vid", "FFF1", "-o", str(tmp_path / "p.pem"),
                                       "--format", "json"])  # fmt: skip
    data = check("aws create-pai", result)
    assert data["pai_arn"] in fake.cas and data["out"] == str(tmp_path / "p.pem")


def test_audit_report_json(pca: Any, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from matter_pki.cli import audit as cli_audit

    client, stub = pca
    expect_report(stub, ["SUCCESS"])
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps(REPORT).encode())
    clients = {"acm-pca": client, "s3": s3}
    monkeypatch.setattr(cli_audit, "_client", lambda service, region, profile=None: clients[service])
    monkeypatch.setattr(cli_audit, "_sleep", lambda _s: None)
    result = CliRunner().invoke(main, ["audit", "report", "--aws", "--ca", CA, "--bucket", BUCKET, "--out", str(tmp_path),
                                       "--format", "json"])  # fmt: skip
    data = check("audit report", result)
    assert data["key"] == KEY and data["size"] == len(json.dumps(REPORT))


def test_revocation_commands_json(world: dict[str, Any]) -> None:
    # GIVEN the home of the other JSON tests (pai-1 with DACs), and a delegated CRL signer of pai-1
    run, root, out = world["run"], world["root"], world["root"] / "out"
    url = "https://crl.example.com/json-signer.crl"
    created = run("crl-signer create", "--pai", "pai-1", "--id", "json-signer")
    assert created["id"] == "json-signer" and created["issuer"] == "pai-1" and created["key_store"] == "file"
    listed = run("crl-signer list")
    assert "json-signer" in {r["id"] for r in listed}
    # WHEN its indirect CRL is published, announced on the DCL, dry-run and used for a revocation check
    crl = run("crl publish", "--pai", "pai-1", "--signer", "json-signer", "--url", url)["crl"]
    point = run("dcl revocation-point", "--pai", "pai-1", "--signer", "json-signer", "--url", url, "--out", str(root / "dcl"))
    assert point["ok"] and point["point"]["dataURL"] == url and "add-revocation-point" in point["dcld"]
    paa = str(root / "home" / "ca" / "paa" / "cert.pem")
    report = run("crl check", "--point", str(root / "dcl" / "revocation-point.json"), "--crl", crl, "--paa", paa,
                 "--revocation-set-out", str(root / "set.json"))  # fmt: skip
    assert report["ok"] and report["points"][0]["accepted"]
    name = world["dac issue"]["results"][1]["name"]
    verdict = run("revocation check", "--revocation-set", str(root / "set.json"), "-d", str(out / f"{name}.pem"),
                  "-i", str(out / "pai.pem"), "-a", str(out / "paa.pem"))  # fmt: skip
    assert verdict["stage"] == "revocation" and verdict["code"] in (0, 302)
    # AND a chain that fails first answers with the same shape (stage "chain")
    broken = run("revocation check", "--revocation-set", str(root / "set.json"), "-d", str(out / f"{name}.pem"),
                 "-i", str(out / "pai.pem"), "-a", str(out / "pai.pem"))  # fmt: skip
    assert broken["stage"] == "chain" and broken["dac_revoked"] is None
    # AND a point the DCL would refuse is the same shape, not ok, without a dcld command
    refused = run("dcl revocation-point", "--pai", "pai-1", "--url", "ftp://crl.example.com/x.crl")
    assert refused["ok"] is False and refused["dcld"] is None and "dcl.data_url" in {f["code"] for f in refused["findings"]}
    revoked = run("crl-signer revoke", "--id", "json-signer", "--reason", "superseded")
    assert revoked["status"] == "revoked" and revoked["revocation_reason"] == "superseded"


def test_station_commands_json(world: dict[str, Any]) -> None:
    # GIVEN the home of the other JSON tests and the station key's own passphrase
    env = {**world["env"], "MATTER_PKI_STATION_PASSPHRASE": "station passphrase, not the home's"}

    def run(command: str, *args: str) -> Any:
        return check(command, CliRunner().invoke(main, [*command.split(), *args, "--format", "json"], env=env))

    # WHEN a station is added, listed and revoked THEN each answers its one shape (a list stays a list)
    added = run("station add", "json-line", "--pai", "pai-1", "--pid", "8000", "--quota", "100/day",
                "--out", str(world["root"] / "json-line"))  # fmt: skip
    assert (added["name"], added["pids"], added["quota_per_day"]) == ("json-line", ["8000"], 100)
    [row] = run("station list")
    assert row["name"] == "json-line" and row["used_today"] == 0
    revoked = run("station revoke", "json-line", "--reason", "line closed")
    assert (revoked["status"], revoked["revocation_reason"]) == ("revoked", "line closed")


def test_aws_revocation_commands_json(aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # GIVEN a (model) Private CA PAI, a KMS key and the CRL bucket (moto), reached through the CLI's client factory
    from matter_pki.cli import aws as aws_cli

    clients = {"acm-pca": aws["fake"].client(), "kms": aws["kms"], "s3": aws["s3"]}
    monkeypatch.setattr(aws_cli, "make_client", lambda service, region, profile: clients[service])
    fake_waiter_delay(monkeypatch)
    arn = aws["pai_arn"]

    def run(command: str, *args: str) -> Any:
        return check(command, CliRunner().invoke(main, [*command.split(), *args, "--format", "json"]))

    # WHEN the KMS signer is issued, a CRL published with it and its DCL point asked for
    signer = run("aws crl-signer", "--pai-arn", arn, "--kms-key-id", aws["key_id"], "-o", str(tmp_path / "signer.pem"))
    assert signer["pai_arn"] == arn and signer["out"] == str(tmp_path / "signer.pem")
    (tmp_path / "report.json").write_bytes(_report([(0x1111, "2026-01-02T03:04:05+0000")]))
    published = run("aws publish-crl", "--pai-arn", arn, "--kms-key-id", aws["key_id"], "--signer-cert", str(tmp_path / "signer.pem"),
                    "--audit-report", str(tmp_path / "report.json"), "--bucket", CRL_BUCKET, "--url", CRL_URL)  # fmt: skip
    assert published["revoked"] == 1 and published["key"].startswith("delegated-crl/") and published["url"] == CRL_URL
    point = run("aws revocation-point", "--ca-arn", arn, "--crl-base-url", "https://d1.cloudfront.net",
                "--signer-cert", str(tmp_path / "signer.pem"))  # fmt: skip
    # THEN each answers its one shape
    assert point["ok"] and "/delegated-crl/" in point["point"]["dataURL"] and "crlSignerDelegator" in point["point"]
