"""What every ``matter-pki`` command shares: exit statuses, error lines, output formats, inputs and outputs.

Conventions (README, "Exit status" and "Command-line conventions"):

- ``ExitStatus``: 0 done, 1 refused/invalid, 2 usage or unreadable input, 3 retry later, 4 internal
  error, 130 interrupted. ``exit_status(error)`` maps an error to it through the error-code registry
  (``matter_pki.errorcodes``), the one place that classifies codes.
- Errors print one line, ``error[<code>]: <message>`` on stderr (a JSON object with ``--format json``).
  ``MatterPkiGroup`` (the top-level group) turns every failure below it into that line: coded errors,
  click usage errors, Ctrl-C (``cli.interrupted``, 130), escaped botocore errors and bugs
  (``internal.error``: the traceback goes to a log file the line names). ``cli_errors`` does the same
  for a command invoked on its own (and takes the Ctrl-C message of a batch command).
- ``format_option()``: ``--format text|json[|csv]``; JSON is one document on stdout, ``note()`` lines
  are suppressed, errors are JSON on stderr.
- ``read_input()``: a file, ``-`` for stdin, or the value inline (PEM or hex). ``write_output()``: a
  file written atomically, or ``-`` for stdout.
- ``example()``: the example shown at the end of a command's ``--help``.
- ``aws_options`` / ``aws_client()``: ``--region`` / ``--profile`` and a boto3 client whose
  configuration problems (no boto3, unknown profile, no region, no credentials) are coded errors.
- ``passphrase_file_option`` / ``device_passphrase_option`` / ``pin_file_option`` (all made by
  ``secret_file_option``; ``key_secret_options`` = the first and the last, for every command that may
  open a CA, CRL signer or audit key) with ``cli_secrets()`` / ``device_passphrase()``: where key passphrases and the
  PKCS#11 PIN come from (a file or the environment, else a prompt on a terminal; never an option value).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import sys
import tempfile
import threading
import traceback
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, overload

import click

from matter_pki.errorcodes import ExitClass, exit_class
from matter_pki.errors import ConfigError, InputError, KeyStoreError, MatterPkiError, extra_hint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from matter_pki.local.keys import Secrets

F = TypeVar("F", bound="Callable[..., Any]")
C = TypeVar("C", bound=click.Command)
MAX_FILE_BYTES = 1024 * 1024
STDIO = "-"
FORMAT_KEY = "matter_pki.format"
STDIN_KEY = "matter_pki.stdin_used"
DEBUG_ENV = "MATTER_PKI_DEBUG"
LOG_DIR_ENV = "MATTER_PKI_LOG_DIR"
#: The Ctrl-C line of commands that answer CSRs (dac issue, inbox run, aws submit).
BATCH_INTERRUPTED = "interrupted; re-run to finish: every CSR already answered stays answered"


# -- exit statuses ---------------------------------------------------------------------------------
class ExitStatus(IntEnum):
    """The exit status of every ``matter-pki`` command (README, "Exit status")."""

    OK = 0  # done (a chain valid, every CSR answered with a DAC, ...)
    REFUSED = 1  # refused or invalid, for some or all inputs (a refused CSR, an invalid chain, a tampered log)
    USAGE = 2  # wrong command line, missing configuration, unreadable input: fix and run again
    RETRY_LATER = 3  # busy (another run holds the folder), throttled, timed out: run the same command later
    INTERNAL = 4  # a bug: the line names the log file with the details
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): re-run the same command to finish


EXIT_STATUS_BY_CLASS = {
    ExitClass.REFUSED: ExitStatus.REFUSED,
    ExitClass.USAGE: ExitStatus.USAGE,
    ExitClass.RETRY: ExitStatus.RETRY_LATER,
    ExitClass.INTERRUPTED: ExitStatus.INTERRUPTED,
    ExitClass.INTERNAL: ExitStatus.INTERNAL,
}


def exit_status(error: MatterPkiError) -> ExitStatus:
    """The exit status for an error: its code's class in the error-code registry."""
    return EXIT_STATUS_BY_CLASS[exit_class(error)]


# -- error lines -----------------------------------------------------------------------------------
def output_format() -> str:
    """The ``--format`` of the running command (``text`` when it has none or none was parsed yet)."""
    ctx = click.get_current_context(silent=True)
    return str(ctx.meta.get(FORMAT_KEY, "text")) if ctx is not None else "text"


