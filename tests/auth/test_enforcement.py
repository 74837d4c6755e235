from __future__ import annotations

import pytest

from gateway.auth.enforcement import ANY_TYPE, require_organization, require_scope
from gateway.auth.errors import Forbidden
from gateway.auth.identity import RequestIdentity
from gateway.auth.middleware import INSECURE_DEV_IDENTITY
from gateway.auth.scopes import parse_scopes


def identity(scopes: str) -> RequestIdentity:
    return RequestIdentity("c", "90000123", "Z33", "arts", "TREAT", tuple(parse_scopes(scopes)))


@pytest.mark.parametrize(("kind", "letter"), [("read", "r"), ("vread", "r"), ("history-instance", "r"),
                                              ("search-type", "s"), ("history-type", "s"), ("create", "c"),
                                              ("update", "u"), ("patch", "u"), ("delete", "d")])
def test_interaction_kinds_map_to_letters(kind: str, letter: str) -> None:
    require_scope(identity(f"system/Patient.{letter}"), "Patient", kind)
    other = next(x for x in "cruds" if x != letter)
    with pytest.raises(Forbidden):
        require_scope(identity(f"system/Patient.{other}"), "Patient", kind)


def test_no_identity_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        require_scope(None, "Patient", "read")


def test_system_level_search_needs_a_wildcard_scope() -> None:
    with pytest.raises(Forbidden, match="any resource type"):
        require_scope(identity("system/Patient.rs"), ANY_TYPE, "search-system")
    require_scope(identity("system/*.s"), ANY_TYPE, "search-system")


def test_restricted_scope_returns_its_restriction() -> None:
    access = require_scope(identity("system/Observation.rs?category=laboratory"), "Observation", "search-type")
    assert access.restrictions == ((("category", "laboratory"),),)


def test_unknown_interaction_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        require_scope(identity("system/*.cruds"), "Patient", "teleport")


def test_forbidden_renders_as_operation_outcome() -> None:
    with pytest.raises(Forbidden) as raised:
        require_scope(identity("system/Patient.r"), "Slot", "read")
    assert raised.value.status == 403
    assert raised.value.outcome()["issue"][0] == {
        "severity": "error", "code": "forbidden", "diagnostics": "the granted scopes do not allow 'r' on Slot"
    }


def test_organisation_mismatch_is_forbidden() -> None:
    require_organization(identity("system/*.r"), "90000123")
    with pytest.raises(Forbidden, match="90000999"):
        require_organization(identity("system/*.r"), "90000999")


def test_insecure_dev_identity_is_flagged() -> None:
    assert INSECURE_DEV_IDENTITY.insecure_dev
    require_organization(INSECURE_DEV_IDENTITY, "90000999")
