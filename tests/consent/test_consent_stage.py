"""The consent stage against every response shape, with a minimal fake next handler and fixed facts."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.consent.engine import DECISION_HEADER, STATE_RECORDS, ConsentEngine
from gateway.consent.stage import ConsentStage
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from tests.consent.fakes import BASE, scope, triagist

GGZ_LABEL = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}


def obs(oid: str, patient: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }


def run(engine: ConsentEngine, it: Interaction, result: Result, request_scope: RequestScope | None = None) -> Result:
    calls: list[Interaction] = []

    def handler(_: RequestScope, seen: Interaction) -> Result:
        calls.append(seen)
        return result

    outcome = ConsentStage(engine)(request_scope or scope(), it, handler)
    assert calls, "the handler should have been called"
    return outcome


def read(resource_type: str = "Observation", rid: str = "o1", **headers: str) -> Interaction:
    return Interaction("read", "GET", resource_type, rid, headers=headers)


def test_permitted_read_passes_with_decision_id(engine: ConsentEngine) -> None:
    result = run(engine, read(), Result(200, resource=obs("o1", "p1")))
    assert result.resource == obs("o1", "p1") and result.headers[DECISION_HEADER]


def test_read_without_contact_is_a_plain_404(engine: ConsentEngine) -> None:
    with pytest.raises(FhirError) as caught:
        run(engine, read(rid="o2"), Result(200, resource=obs("o2", "p2")))
    assert caught.value.status == 404
    assert caught.value.issues[0].diagnostics == "Observation/o2 is not known"  # same text as a missing resource


def test_read_of_ggz_data_is_403_with_suppressed_and_btg_hint(engine: ConsentEngine) -> None:
    with pytest.raises(FhirError) as caught:
        run(engine, read(), Result(200, resource=obs("o1", "p1", meta=GGZ_LABEL)))
    codes = [issue.code for issue in caught.value.issues]
    assert caught.value.status == 403 and "suppressed" in codes
    assert any("break-the-glass" in issue.diagnostics for issue in caught.value.issues)


def test_searchset_filters_matches_and_includes(engine: ConsentEngine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 4,
        "link": [{"relation": "self", "url": f"{BASE}/Observation"}],
        "entry": [
            {"resource": obs("a", "p1"), "search": {"mode": "match"}},
            {"resource": obs("b", "p2"), "search": {"mode": "match"}},
            {"resource": obs("c", "p1", meta=GGZ_LABEL), "search": {"mode": "match"}},
            {"resource": {"resourceType": "Patient", "id": "p2"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "Patient", "id": "p1"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "Organization", "id": "org"}, "search": {"mode": "include"}},
        ],
    }
    it = Interaction("search-type", "GET", "Observation", params=[("_include", "Observation:subject")])
    result = run(engine, it, Result(200, resource=bundle))
    assert result.resource is not None
    kept = [(e["resource"]["resourceType"], e["resource"].get("id")) for e in result.resource["entry"]]
    assert kept[:3] == [("Observation", "a"), ("Patient", "p1"), ("Organization", "org")]
    outcome = result.resource["entry"][-1]
    assert outcome["search"]["mode"] == "outcome" and outcome["resource"]["issue"][0]["code"] == "suppressed"
    assert "1 resource(s)" in outcome["resource"]["issue"][0]["diagnostics"]  # only the ggz one; p2 stays silent
    assert result.resource["total"] == 1
    assert result.headers["X-Zcc-Suppressed"] == "1"


def test_paged_searchset_omits_total(engine: ConsentEngine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 120,
        "link": [{"relation": "next", "url": "x"}],
        "entry": [{"resource": obs("a", "p1"), "search": {"mode": "match"}}],
    }
    result = run(engine, Interaction("search-type", "GET", "Observation"), Result(200, resource=bundle))
    assert result.resource is not None and "total" not in result.resource


def test_search_for_denied_patient_looks_empty(engine: ConsentEngine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{"resource": {"resourceType": "Patient", "id": "p2"}, "search": {"mode": "match"}}],
    }
    it = Interaction("search-type", "GET", "Patient", params=[("identifier", "bsn|1")])
    result = run(engine, it, Result(200, resource=bundle))
    assert result.resource == {"resourceType": "Bundle", "type": "searchset", "total": 0}


def test_history_removes_denied_versions_and_unverifiable_deletions(engine: ConsentEngine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "history",
        "total": 3,
        "entry": [
            {"resource": obs("a", "p1"), "request": {"method": "PUT", "url": "Observation/a"}},
            {"resource": obs("b", "p2"), "request": {"method": "PUT", "url": "Observation/b"}},
            {"request": {"method": "DELETE", "url": "Observation/c"}},
        ],
    }
    result = run(engine, Interaction("history-type", "GET", "Observation"), Result(200, resource=bundle))
    assert result.resource is not None
    assert [e["resource"]["id"] for e in result.resource["entry"]] == ["a"]
    assert result.resource["total"] == 1


def test_transaction_response_entry_is_emptied(engine: ConsentEngine) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction-response",
        "entry": [
            {"resource": obs("a", "p1"), "response": {"status": "200 OK"}},
            {"fullUrl": f"{BASE}/Observation/b", "resource": obs("b", "p2"), "response": {"status": "200 OK"}},
        ],
    }
    it = Interaction("transaction", "POST", body={"resourceType": "Bundle", "type": "transaction"})
    result = run(engine, it, Result(200, resource=bundle))
    assert result.resource is not None
    second = result.resource["entry"][1]
    assert "resource" not in second and "fullUrl" not in second and second["response"]["status"] == "404 Not Found"


def test_embedded_document_is_one_unit(engine: ConsentEngine) -> None:
    document = {
        "resourceType": "Bundle",
        "id": "doc",
        "type": "document",
        "entry": [{"resource": obs("a", "p1")}, {"resource": obs("b", "p2")}],
    }
    with pytest.raises(FhirError) as caught:
        run(engine, read("Bundle", "doc"), Result(200, resource=document))
    assert caught.value.status == 404


def test_operation_parameters_are_filtered(engine: ConsentEngine) -> None:
    output = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "return", "resource": obs("a", "p2")},
            {"name": "note", "valueString": "ok"},
        ],
    }
    it = Interaction("operation", "POST", "Observation", operation="validate")
    result = run(engine, it, Result(200, resource=output))
    assert result.resource == {"resourceType": "Parameters", "parameter": [{"name": "note", "valueString": "ok"}]}


def test_write_echo_of_invisible_patient_is_dropped(engine: ConsentEngine) -> None:
    it = Interaction("create", "POST", "Observation", body=obs("n", "p2"))
    result = run(engine, it, Result(201, resource=obs("n", "p2"), headers={"Location": "x"}))
    assert result.status == 201 and result.body_resource() is None and result.headers["Location"] == "x"


def test_not_modified_only_after_a_permit(engine: ConsentEngine) -> None:
    ok = Result(200, resource=obs("o1", "p1"), headers={"ETag": 'W/"1"'})
    assert run(engine, read(**{"if-none-match": 'W/"1"'}), ok).status == 304
    denied = Result(200, resource=obs("o2", "p2"), headers={"ETag": 'W/"1"'})
    with pytest.raises(FhirError) as caught:
        run(engine, read(rid="o2", **{"if-none-match": 'W/"1"'}), denied)
    assert caught.value.status == 404


def _refused(engine: ConsentEngine, it: Interaction, identity: Any = None) -> FhirError:
    def handler(_: RequestScope, __: Interaction) -> Result:
        raise AssertionError("the handler must not run")

    with pytest.raises(FhirError) as caught:
        ConsentStage(engine)(scope(identity), it, handler)
    return caught.value


def test_wrong_purpose_is_refused_before_any_data_is_read(engine: ConsentEngine) -> None:
    error = _refused(engine, read(), triagist(purpose_of_use="HRESCH"))
    assert error.status == 403 and "req-purpose" in error.issues[0].diagnostics


def test_btg_without_reason_is_refused(engine: ConsentEngine) -> None:
    identity = triagist(purpose_of_use="BTG")
    error = _refused(
        engine, Interaction("read", "GET", "Observation", "o1", headers={"x-zcc-emergency": "true"}), identity
    )
    assert error.status == 403 and "no reason given" in error.issues[0].diagnostics


def test_unsafe_queries_are_refused(engine: ConsentEngine) -> None:
    assert (
        _refused(engine, Interaction("search-type", "GET", "Observation", params=[("_has:X:y:z", "1")])).status == 403
    )
    assert _refused(engine, Interaction("search-system", "GET", params=[("code", "x")])).status == 403
    assert _refused(engine, Interaction("search-type", "GET", "Observation", params=[("bogus", "1")])).status == 400


def test_consent_write_needs_admin(engine: ConsentEngine) -> None:
    body = {"resourceType": "Consent", "patient": {"reference": "Patient/p1"}}
    assert _refused(engine, Interaction("create", "POST", "Consent", body=body)).status == 403
    labelled = obs("x", "p1", meta=GGZ_LABEL)
    assert _refused(engine, Interaction("create", "POST", "Observation", body=labelled)).status == 403


def test_decisions_are_recorded_for_the_audit(engine: ConsentEngine) -> None:
    request_scope = scope()
    it = read()
    run(engine, it, Result(200, resource=obs("o1", "p1")), request_scope)
    record = request_scope.state[STATE_RECORDS][id(it)]
    assert record.released == ["Observation/o1"] and record.patients == ["p1"]
    assert record.decisions[0][1].rule_id == "zcc-treatment"
