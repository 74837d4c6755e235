"""HTTP oddities, in-process: method-override headers are ignored, TRACE and friends are refused with an
OperationOutcome, CORS is off unless configured, and a slow body is cut off by the configured deadline."""

from __future__ import annotations

import asyncio

import pytest

from gateway.limits.body_deadline import BodyDeadlineMiddleware
from tests.reliability.conftest import FHIR_JSON, assert_outcome, stored_versions


@pytest.fixture(scope="module")
def patient_id(client) -> str:
    response = client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"}, headers=FHIR_JSON)
    assert response.status_code == 201
    return response.json()["id"]


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_are_ignored(client, services, patient_id: str, header: str) -> None:
    """A POST stays a POST: an override header must not turn it into a DELETE of the addressed resource."""
    response = client.post(f"/fhir/Patient/{patient_id}", headers={**FHIR_JSON, header: "DELETE"},
                           json={"resourceType": "Patient"})
    assert response.status_code in {400, 404, 405}, response.text[:300]
    assert client.get(f"/fhir/Patient/{patient_id}", headers=FHIR_JSON).status_code == 200
    before = stored_versions(services)
    response = client.get(f"/fhir/Patient/{patient_id}", headers={**FHIR_JSON, header: "DELETE"})
    assert response.status_code == 200
    assert stored_versions(services) == before


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT", "PROPFIND", "MKCOL", "DEBUG"])
@pytest.mark.parametrize("path", ["/fhir/Patient", "/fhir/metadata", "/ingest/hap", "/"])
def test_unserved_methods_get_a_405_outcome(client, method: str, path: str) -> None:
    response = client.request(method, path, headers=FHIR_JSON)
    if response.status_code == 401:  # unauthenticated paths may refuse earlier, also with an outcome
        assert_outcome(response, 401)
        return
    assert_outcome(response, 405, "not-supported")
    assert "GET" in response.headers["allow"] and "TRACE" not in response.headers["allow"]
    assert "authorization" not in response.text.lower()


def test_cors_is_off_by_default(client) -> None:
    preflight = client.options("/fhir/Patient", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "authorization"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-credentials" not in preflight.headers
    read = client.get("/fhir/metadata", headers={"Origin": "https://evil.example", **FHIR_JSON})
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


def test_path_traversal_and_odd_ids_are_refused(client) -> None:
    for path in ("/fhir/Patient/..%2F..%2Fetc%2Fpasswd", "/fhir/Patient/%00", "/fhir/Patient/" + "a" * 5000,
                 "/fhir/..%2Fadmin", "/fhir/Patient/1/_history/abc%27"):
        response = client.get(path, headers=FHIR_JSON)
        assert 400 <= response.status_code < 500, (path, response.status_code)
        assert_outcome(response, response.status_code)


def test_unsupported_content_types_are_refused(client, services) -> None:
    before = stored_versions(services)
    for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                         ""):
        response = client.post("/fhir/Patient", content=b'{"resourceType":"Patient"}',
                               headers={"Content-Type": content_type, "Accept": "application/fhir+json"})
        assert response.status_code in {400, 415}, (content_type, response.status_code)
    assert stored_versions(services) == before


def test_slow_body_is_cut_off_with_408() -> None:
    """A body that trickles in slower than the deadline: 408 OperationOutcome, and the application's own
    (late) answer is dropped."""
    sent: list[dict] = []

    async def application(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    async def slow_receive() -> dict:
        await asyncio.sleep(0.3)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    middleware = BodyDeadlineMiddleware(application, seconds=0.5)
    asyncio.run(middleware({"type": "http", "method": "POST", "path": "/fhir/Patient", "headers": []},
                           slow_receive, send))
    assert sent[0]["status"] == 408
    assert b'"code":"timeout"' in sent[1]["body"] and b"late" not in sent[1]["body"]
    assert len(sent) == 2


def test_body_within_the_deadline_passes_untouched() -> None:
    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": b"a", "more_body": True},
              {"type": "http.request", "body": b"b", "more_body": False}]

    async def application(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def receive() -> dict:
        return chunks.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(BodyDeadlineMiddleware(application, seconds=5)({"type": "http", "method": "POST", "headers": []},
                                                               receive, send))
    assert sent[0]["status"] == 201 and sent[1]["body"] == b"ab"
