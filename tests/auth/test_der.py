from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.der import DerError, decode_oid, read_sequence, read_single, read_tlv
from tests.auth.pki import oid_der, permanent_identifier


def test_reads_ia5_string() -> None:
    assert read_single(b"\x16\x03abc", 0x16) == b"abc"


def test_rejects_trailing_bytes() -> None:
    with pytest.raises(DerError):
        read_single(b"\x16\x03abcX", 0x16)


def test_rejects_wrong_tag() -> None:
    with pytest.raises(DerError):
        read_single(b"\x0c\x03abc", 0x16)


def test_rejects_truncated_element() -> None:
    with pytest.raises(DerError):
        read_tlv(b"\x16\x05abc")


def test_rejects_non_minimal_long_length() -> None:
    with pytest.raises(DerError):
        read_tlv(b"\x16\x81\x03abc")


def test_reads_long_form_length() -> None:
    content = b"x" * 200
    assert read_single(b"\x16\x81\xc8" + content, 0x16) == content


def test_reads_permanent_identifier_sequence() -> None:
    elements = read_sequence(permanent_identifier("90000123"))
    assert elements[0] == (0x0C, b"90000123")
    assert decode_oid(elements[1][1]) == "2.16.528.1.1007.3.3"


def test_rejects_non_minimal_oid_arc() -> None:
    with pytest.raises(DerError):
        decode_oid(b"\x2a\x80\x01")


@given(st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=8), st.integers(0, 2),
       st.integers(0, 39))
def test_oid_round_trip(rest: list[int], first: int, second: int) -> None:
    dotted = ".".join(str(arc) for arc in [first, second, *rest])
    assert decode_oid(read_single(oid_der(dotted), 0x06)) == dotted


@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_crash_differently(data: bytes) -> None:
    try:
        read_sequence(data)
    except DerError:
        pass
