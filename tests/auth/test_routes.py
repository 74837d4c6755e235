"""The token endpoint, JWKS and discovery over HTTP, through an app with the auth router and AuthStage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from gateway.auth.clients import ClientRegistration, ClientRegistry, Delegation
from gateway.auth.compact import unverified_parts
from gateway.auth.demo import ClientKey, token_request_form
from tests.auth.conftest import CLIENT_ID, TOKEN_URL, URA


def bearer(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_token_flow_end_to_end(register: Callable[..., ClientRegistration], request_token: Callable[..., Any],
                               client: TestClient) -> None:
    register()
    response = request_token("system/Patient.rs")
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300 and body["scope"] == "system/Patient.rs"
    assert response.headers["cache-control"] == "no-store"
    patients = client.get("/fhir/Patient", headers=bearer(response))
    assert patients.status_code == 200
    assert patients.json()["client_id"] == CLIENT_ID and patients.json()["ura"] == URA
    assert patients.json()["organization_type"] == "Z33"


def test_rs384_client_gets_a_token(register: Callable[..., Any], request_token: Callable[..., Any],
                                   rsa_key: ClientKey) -> None:
    register(rsa_key)
    assert request_token(client_key=rsa_key).status_code == 200


def test_access_token_is_signed_by_a_published_key(register: Callable[..., Any], request_token: Callable[..., Any],
                                                   client: TestClient) -> None:
    register()
    header, claims = unverified_parts(request_token().json()["access_token"])
    kids = [key["kid"] for key in client.get("/auth/jwks").json()["keys"]]
    assert header["kid"] in kids
    assert claims["subject_role"] == "triagist-hap" and claims["purpose_of_use"] == "TREAT"


def test_granted_scope_is_capped_by_registration(register: Callable[..., Any],
                                                 request_token: Callable[..., Any]) -> None:
    register()
    body = request_token("system/*.cruds").json()
    assert body["scope"] == "system/Patient.rs system/Observation.rs system/Task.cu"


def test_smart_configuration(client: TestClient) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        config = client.get(path).json()
        assert config["token_endpoint"] == TOKEN_URL
        assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
        assert "client-confidential-asymmetric" in config["capabilities"]
        assert config["grant_types_supported"] == ["client_credentials"]


def _error(response: Any, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"
    return response.json()["error_description"]


def test_unsupported_grant_type(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token(grant_type="authorization_code"), 400, "unsupported_grant_type")


def test_missing_grant_type(client: TestClient) -> None:
    _error(client.post("/auth/token", data={"scope": "system/Patient.rs"}), 400, "invalid_request")


def test_missing_assertion(client: TestClient) -> None:
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    _error(client.post("/auth/token", data=form), 400, "invalid_request")


def test_wrong_assertion_type(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token(client_assertion_type="urn:other"), 401, "invalid_client")


def test_json_body_is_refused(client: TestClient) -> None:
    _error(client.post("/auth/token", json={"grant_type": "client_credentials"}), 400, "invalid_request")


def test_duplicate_parameter_is_refused(register: Callable[..., Any], client: TestClient, ec_key: ClientKey) -> None:
    register()
    form = token_request_form(CLIENT_ID, ec_key, TOKEN_URL, "system/Patient.rs")
    body = "&".join(f"{k}={v}" for k, v in form.items()) + "&scope=system/Task.cu"
    response = client.post("/auth/token", content=body,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    _error(response, 400, "invalid_request")


def test_missing_scope(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token(scope=""), 400, "invalid_scope")


def test_malformed_scope(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token("system/Patient.read"), 400, "invalid_scope")


def test_out_of_order_scope(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    assert "order" in _error(request_token("system/Patient.sr"), 400, "invalid_scope")


def test_scope_outside_registration(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token("system/Slot.rs"), 400, "invalid_scope")


def test_bad_assertion_is_invalid_client(register: Callable[..., Any], request_token: Callable[..., Any],
                                         other_ec_key: ClientKey) -> None:
    register()
    _error(request_token(client_key=other_ec_key), 401, "invalid_client")


def test_unknown_client_is_invalid_client(request_token: Callable[..., Any]) -> None:
    _error(request_token(), 401, "invalid_client")


def test_replayed_assertion_is_invalid_client(register: Callable[..., Any], client: TestClient,
                                              ec_key: ClientKey) -> None:
    register()
    form = token_request_form(CLIENT_ID, ec_key, TOKEN_URL, "system/Patient.rs")
    assert client.post("/auth/token", data=form).status_code == 200
    assert "already used" in _error(client.post("/auth/token", data=form), 401, "invalid_client")


# --- organisation, role and purpose -------------------------------------------------------------------------


def test_role_and_purpose_from_the_assertion(register: Callable[..., Any], request_token: Callable[..., Any],
                                             client: TestClient) -> None:
    register(allowed_roles=("triagist-hap", "arts"))
    response = request_token(claims={"subject_role": "arts", "purpose_of_use": "BTG"})
    identity = client.get("/fhir/Patient", headers=bearer(response)).json()
    assert identity["role"] == "arts" and identity["purpose_of_use"] == "BTG"


def test_role_from_the_form(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register(allowed_roles=("triagist-hap", "arts"))
    token = request_token(subject_role="arts").json()["access_token"]
    assert unverified_parts(token)[1]["subject_role"] == "arts"


def test_role_required_when_several_are_registered(register: Callable[..., Any],
                                                   request_token: Callable[..., Any]) -> None:
    register(allowed_roles=("triagist-hap", "arts"))
    assert "subject_role is required" in _error(request_token(), 400, "invalid_request")


def test_unregistered_role_is_refused(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token(claims={"subject_role": "arts"}), 400, "invalid_request")


def test_unregistered_purpose_is_refused(register: Callable[..., Any], request_token: Callable[..., Any]) -> None:
    register()
    _error(request_token(claims={"purpose_of_use": "COC"}), 400, "invalid_request")


def test_form_contradicting_assertion_is_refused(register: Callable[..., Any],
                                                 request_token: Callable[..., Any]) -> None:
    register(allowed_roles=("triagist-hap", "arts"))
    response = request_token(claims={"subject_role": "arts"}, subject_role="triagist-hap")
    assert "differs" in _error(response, 400, "invalid_request")


def test_delegated_organisation(register: Callable[..., Any], request_token: Callable[..., Any],
                                client: TestClient) -> None:
    register(delegations=(Delegation("90000456", "A1"),))
    response = request_token(claims={"subject_organization_id": "90000456"})
    identity = client.get("/fhir/Patient", headers=bearer(response)).json()
    assert identity["ura"] == "90000456" and identity["organization_type"] == "A1"


def test_undelegated_organisation_is_refused(register: Callable[..., Any],
                                             request_token: Callable[..., Any]) -> None:
    register(delegations=(Delegation("90000456", "A1"),))
    response = request_token(claims={"subject_organization_id": "90000789"})
    assert "90000789" in _error(response, 400, "invalid_request")


def test_disabled_client_gets_no_token(register: Callable[..., Any], registry: ClientRegistry,
                                       request_token: Callable[..., Any]) -> None:
    register()
    registry.set_enabled(CLIENT_ID, False, actor="tests")
    _error(request_token(), 401, "invalid_client")


def test_rotated_client_key(register: Callable[..., Any], registry: ClientRegistry,
                            request_token: Callable[..., Any], ec_key: ClientKey, other_ec_key: ClientKey) -> None:
    current = register()
    registry.rotate_key(CLIENT_ID, other_ec_key.public_jwks(), actor="tests")
    _error(request_token(client_key=ec_key), 401, "invalid_client")
    assert request_token(client_key=other_ec_key).status_code == 200
    assert current.jwks != registry.get(CLIENT_ID).jwks  # type: ignore[union-attr]


def test_token_endpoint_is_not_behind_the_auth_stage(client: TestClient) -> None:
    assert client.post("/auth/token", data={}).status_code == 400


def test_registered_organisation_type_reaches_the_token(register: Callable[..., Any],
                                                       request_token: Callable[..., Any]) -> None:
    register(organization_type="G5")
    assert unverified_parts(request_token().json()["access_token"])[1]["organization_type"] == "G5"
