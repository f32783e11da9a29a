"""The validate-att-cert, lint, csr check and codes commands: exit codes and one-line messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from matter_pki.cli import main
from matter_pki.testing.negative import generate

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
CASES = {c.name: c for c in generate(NOW)}


@pytest.fixture
def files(tmp_path):
    def write(case_name: str, pem: bool = False) -> list[str]:
        case = CASES[case_name]
        args = []
        for role in ("paa", "pai", "dac"):
            data = getattr(case, role)
            if pem:
                import base64
                body = base64.encodebytes(data).decode()
                data = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n".encode()
            path = tmp_path / f"{case_name}-{role}.{'pem' if pem else 'der'}"
            path.write_bytes(data)
            args += [f"--{role}", str(path)]
        return args

    return write


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("pem", [True, False])
def test_valid_chain_exits_0(files, pem: bool) -> None:
    result = run("validate-att-cert", *files("baseline", pem), "--at", "2026-06-01T12:00:00Z")
    assert result.exit_code == 0
    assert result.output.strip() == "valid: kSuccess (0)"


def test_invalid_chain_exits_1_and_names_the_sdk_code(files) -> None:
    result = run("validate-att-cert", *files("dac_bc_ca_wrong"), "--at", "2026-06-01T12:00:00Z")
    assert result.exit_code == 1
    assert result.output.startswith("invalid: kDacFormatInvalid (303) [ext.basic_constraints_ca]")
    assert len(result.output.strip().splitlines()) == 1


def test_json_output(files) -> None:
    result = run("validate-att-cert", *files("dac_vid_mismatch"), "--at", "2026-06-01T12:00:00Z", "--format", "json")
    data = json.loads(result.output)
    assert (result.exit_code, data["valid"], data["result"], data["result_code"]) == (1, False, "kDacVendorIdMismatch", 305)


def test_at_pins_the_time(files) -> None:
    args = files("baseline")
    assert run("validate-att-cert", *args, "--at", "2000-01-01").exit_code == 1
    assert "kDacExpired (300)" in run("validate-att-cert", *args, "--at", "2000-01-01").output


def test_missing_file_is_usage_error(files, tmp_path) -> None:
    args = files("baseline")
    args[args.index("--dac") + 1] = str(tmp_path / "missing.pem")
    result = run("validate-att-cert", *args)
    assert result.exit_code == 2
    assert "error[input.not_a_file]" in result.output


def test_missing_option_is_usage_error(files) -> None:
    assert run("validate-att-cert", *files("baseline")[:4]).exit_code == 2


def test_bad_time_is_usage_error(files) -> None:
    result = run("validate-att-cert", *files("baseline"), "--at", "yesterday")
    assert (result.exit_code, "error[input.time]" in result.output) == (2, True)


def test_lint_lists_every_finding(tmp_path) -> None:
    case = CASES["dac_bc_not_critical"]
    path = tmp_path / "dac.der"
    path.write_bytes(case.dac)
    result = run("lint", str(path), "--role", "dac", "--format", "json")
    codes = [f["code"] for f in json.loads(result.output)]
    assert result.exit_code == 1 and "ext.basic_constraints_not_critical" in codes


def test_lint_clean_certificate_exits_0(tmp_path) -> None:
    case = CASES["baseline"]
    (tmp_path / "dac.der").write_bytes(case.dac)
    (tmp_path / "pai.der").write_bytes(case.pai)
    result = run("lint", str(tmp_path / "dac.der"), "--role", "dac", "--issuer", str(tmp_path / "pai.der"))
    assert result.exit_code == 0, result.output


def test_csr_check_refuses_garbage(tmp_path) -> None:
    (tmp_path / "x.csr").write_bytes(b"not a csr")
    result = run("csr", "check", str(tmp_path / "x.csr"))
    assert result.exit_code == 1 and result.output.startswith("error[csr.")


def test_codes_lists_catalogue() -> None:
    result = run("codes", "--format", "json")
    assert result.exit_code == 0 and any(r["code"] == "ext.key_usage_bits" for r in json.loads(result.output))


def test_text_output_keeps_one_verdict_line_and_notes_the_boringssl_divergence_on_stderr(files) -> None:
    # GIVEN a chain chip-tool accepts and a BoringSSL-based commissioner refuses (hybrid EC point)
    result = CliRunner().invoke(main, ["validate-att-cert", *files("dac_key_hybrid"), "--at", "2026-06-01T12:00:00Z"])
    # THEN stdout is chip's one-line verdict (exit 0) and stderr names the divergence and the other verdict
    assert (result.exit_code, result.stdout) == (0, "valid: kSuccess (0)\n")
    assert result.stderr.splitlines() == [
        "note[divergence.hybrid_point] dac: hybrid EC point: chip on OpenSSL reads it, BoringSSL refuses it",
        "note: a BoringSSL-based commissioner would answer kDacFormatInvalid (303)",
    ]
