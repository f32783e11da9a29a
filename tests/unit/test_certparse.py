"""Certificates read as OpenSSL 3 reads them: names, times, keys, extensions and the X509v3 cache."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matter_pki import der
from matter_pki.certparse import (
    RawName,
    RawTime,
    bit_string,
    decode_akid_full,
    decode_basic_constraints,
    decode_key_usage,
    integer_value,
    oid_value,
    parse_certificate,
    parse_name,
)
from matter_pki.der import DerError, read_element
from matter_pki.testing import mutate as m
from matter_pki.testing.negative import good_chain

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def name_of(*attrs: m.Attr) -> RawName:
    data = m.encode_name(m.name(*attrs))
    from matter_pki.certparse import Notes

    return parse_name(data, read_element(data), Notes(), "test")


# -- names: x_name.c x509_name_canon / asn1_string_canon ---------------------------------------------------
@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        ("Gen PAI", "gen pai", True),  # ASCII case folded
        ("Gen  PAI", " Gen PAI\t", True),  # ASCII whitespace trimmed and collapsed
        ("Gen\nPAI", "Gen PAI", True),
        ("Gen\u00a0PAI", "Gen PAI", False),  # U+00A0 is not ASCII whitespace
        ("\u00c9t\u00e9", "\u00e9t\u00e9", False),  # non-ASCII letters keep their case
        ("Gen PAI", "Gen PAI ", True),
    ],
)
def test_canonical_comparison(left: str, right: str, equal: bool) -> None:
    a, b = name_of(m.Attr(m.CN, left.encode())), name_of(m.Attr(m.CN, right.encode()))
    assert a.matches(b) is equal


def test_string_types_compare_through_utf8() -> None:
    utf8 = name_of(m.Attr(m.CN, b"Gen PAI"))
    assert utf8.matches(name_of(m.Attr(m.CN, "Gen PAI".encode("utf-16-be"), m.BMP)))
    assert utf8.matches(name_of(m.Attr(m.CN, "Gen PAI".encode("utf-32-be"), m.UNIVERSAL)))
    assert utf8.matches(name_of(m.Attr(m.CN, b"Gen PAI", m.PRINTABLE)))
    assert not utf8.matches(name_of(m.Attr(m.CN, b"Gen PAI", m.NUMERIC)))  # NumericString is not canonicalised


def test_multi_valued_rdn_order_does_not_matter_but_rdn_order_does() -> None:
    cn, vid = m.Attr(m.CN, b"A"), m.Attr(m.VID, b"FFF1")
    sorted_set = m.encode_name(m.name((cn, vid)))
    unsorted = m.encode_name(m.name((vid, cn)), sort_sets=False)
    from matter_pki.certparse import Notes

    a = parse_name(sorted_set, read_element(sorted_set), Notes(), "a")
    notes = Notes()
    b = parse_name(unsorted, read_element(unsorted), notes, "b")
    assert a.matches(b) and a.der != b.der and any("unsorted SET" in n for n in notes.items)
    assert not name_of(cn, vid).matches(name_of(vid, cn))


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (m.VISIBLE, b"FFF1"),  # not in B_ASN1_PRINTABLE
        (der.OCTET_STRING, b"FFF1"),
        (der.INTEGER, b"\x01"),
        (m.UTF8, b"\xc3\x28"),  # invalid UTF-8: ASN1_STRING_to_UTF8 fails in x509_name_canon
        (m.BMP, b"\x00\x41\x00"),  # odd BMPString length
        (m.BMP, b"\xd8\x00"),  # a lone surrogate has no UTF-8 form
    ],
)
def test_name_values_openssl_refuses(tag: int, value: bytes) -> None:
    with pytest.raises(DerError):
        name_of(m.Attr(m.CN, value, tag))


def test_sequence_valued_attribute_is_kept_encoded() -> None:
    # A SEQUENCE value (B_ASN1_SEQUENCE is in ASN1_PRINTABLE) is kept in encoded form, header included.
    name = name_of(m.Attr("2.5.4.45", b"\x02\x01\x05", der.SEQUENCE))
    assert name.attributes == (("2.5.4.45", 16, b"\x30\x03\x02\x01\x05"),)


# -- times: x509_vfy.c X509_cmp_time, a_time.c ossl_asn1_time_to_tm; chip's ASN1UniversalTime -----------------
@pytest.mark.parametrize(
    ("tag", "text", "openssl", "chip"),
    [
        (der.UTC_TIME, "260601120000Z", 1780315200, 1780315200),
        (der.UTC_TIME, "500101000000Z", -631152000, None),  # 1950: OpenSSL reads it; chip's range starts at 1970
        (der.GENERALIZED_TIME, "20500101000000Z", 2524608000, 2524608000),
        (der.GENERALIZED_TIME, "99991231235959Z", 253402300799, None),
        (der.GENERALIZED_TIME, "21051231235959Z", 4291747199, 4291747199),  # chip's last year
        (der.UTC_TIME, "260230000000Z", None, 1772409600),  # 30 February: OpenSSL refuses, chip rolls over
        (der.UTC_TIME, "2606011200Z", None, None),  # no seconds
        (der.UTC_TIME, "260601120060Z", None, None),
        (der.UTC_TIME, "260601120000+0000", None, None),
        (der.GENERALIZED_TIME, "20260601120000.5Z", None, None),
    ],
)
def test_time_readings(tag: int, text: str, openssl: int | None, chip: int | None) -> None:
    t = RawTime(tag, text)
    assert (t.openssl, t.chip_unix) == (openssl, chip)


# -- primitives ----------------------------------------------------------------------------------------------
def test_integer_padding_rules() -> None:
    assert integer_value(b"\x00\x80") == 128 and integer_value(b"\xff\x7f") == -129
    for bad in (b"", b"\x00\x01", b"\xff\x80"):
        with pytest.raises(DerError):
            integer_value(bad)


def test_oid_rules() -> None:
    assert oid_value(b"\x55\x1d\x13") == "2.5.29.19"
    for bad in (b"", b"\x55\x1d\x93", b"\x80\x01"):
        with pytest.raises(DerError):
            oid_value(bad)


def test_bit_string_clears_unused_bits() -> None:
    bits = bit_string(b"\x01\x07")
    assert (bits.data, bits.unused, bits.padding_clean) == (b"\x06", 1, False)
    with pytest.raises(DerError):
        bit_string(b"\x08\x00")


# -- extensions -------------------------------------------------------------------------------------------------
def test_key_usage_openssl_value_reads_two_octets() -> None:
    # v3_purp.c: ex_kusage = data[0] | data[1] << 8; a third octet is ignored.
    assert decode_key_usage(bytes.fromhex("03020780")).openssl == 0x80
    assert decode_key_usage(bytes.fromhex("030400800080")).openssl == 0x80
    assert decode_key_usage(bytes.fromhex("0303070080")).openssl == 0x8000  # decipherOnly
    assert not decode_key_usage(bytes.fromhex("03020781")).padding_clean


def test_basic_constraints_forms() -> None:
    assert decode_basic_constraints(bytes.fromhex("3000")).ca is False
    assert decode_basic_constraints(bytes.fromhex("30030101ff")).ca is True
    assert decode_basic_constraints(bytes.fromhex("3003010101")).ca is True  # BER TRUE
    assert decode_basic_constraints(bytes.fromhex("30060101ff020100")).path_length == 0
    assert decode_basic_constraints(bytes.fromhex("3003020100ffff")).path_length == 0  # bytes after the value are ignored
    for bad in ("30060201000101ff", "300402020001", "30020101"):
        with pytest.raises(DerError):
            decode_basic_constraints(bytes.fromhex(bad))


def test_akid_issuer_and_serial() -> None:
    issuer = m.encode_name(m.name(m.Attr(m.CN, b"Root")))
    value = m.akid_value(b"\x01" * 20, issuer=issuer, serial=b"\x05")
    akid = decode_akid_full(value)
    assert akid.keyid == b"\x01" * 20 and akid.serial == 5
    assert akid.issuer_directory is not None and akid.issuer_directory.der == issuer


def test_v3_cache_marks_duplicates_and_undecodable_extensions_invalid() -> None:
    # v3_purp.c ossl_x509v3_cache_extensions: X509_get_ext_d2i returns NULL (-2) for a duplicate;
    # a decode failure sets EXFLAG_INVALID; X509_get_key_usage then reads 0.
    chain = good_chain(NOW)
    chain.dac.extensions += [m.Ext(m.CDP, m.cdp_value("http://x.example/a.crl"))] * 2
    raw = parse_certificate(chain.build(deterministic=True)[2])
    assert not raw.v3.ok and raw.v3.key_usage == 0 and raw.v3.path_length == -1
    chain = good_chain(NOW)
    chain.dac.extensions += [m.Ext("1.3.6.1.5.5.7.1.1", b"\x30\x00")] * 2  # AIA is not cached
    assert parse_certificate(chain.build(deterministic=True)[2]).v3.ok


def test_trailing_bytes_after_the_certificate_are_ignored() -> None:
    dac = good_chain(NOW).build(deterministic=True)[2]
    raw = parse_certificate(dac + b"\x00\x00")
    assert raw.der == dac and raw.trailing == 2 and raw.reencoded_length == len(dac)


def test_reencoded_length_normalises_the_outer_structure() -> None:
    # chip-cert's ReadCertDER stores i2d_X509 of what d2i_X509 read: the outer header comes back minimal.
    chain = good_chain(NOW)
    plain = chain.build(deterministic=True)[2]
    chain.dac.outer_transform = lambda out: m.long_form(out, 2)
    dac = chain.build(deterministic=True)[2]
    raw = parse_certificate(dac)
    assert len(dac) > len(plain) and raw.reencoded_length == len(plain) and raw.ber
