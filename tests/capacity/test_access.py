"""Who sees capacity: detailed capacity (Slots, Schedules, `$find-capacity`, Subscriptions) only with a token
of a care organisation and the matching scopes; regional aggregates public only when the operator says so.
And the CapabilityStatement announces what the capacity module adds."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.auth.identity import RequestIdentity
from gateway.auth.scopes import parse_scopes
from gateway.capacity.access import CapacityAccessPolicy, capacity_access
from gateway.capacity.routes import PUBLIC_AGGREGATE_PATH
from tests.auth.fixtures import obtain_token
from tests.capacity.conftest import capacity_settings
from tests.capacity.helpers import at, row


def _identity(ura: str) -> RequestIdentity:
    return RequestIdentity(client_id="c", ura=ura, organization_type="N6", role="triagist-hap",
                           purpose_of_use="TREAT", scopes=tuple(parse_scopes("system/*.rs")))


@pytest.mark.parametrize("public", [False, True])
def test_the_access_rule_as_a_table(public: bool) -> None:
    policy = CapacityAccessPolicy(public_aggregates=public)
    assert not capacity_access(policy, None, "Slot", None).allowed
    assert not capacity_access(policy, None, "Slot", "find-capacity").allowed
    assert capacity_access(policy, None, "MeasureReport", "aggregate").allowed is public
    assert not capacity_access(policy, _identity(""), "Schedule", None).allowed
    assert capacity_access(policy, _identity("12345678"), "Slot", "find-capacity").allowed
    assert capacity_access(policy, _identity("12345678"), "MeasureReport", "aggregate").allowed


def test_anonymous_callers_get_nothing_by_default(app) -> None:  # type: ignore[no-untyped-def]
    anonymous = TestClient(app)
    for path in ("/fhir/Slot", "/fhir/Slot/$find-capacity?category=zh-ic", "/fhir/MeasureReport/$aggregate",
                 "/fhir/Subscription"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.post("/ingest/capacity", json=[]).status_code == 401
    assert anonymous.get(PUBLIC_AGGREGATE_PATH).status_code == 404  # not mounted: aggregates are not public


def test_scopes_still_apply_to_capacity(client, app, database_url) -> None:  # type: ignore[no-untyped-def]
    token = obtain_token(app, database_url, scope="system/MeasureReport.rs")["access_token"]
    plain = TestClient(app)
    headers = {"Authorization": f"Bearer {token}"}
    assert plain.get("/fhir/MeasureReport/$aggregate", params={"region": "oost"}, headers=headers).status_code == 200
    refused = plain.get("/fhir/Slot", params={"status": "free"}, headers=headers)
    assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
    assert plain.get("/fhir/Slot/$find-capacity", params={"category": "zh-ic"}, headers=headers).status_code == 403


def test_capability_statement_announces_capacity(client) -> None:  # type: ignore[no-untyped-def]
    statement = client.get("/fhir/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert any(op["name"] == "find-capacity" for op in resources["Slot"]["operation"])
    assert any(op["name"] == "aggregate" for op in resources["MeasureReport"]["operation"])
    slot_params = {p["name"] for p in resources["Slot"]["searchParam"]}
    assert {"schedule", "status", "start", "service-type", "service-category", "specialty", "appointment-type",
            "identifier", "source-timestamp", "end"} <= slot_params
    assert "region" in {p["name"] for p in resources["Schedule"]["searchParam"]}
    assert {"actor", "active", "date", "service-type"} <= {p["name"] for p in resources["Schedule"]["searchParam"]}


def test_public_aggregates_when_the_operator_says_so(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ZCC_CAPACITY_PUBLIC_AGGREGATES", "on")
    database_url = f"sqlite:///{tmp_path / 'public.db'}"
    services = build_services(capacity_settings(database_url))
    app = create_app(services=services)
    try:
        token = obtain_token(app, database_url)["access_token"]
        with TestClient(app) as anonymous:
            fed = anonymous.post("/ingest/capacity", headers={"Authorization": f"Bearer {token}"},
                                 json=[row("44444441", "IC", "zh-ic", 5, 2, at(1), "limburg")])
            assert fed.json()["applied"] == 1, fed.text
            response = anonymous.get(PUBLIC_AGGREGATE_PATH, params={"region": "limburg", "category": "zh-ic"})
            assert response.status_code == 200, response.text
            (report,) = [e["resource"] for e in response.json()["entry"]]
            counts = {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}
            assert (counts["total"], counts["free"]) == (5, 2)
            assert "Location" not in response.text  # regional numbers only, no provider detail
            bad = anonymous.get(PUBLIC_AGGREGATE_PATH, params={"region": "atlantis"})
            assert bad.status_code == 400 and bad.json()["issue"][0]["code"] == "code-invalid"
            assert anonymous.get("/fhir/Slot").status_code == 401  # detail stays closed
    finally:
        services.capacity.hub.stop()
