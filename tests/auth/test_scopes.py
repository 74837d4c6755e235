from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.auth.scopes import (
    Scope,
    ScopeError,
    access_for,
    allows,
    format_scopes,
    grant,
    parse_scope,
    parse_scopes,
)

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def test_parses_plain_scope() -> None:
    assert parse_scope("system/Patient.rs") == Scope("Patient", "rs")


def test_parses_wildcard_scope() -> None:
    assert parse_scope("system/*.cruds") == Scope("*", "cruds")


def test_parses_query_restriction() -> None:
    scope = parse_scope(f"system/Observation.rs?category={CATEGORY}")
    assert scope.query == (("category", CATEGORY),)
    assert parse_scope(str(scope)) == scope


@pytest.mark.parametrize(
    "text",
    [
        "system/Patient.sr",  # out of order
        "system/Patient.rr",  # repeated
        "system/Patient.rsx",  # unknown letter
        "system/Patient.",  # no permissions
        "system/Patient.read",  # SMART v1
        "system/Patient.*",  # SMART v1
        "patient/Patient.rs",  # not a backend-services context
        "user/Patient.rs",
        "system/patient.rs",  # resource types start upper case
        "system/Patient.rs?",  # empty query
        "system/Patient.rs?category",  # no value
        "system/Patient.rs?a=1&a=2",  # same parameter twice
        "system/Patient rs",
        "launch",
        "openid",
        "system/Patient.rs\n",  # a trailing newline must not slip through `$`
        "",
    ],
)
def test_rejects_malformed_scope(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_scope_list_rejects_double_spaces() -> None:
    with pytest.raises(ScopeError):
        parse_scopes("system/Patient.rs  system/Slot.rs")


def test_scope_list_rejects_leading_space() -> None:
    with pytest.raises(ScopeError):
        parse_scopes(" system/Patient.rs")


def test_scope_list_collapses_duplicates() -> None:
    assert parse_scopes("system/Patient.rs system/Patient.rs") == [Scope("Patient", "rs")]


def test_allows_per_type_and_interaction() -> None:
    scopes = parse_scopes("system/Patient.rs system/Task.cu")
    assert allows(scopes, "Patient", "r")
    assert allows(scopes, "Patient", "s")
    assert not allows(scopes, "Patient", "u")
    assert allows(scopes, "Task", "c")
    assert not allows(scopes, "Task", "r")
    assert not allows(scopes, "Observation", "r")


def test_wildcard_covers_every_type() -> None:
    scopes = parse_scopes("system/*.rs")
    assert allows(scopes, "Slot", "s")
    assert not allows(scopes, "Slot", "d")


def test_access_reports_restrictions() -> None:
    access = access_for(parse_scopes(f"system/Observation.rs?category={CATEGORY}"), "Observation", "s")
    assert access.allowed and not access.unrestricted
    assert access.restrictions == ((("category", CATEGORY),),)


def test_unrestricted_scope_lifts_restrictions() -> None:
    scopes = parse_scopes(f"system/Observation.rs?category={CATEGORY} system/*.r")
    assert access_for(scopes, "Observation", "r").unrestricted
    assert not access_for(scopes, "Observation", "s").unrestricted


def test_access_rejects_unknown_interaction() -> None:
    with pytest.raises(ValueError):
        access_for([], "Patient", "x")


def test_grant_is_capped_by_registration() -> None:
    granted = grant(parse_scopes("system/*.cruds"), parse_scopes("system/Patient.rs system/Task.cu"))
    assert format_scopes(granted) == "system/Patient.rs system/Task.cu"


def test_grant_narrows_permissions() -> None:
    granted = grant(parse_scopes("system/Patient.rds"), parse_scopes("system/*.rs"))
    assert granted == [Scope("Patient", "rs")]


def test_grant_drops_unregistered_types() -> None:
    assert grant(parse_scopes("system/Slot.rs"), parse_scopes("system/Patient.rs")) == []


def test_grant_keeps_registered_query_restriction() -> None:
    granted = grant(parse_scopes("system/Observation.rs"), parse_scopes(f"system/Observation.rs?category={CATEGORY}"))
    assert granted == [Scope("Observation", "rs", (("category", CATEGORY),))]


def test_grant_refuses_conflicting_restrictions() -> None:
    registered = parse_scopes("system/Observation.rs?category=a")
    assert grant(parse_scopes("system/Observation.rs?category=b"), registered) == []


_types = st.sampled_from(["*", "Patient", "Observation", "Slot", "Task"])
_perms = st.sets(st.sampled_from("cruds"), min_size=1).map(lambda s: "".join(c for c in "cruds" if c in s))
_queries = st.sampled_from([(), (("category", "a"),), (("category", "b"),), (("code", "x|1"),)])
_scopes = st.builds(Scope, _types, _perms, _queries)


@given(_scopes)
def test_scope_text_round_trips(scope: Scope) -> None:
    assert parse_scope(str(scope)) == scope


@given(st.lists(_scopes, max_size=4), st.lists(_scopes, max_size=4), _types.filter(lambda t: t != "*"),
       st.sampled_from("cruds"))
def test_grant_never_exceeds_registration_or_request(requested: list[Scope], registered: list[Scope],
                                                     resource_type: str, letter: str) -> None:
    granted = grant(requested, registered)
    if allows(granted, resource_type, letter):
        assert allows(registered, resource_type, letter)
        assert allows(requested, resource_type, letter)
    unrestricted = access_for(granted, resource_type, letter).unrestricted
    if unrestricted:
        assert access_for(registered, resource_type, letter).unrestricted
