"""Lint on the SDK's credentials/test/attestation certificates (CRL distribution point variants)."""

from __future__ import annotations

import pytest

from matter_pki.lint import lint
from tests.conftest import SKIP_NO_VECTORS, load_vector

pytestmark = SKIP_NO_VECTORS
PREFIX = "Chip-Test-DAC-FFF1-8000-0000-"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("CDP-Cert.pem", set()),
        ("CDP-HTTPS-Cert.pem", set()),
        ("CDP-2DPs-Cert.pem", {"ext.crl_distribution_points_shape"}),
        ("CDP-2URIs-Cert.pem", {"ext.crl_distribution_points_shape"}),
        ("CDP-Long-Cert.pem", {"ext.crl_distribution_points_shape"}),
        ("CDP-Wrong-Prefix-Cert.pem", {"ext.crl_distribution_points_shape"}),
        ("2CDPs-Cert.pem", {"ext.duplicate"}),
    ],
)
def test_cdp_variants(name: str, expected: set[str]) -> None:
    found = {f.code for f in lint(load_vector("attestation", PREFIX + name), "dac") if f.severity >= 30}
    assert found == expected


def test_legacy_cn_encoding_is_reported() -> None:
    codes = {f.code for f in lint(load_vector("attestation", "Chip-Test-DAC-FFF2-8003-0018-FB-Cert.pem"), "dac")}
    assert "subject.vidpid_legacy_cn" in codes


def test_every_dcl_paa_lints_without_errors() -> None:
    from tests.conftest import VECTORS

    paths = sorted((VECTORS / "paa-root-certs").iterdir())
    assert len(paths) >= 100
    for path in paths:
        errors = [f for f in lint(load_vector("paa-root-certs", path.name), "paa") if f.severity >= 40]
        assert errors == [], (path.name, errors)
