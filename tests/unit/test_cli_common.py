"""The conventions every command shares (``matter_pki.cli.common``): one coded line per failure and the
documented exit status, Ctrl-C, internal errors, ``--format``, ``-`` for stdin/stdout, passphrase files,
``--help`` examples, ``--version`` and shell completion."""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner

from matter_pki import __version__
from matter_pki.cli import main
from matter_pki.cli.common import (
    BATCH_INTERRUPTED,
    MatterPkiGroup,
    cli_errors,
    device_passphrase,
    device_passphrase_option,
    format_option,
    read_input,
    write_output,
)
from matter_pki.errors import InputError, StorageError
from matter_pki.local.keys import read_secret_file

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ONE_LINE = re.compile(r"error\[[a-z0-9_.-]+\]: [^\n]+\n")


def _group(fail: BaseException) -> click.Group:
    """A group like ``matter-pki`` with one command that fails with ``fail``."""

    @click.group(cls=MatterPkiGroup)
    def grp() -> None:
        """Test group."""

    @grp.command("boom")
    @format_option()
    def boom(fmt: str) -> None:
        raise fail

    return grp


@pytest.mark.parametrize(
    ("fail", "code", "status"),
    [
        (InputError("input.not_a_file", "x is not a file"), "input.not_a_file", 2),
        (StorageError("storage.busy", "another run holds it"), "storage.busy", 3),
        (KeyboardInterrupt(), "cli.interrupted", 130),
        (click.Abort(), "cli.interrupted", 130),  # Ctrl-C at a prompt
        (RuntimeError("a bug"), "internal.error", 4),
    ],
)
def test_every_failure_is_one_coded_line_with_its_exit_status(
    fail: BaseException, code: str, status: int, tmp_path: Path
) -> None:
    # GIVEN a command that fails WHEN run through the top-level group
    result = CliRunner().invoke(_group(fail), ["boom"], env={"MATTER_PKI_LOG_DIR": str(tmp_path)})
    # THEN one line on stderr, the registry's status, no traceback
    assert result.exit_code == status
    assert ONE_LINE.fullmatch(result.stderr) and result.stderr.startswith(f"error[{code}]")
    assert "Traceback" not in result.output and result.stdout == ""


def test_internal_error_names_the_log_holding_the_traceback(tmp_path: Path) -> None:
    # GIVEN a bug WHEN it happens
    result = CliRunner().invoke(_group(ZeroDivisionError("oops")), ["boom"], env={"MATTER_PKI_LOG_DIR": str(tmp_path)})
    # THEN the line names a 0600 log file that holds the traceback
    [log] = list(tmp_path.iterdir())
    assert str(log) in result.stderr and "ZeroDivisionError" in result.stderr
    assert "Traceback" in log.read_text() and "ZeroDivisionError: oops" in log.read_text()
    assert log.stat().st_mode & 0o777 == 0o600


def test_json_mode_reports_errors_as_json_on_stderr() -> None:
    # GIVEN --format json WHEN the command fails
    result = CliRunner().invoke(_group(StorageError("storage.busy", "busy")), ["boom", "--format", "json"])
    # THEN stderr is one JSON object with code, message and exit status; stdout is empty
    assert result.exit_code == 3 and result.stdout == ""
    assert json.loads(result.stderr) == {"error": {"code": "storage.busy", "message": "busy", "exit_status": 3}}


def test_escaped_botocore_errors_become_coded_lines() -> None:
    # GIVEN an AWS error no backend wrapped WHEN it reaches the CLI THEN the backend's classification names it
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    creds = CliRunner().invoke(_group(NoCredentialsError()), ["boom"])
    assert creds.exit_code == 2 and creds.stderr.startswith("error[config.aws_credentials]")
    down = CliRunner().invoke(_group(EndpointConnectionError(endpoint_url="https://x")), ["boom"])
    assert down.exit_code == 3 and down.stderr.startswith("error[backend.transient]")


