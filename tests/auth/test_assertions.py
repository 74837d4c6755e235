"""The client-assertion checks of SMART Backend Services, each rejection case as its own test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt

from gateway.auth.assertions import (
    AssertionVerifier,
    DatabaseReplayCache,
    InvalidClient,
    JwksFetcher,
    MemoryReplayCache,
)
from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey
from tests.auth.conftest import CLIENT_ID, TOKEN_URL

JWKS_URI = "https://ehr.example.nl/.well-known/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(registry: ClientRegistry, clock: Clock) -> AssertionVerifier:
    return AssertionVerifier(registry, TOKEN_URL, MemoryReplayCache(), clock=clock)


def claims_for(clock: Clock, **changes: Any) -> dict[str, Any]:
    now = int(clock.now)
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_URL, "exp": now + 120, "iat": now,
              "jti": f"jti-{time.monotonic_ns()}"}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign(client_key: ClientKey, claims: dict[str, Any], **header: Any) -> str:
    full_header = {"alg": client_key.alg, "kid": client_key.kid, **header}
    full_header = {name: value for name, value in full_header.items() if value is not None}
    return jwt.encode(full_header, claims, client_key.key, algorithms=[full_header["alg"]])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384}[header["alg"]]
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), digest).digest())


# --- accepted ---------------------------------------------------------------------------------------------


def test_es384_assertion_is_accepted(register: Callable[..., ClientRegistration], verifier: AssertionVerifier,
                                     ec_key: ClientKey, clock: Clock) -> None:
    register()
    verified = verifier.verify(sign(ec_key, claims_for(clock)), CLIENT_ID)
    assert verified.client.client_id == CLIENT_ID and verified.kid == ec_key.kid


def test_rs384_assertion_is_accepted(register: Callable[..., ClientRegistration], verifier: AssertionVerifier,
                                     rsa_key: ClientKey, clock: Clock) -> None:
    register(rsa_key)
    assert verifier.verify(sign(rsa_key, claims_for(clock))).client.client_id == CLIENT_ID


def test_audience_list_containing_token_url_is_accepted(register: Callable[..., Any], verifier: AssertionVerifier,
                                                         ec_key: ClientKey, clock: Clock) -> None:
    register()
    verifier.verify(sign(ec_key, claims_for(clock, aud=["https://other", TOKEN_URL])))


def test_same_jti_of_another_client_is_not_a_replay(registry: ClientRegistry, register: Callable[..., Any],
                                                    verifier: AssertionVerifier, ec_key: ClientKey,
                                                    other_ec_key: ClientKey, clock: Clock) -> None:
    register()
    register(other_ec_key, client_id="second")
    verifier.verify(sign(ec_key, claims_for(clock, jti="shared")))
    verifier.verify(sign(other_ec_key, claims_for(clock, iss="second", sub="second", jti="shared")))


# --- rejected: client -------------------------------------------------------------------------------------


def test_unknown_client_is_rejected(verifier: AssertionVerifier, ec_key: ClientKey, clock: Clock) -> None:
    with pytest.raises(InvalidClient, match="unknown"):
        verifier.verify(sign(ec_key, claims_for(clock)))


def test_disabled_client_is_rejected(registry: ClientRegistry, register: Callable[..., Any],
                                     verifier: AssertionVerifier, ec_key: ClientKey, clock: Clock) -> None:
    register()
    registry.set_enabled(CLIENT_ID, False, actor="tests")
    with pytest.raises(InvalidClient, match="disabled"):
        verifier.verify(sign(ec_key, claims_for(clock)))


def test_client_id_parameter_must_match_iss(register: Callable[..., Any], verifier: AssertionVerifier,
                                            ec_key: ClientKey, clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="client_id"):
        verifier.verify(sign(ec_key, claims_for(clock)), "someone-else")


# --- rejected: claims -------------------------------------------------------------------------------------


def test_iss_differs_from_sub(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                              clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'sub'"):
        verifier.verify(sign(ec_key, claims_for(clock, sub="other")))


def test_wrong_audience(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                        clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'aud'"):
        verifier.verify(sign(ec_key, claims_for(clock, aud="https://gw.example.nl/fhir")))


def test_expired_assertion(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                           clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="expired"):
        verifier.verify(sign(ec_key, claims_for(clock, exp=int(clock.now) - 10, iat=int(clock.now) - 70)))


def test_exp_more_than_five_minutes_ahead(register: Callable[..., Any], verifier: AssertionVerifier,
                                          ec_key: ClientKey, clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="300 seconds"):
        verifier.verify(sign(ec_key, claims_for(clock, exp=int(clock.now) + 3600)))


def test_missing_exp(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                     clock: Clock) -> None:
    register()
    claims = claims_for(clock)
    del claims["exp"]
    with pytest.raises(InvalidClient, match="'exp'"):
        verifier.verify(sign(ec_key, claims))


def test_not_yet_valid_nbf(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                           clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'nbf'"):
        verifier.verify(sign(ec_key, claims_for(clock, nbf=int(clock.now) + 60)))


def test_iat_in_the_future(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                           clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'iat'"):
        verifier.verify(sign(ec_key, claims_for(clock, iat=int(clock.now) + 60)))


def test_missing_jti(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                     clock: Clock) -> None:
    register()
    claims = claims_for(clock)
    del claims["jti"]
    with pytest.raises(InvalidClient, match="'jti'"):
        verifier.verify(sign(ec_key, claims))


def test_jti_replay_within_lifetime(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                                    clock: Clock) -> None:
    register()
    assertion = sign(ec_key, claims_for(clock, jti="once"))
    verifier.verify(assertion)
    with pytest.raises(InvalidClient, match="already used"):
        verifier.verify(assertion)


def test_jti_replay_with_a_fresh_signature(register: Callable[..., Any], verifier: AssertionVerifier,
                                           ec_key: ClientKey, clock: Clock) -> None:
    register()
    verifier.verify(sign(ec_key, claims_for(clock, jti="once")))
    with pytest.raises(InvalidClient, match="already used"):
        verifier.verify(sign(ec_key, claims_for(clock, jti="once")))


def test_jti_replay_is_refused_across_processes(register: Callable[..., Any], registry: ClientRegistry,
                                                engine: Any, ec_key: ClientKey, clock: Clock) -> None:
    register()
    worker_a = AssertionVerifier(registry, TOKEN_URL, DatabaseReplayCache(engine), clock=clock)
    worker_b = AssertionVerifier(registry, TOKEN_URL, DatabaseReplayCache(engine), clock=clock)
    assertion = sign(ec_key, claims_for(clock, jti="shared-db"))
    worker_a.verify(assertion)
    with pytest.raises(InvalidClient, match="already used"):
        worker_b.verify(assertion)


def test_failed_assertion_does_not_burn_its_jti(register: Callable[..., Any], verifier: AssertionVerifier,
                                                ec_key: ClientKey, clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient):
        verifier.verify(sign(ec_key, claims_for(clock, jti="retry", aud="https://wrong")))
    verifier.verify(sign(ec_key, claims_for(clock, jti="retry")))


# --- rejected: algorithms and keys ------------------------------------------------------------------------


def test_alg_none_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                              clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'none'"):
        verifier.verify(hand_made({"alg": "none", "kid": ec_key.kid}, claims_for(clock), None))


def test_hs256_signed_with_the_public_key_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier,
                                                      rsa_key: ClientKey, clock: Clock) -> None:
    register(rsa_key)
    public = json.dumps(rsa_key.public_jwks()["keys"][0]).encode()
    with pytest.raises(InvalidClient, match="'HS256'"):
        verifier.verify(hand_made({"alg": "HS256", "kid": rsa_key.kid}, claims_for(clock), public))


def test_hs384_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                           clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'HS384'"):
        verifier.verify(hand_made({"alg": "HS384", "kid": ec_key.kid}, claims_for(clock), b"secret"))


def test_rs256_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier, rsa_key: ClientKey,
                           clock: Clock) -> None:
    register(rsa_key)
    with pytest.raises(InvalidClient, match="'RS256'"):
        verifier.verify(sign(rsa_key, claims_for(clock), alg="RS256"))


def test_kid_not_in_client_jwks(register: Callable[..., Any], verifier: AssertionVerifier,
                                other_ec_key: ClientKey, clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="not in the client's registered JWKS"):
        verifier.verify(sign(other_ec_key, claims_for(clock)))


def test_missing_kid(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                     clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="no 'kid'"):
        verifier.verify(sign(ec_key, claims_for(clock), kid=None))


def test_registered_kid_but_other_key_fails_signature(register: Callable[..., Any], verifier: AssertionVerifier,
                                                      ec_key: ClientKey, other_ec_key: ClientKey,
                                                      clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="signature"):
        verifier.verify(sign(other_ec_key, claims_for(clock), kid=ec_key.kid))


def test_alg_not_matching_key_type(register: Callable[..., Any], verifier: AssertionVerifier, rsa_key: ClientKey,
                                   clock: Clock) -> None:
    register(rsa_key)
    header = {"alg": "ES384", "kid": rsa_key.kid}
    with pytest.raises(InvalidClient, match="EC P-384"):
        verifier.verify(hand_made(header, claims_for(clock), None) + "AAAA")


def test_unregistered_jku_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier,
                                      ec_key: ClientKey, clock: Clock) -> None:
    register()
    with pytest.raises(InvalidClient, match="'jku'"):
        verifier.verify(sign(ec_key, claims_for(clock), jku="https://attacker.example/jwks.json"))


def test_critical_header_is_rejected(register: Callable[..., Any], verifier: AssertionVerifier, ec_key: ClientKey,
                                     clock: Clock) -> None:
    register()
    assertion = hand_made({"alg": "ES384", "kid": ec_key.kid, "crit": ["x"], "x": 1}, claims_for(clock), None)
    with pytest.raises(InvalidClient, match="critical"):
        verifier.verify(assertion + "AAAA")


def test_not_a_jws(verifier: AssertionVerifier) -> None:
    with pytest.raises(InvalidClient, match="compact JWS"):
        verifier.verify("abc.def")


# --- clients publishing their JWKS at a URL ---------------------------------------------------------------


def _jwks_transport(jwks_by_call: list[dict[str, Any]], calls: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, json=jwks_by_call[min(len(calls), len(jwks_by_call)) - 1])

    return httpx.MockTransport(handler)


def test_registered_jku_is_used(register: Callable[..., Any], registry: ClientRegistry, ec_key: ClientKey,
                                clock: Clock) -> None:
    register(jwks=None, jwks_uri=JWKS_URI)
    calls: list[str] = []
    fetcher = JwksFetcher(transport=_jwks_transport([ec_key.public_jwks()], calls))
    verifier = AssertionVerifier(registry, TOKEN_URL, MemoryReplayCache(), fetcher, clock=clock)
    verifier.verify(sign(ec_key, claims_for(clock), jku=JWKS_URI))
    verifier.verify(sign(ec_key, claims_for(clock)))
    assert calls == [JWKS_URI]  # cached


def test_jwks_uri_client_key_rotation_triggers_refetch(register: Callable[..., Any], registry: ClientRegistry,
                                                       ec_key: ClientKey, other_ec_key: ClientKey,
                                                       clock: Clock) -> None:
    register(jwks=None, jwks_uri=JWKS_URI)
    calls: list[str] = []
    transport = _jwks_transport([ec_key.public_jwks(), other_ec_key.public_jwks()], calls)
    verifier = AssertionVerifier(registry, TOKEN_URL, MemoryReplayCache(), JwksFetcher(transport=transport),
                                 clock=clock)
    verifier.verify(sign(ec_key, claims_for(clock)))
    verifier.verify(sign(other_ec_key, claims_for(clock)))
    assert len(calls) == 2


def test_jwks_uri_with_private_keys_is_not_used(register: Callable[..., Any], registry: ClientRegistry,
                                                ec_key: ClientKey, clock: Clock) -> None:
    register(jwks=None, jwks_uri=JWKS_URI)
    private = {"keys": [ec_key.key.as_dict(private=True)]}
    fetcher = JwksFetcher(transport=_jwks_transport([private], []))
    verifier = AssertionVerifier(registry, TOKEN_URL, MemoryReplayCache(), fetcher, clock=clock)
    with pytest.raises(InvalidClient, match="could not be used"):
        verifier.verify(sign(ec_key, claims_for(clock)))
