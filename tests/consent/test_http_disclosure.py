"""End to end over HTTP with real tokens, consent ON and audit ON: the leaks the issue names, each checked in the
response *and* in the AuditEvents recorded under the response's decision id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.consent.stage import ConsentStage
from tests.consent.http_gateway import (
    AMBULANCE,
    TRIAGE,
    Gateway,
    build_gateway,
    decisions,
    detail,
    interaction,
    observation,
)

DECISION = "x-zcc-decision-id"
BTG_HEADERS = {"X-Zcc-Emergency": "true", "X-Zcc-Patient-Unable-To-Consent": "true"}
HOLDER = {"X-Zcc-Flow": "holder"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as patch:
        yield from build_gateway(tmp_path_factory, patch)


def audited(gateway: Gateway, response: Any) -> list[dict[str, Any]]:
    return gateway.events(response.headers[DECISION])


def entry_ids(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])
            if e.get("resource", {}).get("resourceType") != "OperationOutcome"}


def test_idor_another_patients_contact_does_not_open_a_record(gateway: Gateway) -> None:
    own = gateway.get("Observation/ob2")  # pb2 has an active zcc contact of its own
    assert own.status_code == 200
    borrowed = gateway.get("Observation/ob2", **{"X-Zcc-Contact": "Encounter/ea"})  # pa's contact
    assert borrowed.status_code == 404 and "secret-of-b2" not in borrowed.text
    events = audited(gateway, borrowed)
    assert interaction(events)["outcome"] == "4"
    assert decisions(events) == {("Patient/pb2", "zcc-no-contact", "deny")}
    assert decisions(audited(gateway, own)) == {("Patient/pb2", "zcc-treatment", "permit")}


def test_include_does_not_leak_another_patient(gateway: Gateway) -> None:
    response = gateway.get("Observation?subject=Patient/pa&_include=Observation:performer")
    bundle = response.json()
    assert response.status_code == 200
    assert entry_ids(bundle) == {"Observation/oa1"}  # not oa2 (ggz), oab (also about pb), Patient/pb
    assert "secret" not in response.text and "shared-a-b" not in response.text and "ggz-note" not in response.text
    assert bundle["total"] == 1
    found = decisions(audited(gateway, response))
    assert ("Patient/pa", "ggz-filtered", "permit-filtered") in found
    assert any(patient == "Patient/pb" and effect == "deny" for patient, _, effect in found)


def test_revinclude_does_not_leak_filtered_or_shared_data(gateway: Gateway) -> None:
    response = gateway.get("Patient?_id=pa&_revinclude=Observation:subject")
    assert response.status_code == 200
    assert entry_ids(response.json()) == {"Patient/pa", "Observation/oa1"}
    assert response.headers["x-zcc-suppressed"] == "1"  # oa2: the client may learn that something was withheld
    events = audited(gateway, response)
    assert interaction(events)["entity"][0]["what"]["reference"] == "Patient/pa"
    assert ("Patient/pa", "ggz-filtered", "permit-filtered") in decisions(events)


def test_history_leaks_neither_content_nor_existence(gateway: Gateway) -> None:
    denied = gateway.get("Observation/ob1/_history")
    unknown = gateway.get("Observation/nothere/_history")
    assert denied.status_code == unknown.status_code == 404
    assert "secret-of-b" not in denied.text
    system = gateway.get("Observation/_history")
    assert "secret-of-b\"" not in system.text and "shared-a-b" not in system.text
    assert "Observation/ob1" not in {e.get("fullUrl", "").removeprefix("http://testserver/fhir/")
                                     for e in system.json().get("entry", [])}
    assert ("Patient/pb", "zcc-no-contact", "deny") in decisions(audited(gateway, denied))


def test_transaction_response_does_not_echo_another_patients_data(gateway: Gateway) -> None:
    created = observation("ignored", "pb", "new-for-b")
    del created["id"]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0b1c1a3e-0000-4000-8000-000000000001", "resource": created,
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Observation/oa1"}},
            {"request": {"method": "GET", "url": "Observation?subject=Patient/pb"}},
        ],
    }
    headers = {**gateway.headers(TRIAGE), "Content-Type": "application/fhir+json", "Prefer": "return=representation"}
    response = gateway.client.post("/fhir", json=bundle, headers=headers)
    assert response.status_code == 200
    entries = response.json()["entry"]
    assert entries[0]["response"]["status"].startswith("201") and "resource" not in entries[0]
    assert entries[1]["resource"]["id"] == "oa1"
    assert entries[2]["resource"]["total"] == 0 and "entry" not in entries[2]["resource"]
    assert "new-for-b" not in response.text and "secret-of-b" not in response.text
    events = audited(gateway, response)
    # one interaction, one AuditEvent (IHE BALP): the transaction's, listing what each entry did
    [event] = [e for e in events if "AuthZconsent" not in str(e.get("meta"))]
    assert [s["code"] for s in event["subtype"]] == ["transaction", "create", "read", "search-type"]
    what = {e["what"]["reference"] for e in event["entity"] if "what" in e}
    created = entries[0]["response"]["location"]
    assert {"Patient/pa", "Patient/pb", "Observation/oa1", created} <= what
    assert "new-for-b" not in json.dumps(event)  # the audit names what was written, it does not copy it
    assert ("Patient/pb", "zcc-no-contact", "deny") in decisions(events)  # the search entry's withheld result


def test_a_denied_read_inside_a_transaction_looks_like_an_unknown_one(gateway: Gateway) -> None:
    def transaction(url: str) -> Any:
        entry = {"request": {"method": "GET", "url": url}}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
        headers = {**gateway.headers(TRIAGE), "Content-Type": "application/fhir+json"}
        return gateway.client.post("/fhir", json=bundle, headers=headers)

    denied, unknown = transaction("Observation/ob1"), transaction("Observation/zz1")
    assert denied.status_code == unknown.status_code == 404
    assert denied.json()["issue"][0]["diagnostics"].replace("ob1", "?") == unknown.json()["issue"][0][
        "diagnostics"].replace("zz1", "?")


def test_search_inference_empty_not_forbidden(gateway: Gateway) -> None:
    denied = gateway.get("Observation?subject=Patient/pb")
    unknown = gateway.get("Observation?subject=Patient/nobody")
    assert denied.status_code == unknown.status_code == 200
    strip = lambda r: {k: v for k, v in r.json().items() if k != "link"}  # noqa: E731
    assert strip(denied) == strip(unknown) == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    assert "x-zcc-suppressed" not in denied.headers
    assert ("Patient/pb", "zcc-no-contact", "deny") in decisions(audited(gateway, denied))
    assert decisions(audited(gateway, unknown)) == set()


def test_break_the_glass_without_reason_is_refused_and_audited(gateway: Gateway) -> None:
    response = gateway.get("Condition/ca", purpose="BTG", **BTG_HEADERS)
    assert response.status_code == 403 and "asthma" not in response.text
    assert "req-btg-incomplete" in response.text
    events = audited(gateway, response)
    assert interaction(events)["outcome"] == "4"
    [decision] = [e for e in events if "AuthZconsent" in str(e.get("meta"))]
    assert detail(decision, "rule") == ["req-btg-incomplete"] and "btg-audit" in detail(decision, "obligation")


def test_break_the_glass_with_reason_is_time_boxed_and_queued_for_review(gateway: Gateway) -> None:
    response = gateway.get("Condition/ca", purpose="BTG", **BTG_HEADERS, **{"X-Zcc-Emergency-Reason": "unconscious"})
    assert response.status_code == 200 and "x-zcc-btg-expires" in response.headers
    events = audited(gateway, response)
    assert decisions(events) == {("Patient/pa", "btg-emergency", "permit")}
    assert detail(interaction(events), "btg-reason") == ["unconscious"]
    from gateway.audit.log import AuditLog

    with gateway.services.store.read() as connection:
        reviews = AuditLog().open_reviews(connection)
    assert any(r["patient"] == "pa" and r["reason"] == "unconscious" for r in reviews)


def test_break_the_glass_after_a_refusal_is_refused(gateway: Gateway) -> None:
    response = gateway.get("Condition/cc", purpose="BTG", **BTG_HEADERS, **{"X-Zcc-Emergency-Reason": "collapse"})
    assert response.status_code == 403 and "copd" not in response.text and "btg-refused" in response.text
    assert decisions(audited(gateway, response)) == {("Patient/pc", "btg-refused", "deny")}


def test_expired_adhoc_consent_gives_nothing_a_valid_one_does(gateway: Gateway) -> None:
    expired = gateway.get("Observation/od1", caller=AMBULANCE, **HOLDER)
    valid = gateway.get("Observation/oe1", caller=AMBULANCE, **HOLDER)
    assert expired.status_code == 404 and "held-for-d" not in expired.text
    assert valid.status_code == 200 and valid.json()["code"]["text"] == "held-for-e"
    assert decisions(audited(gateway, expired)) == {("Patient/pd", "holder-no-consent", "deny")}
    permit = [e for e in audited(gateway, valid) if "AuthZconsent" in str(e.get("meta"))]
    assert detail(permit[0], "rule") == ["holder-consent"]
    assert {"what": {"reference": "Consent/adhoc-e"}} in [{"what": e["what"]} for e in permit[0]["entity"]
                                                          if "what" in e]


def test_consent_service_error_denies(gateway: Gateway) -> None:
    [stage] = [s for s in gateway.services.pipeline.stages if isinstance(s, ConsentStage)]
    source = stage.engine.facts_source

    def unavailable(patient: str) -> list[dict[str, Any]]:
        raise ConnectionError("consent service timed out")

    source.consent_source = unavailable
    try:
        response = gateway.get("Observation/oe1", caller=AMBULANCE, **HOLDER)
    finally:
        source.consent_source = None
    assert response.status_code == 403 and "held-for-e" not in response.text
    assert "holder-consent-unavailable" in response.text
    assert decisions(audited(gateway, response)) == {("Patient/pe", "holder-consent-unavailable", "deny")}
