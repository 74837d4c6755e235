from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import ECKey, OctKey, RSAKey

from gateway.auth.clients import (
    ClientExistsError,
    ClientRegistration,
    ClientRegistry,
    Delegation,
    RegistrationError,
    UnknownClientError,
)
from gateway.auth.demo import ClientKey
from tests.auth.conftest import CLIENT_ID, URA, registration


def test_add_and_get(registry: ClientRegistry, ec_key: ClientKey) -> None:
    stored = registry.add(registration(ec_key), actor="admin")
    loaded = registry.get(CLIENT_ID)
    assert loaded == stored
    assert loaded is not None and loaded.created_at is not None
    assert registry.all() == [loaded]


def test_add_records_audit_row_without_key_material(registry: ClientRegistry, ec_key: ClientKey) -> None:
    registry.add(registration(ec_key), actor="admin")
    [row] = registry.audit_trail(CLIENT_ID)
    assert row["action"] == "add" and row["actor"] == "admin"
    assert row["detail"]["jwks"] == [ec_key.kid]
    assert row["detail"]["ura"] == URA


def test_duplicate_client_is_refused(register: Callable[..., ClientRegistration]) -> None:
    register()
    with pytest.raises(ClientExistsError):
        register()


def test_disable_and_enable_are_audited(registry: ClientRegistry, register: Callable[..., Any]) -> None:
    register()
    registry.set_enabled(CLIENT_ID, False, actor="admin")
    assert registry.get(CLIENT_ID).enabled is False  # type: ignore[union-attr]
    registry.set_enabled(CLIENT_ID, True, actor="admin")
    assert [row["action"] for row in registry.audit_trail(CLIENT_ID)] == ["add", "disable", "enable"]


def test_rotate_key_replaces_jwks(registry: ClientRegistry, register: Callable[..., Any],
                                  other_ec_key: ClientKey, ec_key: ClientKey) -> None:
    register()
    registry.rotate_key(CLIENT_ID, other_ec_key.public_jwks(), actor="admin")
    assert registry.get(CLIENT_ID).jwks == other_ec_key.public_jwks()  # type: ignore[union-attr]
    row = registry.audit_trail(CLIENT_ID)[-1]
    assert row["detail"] == {"old_kids": [ec_key.kid], "new_kids": [other_ec_key.kid]}


def test_replace_records_changed_fields(registry: ClientRegistry, register: Callable[..., Any]) -> None:
    current = register()
    registry.replace(replace(current, allowed_roles=("triagist-hap", "arts")), actor="admin")
    row = registry.audit_trail(CLIENT_ID)[-1]
    assert row["action"] == "update"
    assert row["detail"]["changed"] == {"allowed_roles": {"from": ["triagist-hap"], "to": ["triagist-hap", "arts"]}}


def test_unknown_client_cannot_be_disabled(registry: ClientRegistry) -> None:
    with pytest.raises(UnknownClientError):
        registry.set_enabled("nobody", False, actor="admin")


def test_delegated_ura_has_its_own_type(ec_key: ClientKey) -> None:
    reg = registration(ec_key, delegations=(Delegation("90000456", "A1"),))
    assert reg.organization_type_for("90000456") == "A1"
    assert reg.organization_type_for(URA) == "Z33"
    assert reg.organization_type_for("90000789") is None


def test_delegations_survive_storage(registry: ClientRegistry, ec_key: ClientKey) -> None:
    registry.add(registration(ec_key, delegations=(Delegation("90000456", "A1"),)), actor="admin")
    assert registry.get(CLIENT_ID).delegations == (Delegation("90000456", "A1"),)  # type: ignore[union-attr]


def _private_jwks() -> dict[str, Any]:
    key = ECKey.generate_key("P-384")
    key.ensure_kid()
    return {"keys": [key.as_dict(private=True)]}


def _kid_less_jwks(ec_key: ClientKey) -> dict[str, Any]:
    jwks = ec_key.public_jwks()
    return {"keys": [{k: v for k, v in jwks["keys"][0].items() if k != "kid"}]}


def _rsa_1024() -> RSAKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return RSAKey.import_key(private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))


def _jwks_of(key: Any) -> dict[str, Any]:
    key.ensure_kid()
    return {"keys": [key.as_dict(private=False)]}


@pytest.mark.parametrize(
    "changes",
    [
        {"client_id": "has space"},
        {"ura": "1234"},
        {"organization_type": "Z 3"},
        {"allowed_scopes": "system/Patient.sr"},
        {"allowed_scopes": "patient/Patient.rs"},
        {"allowed_roles": ()},
        {"allowed_purposes": ("MARKETING",)},
        {"allowed_purposes": ()},
        {"delegations": (Delegation(URA, "Z33"),)},
        {"jwks_uri": "https://ehr.example.nl/jwks"},  # both inline and URI
        {"jwks": None, "jwks_uri": "http://ehr.example.nl/jwks"},  # plain http
        {"jwks": None},  # neither
        {"pinned_cert_thumbprint": "abc"},
    ],
    ids=lambda changes: ",".join(changes),
)
def test_invalid_registration_is_refused(registry: ClientRegistry, ec_key: ClientKey, changes: dict[str, Any]) -> None:
    with pytest.raises(RegistrationError):
        registry.add(registration(ec_key, **changes), actor="admin")
    assert registry.get(registration(ec_key, **changes).client_id) is None


def test_private_key_in_jwks_is_refused(registry: ClientRegistry, ec_key: ClientKey) -> None:
    with pytest.raises(RegistrationError, match="private"):
        registry.add(registration(ec_key, jwks=_private_jwks()), actor="admin")


def test_key_without_kid_is_refused(registry: ClientRegistry, ec_key: ClientKey) -> None:
    with pytest.raises(RegistrationError, match="kid"):
        registry.add(registration(ec_key, jwks=_kid_less_jwks(ec_key)), actor="admin")


def test_short_rsa_key_is_refused(registry: ClientRegistry, ec_key: ClientKey) -> None:
    with pytest.raises(RegistrationError, match="2048"):
        registry.add(registration(ec_key, jwks=_jwks_of(_rsa_1024())), actor="admin")


def test_p256_key_is_refused(registry: ClientRegistry, ec_key: ClientKey) -> None:
    with pytest.raises(RegistrationError, match="P-384"):
        registry.add(registration(ec_key, jwks=_jwks_of(ECKey.generate_key("P-256"))), actor="admin")


def test_symmetric_key_is_refused(registry: ClientRegistry, ec_key: ClientKey) -> None:
    key = OctKey.generate_key(256)
    key.ensure_kid()
    with pytest.raises(RegistrationError):
        registry.add(registration(ec_key, jwks={"keys": [key.as_dict()]}), actor="admin")


def test_rotate_key_validates_the_new_jwks(registry: ClientRegistry, register: Callable[..., Any]) -> None:
    register()
    with pytest.raises(RegistrationError):
        registry.rotate_key(CLIENT_ID, _private_jwks(), actor="admin")
    assert [row["action"] for row in registry.audit_trail(CLIENT_ID)] == ["add"]
