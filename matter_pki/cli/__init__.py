"""The ``matter-pki`` command line: thin click commands over the library."""

from __future__ import annotations

import click

from matter_pki import __version__
from matter_pki.cli import audit as _audit
from matter_pki.cli import aws as _aws
from matter_pki.cli import local as _local
from matter_pki.cli import revocation as _revocation
from matter_pki.cli import serve as _serve
from matter_pki.cli import validate as _validate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="matter-pki")
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
