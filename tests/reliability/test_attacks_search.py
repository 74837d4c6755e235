"""Search-parameter attacks: SQL metacharacters, LIKE wildcards in `:contains`, 10,000 OR values, huge
`_count`/`_offset`, and `_include:iterate` over reference cycles. Each answers 200 with the right matches or
a 4xx OperationOutcome, within a bounded time, and leaves the store unchanged."""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import FHIR_JSON, assert_outcome, stored_versions

FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def patients(client) -> list[str]:
    ids = []
    for family in ("Jansen", "de Vries", "O'Brien", "100%_Zeker"):
        body = {"resourceType": "Patient", "name": [{"family": family}]}
        response = client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def search(client, resource_type: str, params: list[tuple[str, str]] | dict[str, str]):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = client.get(f"/fhir/{resource_type}", params=params, headers=FHIR_JSON)
    assert time.monotonic() - started < 10, "search took too long"
    return response


def families(bundle: dict) -> set[str]:
    return {e["resource"]["name"][0]["family"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


@pytest.mark.parametrize("value", [
    "' OR '1'='1", "'; DROP TABLE resource; --", "Jansen' --", '" OR ""="', "\\", "Jansen\x00", "%' OR 1=1 --",
    "1; SELECT pg_sleep(10)", "') UNION SELECT body FROM resource_version --",
])
def test_sql_metacharacters_are_plain_text(client, services, patients: list[str], value: str) -> None:
    before = stored_versions(services)
    response = search(client, "Patient", {"family": value})
    if response.status_code == 200:
        assert families(response.json()) <= {"Jansen"} if value.startswith("Jansen") else not families(response.json())
    else:
        assert_outcome(response, 400)
    assert stored_versions(services) == before
    assert search(client, "Patient", {"family": "Jansen"}).json()["total"] >= 1


def test_quote_in_a_name_is_found_exactly(client, patients: list[str]) -> None:
    assert families(search(client, "Patient", {"family": "O'Brien"}).json()) == {"O'Brien"}


@pytest.mark.parametrize(("value", "expected"), [("%", {"100%_Zeker"}), ("_", {"100%_Zeker"}), ("%_", {"100%_Zeker"}),
                                                 ("e", {"Jansen", "de Vries", "O'Brien", "100%_Zeker"})])
def test_like_wildcards_in_contains_match_literally(client, patients: list[str], value: str, expected: set) -> None:
    response = search(client, "Patient", {"family:contains": value, "_count": "100"})
    assert response.status_code == 200
    assert families(response.json()) == expected


def test_regex_heavy_contains_is_bounded(client, patients: list[str]) -> None:
    value = "(a+)+" * 200 + "%" * 500 + "_" * 500
    response = search(client, "Patient", {"family:contains": value})
    assert response.status_code in {200, 400}
    if response.status_code == 200:
        assert families(response.json()) == set()


def test_ten_thousand_or_values_by_get(client, patients: list[str]) -> None:
    values = ",".join([str(n) for n in range(10_000)] + [patients[0]])
    response = client.get(f"/fhir/Patient?_id={values}", headers=FHIR_JSON)  # commas unescaped: fits httpx's limit
    outcome = assert_outcome(response, 400, "too-costly")
    assert outcome["issue"][0]["expression"] == ["_id"]


def test_ten_thousand_or_values_by_post_search(client, patients: list[str]) -> None:
    values = ",".join(["Nobody"] * 9_999 + ["Jansen"])
    started = time.monotonic()
    response = client.post("/fhir/Patient/_search", content=f"family={values}".encode(), headers=FORM)
    assert time.monotonic() - started < 10
    assert_outcome(response, 400, "too-costly")


def test_or_values_up_to_the_limit_are_searched(client, services, patients: list[str]) -> None:
    """The limit is what SQLite and PostgreSQL can take: a full list of OR values still finds the match."""
    values = ",".join(["Nobody"] * (services.settings.max_or_values - 1) + ["Jansen"])
    response = client.post("/fhir/Patient/_search", content=f"family={values}".encode(), headers=FORM)
    assert response.status_code == 200, response.text[:300]
    assert families(response.json()) == {"Jansen"}


def test_ten_thousand_and_parameters(client, patients: list[str]) -> None:
    body = "&".join(["family=Jansen"] * 10_000).encode()
    assert_outcome(client.post("/fhir/Patient/_search", content=body, headers=FORM), 400, "too-costly")


def test_conditional_update_with_ten_thousand_or_values_writes_nothing(client, services) -> None:
    values = ",".join(str(n) for n in range(10_000))
    before = stored_versions(services)
    body = {"resourceType": "Patient", "gender": "male"}
    response = client.put(f"/fhir/Patient?identifier={values}", json=body, headers=FHIR_JSON)
    assert_outcome(response, 400, "too-costly")
    assert stored_versions(services) == before


def test_huge_count_is_clamped(client, services, patients: list[str]) -> None:
    response = search(client, "Patient", {"_count": "1000000"})
    assert response.status_code == 200
    bundle = response.json()
    assert len(bundle["entry"]) <= services.settings.max_count


@pytest.mark.parametrize("params", [{"_count": "-1"}, {"_count": "1e9"}, {"_offset": "-5"}, {"_count": "abc"}])
def test_malformed_paging_values_are_refused(client, params: dict[str, str]) -> None:
    response = search(client, "Patient", {**params, "_sort": "family"})
    assert_outcome(response, 400)


def test_huge_count_and_offset_values_are_clamped(client, patients: list[str]) -> None:
    for params in ({"_count": "99999999999999999999999"}, {"_offset": "999999999999", "_sort": "family"}):
        response = search(client, "Patient", params)
        assert response.status_code in {200, 400}, response.text[:300]
        if response.status_code == 400:
            assert_outcome(response, 400)


def forged(state: object) -> str:
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not-a-cursor", "A" * 10_000, forged(["list"]), forged({"after": "' OR 1=1 --"}), forged({"after": -1}),
    forged({"offset": "abc", "max_key": 1}), forged({"offset": 1e300}), forged({"offset": 2**70}),
])
def test_forged_page_cursor_is_refused(client, patients: list[str], cursor: str) -> None:
    assert_outcome(search(client, "Patient", {"_page": cursor, "_sort": "family"}), 400, "invalid")
    assert_outcome(search(client, "Patient", {"_page": cursor}), 400, "invalid")
    assert_outcome(client.get("/fhir/Patient/_history", params={"_page": cursor}, headers=FHIR_JSON), 400, "invalid")


