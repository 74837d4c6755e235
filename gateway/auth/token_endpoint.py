"""The token endpoint's decision, independent of the web framework: form parameters and the presented
certificate chain in, an access token (or an OAuthError) out.

Organisation, role and purpose come from the signed client assertion (claims `subject_organization_id`,
`subject_role`, `purpose_of_use`) or from form parameters of the same names; when both are given they must
agree. Every value is checked against the client's registration, which is the ceiling for what it gets."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from cryptography import x509

from gateway.auth.assertions import ASSERTION_TYPE, AssertionVerifier, InvalidClient
from gateway.auth.client_cert import x5t_s256
from gateway.auth.clients import ClientRegistration
from gateway.auth.errors import OAuthError
from gateway.auth.scopes import ScopeError, grant, parse_scopes
from gateway.auth.tokens import IssuedToken, TokenGrant, TokenIssuer
from gateway.auth.uzi import UziCertificateError, UziTrust, verify_uzi_certificate

GRANT_TYPE = "client_credentials"


class TokenEndpoint:
    def __init__(
        self, assertions: AssertionVerifier, issuer: TokenIssuer, uzi: UziTrust, require_mtls: bool = False
    ) -> None:
        self.assertions, self.issuer, self.uzi, self.require_mtls = assertions, issuer, uzi, require_mtls

    def handle(self, form: Mapping[str, str], chain: list[x509.Certificate]) -> IssuedToken:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type is required")
        if grant_type != GRANT_TYPE:
            raise OAuthError("unsupported_grant_type", f"only grant_type={GRANT_TYPE} is supported")
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if not assertion_type or not assertion:
            raise OAuthError("invalid_request", "client_assertion_type and client_assertion are required")
        if assertion_type != ASSERTION_TYPE:
            raise OAuthError("invalid_client", f"client_assertion_type must be {ASSERTION_TYPE}")
        if not form.get("scope"):
            raise OAuthError("invalid_scope", "scope is required (SMART v2 system scopes)")
        try:
            requested = parse_scopes(form["scope"])
        except ScopeError as error:
            raise OAuthError("invalid_scope", str(error)) from error
        try:
            verified = self.assertions.verify(assertion, form.get("client_id"))
        except InvalidClient as error:
            raise OAuthError("invalid_client", str(error)) from error
        client = verified.client
        thumbprint = self._check_certificate(client, chain)
        ura, organization_type = self._organisation(client, verified.claims, form)
        role = _choose(client.allowed_roles, _requested("subject_role", verified.claims, form), "subject_role")
        purpose = _choose(
            client.allowed_purposes, _requested("purpose_of_use", verified.claims, form), "purpose_of_use", "TREAT"
        )
        granted = grant(requested, parse_scopes(client.allowed_scopes))
        if not granted:
            raise OAuthError("invalid_scope", "none of the requested scopes is allowed for this client")
        return self.issuer.issue(
            TokenGrant(client.client_id, tuple(granted), ura, organization_type, role, purpose, thumbprint)
        )

    def _check_certificate(self, client: ClientRegistration, chain: list[x509.Certificate]) -> str | None:
        """The thumbprint to bind the token to; checks the pin and, when UZI trust is configured, the URA."""
        if not chain:
            if self.require_mtls or client.pinned_cert_thumbprint:
                raise OAuthError("invalid_client", "this client must connect with its client certificate (mTLS)")
            return None
        thumbprint = x5t_s256(chain[0])
        pinned = client.pinned_cert_thumbprint
        if pinned and not hmac.compare_digest(pinned, thumbprint):
            raise OAuthError("invalid_client", "the client certificate is not the one registered for this client")
        if self.uzi.configured:
            try:
                identity = verify_uzi_certificate(chain, self.uzi)
            except UziCertificateError as error:
                raise OAuthError("invalid_client", str(error)) from error
            if identity.ura != client.ura:
                raise OAuthError(
                    "invalid_client", f"the certificate's URA {identity.ura} is not the client's URA {client.ura}"
                )
        return thumbprint

    def _organisation(
        self, client: ClientRegistration, claims: Mapping[str, Any], form: Mapping[str, str]
    ) -> tuple[str, str]:
        ura = _requested("subject_organization_id", claims, form) or client.ura
        organization_type = client.organization_type_for(ura)
        if organization_type is None:
            raise OAuthError("invalid_request", f"this client may not act for URA {ura}")
        return ura, organization_type


def _requested(name: str, claims: Mapping[str, Any], form: Mapping[str, str]) -> str | None:
    signed, unsigned = claims.get(name), form.get(name)
    if signed is not None and not isinstance(signed, str):
        raise OAuthError("invalid_request", f"the assertion's {name} must be a string")
    if signed is not None and unsigned is not None and signed != unsigned:
        raise OAuthError("invalid_request", f"{name} in the form differs from the one in the assertion")
    return signed if signed is not None else unsigned


def _choose(allowed: tuple[str, ...], requested: str | None, name: str, preferred: str | None = None) -> str:
    if requested is None:
        if preferred in allowed:
            return str(preferred)
        if len(allowed) == 1:
            return allowed[0]
        raise OAuthError("invalid_request", f"{name} is required: the client is registered for {', '.join(allowed)}")
    if requested not in allowed:
        raise OAuthError("invalid_request", f"{name} {requested!r} is not registered for this client")
    return requested
