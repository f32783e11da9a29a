"""Chains made by the local CA, checked by the Matter SDK's compiled verifier (skipped without the SDK wheel)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from matter_pki.local.issue import issue_files
from tests.unit.test_local_fixtures import Token, make_pki, write_csrs

if TYPE_CHECKING:
    from pathlib import Path

chip_sdk = pytest.importorskip("tests.conformance.chip_sdk", reason="tests/conformance/chip_sdk.py not present")

pytestmark = pytest.mark.conformance


def _sdk_or_skip() -> None:
    ok, reason = chip_sdk.sdk_available()
    if not ok:
        pytest.skip(reason)


def _chains(tmp_path: Path, **pki_args: object) -> list[tuple[bytes, bytes, bytes]]:
    from datetime import UTC, datetime

    pki = make_pki(tmp_path / "home", **pki_args)  # type: ignore[arg-type]
    write_csrs(tmp_path / "csrs", 3)
    report = issue_files(
        pki.home, pai_id=pki.pai_id, csr_path=tmp_path / "csrs", out_dir=tmp_path / "out", secrets=pki.secrets,
        now=datetime.now(UTC), pid=0x8000,
    )
    assert report.count("issued") == 3
    out = tmp_path / "out"
    paa, pai = chip_sdk.pem_to_der((out / "paa.pem").read_bytes()), chip_sdk.pem_to_der((out / "pai.pem").read_bytes())
    return [(paa, pai, chip_sdk.pem_to_der(p.read_bytes())) for p in sorted(out.glob("dev-*.pem"))]


@pytest.mark.parametrize(
    "pki_args",
    [{"pid": 0x8000}, {"pid": None}, {"vid": None, "pai_vid": 0xFFF1, "pid": 0x8000}],
    ids=["pai-with-pid", "pai-without-pid", "non-vid-paa"],
)
def test_sdk_accepts_local_ca_chains(tmp_path: Path, pki_args: dict[str, object]) -> None:
    _sdk_or_skip()
    verdicts = chip_sdk.sdk_validate_many(_chains(tmp_path, **pki_args))
    assert [v.code for v in verdicts] == [0, 0, 0], [v.detail for v in verdicts]


def test_sdk_accepts_hsm_signed_chains(tmp_path: Path, softhsm_token: Token) -> None:  # noqa: F811
    _sdk_or_skip()
    from matter_pki.local.home import KeyStoreSettings

    settings = KeyStoreSettings(kind="pkcs11", module=softhsm_token.module, token=softhsm_token.label)
    verdicts = chip_sdk.sdk_validate_many(_chains(tmp_path, settings=settings))
    assert [v.code for v in verdicts] == [0, 0, 0], [v.detail for v in verdicts]
