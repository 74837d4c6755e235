"""The helpers other test suites use to obtain real tokens must themselves work."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from gateway.auth.settings import AuthSettings
from gateway.store.engine import create_database_engine
from tests.auth.conftest import build_app
from tests.auth.fixtures import GatewayTokenAuth, auth_header, obtain_auth_header  # noqa: F401


def _app_and_url(tmp_path: Path) -> tuple[object, str]:
    url = f"sqlite:///{tmp_path / 'suite.db'}"
    settings = AuthSettings(issuer="http://127.0.0.1:8080", fhir_base_url="http://127.0.0.1:8080/fhir",
                            key_dir=tmp_path / "keys")
    app, _ = build_app(settings, create_database_engine(url))
    return app, url


def test_obtain_auth_header_gives_a_working_header(tmp_path: Path) -> None:
    app, url = _app_and_url(tmp_path)
    headers = obtain_auth_header(app, url)
    response = TestClient(app).get("/fhir/Patient", headers=headers)
    assert response.status_code == 200 and response.json()["client_id"] == "test-suite"


def test_narrow_scope_is_enforced(tmp_path: Path) -> None:
    app, url = _app_and_url(tmp_path)
    headers = obtain_auth_header(app, url, "system/Observation.rs")
    assert TestClient(app).get("/fhir/Patient", headers=headers).status_code == 403


def test_second_call_reuses_the_registration(tmp_path: Path) -> None:
    app, url = _app_and_url(tmp_path)
    first, second = obtain_auth_header(app, url), obtain_auth_header(app, url)
    assert first != second


def test_auth_class_attaches_a_token(tmp_path: Path) -> None:
    app, url = _app_and_url(tmp_path)
    client = TestClient(app)
    client.auth = GatewayTokenAuth(app, url, role="arts", purpose="COC")
    identity = client.get("/fhir/Patient").json()
    assert (identity["role"], identity["purpose_of_use"]) == ("arts", "COC")


def test_pytest_fixture_returns_the_helper(auth_header) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    assert auth_header is obtain_auth_header
