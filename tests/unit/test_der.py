"""BER as OpenSSL reads it (crypto/asn1/asn1_lib.c ASN1_get_object, asn1_get_length)."""

from __future__ import annotations

import pytest

from matter_pki.der import DerError, elements, read_element


@pytest.mark.parametrize(
    ("data", "length", "der_header"),
    [
        (b"\x04\x02ab", 2, True),
        (b"\x04\x81\x02ab", 2, False),  # long form for a short length
        (b"\x04\x82\x00\x02ab", 2, False),  # zero-padded length octets
        (b"\x04\x84\x00\x00\x00\x02ab", 2, False),
    ],
)
def test_lengths_openssl_accepts(data: bytes, length: int, der_header: bool) -> None:
    # GIVEN a length form ASN1_get_object accepts  WHEN read THEN the content is found and the form noted
    el = read_element(data)
    assert el.content(data) == b"ab"[:length] and el.der_header is der_header


def test_long_form_header_at_the_end_of_its_window_is_read() -> None:
    # asn1_get_length (OpenSSL 3.0, crypto/asn1/asn1_lib.c): "if (max < i) return 0" — the length octets
    # must fit in the window, nothing more; libcrypto 3.0 reads 30 81 00 as an empty SEQUENCE (a
    # non-minimal empty basicConstraints in a DAC is valid for chip on OpenSSL).
    assert read_element(b"\x30\x81\x00").end == 3
    assert read_element(b"\x30\x82\x00\x00").end == 4
    assert read_element(b"\x30\x81\x00\x05\x00").end == 3
    # GIVEN length octets cut by the window  THEN refused
    with pytest.raises(DerError):
        read_element(b"\x30\x82\x00")


def test_indefinite_length_on_constructed_only() -> None:
    data = b"\x30\x80\x02\x01\x05\x00\x00"
    el = read_element(data)
    assert (el.end, el.content(data), el.der_header) == (7, b"\x02\x01\x05", False)
    assert [c.tag for c in elements(data, el)] == [0x02]
    with pytest.raises(DerError):
        read_element(b"\x04\x80ab\x00\x00")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x05\x02\x01",  # runs past the end
        b"\x04\x89" + b"\x01" * 9 + b"x",  # more than 8 significant length octets
        b"\x1f",  # high tag number, truncated
    ],
)
def test_malformed_headers_raise(data: bytes) -> None:
    with pytest.raises(DerError):
        read_element(data)


def test_high_tag_numbers_are_read() -> None:
    data = b"\x9f\x81\x00\x01x"
    el = read_element(data)
    assert (el.cls, el.number, el.tag, el.content(data)) == (2, 128, -1, b"x")


def test_nesting_is_bounded() -> None:
    data = b"\x30\x80" * 40 + b"\x00\x00" * 40
    with pytest.raises(DerError, match="nested too deep"):
        read_element(data)
