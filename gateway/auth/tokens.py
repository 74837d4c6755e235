"""Access tokens: JWTs (RFC 9068 `at+jwt`) signed with the gateway's own key.

A token carries everything the pipeline needs to decide on a request without a database lookup: client,
scopes, the organisation acted for (URA and type), the subject role, the purpose of use and, over mutual TLS,
the certificate it is bound to (RFC 8705 `cnf.x5t#S256`). Tokens live at most 300 seconds, which bounds how
long a disabled client or a rotated key can keep working."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from gateway.auth.compact import unverified_parts
from gateway.auth.identity import PURPOSES_OF_USE, RequestIdentity
from gateway.auth.keys import SIGNING_ALG, SigningKeys
from gateway.auth.scopes import Scope, ScopeError, format_scopes, parse_scopes
from gateway.auth.settings import MAX_TOKEN_LIFETIME
from gateway.memo import Memo

TOKEN_TYPE = "at+jwt"
_REQUIRED_STRINGS = (
    "sub",
    "client_id",
    "jti",
    "scope",
    "subject_organization_id",
    "organization_type",
    "subject_role",
    "purpose_of_use",
)


class InvalidToken(Exception):
    """The bearer token is not one the gateway issued, or no longer valid; the message is safe to show."""


class ExpiredToken(InvalidToken):
    """A token the gateway issued that has expired: the client should simply fetch a new one."""


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint decided to grant; becomes the token's claims."""

    client_id: str
    scopes: tuple[Scope, ...]
    ura: str
    organization_type: str
    role: str
    purpose_of_use: str
    cert_thumbprint: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str

    def response(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 token response body."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


class TokenIssuer:
    def __init__(
        self,
        keys: SigningKeys,
        issuer: str,
        audience: str,
        lifetime: int = MAX_TOKEN_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < lifetime <= MAX_TOKEN_LIFETIME:
            raise ValueError(f"access tokens live at most {MAX_TOKEN_LIFETIME} seconds")
        self.keys, self.issuer, self.audience, self.lifetime, self.clock = keys, issuer, audience, lifetime, clock

    def issue(self, grant: TokenGrant) -> IssuedToken:
        now = int(self.clock())
        scope = format_scopes(grant.scopes)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": grant.client_id,
            "client_id": grant.client_id,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime,
            "scope": scope,
            "subject_organization_id": grant.ura,
            "organization_type": grant.organization_type,
            "subject_role": grant.role,
            "purpose_of_use": grant.purpose_of_use,
        }
        if grant.cert_thumbprint:
            claims["cnf"] = {"x5t#S256": grant.cert_thumbprint}
        key = self.keys.signing_key()
        header = {"alg": SIGNING_ALG, "typ": TOKEN_TYPE, "kid": key.kid}
        token = jwt.encode(header, claims, key, algorithms=[SIGNING_ALG])
        return IssuedToken(token, self.lifetime, scope)


MAX_CACHED_TOKENS = 10_000


class TokenVerifier:
    """Checks a bearer token and turns it into the RequestIdentity of the request."""

    def __init__(
        self, keys: SigningKeys, issuer: str, audience: str, leeway: int = 5, clock: Callable[[], float] = time.time
    ) -> None:
        self.keys, self.issuer, self.audience, self.leeway, self.clock = keys, issuer, audience, leeway, clock
        self._verified: Memo[str, RequestIdentity] = Memo(MAX_CACHED_TOKENS)

    def verify(self, token: str) -> RequestIdentity:
        """Verify once, then serve the same token from memory until it expires: a token is immutable and
        signed, and an ES384 verification costs more than a whole FHIR read."""
        identity = self._verified.get(token)
        if (
            identity is not None
            and identity.expires_at is not None
            and self.clock() < identity.expires_at + self.leeway
        ):
            return identity
        return self._verified.keep(token, self._verify_signed(token))

    def _verify_signed(self, token: str) -> RequestIdentity:
        try:
            header, _ = unverified_parts(token)
        except ValueError as error:
            raise InvalidToken("the access token is not a JWT") from error
        if header.get("alg") != SIGNING_ALG or header.get("typ") != TOKEN_TYPE:
            raise InvalidToken("the access token was not issued by this gateway")
        key = self.keys.find(str(header.get("kid", "")))
        if key is None:
            raise InvalidToken("the access token was signed with an unknown key")
        try:
            claims = jwt.decode(token, key, algorithms=[SIGNING_ALG]).claims
        except (JoseError, ValueError) as error:
            raise InvalidToken("the access token signature does not verify") from error
        self._check_claims(claims)
        try:
            scopes = tuple(parse_scopes(claims["scope"]))
        except ScopeError as error:
            raise InvalidToken("the access token carries malformed scopes") from error
        cnf = claims.get("cnf")
        thumbprint = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        if cnf is not None and not isinstance(thumbprint, str):
            raise InvalidToken("the access token has an unusable confirmation ('cnf') claim")
        return RequestIdentity(
            client_id=claims["client_id"],
            ura=claims["subject_organization_id"],
            organization_type=claims["organization_type"],
            role=claims["subject_role"],
            purpose_of_use=claims["purpose_of_use"],
            scopes=scopes,
            cert_thumbprint=thumbprint,
            token_id=claims["jti"],
            expires_at=int(claims["exp"]),
        )

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = int(self.clock())
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the access token has the wrong issuer")
        if claims.get("aud") != self.audience:
            raise InvalidToken("the access token is not meant for this server")
        issued_at, expires_at = claims.get("iat"), claims.get("exp")
        if not isinstance(issued_at, int) or not isinstance(expires_at, int):
            raise InvalidToken("the access token lacks 'iat' or 'exp'")
        if expires_at <= now - self.leeway:
            raise ExpiredToken("the access token has expired")
        if issued_at > now + self.leeway or claims.get("nbf", issued_at) > now + self.leeway:
            raise InvalidToken("the access token is not valid yet")
        if expires_at - issued_at > MAX_TOKEN_LIFETIME:
            raise InvalidToken("the access token lives longer than the gateway allows")
        if any(not isinstance(claims.get(name), str) or not claims[name] for name in _REQUIRED_STRINGS):
            raise InvalidToken("the access token lacks organisation, role or purpose claims")
        if claims["purpose_of_use"] not in PURPOSES_OF_USE:
            raise InvalidToken("the access token has an unknown purpose of use")
