"""Lint reports SHOULD-level findings chip tolerates, and every code is catalogued and used."""

from __future__ import annotations

import csv
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from matter_pki import der
from matter_pki.findings import Severity, catalogue
from matter_pki.lint import decode_key_usage, lint
from matter_pki.testing.negative import CDP, KU, NO_EXPIRY, _cdp, _set_ext, encode, good_chain

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BASE = good_chain(NOW)
ROOT = Path(__file__).resolve().parents[2]


def codes(spec, role="dac", issuer=None) -> dict[str, Severity]:
    return {f.code: f.severity for f in lint(encode(spec), role, issuer)}


def test_nine_bit_key_usage_is_a_warning() -> None:
    spec = _set_ext(BASE.dac, KU, value=bytes.fromhex("0303078000"))
    assert codes(spec)["ext.key_usage_not_minimal"] is Severity.WARNING
    assert decode_key_usage(bytes.fromhex("0303078000")).bits == {0}


def test_eku_present_is_a_warning() -> None:
    eku = ("2.5.29.37", False, der.encode_tlv(der.OCTET_STRING, der.encode_tlv(der.SEQUENCE, der.encode_oid("1.3.6.1.5.5.7.3.2")))[2:])
    assert codes(replace(BASE.dac, extensions=(*BASE.dac.extensions, eku)))["ext.extended_key_usage_present"] is Severity.WARNING


def test_oversized_der_is_a_warning() -> None:
    big = replace(BASE.dac, subject=((("2.5.4.3", "x" * 60),) * 5) + BASE.dac.subject[1:])
    found = codes(big)
    assert found["cert.der_too_large"] is Severity.WARNING


def test_long_serial_is_a_warning() -> None:
    assert codes(replace(BASE.dac, serial=1 << 170))["cert.serial_too_long"] is Severity.WARNING


def test_issuer_dn_not_byte_equal_is_a_warning() -> None:
    # Same name, PrintableString instead of UTF8String: chains in OpenSSL, breaks revocation lookup.
    dac = replace(BASE.dac)
    pai = replace(BASE.pai, value_tag=der.PRINTABLE_STRING)
    found = codes(dac, issuer=encode(pai))
    assert found["issuer.name_not_byte_equal"] is Severity.WARNING
    assert "issuer.name_mismatch" not in found


def test_cdp_shape() -> None:
    long_url = "http://" + "a" * 100 + ".example/crl"
    spec = replace(BASE.dac, extensions=(*BASE.dac.extensions, (CDP, False, _cdp(long_url))))
    assert codes(spec)["ext.crl_distribution_points_shape"] is Severity.WARNING
    ok = replace(BASE.dac, extensions=(*BASE.dac.extensions, (CDP, False, _cdp("http://crl.example/1.crl"))))
    assert "ext.crl_distribution_points_shape" not in codes(ok)


def test_time_encoding_warning() -> None:
    spec = replace(BASE.dac, not_after=NO_EXPIRY)
    assert "cert.time_encoding" not in codes(spec)


def test_garbage_is_fatal() -> None:
    (f,) = lint(b"\x30\x03\x02\x01", "dac")
    assert (f.code, f.severity) == ("cert.der_malformed", Severity.FATAL)


def test_catalogue_shape_and_codes_used_in_source() -> None:
    rows = list(csv.DictReader((ROOT / "matter_pki" / "codes.csv").open()))
    assert [r["code"] for r in rows] == list(catalogue())
    source = "".join(p.read_text() for p in (ROOT / "matter_pki").rglob("*.py"))
    for row in rows:
        assert re.fullmatch(r"[a-z]+\.[a-z0-9_]+", row["code"]), row["code"]
        assert row["chip"] in {"format", "chain", "vidpid", "relation", "-"}
        assert f'"{row["code"]}"' in source, f"{row['code']} is catalogued but never emitted"
