from __future__ import annotations

import json
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from gateway.auth.compact import unverified_parts
from gateway.auth.keys import SigningKeys
from gateway.auth.scopes import parse_scopes
from gateway.auth.tokens import ExpiredToken, InvalidToken, TokenGrant, TokenIssuer, TokenVerifier

ISSUER, AUDIENCE = "https://gw.example.nl", "https://gw.example.nl/fhir"
GRANT = TokenGrant("ehr", tuple(parse_scopes("system/Patient.rs")), "90000123", "Z33", "triagist-hap", "TREAT")


class Clock:
    def __init__(self, now: float = 1_700_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> SigningKeys:
    return SigningKeys(tmp_path)


def test_token_round_trip(keys: SigningKeys) -> None:
    issued = TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT)
    identity = TokenVerifier(keys, ISSUER, AUDIENCE).verify(issued.access_token)
    assert (identity.client_id, identity.ura, identity.organization_type) == ("ehr", "90000123", "Z33")
    assert (identity.role, identity.purpose_of_use) == ("triagist-hap", "TREAT")
    assert [str(s) for s in identity.scopes] == ["system/Patient.rs"]
    assert identity.cert_thumbprint is None and not identity.insecure_dev


def test_token_claims_follow_the_profile(keys: SigningKeys) -> None:
    issued = TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT)
    header, claims = unverified_parts(issued.access_token)
    assert header["typ"] == "at+jwt" and header["alg"] == "ES384" and header["kid"] == keys.signing_key().kid
    assert claims["exp"] - claims["iat"] == 300 == issued.expires_in
    for name in ("jti", "client_id", "scope", "subject_organization_id", "organization_type", "subject_role",
                 "purpose_of_use"):
        assert claims[name]


def test_bound_token_carries_thumbprint(keys: SigningKeys) -> None:
    grant = TokenGrant(**{**GRANT.__dict__, "cert_thumbprint": "A" * 43})
    token = TokenIssuer(keys, ISSUER, AUDIENCE).issue(grant).access_token
    assert unverified_parts(token)[1]["cnf"] == {"x5t#S256": "A" * 43}
    assert TokenVerifier(keys, ISSUER, AUDIENCE).verify(token).cert_thumbprint == "A" * 43


def test_lifetime_over_300_seconds_is_refused(keys: SigningKeys) -> None:
    with pytest.raises(ValueError):
        TokenIssuer(keys, ISSUER, AUDIENCE, lifetime=301)


def test_expired_token_is_rejected(keys: SigningKeys) -> None:
    clock = Clock()
    token = TokenIssuer(keys, ISSUER, AUDIENCE, clock=clock).issue(GRANT).access_token
    clock.now += 306
    with pytest.raises(ExpiredToken):
        TokenVerifier(keys, ISSUER, AUDIENCE, clock=clock).verify(token)


def test_token_from_the_future_is_rejected(keys: SigningKeys) -> None:
    clock = Clock()
    token = TokenIssuer(keys, ISSUER, AUDIENCE, clock=clock).issue(GRANT).access_token
    clock.now -= 60
    with pytest.raises(InvalidToken, match="not valid yet"):
        TokenVerifier(keys, ISSUER, AUDIENCE, clock=clock).verify(token)


def test_wrong_audience_is_rejected(keys: SigningKeys) -> None:
    token = TokenIssuer(keys, ISSUER, "https://elsewhere/fhir").issue(GRANT).access_token
    with pytest.raises(InvalidToken, match="not meant"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(token)


def test_wrong_issuer_is_rejected(keys: SigningKeys) -> None:
    token = TokenIssuer(keys, "https://other-issuer", AUDIENCE).issue(GRANT).access_token
    with pytest.raises(InvalidToken, match="issuer"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(token)


def test_token_signed_by_unknown_key_is_rejected(keys: SigningKeys, tmp_path: Path) -> None:
    foreign = SigningKeys(tmp_path / "elsewhere")
    token = TokenIssuer(foreign, ISSUER, AUDIENCE).issue(GRANT).access_token
    with pytest.raises(InvalidToken, match="unknown key"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(token)


def test_tampered_token_is_rejected(keys: SigningKeys) -> None:
    token = TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT).access_token
    header, payload, signature = token.split(".")
    claims = unverified_parts(token)[1] | {"scope": "system/*.cruds"}
    forged = jwt.encode({"alg": "ES384"}, claims, ECKey.generate_key("P-384"), algorithms=["ES384"])
    forged_payload = forged.split(".")[1]
    with pytest.raises(InvalidToken, match="signature"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(f"{header}.{forged_payload}.{signature}")


def test_token_with_other_signing_key_under_the_gateway_kid_is_rejected(keys: SigningKeys) -> None:
    claims = unverified_parts(TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT).access_token)[1]
    header = {"alg": "ES384", "typ": "at+jwt", "kid": keys.signing_key().kid}
    forged = jwt.encode(header, claims, ECKey.generate_key("P-384"), algorithms=["ES384"])
    with pytest.raises(InvalidToken, match="signature"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(forged)


def test_unsigned_token_is_rejected(keys: SigningKeys) -> None:
    claims = unverified_parts(TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT).access_token)[1]
    segments = [json.dumps(part).encode() for part in ({"alg": "none", "typ": "at+jwt"}, claims)]
    import base64

    token = ".".join(base64.urlsafe_b64encode(s).rstrip(b"=").decode() for s in segments) + "."
    with pytest.raises(InvalidToken, match="not issued by this gateway"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify(token)


def test_garbage_is_rejected(keys: SigningKeys) -> None:
    with pytest.raises(InvalidToken, match="not a JWT"):
        TokenVerifier(keys, ISSUER, AUDIENCE).verify("not-a-token")


def test_token_signed_before_rotation_still_verifies(keys: SigningKeys) -> None:
    token = TokenIssuer(keys, ISSUER, AUDIENCE).issue(GRANT).access_token
    keys.rotate()
    assert TokenVerifier(keys, ISSUER, AUDIENCE).verify(token).client_id == "ehr"