def test_a_command_invoked_alone_reports_ctrl_c_with_its_own_line() -> None:
    # GIVEN a batch command's decorator WHEN interrupted THEN its line, exit 130
    @click.command()
    @cli_errors(interrupted=BATCH_INTERRUPTED)
    def batch() -> None:
        raise KeyboardInterrupt

    result = CliRunner().invoke(batch, [])
    assert result.exit_code == 130
    assert result.stderr == f"error[cli.interrupted]: {BATCH_INTERRUPTED}\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["--bogus"], "No such option '--bogus'"),
        (["validate-att-cert", "-a", "x"], "Missing option"),
        (["dac", "list", "--status", "maybe"], "'maybe' is not one of"),
    ],
)
def test_usage_errors_are_one_coded_line_exit_2(args: list[str], fragment: str) -> None:
    # GIVEN a wrong command line WHEN run THEN error[input.usage] on one line, exit 2
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert ONE_LINE.fullmatch(result.stderr) and result.stderr.startswith("error[input.usage]")
    assert fragment in result.stderr


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def test_every_command_help_carries_an_example() -> None:
    # GIVEN every command and group WHEN --help is shown THEN it ends with an example of itself
    for path, _cmd in _commands(main):
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        example = result.stdout.split("Example:", 1)
        assert len(example) == 2, f"{' '.join(path)} --help has no example (add @example(...))"
        assert "matter-pki " in example[1] or "openssl" in example[1], path


def test_every_format_option_offers_text_and_json() -> None:
    # GIVEN every command with --format THEN text (the default) and json are among its choices
    for path, cmd in _commands(main):
        for param in cmd.params:
            if "--format" in getattr(param, "opts", []):
                assert isinstance(param.type, click.Choice), path
                assert {"text", "json"} <= set(param.type.choices) and param.default == "text", path


def test_format_accepts_case_and_the_legacy_table_alias() -> None:
    # GIVEN audit query's old --format table WHEN given THEN it means text; JSON in any case
    result = CliRunner().invoke(main, ["audit", "query", "--format", "TABLE", "--home", "/nonexistent"])
    assert result.stderr.startswith("error[input.home]")  # the format was accepted; the home is what is missing
    as_json = CliRunner().invoke(main, ["audit", "query", "--format", "JSON", "--home", "/nonexistent"])
    assert json.loads(as_json.stderr)["error"]["code"] == "input.home"


def test_version_names_the_version() -> None:
    for flag in ("--version", "-V"):
        result = CliRunner().invoke(main, [flag])
        assert result.exit_code == 0 and result.stdout.startswith(f"matter-pki {__version__} (Python ")


def test_shell_completion_script_is_generated() -> None:
    # GIVEN the documented variable WHEN set THEN click prints a bash completion script for matter-pki
    result = CliRunner().invoke(main, [], prog_name="matter-pki", env={"_MATTER_PKI_COMPLETE": "bash_source"})
    assert result.exit_code == 0 and "_matter_pki_completion" in result.stdout


# -- inputs and outputs ----------------------------------------------------------------------------
PEM = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"


def _read(value: str, stdin: bytes = b"") -> bytes | str:
    @click.command()
    @click.argument("values", nargs=-1)
    @cli_errors
    def cmd(values: tuple[str, ...]) -> None:
        for v in values:
            click.echo(read_input(v, "certificate").decode())

    result = CliRunner().invoke(cmd, ["--", *value.split("|")], input=stdin)
    return result.stdout if result.exit_code == 0 else result.stderr


