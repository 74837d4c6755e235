"""Verification of SMART Backend Services client assertions (RFC 7523 `private_key_jwt`).

The order of checks matters: the header is inspected before any key is touched, so `alg: none` and HMAC
(which would let anyone who knows the *public* key forge an assertion) are refused outright, and only the
exact key named by `kid` in the client's registered JWKS is ever used. The `jti` is recorded last, so an
assertion that fails any other check does not burn its id."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from gateway.auth.clients import ClientRegistration, ClientRegistry, RegistrationError, validate_client_jwks
from gateway.auth.compact import unverified_parts
from gateway.auth.registry_schema import auth_assertion_jti
from gateway.auth.settings import MAX_ASSERTION_LIFETIME

ACCEPTED_ALGORITHMS = ("RS384", "ES384")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_MAX_JTI = 255


class InvalidClient(Exception):
    """Client authentication failed (OAuth2 `invalid_client`); the message is safe to show the client."""


@dataclass(frozen=True)
class VerifiedAssertion:
    client: ClientRegistration
    claims: dict[str, Any]
    kid: str


class ReplayCache(Protocol):
    def remember(self, client_id: str, jti: str, expires_at: int, now: int) -> bool:
        """Record the id; False when it was already recorded and has not expired."""


class MemoryReplayCache:
    """Per-process replay cache (tests, single-process tools)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def remember(self, client_id: str, jti: str, expires_at: int, now: int) -> bool:
        with self._lock:
            self._seen = {key: until for key, until in self._seen.items() if until >= now}
            if (client_id, jti) in self._seen:
                return False
            self._seen[(client_id, jti)] = expires_at
            return True


class DatabaseReplayCache:
    """Replay cache shared by all worker processes: the primary key (client_id, jti) refuses a second use."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def remember(self, client_id: str, jti: str, expires_at: int, now: int) -> bool:
        writing = self.engine.execution_options(write=True)
        with writing.begin() as connection:
            connection.execute(delete(auth_assertion_jti).where(auth_assertion_jti.c.expires_at < now))
        try:
            with writing.begin() as connection:
                row = {"client_id": client_id, "jti": jti, "expires_at": expires_at}
                connection.execute(insert(auth_assertion_jti).values(**row))
        except IntegrityError:
            return False
        return True


class JwksFetcher:
    """Fetches a client's registered `jwks_uri` (cached); the httpx transport is injectable for tests."""

    def __init__(self, cache_seconds: int = 300, transport: httpx.BaseTransport | None = None) -> None:
        self.cache_seconds = cache_seconds
        self.transport = transport
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    def __call__(self, uri: str, refresh: bool = False) -> dict[str, Any]:
        cached = self._cache.get(uri)
        if cached and not refresh and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            with httpx.Client(transport=self.transport, timeout=5, follow_redirects=False) as client:
                response = client.get(uri, headers={"Accept": "application/json"})
                response.raise_for_status()
                jwks = response.json()
            validate_client_jwks(jwks)
        except (httpx.HTTPError, ValueError, RegistrationError) as error:
            raise InvalidClient(f"the client's JWKS at {uri} could not be used") from error
        self._cache[uri] = (time.monotonic(), jwks)
        return jwks


class AssertionVerifier:
    def __init__(
        self,
        registry: ClientRegistry,
        token_url: str,
        replay: ReplayCache,
        fetch_jwks: Callable[..., dict[str, Any]] | None = None,
        leeway: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.token_url = token_url
        self.replay = replay
        self.fetch_jwks = fetch_jwks or JwksFetcher()
        self.leeway = leeway
        self.clock = clock

    def verify(self, assertion: str, client_id: str | None = None) -> VerifiedAssertion:
        """Verify a compact JWS assertion; `client_id` is the optional form parameter, which must agree."""
        try:
            header, payload = unverified_parts(assertion)
        except ValueError as error:
            raise InvalidClient("client_assertion is not a compact JWS") from error
        alg = header.get("alg")
        if alg not in ACCEPTED_ALGORITHMS:
            accepted = " or ".join(ACCEPTED_ALGORITHMS)
            raise InvalidClient(f"assertion algorithm {alg!r} is not accepted; sign with {accepted}")
        if "crit" in header:
            raise InvalidClient("assertion header has critical extensions the gateway does not understand")
        issuer = payload.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise InvalidClient("assertion has no 'iss'")
        if client_id is not None and client_id != issuer:
            raise InvalidClient("client_id does not match the assertion's 'iss'")
        client = self.registry.get(issuer)
        if client is None or not client.enabled:
            raise InvalidClient("unknown or disabled client")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidClient("assertion header has no 'kid'")
        key = self._key(client, kid, header.get("jku"))
        _check_key_type(key, alg)
        try:
            claims = jwt.decode(assertion, key, algorithms=[alg]).claims
        except (JoseError, ValueError) as error:
            raise InvalidClient("assertion signature does not verify") from error
        now = int(self.clock())
        expires_at = self._check_claims(claims, issuer, now)
        if not self.replay.remember(issuer, claims["jti"], expires_at, now):
            raise InvalidClient("assertion 'jti' was already used")
        return VerifiedAssertion(client, dict(claims), kid)

    def _key(self, client: ClientRegistration, kid: str, jku: Any) -> RSAKey | ECKey:
        if jku is not None and (client.jwks_uri is None or jku != client.jwks_uri):
            raise InvalidClient("assertion 'jku' is not the JWKS URL registered for this client")
        if client.jwks is not None:
            return _find(KeySet.import_key_set(client.jwks), kid)
        assert client.jwks_uri is not None  # a registration has exactly one of jwks and jwks_uri
        try:
            return _find(KeySet.import_key_set(self.fetch_jwks(client.jwks_uri)), kid)
        except InvalidClient:  # the client may have rotated: fetch once more, bypassing the cache
            return _find(KeySet.import_key_set(self.fetch_jwks(client.jwks_uri, refresh=True)), kid)

    def _check_claims(self, claims: dict[str, Any], issuer: str, now: int) -> int:
        if claims.get("sub") != issuer:
            raise InvalidClient("assertion 'sub' must equal 'iss' (the client id)")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.token_url not in audiences:
            raise InvalidClient(f"assertion 'aud' must be the token endpoint {self.token_url}")
        expires_at = claims.get("exp")
        if not _is_time(expires_at):
            raise InvalidClient("assertion has no numeric 'exp'")
        if expires_at <= now - self.leeway:
            raise InvalidClient("assertion has expired")
        if expires_at > now + MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClient(f"assertion 'exp' is more than {MAX_ASSERTION_LIFETIME} seconds ahead")
        for name in ("nbf", "iat"):
            if name in claims and (not _is_time(claims[name]) or claims[name] > now + self.leeway):
                raise InvalidClient(f"assertion is not valid yet ('{name}' is in the future)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI:
            raise InvalidClient("assertion needs a 'jti' (1-255 characters)")
        return int(expires_at)


def _find(keys: KeySet, kid: str) -> RSAKey | ECKey:
    for key in keys.keys:
        if key.kid == kid and isinstance(key, RSAKey | ECKey):
            return key
    raise InvalidClient(f"kid {kid!r} is not in the client's registered JWKS")


def _check_key_type(key: RSAKey | ECKey, alg: str) -> None:
    if alg == "RS384" and not isinstance(key, RSAKey):
        raise InvalidClient("RS384 needs an RSA key")
    if alg == "ES384" and not (isinstance(key, ECKey) and key.curve_name == "P-384"):
        raise InvalidClient("ES384 needs an EC P-384 key")


def _is_time(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