def test_include_iterate_over_a_reference_cycle_terminates(client, services) -> None:
    """A hasMember B, B hasMember A: `_include:iterate` must stop once nothing new turns up."""
    ids = []
    for label in ("A", "B", "C"):
        body = {"resourceType": "Observation", "status": "final", "code": {"text": label}}
        ids.append(client.post("/fhir/Observation", json=body, headers=FHIR_JSON).json()["id"])
    for source, target in ((0, 1), (1, 2), (2, 0)):
        body = {"resourceType": "Observation", "id": ids[source], "status": "final", "code": {"text": "x"},
                "hasMember": [{"reference": f"Observation/{ids[target]}"}]}
        assert client.put(f"/fhir/Observation/{ids[source]}", json=body, headers=FHIR_JSON).status_code == 200
    response = search(client, "Observation", [("_id", ids[0]), ("_include:iterate", "Observation:has-member")] * 50)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert sorted(e["resource"]["id"] for e in entries) == sorted(ids)


def test_unknown_and_malformed_parameters_are_refused(client) -> None:
    for params in ({"name:regex": ".*"}, {"_include": "Patient:*:*:*"}, {"birthdate": "ge" + "9" * 1000},
                   {"_sort": ",".join(["family"] * 11)}, {"_has:Observation:patient:code": "x" * 10_000}):
        response = search(client, "Patient", params)
        assert response.status_code in {200, 400}, (params, response.text[:300])
        if response.status_code == 400:
            assert_outcome(response, 400)