def test_read_input_takes_a_file_stdin_or_the_content_inline(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text(PEM)
    assert _read(str(tmp_path / "c.pem")) == PEM + "\n"
    assert _read("-", stdin=PEM.encode()) == PEM + "\n"
    assert _read(PEM) == PEM + "\n"
    hex_der = "30" * 70
    assert _read(hex_der) == hex_der + "\n"
    # a second '-' in the same command is refused; a missing file is a coded error
    assert str(_read("-|-", stdin=PEM.encode())).endswith("error[input.stdin]: certificate: standard input (-) is already used by certificate\n")
    assert str(_read(str(tmp_path / "nope.pem"))).startswith("error[input.not_a_file]")


def test_write_output_dash_is_stdout_and_files_are_never_overwritten(tmp_path: Path) -> None:
    @click.command()
    @click.argument("target")
    @cli_errors
    def cmd(target: str) -> None:
        write_output(target, b"DATA\n", what="output file")

    assert CliRunner().invoke(cmd, ["-"]).stdout == "DATA\n"
    assert CliRunner().invoke(cmd, [str(tmp_path / "f")]).exit_code == 0
    assert (tmp_path / "f").read_bytes() == b"DATA\n"
    again = CliRunner().invoke(cmd, [str(tmp_path / "f")])
    assert again.exit_code == 2 and again.stderr.startswith("error[input.exists]")


def test_passphrase_file_first_line_private_and_not_empty(tmp_path: Path) -> None:
    f = tmp_path / "pass"
    f.write_bytes(b"s3cret phrase\r\nsecond line\n")
    f.chmod(0o600)
    assert read_secret_file(f) == b"s3cret phrase"
    f.chmod(0o644)
    with pytest.raises(InputError) as info:
        read_secret_file(f)
    assert info.value.code == "input.passphrase_file" and "0644" in info.value.message
    f.write_bytes(b"\n")
    f.chmod(0o600)
    with pytest.raises(InputError, match="empty"):
        read_secret_file(f)
    with pytest.raises(InputError, match="cannot read"):
        read_secret_file(tmp_path / "missing")
    assert "s3cret" not in os.environ.get("MATTER_PKI_PASSPHRASE", "")


def test_device_passphrase_file_then_environment_then_prompt_never_the_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a command reading the device-key passphrase, the CA passphrase always set
    @click.command()
    @device_passphrase_option
    @cli_errors
    def cmd() -> None:
        click.echo(device_passphrase(True).decode())

    monkeypatch.setenv("MATTER_PKI_PASSPHRASE", "the CA's")
    monkeypatch.delenv("MATTER_PKI_DEVICE_PASSPHRASE", raising=False)
    secret = tmp_path / "device-pass"
    secret.write_bytes(b"from the file\n")
    secret.chmod(0o600)
    asked: list[bool] = []

    def prompt(*_args: object, confirmation_prompt: bool = False, **_kwargs: object) -> str:
        asked.append(confirmation_prompt)
        return "typed"

    monkeypatch.setattr(click, "prompt", prompt)
    # THEN the file wins over the environment, which wins over a prompt
    env = {"MATTER_PKI_DEVICE_PASSPHRASE": "from env"}
    assert CliRunner().invoke(cmd, ["--device-passphrase-file", str(secret)], env=env).stdout == "from the file\n"
    assert CliRunner().invoke(cmd, [], env=env).stdout == "from env\n"
    with monkeypatch.context() as m:
        m.setattr("matter_pki.cli.common.sys.stdin", type("Tty", (), {"isatty": staticmethod(lambda: True)})())
        assert device_passphrase(True) == b"typed" and asked == [True]
    # AND with neither and no terminal: a coded refusal, never the CA passphrase
    alone = CliRunner().invoke(cmd, [])
    assert alone.exit_code == 2 and alone.stdout == ""
    assert alone.stderr.startswith("error[key.device_passphrase_missing]") and "MATTER_PKI_DEVICE_PASSPHRASE" in alone.stderr
    # AND an empty one is refused
    empty = CliRunner().invoke(cmd, [], env={"MATTER_PKI_DEVICE_PASSPHRASE": ""})
    assert empty.exit_code == 2 and empty.stderr.startswith("error[key.passphrase_empty]")



def test_every_command_that_may_open_a_key_takes_pin_file_beside_passphrase_file() -> None:
    # GIVEN the whole command tree
    options = {" ".join(path): {o for p in cmd.params for o in getattr(p, "opts", [])} for path, cmd in _commands(main)}
    # THEN the two secret files go together: where a CA, CRL signer or audit key may be opened, it may be on a token
    with_passphrase = {n for n, o in options.items() if "--passphrase-file" in o}
    with_pin = {n for n, o in options.items() if "--pin-file" in o}
    assert with_passphrase == with_pin
    assert with_pin >= {
        "init", "pai create", "pai import", "dac issue", "inbox run", "revoke", "crl publish", "ledger rebuild",
        "home upgrade", "home rekey", "audit seal", "crl-signer create", "crl-signer revoke", "serve", "station add",
        "station revoke",
    }  # fmt: skip
