"""Lint: rules declare their codes, roles are registered, findings are exactly chip's MUST rules."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from matter_pki import chip, der
from matter_pki import lint as lint_module
from matter_pki.certparse import parse_certificate
from matter_pki.der import DerError
from matter_pki.findings import Finding, Severity, catalogue
from matter_pki.lint import (
    CertificateRule,
    CertView,
    Rule,
    decode_key_usage,
    lint,
    register_role,
    register_rule,
    roles,
    rules_for,
)
from matter_pki.testing import mutate as m
from matter_pki.testing.negative import generate, good_chain

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def codes(chain: m.ChainModel, role: str = "dac", with_issuer: bool = False) -> dict[str, Severity]:
    paa, pai, dac = chain.build(deterministic=True)
    data = {"paa": paa, "pai": pai, "dac": dac}
    issuer = {"pai": paa, "dac": pai}.get(role) if with_issuer else None
    return {f.code: f.severity for f in lint(data[role], role, issuer)}


def base() -> m.ChainModel:
    return good_chain(NOW)


# -- findings ------------------------------------------------------------------------------------------
def test_baseline_has_no_findings_above_notice() -> None:
    # GIVEN the chip-cert style chain  WHEN each certificate is linted with its issuer THEN nothing is reported
    for role in ("paa", "pai", "dac"):
        assert {c: s for c, s in codes(base(), role, True).items() if s > Severity.NOTICE} == {}


def test_nine_bit_key_usage_is_a_warning() -> None:
    chain = base()
    chain.dac.extensions[1] = m.Ext(m.KU, bytes.fromhex("0303078000"), critical=True)
    assert codes(chain)["ext.key_usage_not_minimal"] is Severity.WARNING
    assert decode_key_usage(bytes.fromhex("0303078000")).bits == {0}


def test_eku_present_is_a_warning() -> None:
    chain = base()
    chain.dac.extensions.append(m.Ext(m.EKU, m.tlv(der.SEQUENCE, der.encode_oid("1.3.6.1.5.5.7.3.2"))))
    assert codes(chain)["ext.extended_key_usage_present"] is Severity.WARNING


@pytest.mark.parametrize("role", ["paa", "pai", "dac"])
def test_oversized_der_is_an_error(role: str) -> None:
    # chip-cert's ReadCertDER buffer, a device's chain response and the PAA trust store hold 600 bytes.
    chain = base()
    chain.cert(role).extensions.append(m.Ext("1.3.6.1.4.1.37244.99.3", m.tlv(der.OCTET_STRING, b"x" * 200)))
    assert codes(chain, role)["cert.der_too_large"] is Severity.ERROR


def test_long_serial_is_a_warning() -> None:
    chain = base()
    chain.dac.serial = 1 << 170
    assert codes(chain)["cert.serial_too_long"] is Severity.WARNING


def test_issuer_dn_not_byte_equal_is_a_warning() -> None:
    # GIVEN the same name as PrintableString: OpenSSL chains it, revocation lookup (raw bytes) does not
    chain = base()
    chain.dac.issuer = tuple(tuple(m.Attr(a.oid, a.value, m.PRINTABLE) for a in rdn) for rdn in chain.pai.subject)
    found = codes(chain, "dac", True)
    assert found["issuer.name_not_byte_equal"] is Severity.WARNING
    assert "issuer.name_mismatch" not in found


def test_cdp_shape() -> None:
    chain = base()
    chain.dac.extensions.append(m.Ext(m.CDP, m.cdp_value("http://" + "a" * 100 + ".example/crl")))
    assert codes(chain)["ext.crl_distribution_points_shape"] is Severity.WARNING
    chain = base()
    chain.dac.extensions.append(m.Ext(m.CDP, m.cdp_value("http://crl.example/1.crl")))
    assert "ext.crl_distribution_points_shape" not in codes(chain)


@pytest.mark.parametrize(
    ("text", "tag", "code"),
    [
        (b"491231235959Z", der.UTC_TIME, None),  # 2049 as UTCTime: right
        (b"20500101000000Z", der.GENERALIZED_TIME, None),  # 2050 as GeneralizedTime: right
        (b"20491231235959Z", der.GENERALIZED_TIME, "cert.time_encoding"),  # before 2050 must be UTCTime
        (b"99991231235959Z", der.GENERALIZED_TIME, None),  # no well-defined expiration
        (b"500101000000Z", der.UTC_TIME, "cert.validity_inverted"),  # UTCTime 50 is 1950
        (b"3001010000Z", der.UTC_TIME, "cert.time_format"),  # no seconds
    ],
)
def test_time_encoding_boundaries(text: bytes, tag: int, code: str | None) -> None:
    chain = base()
    chain.dac.not_after_raw = m.tlv(tag, text)
    found = {c for c in codes(chain) if c.startswith("cert.time") or c == "cert.validity_inverted"}
    assert found == ({code} if code else set())


def test_dac_not_before_outside_chips_time_range() -> None:
    chain = base()
    chain.dac.not_before = datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert codes(chain)["cert.time_outside_chip_range"] is Severity.ERROR


def test_pai_pathlen_one_is_an_error() -> None:
    chain = base()
    chain.pai.extensions[0] = m.Ext(m.BC, m.bc_value(True, 1), critical=True)
    assert codes(chain, "pai")["ext.basic_constraints_pathlen"] is Severity.ERROR


def test_dac_vid_other_than_pai_vid_is_an_error() -> None:
    chain = base()
    chain.dac.subject = m.name(m.Attr(m.CN, b"Gen DAC"), m.Attr(m.VID, b"FFF2"), m.Attr(m.PID, b"8000"))
    assert codes(chain, "dac", True)["issuer.vid_mismatch"] is Severity.ERROR


def test_v2_certificate_cryptography_refuses_is_reported() -> None:
    chain = base()
    chain.dac.version = 1
    found = codes(chain)
    assert found["cert.unparseable"] is Severity.WARNING and found["cert.version_not_v3"] is Severity.ERROR


def test_garbage_is_fatal() -> None:
    (f,) = lint(b"\x30\x03\x02\x01", "dac")
    assert (f.code, f.severity) == ("cert.der_malformed", Severity.FATAL)


def test_every_chip_format_failure_has_a_format_error() -> None:
    # GIVEN every generated vector  WHEN chip's format check rejects a certificate
    # THEN lint reports at least one ERROR whose catalogue entry is chip's format check (or FATAL)
    table = catalogue()
    for case in generate():
        for role in ("paa", "pai", "dac"):
            data = getattr(case, role)
            try:
                raw = parse_certificate(data)
            except DerError:
                continue
            if chip.format_check(raw, role) is None and len(raw.der) <= chip.MAX_DER:
                continue
            errors = [f for f in lint(data, role) if f.severity >= Severity.ERROR and table[f.code].chip in ("format", "vidpid")]
            assert errors, (case.name, role)


# -- the registry ------------------------------------------------------------------------------------------
@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Roles a test registers disappear after it (the CLI lists the registered roles)."""
    monkeypatch.setattr(lint_module, "_REGISTRY", dict(lint_module._REGISTRY))