def report_error(code: str, message: str, status: ExitStatus, **context: Any) -> ExitStatus:
    """Print one error on stderr: ``error[code]: message``, or one JSON line in ``--format json``."""
    text = " ".join(str(message).split())
    if output_format() == "json":
        body: dict[str, Any] = {"code": code, "message": text, "exit_status": int(status)}
        for key, value in context.items():
            if key not in body:
                body[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        click.echo(json.dumps({"error": body}), err=True)
    else:
        click.echo(f"error[{code}]: {text}", err=True)
    return status


def fail(error: MatterPkiError) -> NoReturn:
    """Report a coded error and exit with its status."""
    sys.exit(report_error(error.code, error.message, exit_status(error), **error.context))


_interrupt_reported: list[bool] = []
_signal_seen: list[bool] = []


def _interrupted(message: str | None) -> NoReturn:
    _interrupt_reported.append(True)
    status = report_error("cli.interrupted", message or "interrupted", ExitStatus.INTERRUPTED)
    if _signal_seen:
        # A real Ctrl-C: end now rather than in interpreter shutdown, where another Ctrl-C would find
        # Python's handlers already removed (and batch workers leave with their parent anyway).
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)
    sys.exit(status)


@contextlib.contextmanager
def _ctrl_c(message: str | None) -> Iterator[None]:
    """First Ctrl-C: stop the command (KeyboardInterrupt) and let it clean up (batch workers finish
    their chunk); another one from then until the process ends exits at once, with the same single
    line (a kill at any instant is safe: answered CSRs stay answered)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[bool] = []

    def again(_signum: int, _frame: object) -> None:
        if not _interrupt_reported:
            report_error("cli.interrupted", message or "interrupted", ExitStatus.INTERRUPTED)
        sys.stderr.flush()
        os._exit(ExitStatus.INTERRUPTED)

    def first(_signum: int, _frame: object) -> None:
        fired.append(True)
        _signal_seen.append(True)
        signal.signal(signal.SIGINT, again)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        if not fired:  # after a Ctrl-C, 'again' stays until the process ends (clean-up may run at exit)
            signal.signal(signal.SIGINT, previous)


def _log_dir() -> Path:
    configured = os.environ.get(LOG_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state) / "matter-pki"


def _write_crash_log(exc: BaseException) -> Path:
    """The traceback of an unexpected error, in a 0600 file (its own folder, else the temp folder)."""
    from matter_pki import __version__

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = (
        f"matter-pki {__version__} (Python {sys.version.split()[0]}) {stamp}\n"
        f"argv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(exc))
    )
    for folder in (_log_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = folder / f"matter-pki-crash-{stamp}-{os.getpid()}.log"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return path
        except OSError:
            continue
    return Path("<nowhere: no writable log folder>")


def _internal(exc: BaseException) -> NoReturn:
    if os.environ.get(DEBUG_ENV) == "1":
        raise exc
    where = _write_crash_log(exc)
    sys.exit(
        report_error(
            "internal.error",
            f"unexpected {type(exc).__name__}; this is a bug: details in {where} (please report it; "
            f"{DEBUG_ENV}=1 shows the traceback)",
            ExitStatus.INTERNAL,
            log=str(where),
        )
    )


def _aws_exception(exc: Exception) -> MatterPkiError | None:
    """A botocore exception that escaped a backend, as a coded error (the backend's classification)."""
    if not type(exc).__module__.startswith("botocore"):
        return None
    from matter_pki.backends.aws_pca import wrap_aws_error

    return wrap_aws_error(exc, operation="AWS call")


def handle_failure(exc: BaseException, *, interrupted: str | None = None) -> NoReturn:
    """Turn any failure of a command into its one line and exit status (never a traceback)."""
    if isinstance(exc, MatterPkiError):
        fail(exc)
    if isinstance(exc, KeyboardInterrupt | click.Abort):
        _interrupted(interrupted)
    if isinstance(exc, click.UsageError):
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        sys.exit(report_error("input.usage", exc.format_message() + where, ExitStatus.USAGE))
    if isinstance(exc, click.ClickException):
        sys.exit(report_error("input.usage", exc.format_message(), ExitStatus.USAGE))
    if isinstance(exc, BrokenPipeError):
        # stdout closed early (`matter-pki ... | head`): nothing more to say, and no flush error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(ExitStatus.OK)
    if isinstance(exc, Exception):
        coded = _aws_exception(exc)
        if coded is not None:
            fail(coded)
    _internal(exc)


@overload
def cli_errors(fn: F) -> F: ...
@overload
def cli_errors(*, interrupted: str | None = None) -> Callable[[F], F]: ...
def cli_errors(fn: F | None = None, *, interrupted: str | None = None) -> F | Callable[[F], F]:
    """Decorator: a command's failures become one coded line and the registry's exit status.

    ``@cli_errors`` or ``@cli_errors(interrupted=BATCH_INTERRUPTED)`` (the Ctrl-C line).
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                with _ctrl_c(interrupted):
                    return func(*args, **kwargs)
            except (click.exceptions.Exit, SystemExit):
                raise
            except BaseException as exc:
                handle_failure(exc, interrupted=interrupted)

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate


class MatterPkiGroup(click.Group):
    """The top-level group: whatever fails below it ends as one coded line (see ``handle_failure``)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """Parse the top-level options; a usage error becomes one coded line."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except (click.exceptions.Exit, SystemExit):
            raise
        except click.ClickException as exc:
            handle_failure(exc)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; every failure ends as one coded line."""
        try:
            with _ctrl_c(None):
                return super().invoke(ctx)
        except (click.exceptions.Exit, SystemExit):
            raise
        except BaseException as exc:
            handle_failure(exc)


# -- output ----------------------------------------------------------------------------------------
class FormatChoice(click.Choice[str]):
    """``--format`` values, case-insensitive, with legacy aliases (``table`` = ``text``)."""

    def __init__(self, choices: Sequence[str], aliases: Mapping[str, str] | None = None) -> None:
        super().__init__(list(choices), case_sensitive=False)
        self.aliases = dict(aliases or {})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Map an alias, then check the choice."""
        if isinstance(value, str) and value.lower() in self.aliases:
            value = self.aliases[value.lower()]
        return super().convert(value, param, ctx)


def _remember_format(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta[FORMAT_KEY] = value
    return value


def format_option(*extra: str, aliases: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """``--format text|json[|extra...]`` as the ``fmt`` argument (eager: errors know it early)."""
    choices = ["text", "json", *extra]
    return click.option(
        "--format", "fmt", type=FormatChoice(choices, aliases), default="text", show_default=True, is_eager=True,
        callback=_remember_format,
        help="Output: text for people, json for programs (one document on stdout; errors as JSON on stderr)"
        + (", " + ", ".join(extra) if extra else "") + ".",
    )  # fmt: skip


def emit_json(data: Any) -> None:
    """The command's JSON document on stdout."""
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def note(message: str) -> None:
    """A hint or progress line for people, on stderr; silent in ``--format json``."""
    if output_format() != "json":
        click.echo(message, err=True)


def example(*lines: str) -> Callable[[C], C]:
    """Show ``lines`` as the example at the end of the command's ``--help``."""

    def attach(cmd: C) -> C:
        cmd.epilog = "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)
        return cmd

    return attach


def write_output(target: str, data: bytes, *, what: str, overwrite: bool = False, mode: int | None = None) -> str:
    """Write one output file atomically, or to stdout for ``-``; returns where it went."""
    if target == STDIO:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return "stdout"
    from matter_pki.storage.local import atomic_write

    path = Path(target)
    if path.exists() and not overwrite:
        raise InputError("input.exists", f"{what} {target!r} exists; refusing to overwrite it")
    kwargs: dict[str, Any] = {"exclusive": not overwrite}
    if mode is not None:
        kwargs["mode"] = mode
    atomic_write(path, data, **kwargs)
    return str(path)


def check_stdout_free(target: str | None, fmt: str) -> None:
    """Refuse ``-o -`` together with ``--format json``: both would write stdout."""
    if target == STDIO and fmt == "json":
        raise InputError("input.usage", "-o - and --format json both write stdout; write the file elsewhere")


# -- inputs ----------------------------------------------------------------------------------------
_INLINE_HEX = re.compile(r"(?:[0-9A-Fa-f]{2}\s*){64,}")


def read_file(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a regular file, refusing directories, devices and oversized input with a coded error."""
    p = Path(path)
    try:
        if not p.is_file():
            raise InputError("input.not_a_file", f"{what} {str(p)!r} is not a readable regular file")
        size = p.stat().st_size
        if size > max_bytes:
            raise InputError("input.too_large", f"{what} {str(p)!r} is {size} bytes, over {max_bytes}")
        return p.read_bytes()
    except OSError as e:
        raise InputError("input.unreadable", f"cannot read {what} {str(p)!r}: {e.strerror}") from e


def read_stdin(what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Standard input, once per command (``input.stdin`` for a second ``-``)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        if ctx.meta.get(STDIN_KEY):
            raise InputError("input.stdin", f"{what}: standard input (-) is already used by {ctx.meta[STDIN_KEY]}")
        ctx.meta[STDIN_KEY] = what
    data = sys.stdin.buffer.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InputError("input.too_large", f"{what} on standard input is over {max_bytes} bytes")
    return data


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:  # e.g. a name too long to be a path
        return False


def read_input(value: str, what: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """A file path, ``-`` (stdin), or the content itself (a PEM block, or hex as chip-cert accepts)."""
    if value == STDIO:
        return read_stdin(what, max_bytes)
    text = value.strip()
    if text.startswith("-----BEGIN "):
        return text.encode()
    if _INLINE_HEX.fullmatch(text) and not _exists(value):
        return text.encode()
    return read_file(value, what, max_bytes)


def parse_time(value: str | None) -> datetime:
    """``--at`` values: ISO 8601 (``2026-01-01``, ``2026-01-01T12:00:00Z``) or ``now``; naive means UTC."""
    if value is None or value == "now":
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError("input.time", f"cannot read time {value!r}: use ISO 8601, e.g. 2026-01-01T00:00:00Z") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str | None) -> datetime | None:
    """``--since``/``--until``: ISO 8601, ``now``, or an age such as ``30m``, ``24h``, ``7d`` (that long ago)."""
    if value is None:
        return None
    match = _RELATIVE.fullmatch(value.strip())
    if match:
        from datetime import timedelta

        return datetime.now(UTC).replace(microsecond=0) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    return parse_time(value)


# -- secrets ---------------------------------------------------------------------------------------
def secret_file_option(flag: str, env: str, help: str) -> Callable[[F], F]:
    """``FLAG FILE``: a secret from the first line of a 0600 file, put into ``env``, which every reader of it uses."""

    def load(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is None:
            return
        from matter_pki.local.keys import read_secret_file

        os.environ[env] = read_secret_file(value, flag).decode()

    return click.option(flag, type=click.Path(dir_okay=False), expose_value=False, callback=load, help=help)


def passphrase_file_option(fn: F) -> F:
    """``--passphrase-file FILE``: the key passphrase (first line), as ``MATTER_PKI_PASSPHRASE`` would give it."""
    # The one channel every consumer of the key passphrase reads (CA keys, the audit key, workers).
    return secret_file_option(
        "--passphrase-file", "MATTER_PKI_PASSPHRASE",
        "Read the key passphrase from the first line of FILE (mode 0600) instead of MATTER_PKI_PASSPHRASE.",
    )(fn)  # fmt: skip


def device_passphrase_option(fn: F) -> F:
    """``--device-passphrase-file FILE``: the passphrase of device keys, kept apart from the CA's."""
    return secret_file_option(
        "--device-passphrase-file", "MATTER_PKI_DEVICE_PASSPHRASE",
        "Read the device-key passphrase from the first line of FILE (mode 0600, or a pipe) instead of "
        "MATTER_PKI_DEVICE_PASSPHRASE; never the CA passphrase.",
    )(fn)  # fmt: skip


def pin_file_option(fn: F) -> F:
    """``--pin-file FILE``: the PKCS#11 user PIN (first line), as ``MATTER_PKI_PKCS11_PIN`` would give it."""
    return secret_file_option(
        "--pin-file", "MATTER_PKI_PKCS11_PIN", "Read the PKCS#11 user PIN from the first line of FILE (mode 0600) instead of MATTER_PKI_PKCS11_PIN.",
    )(fn)  # fmt: skip


def key_secret_options(fn: F) -> F:
    """``--passphrase-file`` and ``--pin-file``: on every command that may open a CA, CRL signer or audit key.

    Which store holds a key (an encrypted file or a PKCS#11 token) is the home's setting, not the
    command's, so each such command takes both; only the one the key needs is read.
    """
    return passphrase_file_option(pin_file_option(fn))


def _prompt(label: str, confirm: bool) -> bytes:
    return str(click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)).encode()


def ca_passphrase(confirm: bool) -> bytes:
    """The CA key passphrase: --passphrase-file / MATTER_PKI_PASSPHRASE, else a prompt on a terminal."""
    from matter_pki.backends.keyfile import passphrase_from_env
    from matter_pki.local.keys import PASSPHRASE_ENV

    value = passphrase_from_env(PASSPHRASE_ENV)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError(
            "key.passphrase_missing",
            f"no key passphrase: pass --passphrase-file or set {PASSPHRASE_ENV} (no terminal to prompt)",
        )
    return _prompt("Key passphrase", confirm)


def device_passphrase(confirm: bool) -> bytes:
    """The device-key passphrase: --device-passphrase-file / MATTER_PKI_DEVICE_PASSPHRASE, else a prompt.

    Never the CA's (``MATTER_PKI_PASSPHRASE``): the people who flash devices need the device-key
    passphrase, and must not learn the CA's.
    """
    from matter_pki.backends.keyfile import check_passphrase, passphrase_from_env
    from matter_pki.local.keys import DEVICE_PASSPHRASE_ENV

    value = passphrase_from_env(DEVICE_PASSPHRASE_ENV)
    if value is not None:
        return check_passphrase(value)
    if sys.stdin.isatty():
        return check_passphrase(_prompt("Device-key passphrase", confirm))
    raise KeyStoreError(
        "key.device_passphrase_missing",
        f"no device-key passphrase: pass --device-passphrase-file or set {DEVICE_PASSPHRASE_ENV} "
        "(no terminal to prompt; the CA passphrase is never used for device keys)",
    )


def pkcs11_pin() -> str:
    """The token user PIN: --pin-file / MATTER_PKI_PKCS11_PIN, else a prompt on a terminal."""
    from matter_pki.backends.pkcs11 import PIN_ENV

    value = os.environ.get(PIN_ENV)
    if value:
        return value
    if not sys.stdin.isatty():
        raise KeyStoreError("key.pkcs11_pin", f"no PKCS#11 user PIN: pass --pin-file or set {PIN_ENV} (no terminal to prompt)")
    return str(click.prompt("PKCS#11 user PIN", hide_input=True, err=True))


def cli_secrets() -> Secrets:
    """Secrets for a command: the passphrase and PIN asked for only when a key is opened."""
    from matter_pki.local.keys import Secrets

    return Secrets(passphrase_source=ca_passphrase, pin_source=pkcs11_pin)


# -- AWS -------------------------------------------------------------------------------------------
def aws_options(fn: F) -> F:
    """``--region`` and ``--profile`` (else the standard AWS configuration)."""
    fn = click.option("--profile", default=None, help="AWS named profile (default: AWS_PROFILE / default).")(fn)
    return click.option("--region", default=None, help="AWS region (default: AWS_DEFAULT_REGION / the profile's).")(fn)


def aws_client(service: str, region: str | None, profile: str | None = None) -> Any:
    """A boto3 client from the standard credential chain; configuration problems are ``config.*`` errors."""
    try:
        import boto3
        from botocore import exceptions as bce
    except ImportError as e:
        raise ConfigError(
            "config.boto3_missing", f"AWS commands need boto3 ({extra_hint('aws')})"
        ) from e
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        client = session.client(service)
        credentials = session.get_credentials()
    except bce.ProfileNotFound as e:
        raise ConfigError(
            "config.aws_profile", f"AWS profile {e.kwargs.get('profile')!r} is not configured (~/.aws/config)"
        ) from e
    except bce.NoRegionError as e:
        raise ConfigError(
            "config.aws_region", f"no AWS region for {service}: pass --region or set AWS_DEFAULT_REGION (or a profile region)"
        ) from e
    except bce.BotoCoreError as e:
        raise ConfigError("config.aws_credentials", f"AWS configuration cannot be loaded: {e}") from e
    if credentials is None:
        raise ConfigError(
            "config.aws_credentials",
            "no AWS credentials: use --profile, AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an instance role",
        )
    return client
