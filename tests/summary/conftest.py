"""One gateway per module with consent and audit on (SQLite and PostgreSQL), holding the four-source patient of
tests/summary/sources.py, and clients with real SMART tokens for a HAP triagist and a ggz triagist."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey, fetch_token
from gateway.settings import Settings
from tests.pg import fresh_database
from tests.reference import MISSING_MESSAGE, REFERENCE_DIR
from tests.summary import sources

BASE = "http://testserver/fhir"
URAS = {"zcc-hap-desk": "90000501", "zcc-ggz-desk": "90000502"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('summary') / 'gateway.db'}"
    return fresh_database(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    # lenient: the summary suite is about disclosure, not about the adapters' profile conformance
    return build_services(Settings(database_url=database_url, base_url=BASE, validation="lenient"))


@pytest.fixture(scope="module")
def app(services):  # type: ignore[no-untyped-def]
    return create_app(services=services)


@pytest.fixture(scope="module")
def patients(app, services) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Ids of the reference patients, and of the RAV/VVT/ggz resources written for A. Direnç."""
    if not REFERENCE_DIR.exists():
        pytest.skip(MISSING_MESSAGE)
    store = services.store
    sources.ingest_hap(app.state.ingest)
    direnc = sources.patient_id(store, sources.DIRENC_BSN)
    allergy = sources.first_of(store, "AllergyIntolerance", direnc, lambda r: r.get("onsetDateTime"))
    problem = sources.first_of(store, "Condition", direnc,
                               lambda r: r.get("clinicalStatus") and r.get("code"))
    written = sources.add_other_sources(store, direnc, allergy, problem)
    hansman = sources.patient_id(store, sources.HANSMAN_BSN)
    sources.add_contact(store, hansman)  # the triagist may see both: the summaries must still not mix
    shared = sources.add_shared_provenance(store, direnc, hansman, f"Flag/{written['ggz-alert']}")
    return {"direnc": direnc, "hansman": hansman, "acceptatie": sources.patient_id(store, sources.ACCEPTATIE_BSN),
            "hap_allergy": allergy["id"], "hap_problem": problem["id"], "shared-provenance": shared, **written}


_KEY = ClientKey.generate("EC")


def _token(app, database_url: str, client_id: str, organization_type: str, role: str, purpose: str) -> str:  # type: ignore[no-untyped-def]
    from tests.auth.fixtures import _engine

    registry = ClientRegistry(_engine(database_url))
    if registry.get(client_id) is None:
        registry.add(ClientRegistration(
            client_id=client_id, ura=URAS[client_id],
            organization_type=organization_type, allowed_scopes="system/*.rs", allowed_roles=(role,),
            allowed_purposes=("TREAT", "BTG"), jwks=_KEY.public_jwks()), actor="tests")
    with TestClient(app) as http:
        token_url = http.get("/.well-known/smart-configuration").json()["token_endpoint"]
        claims = {"subject_role": role, "purpose_of_use": purpose}
        return fetch_token(token_url, client_id, _KEY, "system/*.rs", claims=claims, client=http)["access_token"]


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


Headers = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def as_hap(app, database_url: str) -> Headers:  # type: ignore[no-untyped-def]
    """Headers of a HAP triagist (organisation type N6); purpose BTG adds the break-the-glass headers."""
    return _headers(app, database_url, "zcc-hap-desk", "N6", "triagist")


@pytest.fixture(scope="module")
def as_ggz(app, database_url: str) -> Headers:  # type: ignore[no-untyped-def]
    return _headers(app, database_url, "zcc-ggz-desk", "G5", "ggz-triagist")


def _headers(app, database_url: str, client_id: str, organization_type: str, role: str) -> Headers:  # type: ignore[no-untyped-def]
    tokens: dict[str, str] = {}

    def headers(purpose: str = "TREAT", language: str = "nl", accept: str = "application/fhir+json") -> dict[str, str]:
        if purpose not in tokens:
            tokens[purpose] = _token(app, database_url, client_id, organization_type, role, purpose)
        built = {"Authorization": f"Bearer {tokens[purpose]}", "Accept": accept, "Accept-Language": language}
        if purpose == "BTG":
            built.update({"X-Zcc-Emergency": "true", "X-Zcc-Emergency-Reason": "bewusteloos aangetroffen",
                          "X-Zcc-Patient-Unable-To-Consent": "true"})
        return built

    return headers
