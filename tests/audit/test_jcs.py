"""RFC 8785 canonicalisation, including the number formatting of ECMAScript."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.jcs import (
    CanonicalizationError,
    canonicalize,
    canonicalize_built,
    canonicalize_reference,
    serialize_number,
)


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1.5, "-1.5"),
        (100.0, "100"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (123456789012345680000.0, "123456789012345680000"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (0.1 + 0.2, "0.30000000000000004"),
        (4.50, "4.5"),
        (2e-3, "0.002"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (295147905179352830000.0, "295147905179352830000"),
        (333333333.3333333, "333333333.3333333"),
    ],
)
def test_numbers_like_ecmascript(number: float, text: str) -> None:
    assert serialize_number(number) == text


def test_rfc8785_example() -> None:
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units() -> None:
    value = {"\u20ac": 1, "\U0001f600": 2, "\ufb33": 3, "a": 4, "\r": 5, "1": 6}
    # UTF-16: \r (000d) < 1 < a < € (20ac) < 😀 (d83d...) < שּׁ (fb33); code points would put 😀 last
    assert list(json.loads(canonicalize(value))) == ["\r", "1", "a", "\u20ac", "\U0001f600", "\ufb33"]


def test_large_exact_integers_serialise_as_doubles() -> None:
    assert canonicalize(2**60) == b"1152921504606847000"  # JSON.stringify(2**60)
    assert canonicalize(61009891417338990) == b"61009891417338990"
    assert canonicalize(10**21) == b"1e+21"


def test_rejects_non_json() -> None:
    for bad in (math.nan, math.inf, 10**400, {1: "x"}, {"x": {1, 2}}):
        with pytest.raises(CanonicalizationError):
            canonicalize(bad)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_number_round_trips(number: float) -> None:
    assert float(serialize_number(number)) == number or (number == 0 and serialize_number(number) == "0")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_form_is_a_fixed_point(value: object) -> None:
    once = canonicalize(value)
    assert canonicalize(json.loads(once)) == once


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


@given(_json_values)
def test_fast_path_agrees_with_the_reference_rules(value: object) -> None:
    try:
        expected = canonicalize_reference(value)
    except (CanonicalizationError, UnicodeEncodeError) as error:
        with pytest.raises(type(error)):
            canonicalize(value)
        return
    assert canonicalize(value) == expected


_built_values = st.recursive(
    st.none() | st.booleans() | st.text(),  # what gateway.audit.events puts in an AuditEvent: text, no numbers
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127), max_size=6), children, max_size=4),
    max_leaves=25,
)


@given(_built_values)
def test_the_path_for_built_events_agrees_with_the_reference_rules(value: object) -> None:
    try:
        expected = canonicalize_reference(value)
    except (CanonicalizationError, UnicodeEncodeError) as error:
        with pytest.raises(type(error)):
            canonicalize_built(value)
        return
    assert canonicalize_built(value) == expected


def test_built_audit_events_are_canonical_with_any_request_text() -> None:
    """Request-supplied text (query, BTG reason, diagnostics) with non-ASCII, control characters and
    U+2028 goes through the built path exactly as through the reference rules."""
    from gateway.audit.events import Access, Actor, interaction_event

    odd = "é\u2028\x00\x1f\"\\/\U0001f600 ü\t\n"
    access = Access("search-type", "GET", "Observation", f"name={odd}", 400, odd, True, ["p1"], [f"Observation/{odd}"],
                    "d-1", odd)
    event = interaction_event(access, Actor("c", odd, "r", "1", "N6", "j", "10.0.0.1", "TREAT"), "2026-11-23T00:00:00Z",
                              "e-1", "http://x/fhir")
    assert canonicalize_built(event) == canonicalize_reference(event) == canonicalize(event)