def test_every_rule_declares_catalogued_codes() -> None:
    table = catalogue()
    for role in ("paa", "pai", "dac", "crl", "crl-signer"):
        assert role in roles()
        for rule in rules_for(role):
            assert rule.codes and all(code in table for code in rule.codes), rule.name


@pytest.mark.usefixtures("scratch_registry")
def test_a_rule_raising_an_undeclared_code_is_fatal_not_silent() -> None:
    class Sloppy(CertificateRule):
        codes = ("cert.trailing_data",)

        def check(self, view: CertView) -> Iterator[Finding]:
            yield self.f(view, "cert.serial_too_long", "not declared")

    register_role("test-sloppy", lambda data, role: CertView(role, parse_certificate(data), data), malformed_code="cert.der_malformed")
    register_rule("test-sloppy", Sloppy())
    (f,) = lint(base().build()[2], "test-sloppy")
    assert (f.code, f.severity) == ("internal.unhandled_exception", Severity.FATAL)
    assert "undeclared" in f.message


@pytest.mark.usefixtures("scratch_registry")
def test_a_new_role_registers_its_own_loader_and_rules() -> None:
    # GIVEN a role with its own input type (as a CRL linter would register one)
    class Blob:
        def __init__(self, data: bytes) -> None:
            if not data.startswith(b"BLOB"):
                raise DerError("not a blob")
            self.size = len(data)

    class BlobSize(Rule[Blob]):
        codes = ("cert.der_too_large",)

        def check(self, view: Blob) -> Iterator[Finding]:
            if view.size > 8:
                yield self.finding("blob", "cert.der_too_large", f"{view.size} bytes")

    class Crashes(Rule[Blob]):
        codes = ("cert.trailing_data",)

        def check(self, view: Blob) -> Iterator[Finding]:
            raise RuntimeError("boom")

    register_role("test-blob", lambda data, role: Blob(data), malformed_code="cert.der_malformed")
    register_rule("test-blob", BlobSize())
    register_rule("test-blob", Crashes())
    # WHEN linted THEN the loader's refusal, each rule's findings and a crash are all reported
    assert [f.code for f in lint(b"nope", "test-blob")] == ["cert.der_malformed"]
    found = {f.code for f in lint(b"BLOB-0123456789", "test-blob")}
    assert found == {"cert.der_too_large", "internal.unhandled_exception"}
    assert [r.name for r in rules_for("test-blob")] == ["BlobSize", "Crashes"]
    with pytest.raises(ValueError, match="already registered"):
        register_role("test-blob", lambda data, role: Blob(data), malformed_code="cert.der_malformed")

    class Undeclared(Rule[Blob]):
        codes = ("no.such_code",)

    with pytest.raises(ValueError, match="codes.csv"):
        register_rule("test-blob", Undeclared())


def test_catalogue_shape_and_codes_used_in_source() -> None:
    rows = list(csv.DictReader((ROOT / "matter_pki" / "codes.csv").open()))
    assert [r["code"] for r in rows] == list(catalogue())
    source = "".join(p.read_text() for p in (ROOT / "matter_pki").rglob("*.py"))
    for row in rows:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_]+", row["code"]), row["code"]
        assert row["chip"] in {"format", "chain", "vidpid", "relation", "-"}
        assert f'"{row["code"]}"' in source, f"{row['code']} is catalogued but never emitted"


def test_registered_roles_are_the_cli_role_choices() -> None:
    # GIVEN the lint registry WHEN the CLI builds `lint --role` THEN its choices are exactly the registered roles
    from matter_pki.cli.validate import lint_cmd

    (role_option,) = [p for p in lint_cmd.params if p.name == "role"]
    assert list(role_option.type.choices) == roles() == ["paa", "pai", "dac", "crl", "crl-signer"]  # type: ignore[attr-defined]
