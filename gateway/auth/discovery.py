"""What the gateway tells clients about its authorisation server: the SMART configuration document and
the `rest.security` element of the CapabilityStatement (the FHIR layer merges the latter in)."""

from __future__ import annotations

from typing import Any

from gateway.auth.assertions import ACCEPTED_ALGORITHMS
from gateway.auth.settings import AuthSettings

SCOPES_SUPPORTED = ["system/*.cruds", "system/*.rs", "system/*.cu", "system/*.c", "system/*.r", "system/*.s"]
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def smart_configuration(settings: AuthSettings) -> dict[str, Any]:
    """`/.well-known/smart-configuration` (SMART App Launch 2.x, backend services profile)."""
    return {
        "issuer": settings.issuer,
        "jwks_uri": settings.jwks_url,
        "token_endpoint": settings.token_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": list(ACCEPTED_ALGORITHMS),
        "scopes_supported": SCOPES_SUPPORTED,
        "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        "tls_client_certificate_bound_access_tokens": True,
    }


def capability_security(settings: AuthSettings) -> dict[str, Any]:
    """CapabilityStatement.rest.security announcing SMART and the token endpoint."""
    return {
        "extension": [{"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": settings.token_url}]}],
        "service": [
            {"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}], "text": "SMART Backend Services"}
        ],
        "description": "OAuth2 client credentials with a private_key_jwt client assertion (RS384/ES384); "
        "SMART v2 system scopes; tokens bound to the client certificate over mutual TLS.",
    }
