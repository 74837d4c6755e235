"""The AuthStage in front of `/fhir` and `/ingest`: 401s, public paths, identity hand-over, scope checks,
insecure dev mode."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from gateway.auth.keys import SigningKeys
from gateway.auth.scopes import parse_scopes
from gateway.auth.settings import AuthSettings
from gateway.auth.tokens import TokenGrant, TokenIssuer
from tests.auth.conftest import ISSUER, build_app

PROTECTED = [("GET", "/fhir/Patient"), ("DELETE", "/fhir/Patient/1"), ("POST", "/ingest/hap")]


def bearer(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _assert_unauthorized(response: Any, issue_code: str) -> str:
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == issue_code
    return response.headers["www-authenticate"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_missing_token_is_401_with_challenge(client: TestClient, method: str, path: str) -> None:
    challenge = _assert_unauthorized(client.request(method, path), "login")
    assert challenge == 'Bearer realm="zcc-gateway"'


def test_other_auth_scheme_counts_as_missing(client: TestClient) -> None:
    _assert_unauthorized(client.get("/fhir/Patient", headers={"Authorization": "Basic dXNlcjpwdw=="}), "login")


def test_invalid_token_is_401_invalid_token(client: TestClient) -> None:
    challenge = _assert_unauthorized(client.get("/fhir/Patient", headers={"Authorization": "Bearer abc"}), "security")
    assert 'error="invalid_token"' in challenge


def test_expired_token_is_401_expired(client: TestClient, settings: AuthSettings) -> None:
    keys = SigningKeys(settings.key_dir)
    grant = TokenGrant("x", tuple(parse_scopes("system/*.rs")), "90000123", "Z33", "arts", "TREAT")
    token = TokenIssuer(keys, ISSUER, settings.fhir_base_url, clock=lambda: 1_000_000).issue(grant).access_token
    challenge = _assert_unauthorized(client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}),
                                     "expired")
    assert "expired" in challenge


def test_token_of_another_audience_is_rejected(client: TestClient, settings: AuthSettings) -> None:
    keys = SigningKeys(settings.key_dir)
    grant = TokenGrant("x", tuple(parse_scopes("system/*.rs")), "90000123", "Z33", "arts", "TREAT")
    token = TokenIssuer(keys, ISSUER, "https://elsewhere/fhir").issue(grant).access_token
    _assert_unauthorized(client.get("/fhir/Patient", headers={"Authorization": f"Bearer {token}"}), "security")


def test_two_authorization_headers_are_a_bad_request(client: TestClient) -> None:
    headers = [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]
    response = client.get("/fhir/Patient", headers=headers)
    assert response.status_code == 400 and 'error="invalid_request"' in response.headers["www-authenticate"]


def test_metadata_and_discovery_are_public(client: TestClient) -> None:
    assert client.get("/fhir/metadata").status_code == 200
    assert client.get("/fhir/.well-known/smart-configuration").status_code == 200
    assert client.get("/.well-known/smart-configuration").status_code == 200
    assert client.get("/auth/jwks").status_code == 200


def test_paths_outside_fhir_and_ingest_are_not_touched(client: TestClient) -> None:
    assert client.get("/health").status_code == 200


def test_lookalike_prefix_is_not_protected_by_accident(client: TestClient) -> None:
    assert client.get("/fhirx").status_code == 404  # routed normally (no such route), not a 401


def test_metadata_lookalike_is_protected(client: TestClient) -> None:
    assert client.get("/fhir/metadata/../Patient").status_code == 401


def test_identity_reaches_ingest(register: Callable[..., Any], request_token: Callable[..., Any],
                                 client: TestClient) -> None:
    register()
    assert client.post("/ingest/hap", headers=bearer(request_token())).json() == {"ura": "90000123"}


def test_scope_not_covering_interaction_is_403(register: Callable[..., Any], request_token: Callable[..., Any],
                                               client: TestClient) -> None:
    register()
    response = client.delete("/fhir/Patient/1", headers=bearer(request_token("system/Patient.rs")))
    assert response.status_code == 403
    assert response.json()["issue"][0]["code"] == "forbidden"
    assert "'d' on Patient" in response.json()["issue"][0]["diagnostics"]


def test_scope_for_other_type_is_403(register: Callable[..., Any], request_token: Callable[..., Any],
                                     client: TestClient) -> None:
    register()
    assert client.get("/fhir/Patient", headers=bearer(request_token("system/Task.cu"))).status_code == 403


# --- insecure dev mode --------------------------------------------------------------------------------------


@pytest.fixture
def insecure_client(settings: AuthSettings, engine: Engine) -> TestClient:
    return TestClient(build_app(replace(settings, insecure_dev=True), engine)[0])


def test_insecure_dev_lets_requests_through_and_warns_each_time(insecure_client: TestClient,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.auth"):
        first = insecure_client.get("/fhir/Patient")
        insecure_client.get("/fhir/Patient")
    assert first.status_code == 200 and first.json()["insecure_dev"] is True
    warnings = [r for r in caplog.records if "let through" in r.getMessage()]
    assert len(warnings) == 2


def test_insecure_dev_still_rejects_a_bad_token(insecure_client: TestClient) -> None:
    assert insecure_client.get("/fhir/Patient", headers={"Authorization": "Bearer bad"}).status_code == 401


def test_insecure_dev_is_off_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZCC_INSECURE_DEV", raising=False)
    assert AuthSettings.from_environment("http://x/fhir").insecure_dev is False
    monkeypatch.setenv("ZCC_INSECURE_DEV", "1")
    assert AuthSettings.from_environment("http://x/fhir").insecure_dev is True


def test_settings_derive_issuer_from_fhir_base() -> None:
    settings = AuthSettings.from_environment("https://gw.example.nl/fhir")
    assert settings.token_url == "https://gw.example.nl/auth/token"


def test_settings_refuse_long_token_lifetime() -> None:
    with pytest.raises(ValueError):
        AuthSettings(issuer="https://gw", fhir_base_url="https://gw/fhir", token_lifetime=600)


def test_settings_refuse_cert_header_without_trusted_proxy() -> None:
    with pytest.raises(ValueError):
        AuthSettings(issuer="https://gw", fhir_base_url="https://gw/fhir", client_cert_header="client-cert")
