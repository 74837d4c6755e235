"""`fhirjson.loads_trusted` (one decoder made once) gives exactly what `json.loads` with the same hooks gives: the
same values of the same types (decimals and the integers an int would change kept as FhirDecimal), and the same
errors, for bytes in any encoding json detects, bytearrays and text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import fhirjson
from conformance.fhirjson import FhirDecimal, _parse_int


def reference(raw: Any) -> Any:
    return json.loads(raw, parse_float=FhirDecimal, parse_int=_parse_int)


def outcome(parse: Any, raw: Any) -> tuple[str, str]:
    try:
        value = parse(raw)
    except Exception as error:  # noqa: BLE001 - compared by type and message
        return "error", f"{type(error).__name__}: {error}"
    return "value", _typed(value)


def _typed(value: Any) -> str:
    """A rendering that tells FhirDecimal('1.50') from Decimal, int and float, and keeps key order."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{key!r}:{_typed(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_typed(item) for item in value) + "]"
    return f"{type(value).__name__}({value!r})"


@pytest.mark.parametrize("raw", [
    b'{"value":1.50,"n":[1,-0,18446744073709551616,-9223372036854775809,1E3],"t":"\\u00e9\\ud83d\\ude00"}',
    '{"resourceType": "Patient", "active": true, "x": null}',
    b"\xef\xbb\xbf" + b'{"bom":1}',
    '{"text":"caf\u00e9"}'.encode("utf-16"),
    bytearray(b"[1.0, 2]"),
    "\ufeff{}",
    b'{"a":1} trailing',
    b"",
    b"{",
])
def test_same_values_and_errors_as_json_loads(raw: Any) -> None:
    assert outcome(fhirjson.loads_trusted, raw) == outcome(reference, raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=3).map(lambda d: FhirDecimal(str(d))),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_stored_body_parses_as_json_loads_parses_it(value: Any) -> None:
    raw = fhirjson.dumps(value)
    assert outcome(fhirjson.loads_trusted, raw) == outcome(reference, raw)
    assert outcome(fhirjson.loads_trusted, raw.decode()) == outcome(reference, raw.decode())
