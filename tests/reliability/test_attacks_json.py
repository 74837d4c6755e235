"""JSON attack catalogue (conformance.fhirjson on the REST API): depth bombs, duplicate keys, out-of-range
numbers, huge strings. Each ends in a 4xx OperationOutcome, fast, with nothing written."""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import FHIR_JSON, assert_outcome, stored_versions


@pytest.mark.parametrize(("name", "body", "status", "code"), [
    ("array-depth-bomb", b"[" * 200_000 + b"]" * 200_000, 400, "structure"),
    ("object-depth-bomb", b'{"resourceType":"Patient","a":' + b'{"a":' * 50_000 + b"1" + b"}" * 50_001, 400,
     "structure"),
    ("unbalanced-depth-bomb", b'{"resourceType":"Patient","a":' + b"[" * 1_000_000, 400, "structure"),
    ("duplicate-keys", b'{"resourceType":"Patient","gender":"male","gender":"female"}', 400, "structure"),
    ("duplicate-resource-type", b'{"resourceType":"Patient","resourceType":"Observation"}', 400, "structure"),
    ("nan", b'{"resourceType":"Observation","valueQuantity":{"value":NaN}}', 400, "structure"),
    ("infinity", b'{"resourceType":"Observation","valueQuantity":{"value":-Infinity}}', 400, "structure"),
    ("not-utf8", b'{"resourceType":"Patient","gender":"\xff\xfe"}', 400, "structure"),
    ("lone-surrogate", b'{"resourceType":"Patient","id":"\\ud800"}', 400, {"structure", "invalid"}),
    ("top-level-array", b'[{"resourceType":"Patient"}]', 400, "structure"),
    ("no-resource-type", b'{"gender":"male"}', 400, "structure"),
])
def test_hostile_json_is_refused_quickly_without_writing(
    client, services, name: str, body: bytes, status: int, code: str | set[str],
) -> None:
    before = stored_versions(services)
    started = time.monotonic()
    response = client.post("/fhir/Patient", content=body, headers=FHIR_JSON)
    assert time.monotonic() - started < 5, name
    assert_outcome(response, {status, 422}, code if status == 400 else None)
    assert stored_versions(services) == before


def test_body_over_the_limit_is_refused_before_it_is_read(client, services) -> None:
    """A 100 MB string: refused by the declared Content-Length, without buffering the body."""
    huge = b'{"resourceType":"Patient","gender":"' + b"x" * (100 * 1024 * 1024) + b'"}'
    before = stored_versions(services)
    response = client.post("/fhir/Patient", content=huge, headers=FHIR_JSON)
    assert_outcome(response, 413, "too-costly")
    assert str(services.settings.max_body) in response.json()["issue"][0]["diagnostics"]
    assert stored_versions(services) == before


def test_chunked_body_over_the_limit_is_refused_while_streaming(client, services) -> None:
    chunk = b"x" * (1024 * 1024)
    limit_chunks = services.settings.max_body // len(chunk) + 2
    sent = []

    def body():  # no Content-Length: the limit must hold while reading
        yield b'{"resourceType":"Patient","gender":"'
        for _ in range(limit_chunks):
            sent.append(1)
            yield chunk
        yield b'"}'

    before = stored_versions(services)
    response = client.post("/fhir/Patient", content=body(), headers=FHIR_JSON)
    assert_outcome(response, 413, "too-costly")
    assert stored_versions(services) == before


def test_string_over_the_fhir_limit_is_refused_with_its_path(client, services) -> None:
    too_long = "x" * (services.settings.max_string + 1)
    body = {"resourceType": "Patient", "name": [{"family": "Jansen", "given": ["Piet", too_long]}]}
    before = stored_versions(services)
    response = client.post("/fhir/Patient", json=body, headers=FHIR_JSON)
    outcome = assert_outcome(response, 422, "too-long")
    assert outcome["issue"][0]["expression"] == ["Patient.name[0].given[1]"]
    assert stored_versions(services) == before


def test_string_over_the_limit_inside_a_transaction_writes_nothing(client, services) -> None:
    too_long = "x" * (services.settings.max_string + 1)
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b6d7c1e-1b0e-4a53-8a8e-6a3c8f0e0a01",
         "resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0b6d7c1e-1b0e-4a53-8a8e-6a3c8f0e0a02",
         "resource": {"resourceType": "Patient", "name": [{"text": too_long}]},
         "request": {"method": "POST", "url": "Patient"}},
    ]}
    before = stored_versions(services)
    response = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert_outcome(response, 422, "too-long")
    assert stored_versions(services) == before


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1e-400", "123456789012345678901234567890.5"])
def test_extreme_decimals_never_cause_a_server_error(client, services, number: str) -> None:
    """FHIR decimals are arbitrary precision: such a value is either stored exactly as sent, or refused
    clearly; search on it must keep working."""
    body = ('{"resourceType":"Observation","status":"final","code":{"text":"x"},'
            f'"valueQuantity":{{"value":{number},"unit":"mmol/l"}}}}').encode()
    response = client.post("/fhir/Observation", content=body, headers=FHIR_JSON)
    assert response.status_code in {201, 400, 422}, response.text[:300]
    if response.status_code == 201:
        assert f'"value":{number}' in response.text
        location = response.headers["location"].split("/_history")[0]
        read = client.get(location.replace("http://testserver", ""), headers=FHIR_JSON)
        assert f'"value":{number}' in read.text
    else:
        assert_outcome(response, {400, 422})
    search = client.get("/fhir/Observation", params={"value-quantity": "gt0"}, headers=FHIR_JSON)
    assert search.status_code == 200, search.text[:300]


def test_1e400_as_a_search_value_is_handled(client) -> None:
    for value in ("1e400", "gt1e400", "lt-1e400", "eq1e-400"):
        response = client.get("/fhir/Observation", params={"value-quantity": value}, headers=FHIR_JSON)
        assert response.status_code in {200, 400}, (value, response.text[:300])
        if response.status_code == 400:
            assert_outcome(response, 400)
