"""The searchset Bundle: matches, includes, paging links, totals, lenient handling, errors."""

from __future__ import annotations

import uuid

from tests.fhir.conftest import FHIR_JSON
from tests.fhir.helpers import assert_outcome


def _family() -> str:
    return f"Zoek{uuid.uuid4().hex[:8]}"


def _make_patients(client, family: str, count: int, **extra) -> list[str]:
    ids = []
    for index in range(count):
        body = {
            "resourceType": "Patient",
            "name": [{"family": family, "given": [f"G{index}"]}],
            "birthDate": f"19{50 + index}-05-0{1 + index % 9}",
            **extra,
        }
        ids.append(client.post("/fhir/Patient", json=body, headers=FHIR_JSON).json()["id"])
    return ids


def test_search_pages_with_opaque_links_that_survive_writes(client):
    family = _family()
    ids = _make_patients(client, family, 5)
    first = client.get(f"/fhir/Patient?family={family}&_count=2").json()
    assert first["type"] == "searchset" and [e["resource"]["id"] for e in first["entry"]] == ids[:2]
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    client.delete(f"/fhir/Patient/{ids[0]}")  # a concurrent write must not shift the next page
    second = client.get(next_url.replace("http://testserver", "")).json()
    assert [e["resource"]["id"] for e in second["entry"]] == ids[2:4]


def test_total_accurate_and_summary_count(client):
    family = _family()
    _make_patients(client, family, 3)
    assert client.get(f"/fhir/Patient?family={family}&_total=accurate&_count=1").json()["total"] == 3
    counted = client.get(f"/fhir/Patient?family={family}&_summary=count").json()
    assert counted["total"] == 3 and "entry" not in counted


def test_sort_descending_by_birthdate(client):
    family = _family()
    _make_patients(client, family, 4)
    result = client.get(f"/fhir/Patient?family={family}&_sort=-birthdate").json()
    dates = [e["resource"]["birthDate"] for e in result["entry"]]
    assert dates == sorted(dates, reverse=True)


def test_include_and_revinclude(client):
    family = _family()
    org = client.post(
        "/fhir/Organization", json={"resourceType": "Organization", "name": family}, headers=FHIR_JSON
    ).json()
    [pid] = _make_patients(client, family, 1, managingOrganization={"reference": f"Organization/{org['id']}"})
    client.post(
        "/fhir/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": f"Patient/{pid}"},
        },
        headers=FHIR_JSON,
    )
    bundle = client.get(
        f"/fhir/Patient?family={family}&_include=Patient:organization&_revinclude=Observation:subject"
    ).json()
    kinds = sorted((e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"])
    assert kinds == [("Observation", "include"), ("Organization", "include"), ("Patient", "match")]


def test_chained_search_on_identifier(client):
    bsn = str(uuid.uuid4().int)[:9]
    patient = client.post(
        "/fhir/Patient",
        json={
            "resourceType": "Patient",
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}],
        },
        headers=FHIR_JSON,
    ).json()
    client.post(
        "/fhir/Encounter",
        json={
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "EMER"},
            "subject": {"reference": f"Patient/{patient['id']}"},
        },
        headers=FHIR_JSON,
    )
    found = client.get(f"/fhir/Encounter?subject.identifier=http://fhir.nl/fhir/NamingSystem/bsn|{bsn}").json()
    assert len(found["entry"]) == 1


def test_absolute_reference_to_own_base_matches(client):
    family = _family()
    [pid] = _make_patients(client, family, 1)
    client.post(
        "/fhir/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "y"},
            "subject": {"reference": f"Patient/{pid}"},
        },
        headers=FHIR_JSON,
    )
    found = client.get(f"/fhir/Observation?subject=http://testserver/fhir/Patient/{pid}").json()
    assert len(found["entry"]) == 1


def test_unknown_parameter_is_400_unless_lenient(client):
    assert_outcome(client.get("/fhir/Patient?colour=blue"), 400, "not-supported")
    lenient = client.get("/fhir/Patient?colour=blue&_count=1", headers={"Prefer": "handling=lenient"})
    assert lenient.status_code == 200
    outcome = [e for e in lenient.json()["entry"] if e["search"]["mode"] == "outcome"]
    assert "colour" in outcome[0]["resource"]["issue"][0]["expression"][0]


def test_bad_value_is_400_naming_the_parameter(client):
    body = assert_outcome(client.get("/fhir/Patient?birthdate=notadate"), 400, "invalid")
    assert body["issue"][0]["expression"] == ["birthdate"]


def test_post_search_with_form_body(client):
    family = _family()
    _make_patients(client, family, 2)
    response = client.post(
        "/fhir/Patient/_search",
        content=f"family={family}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and len(response.json()["entry"]) == 2


def test_elements_on_search(client):
    family = _family()
    _make_patients(client, family, 1)
    entry = client.get(f"/fhir/Patient?family={family}&_elements=birthDate").json()["entry"][0]["resource"]
    assert "name" not in entry and "birthDate" in entry


def test_a_plain_page_is_one_statement_outside_a_transaction_and_a_page_with_includes_a_snapshot(client, services):
    """A keyset page with nothing counted or included is a single statement: it runs on the autocommit connection
    (no BEGIN/COMMIT round trips); several statements (here: the page and its _include) share one snapshot."""
    from sqlalchemy import event

    family = _family()
    org = client.post(
        "/fhir/Organization", json={"resourceType": "Organization", "name": family}, headers=FHIR_JSON
    ).json()
    _make_patients(client, family, 2, managingOrganization={"reference": f"Organization/{org['id']}"})
    seen: list[tuple[bool, bool]] = []

    def on_execute(connection, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "idx_string" in statement and "resource" in statement:  # the page's statement (family is a string)
            seen.append((bool(connection.get_execution_options().get("single_statement")),
                         connection.in_transaction() and not connection.get_execution_options().get(
                             "single_statement")))

    engine = services.store.engine
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        plain = client.get(f"/fhir/Patient?family={family}")
        included = client.get(f"/fhir/Patient?family={family}&_include=Patient:organization")
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert plain.status_code == included.status_code == 200
    assert len(included.json()["entry"]) == 3 and len(plain.json()["entry"]) == 2
    assert seen == [(True, False), (False, True)]
