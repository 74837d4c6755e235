"""The write check for over-long strings and characters FHIR XML cannot carry: its quick look at the JSON text
answers exactly as the walk over every string does."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.limits.resource_size import _any_string_at_fault, _walk_for_fault

_TEXT = st.text(alphabet=st.sampled_from(["a", "é", "\\", '"', "\t", "\n", "\x05", "\x1f", "\ufffe", "\uffff",
                                          "\ufffd", "€"]), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False)
    | st.decimals(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES, st.integers(min_value=0, max_value=40))
def test_the_quick_look_answers_as_the_walk(value, limit: int) -> None:  # type: ignore[no-untyped-def]
    assert _any_string_at_fault(value, limit) == _walk_for_fault(value, limit)


def test_faults_are_found_and_clean_bodies_pass() -> None:
    body = {"resourceType": "Patient", "name": [{"family": "Berg", "given": ["Jan"]}], "multipleBirthInteger": 2,
            "extension": [{"url": "u", "valueDecimal": Decimal("1.50")}]}
    assert not _any_string_at_fault(body, 100)
    assert _any_string_at_fault({**body, "gender": "x" * 101}, 100)
    assert _any_string_at_fault({**body, "gender": "ma\x05le"}, 100)
    assert _any_string_at_fault({**body, "gender": "male\uffff"}, 100)
    assert not _any_string_at_fault({**body, "gender": "a\\b\ttab"}, 100)  # a backslash: walked, and fine
    assert not _any_string_at_fault({**body, "multipleBirthInteger": 2**80}, 100)  # no JSON for it: walked
