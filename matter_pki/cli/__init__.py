"""The ``matter-pki`` command line: thin click commands over the library."""

from __future__ import annotations

import platform

import click

from matter_pki import __version__
from matter_pki.cli import audit as _audit
from matter_pki.cli import aws as _aws
from matter_pki.cli import local as _local
from matter_pki.cli import revocation as _revocation
from matter_pki.cli import serve as _serve
from matter_pki.cli import validate as _validate
from matter_pki.cli.common import MatterPkiGroup

EPILOG = """\b
Exit status: 0 done; 1 refused or invalid (some or all); 2 usage, configuration or unreadable input;
3 retry later (busy, throttled, timed out); 4 internal error (the line names the log); 130 interrupted.
Errors are one line: error[<code>]: <message> ('matter-pki codes' lists every code).
Shell completion (bash): eval "$(_MATTER_PKI_COMPLETE=bash_source matter-pki)"  (zsh_source, fish_source)
"""


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import version

    import cryptography

    click.echo(
        f"matter-pki {__version__} (Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"click {version('click')})"
    )
    ctx.exit()


@click.group(
    cls=MatterPkiGroup, epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)  # fmt: skip
@click.option("-V", "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Show the version (and of Python, cryptography, click) and exit.")
def main() -> None:
    """Matter device-attestation PKI: create PAA/PAI, issue DACs, validate with chip parity, audit."""


_validate.register(main)
_local.register(main)
_audit.register(main)
_aws.register(main)
_revocation.register(main)
_serve.register(main)


if __name__ == "__main__":  # pragma: no cover
    main()
