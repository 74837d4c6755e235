"""Schemathesis against the gateway's own OpenAPI description (/openapi.json, whose FHIR paths are generated
from the registry by gateway/fhir/openapi.py), in-process over ASGI: every documented operation gets generated
requests — valid ones and, for negative testing, ones that break the schema — with a real access token
(auth on, consent and audit on: the production configuration) and with auth off (insecure dev mode, consent
off, so the handlers are reached). Invariants: never a 5xx (`not_a_server_error`), every answer within
RESPONSE_LIMIT seconds (no hangs), and the responses match the description (status codes, content types).

Bounded and reproducible: hypothesis is derandomised (the same requests every run), `ZCC_FUZZ_EXAMPLES`
(default 10) examples per operation, `ZCC_FUZZ_TYPE_EXAMPLES` (default 1) per per-type search, the per-type
searches split between the two runs. A deeper run (a few minutes; prints per-operation progress):

    ZCC_FUZZ_EXAMPLES=100 ZCC_FUZZ_TYPE_EXAMPLES=5 ZCC_FUZZ_ALL_TYPES=1 ZCC_FUZZ_VERBOSE=1 \
        .venv/bin/pytest tests/reliability/test_schemathesis.py -s -p no:randomly
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance
from starlette.testclient import TestClient

from conformance.fhirxml import json_to_xml
from gateway.app import build_services, create_app
from gateway.fhir.formats import XML
from gateway.settings import Settings
from tests.auth.fixtures import obtain_auth_header

pytestmark = pytest.mark.timeout(600)

EXAMPLES = int(os.environ.get("ZCC_FUZZ_EXAMPLES", "10"))
TYPE_EXAMPLES = int(os.environ.get("ZCC_FUZZ_TYPE_EXAMPLES", "1"))
ALL_TYPES = bool(os.environ.get("ZCC_FUZZ_ALL_TYPES"))
VERBOSE = bool(os.environ.get("ZCC_FUZZ_VERBOSE"))
# Seconds; generous because the build machine is shared (an unauthenticated /metadata takes ~1 s of CPU), far
# below the 30 s a request would take to hit a server-side timeout (database wait, body deadline).
RESPONSE_LIMIT = float(os.environ.get("ZCC_FUZZ_RESPONSE_LIMIT", "10"))
# The FHIR paths are generated and must match what the server answers; the other routes (auth, ingestion) are
# FastAPI's own description, which documents only the success status: only the server-error check there.
FHIR_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]
OTHER_CHECKS = [not_a_server_error]
_UNWRITABLE = "cannot be written as FHIR XML"
SEEDED = {  # resources the fuzzer's ids are pointed at half of the time, so reads and updates find something
    "Patient": {"resourceType": "Patient", "id": "fuzz-p1", "active": True, "name": [{"family": "Jansen"}],
                "birthDate": "1970-01-01"},
    "Organization": {"resourceType": "Organization", "id": "fuzz-o1", "name": "HAP Fuzz"},
    "Observation": {"resourceType": "Observation", "id": "fuzz-obs1", "status": "final",
                    "code": {"text": "pijnscore"}, "subject": {"reference": "Patient/fuzz-p1"},
                    "effectiveDateTime": "2024-05-01T10:00:00Z", "valueString": "3"},
}


@dataclass
class Gateway:
    app: Any
    schema: Any
    database_url: str | None  # None: auth off
    model: Any
    token: dict[str, str] = field(default_factory=dict)
    token_time: float = 0.0

    @property
    def headers(self) -> dict[str, str]:
        """A real access token from the token endpoint, renewed before its 300 s lifetime ends."""
        if self.database_url is None:
            return {}
        if time.monotonic() - self.token_time > 200:
            self.token = obtain_auth_header(self.app, self.database_url)
            self.token_time = time.monotonic()
        return self.token


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    slowest: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)


def _gateway(tmp_path_factory: pytest.TempPathFactory, name: str, insecure: bool) -> Iterator[Gateway]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp(name) / 'gateway.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ZCC_INSECURE_DEV", "1" if insecure else "0")
        env.setenv("ZCC_AUTH_KEY_DIR", str(tmp_path_factory.mktemp(f"{name}-keys")))
        services = build_services(Settings(database_url=database_url, base_url="http://testserver/fhir",
                                           consent=not insecure))
        app = create_app(services=services)
    gateway = Gateway(app, None, None if insecure else database_url, services.type_model)
    headers = gateway.headers
    with TestClient(app) as client:
        for resource in SEEDED.values():
            response = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                                  headers={**headers, "Content-Type": "application/fhir+json"})
            assert response.status_code in {200, 201}, response.text
    gateway.schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield gateway


@pytest.fixture(scope="module")
def auth_on(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory, "auth-on", insecure=False)


@pytest.fixture(scope="module")
def auth_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    yield from _gateway(tmp_path_factory, "auth-off", insecure=True)


def _examples(operation: Any) -> int:
    """Per-type searches (146 of them) get few examples each; the generic FHIR routes and the rest more."""
    return TYPE_EXAMPLES if _per_type(operation) else EXAMPLES


def _send(gateway: Gateway, case: Any) -> Any:
    extra: dict[str, Any] = {}
    if case.media_type == XML and isinstance(case.body, dict):
        try:  # the generated resource in FHIR's own XML form, so the XML parser's deep paths are reached
            extra["data"] = json_to_xml(case.body, gateway.model)
        except Exception:  # not representable: schemathesis' generic XML serialisation is sent instead
            pass
    return case.call(headers=gateway.headers or None, **extra)


def fuzz(gateway: Gateway, operation: Any, tally: Tally) -> None:
    strategy = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                         operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    checks = FHIR_CHECKS if operation.path.startswith("/fhir/") or operation.path == "/fhir" else OTHER_CHECKS
    if operation.path == "/fhir/.well-known/smart-configuration":
        checks = OTHER_CHECKS

    @settings(max_examples=_examples(operation), derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy, seeded=st.booleans())
    def run(case: Any, seeded: bool) -> None:
        resource_type = (case.path_parameters or {}).get("type") or operation.path.removeprefix("/fhir/")
        if seeded and "id" in (case.path_parameters or {}) and resource_type in SEEDED:
            case.path_parameters["id"] = SEEDED[resource_type]["id"]
        if gateway.database_url is None and case.headers:  # auth off: a generated bogus token would only get a 401
            case.headers.pop("Authorization", None)
        started = time.monotonic()
        response = _send(gateway, case)
        elapsed = time.monotonic() - started
        tally.cases += 1
        tally.statuses[response.status_code] += 1
        tally.slowest = max(tally.slowest, elapsed)
        if elapsed > RESPONSE_LIMIT:  # recorded, not raised: a timing failure must not look "flaky" to hypothesis
            tally.failures[f"{operation.label} (slow)"] = f"{case.method} {case.formatted_path}: {elapsed:.1f} s"
        case.validate_response(response, checks=checks)
        # gateway.fhir.formats answers 406 when a response cannot be written as XML; only $validate may (it echoes
        # the client's own unknown property names); anywhere else it is a server bug (e.g. an empty array).
        assert not (response.status_code == 406 and _UNWRITABLE in response.text
                    and not operation.path.endswith("$validate")), response.text[:500]

    try:
        run()
    except (Exception, BaseExceptionGroup) as error:  # keep going: report every failing operation at once
        tally.failures[operation.label] = _describe(error)[:4000]


def _describe(error: BaseException) -> str:
    text = str(error)
    for inner in getattr(error, "exceptions", ()):
        text += "\n" + _describe(inner)
    return text


def _per_type(operation: Any) -> bool:
    return "fhir-search" in (operation.definition.raw.get("tags") or [])


def _run(gateway: Gateway, label: str, half: int) -> Tally:
    """Every operation of the description; the 146 per-type searches are split between the two runs (`half` 0 or 1)
    unless ZCC_FUZZ_ALL_TYPES is set, so that one test session covers each once and stays short."""
    tally = Tally()
    operations = [result.ok() for result in gateway.schema.get_all_operations()]
    per_type = [operation for operation in operations if _per_type(operation)]
    if not ALL_TYPES:
        skipped = {id(operation) for operation in per_type[1 - half::2]}
        operations = [operation for operation in operations if id(operation) not in skipped]
    started = time.monotonic()
    for operation in operations:
        begun, cases = time.monotonic(), tally.cases
        fuzz(gateway, operation, tally)
        if VERBOSE:
            print(f"{operation.label}: {tally.cases - cases} in {time.monotonic() - begun:.2f} s")
    print(f"\nschemathesis {label}: {len(operations)} operations, {tally.cases} requests in "
          f"{time.monotonic() - started:.0f} s, slowest {tally.slowest:.2f} s, "
          f"statuses {dict(sorted(tally.statuses.items()))}, failures {len(tally.failures)}")
    for name, failure in tally.failures.items():
        print(f"--- {name}\n{failure}")
    return tally


def test_openapi_describes_the_fhir_routes(auth_on: Gateway) -> None:
    spec = auth_on.schema.raw_schema
    paths = spec["paths"]
    for path in ("/fhir/metadata", "/fhir/{type}", "/fhir/{type}/{id}", "/fhir/{type}/{id}/_history/{vid}",
                 "/fhir/Patient", "/fhir/{type}/$validate", "/fhir/Patient/{id}/$summary"):
        assert path in paths, path
    type_param = next(p for p in paths["/fhir/{type}"]["post"]["parameters"] if p.get("name") == "type")
    assert {"Patient", "Observation", "Slot"} <= set(type_param["schema"]["enum"])
    body = paths["/fhir/{type}"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/fhir+json", "application/fhir+xml"}
    assert "resourceType" in spec["components"]["schemas"]["Resource"]["required"]
    patient_search = {p.get("name") for p in paths["/fhir/Patient"]["get"]["parameters"]}
    assert {"birthdate", "family", "identifier", "_include"} <= patient_search
    assert paths["/fhir/{type}/{id}"]["get"]["responses"]["404"] == {"$ref": "#/components/responses/Error404"}
    assert "security" not in paths["/fhir/metadata"]["get"] and paths["/fhir/{type}"]["get"]["security"]


def test_schemathesis_with_a_real_token(auth_on: Gateway) -> None:
    tally = _run(auth_on, "auth on (token, consent, audit)", half=0)
    assert not tally.failures, sorted(tally.failures)
    assert tally.statuses[401] == 0  # the token is used: the fuzzer reaches the handlers


def test_schemathesis_with_auth_off(auth_off: Gateway) -> None:
    tally = _run(auth_off, "auth off (insecure dev, consent off)", half=1)
    assert not tally.failures, sorted(tally.failures)


# -- what the fuzzer found, pinned down (each was a 500 or a non-FHIR answer before the fix) -----

XML_ANSWER = {"Accept": "application/fhir+xml"}


def test_capability_statement_in_xml(auth_off: Gateway) -> None:
    """Was 500: `patchFormat: []` and empty `searchInclude` lists (FHIR has no empty arrays; XML cannot say one)."""
    with TestClient(auth_off.app) as client:
        response = client.get("/fhir/metadata", headers=XML_ANSWER)
    assert response.status_code == 200 and response.text.startswith("<?xml"), response.text[:300]
    assert "<CapabilityStatement" in response.text


@pytest.mark.parametrize("kind", ["batch", "transaction"])
def test_empty_batch_and_transaction_in_xml(auth_off: Gateway, kind: str) -> None:
    """Was 500: the response Bundle carried `entry: []`."""
    with TestClient(auth_off.app) as client:
        response = client.post("/fhir", json={"resourceType": "Bundle", "type": kind},
                               headers={**XML_ANSWER, "Content-Type": "application/fhir+json"})
    assert response.status_code == 200, response.text[:300]
    assert f'<type value="{kind}-response"/>' in response.text and "<entry" not in response.text


def test_empty_history_in_xml(auth_off: Gateway) -> None:
    """Was 500, hidden behind the 406 until the fuzzer learnt to flag it: an empty history Bundle had `entry: []`."""
    with TestClient(auth_off.app) as client:
        response = client.get("/fhir/Basic/_history", headers=XML_ANSWER)
    assert response.status_code == 200, response.text[:300]
    assert '<type value="history"/>' in response.text and "<entry" not in response.text


def test_control_character_is_refused_at_write(auth_off: Gateway) -> None:
    """Was: stored, after which every XML read and search returning the resource answered 500."""
    patient = {"resourceType": "Patient", "id": "fuzz-ctl", "name": [{"family": "a\u0005b"}]}
    with TestClient(auth_off.app) as client:
        response = client.put("/fhir/Patient/fuzz-ctl", json=patient, headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 422, response.text[:300]
        issue = response.json()["issue"][0]
        assert issue["code"] == "invalid" and issue["expression"] == ["Patient.name[0].family"]
        assert client.get("/fhir/Patient/fuzz-ctl").status_code == 404  # nothing written
        tab = {**patient, "name": [{"family": "a\tb\r\nc"}]}  # what XML can carry is still accepted
        assert client.put("/fhir/Patient/fuzz-ctl", json=tab,
                          headers={"Content-Type": "application/fhir+json"}).status_code == 201


def test_answer_that_xml_cannot_carry_is_a_406(auth_off: Gateway) -> None:
    """Was 500: $validate echoes an unknown property name with a control character in its OperationOutcome."""
    body = '{"resourceType": "Patient", "a\\u0005": []}'
    with TestClient(auth_off.app) as client:
        response = client.post("/fhir/$validate", content=body,
                               headers={**XML_ANSWER, "Content-Type": "application/fhir+json"})
        assert response.status_code == 406, response.text[:300]
        assert "OperationOutcome" in response.text and "not-supported" in response.text
        as_json = client.post("/fhir/$validate", content=body, headers={"Content-Type": "application/fhir+json"})
    assert as_json.status_code == 200 and as_json.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("path", ["/fhir/%0A/%2B", "/fhir/Patient/a%0Ab", "/fhir/%0A"])
def test_line_break_in_the_url_gets_an_operation_outcome(auth_off: Gateway, path: str) -> None:
    """Was: the framework's `{"detail": "Not Found"}` (the path route did not match across a line break)."""
    with TestClient(auth_off.app) as client:
        response = client.get(path)
    assert response.status_code in {400, 404}
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"
