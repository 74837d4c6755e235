"""The client registry: which backend-service clients exist, with which keys, for which organisations, and
what they may ask for. Every change is written together with an audit row in the same transaction, so the
registry never changes without a record of who changed it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.auth.identity import PURPOSES_OF_USE
from gateway.auth.registry_schema import auth_client, auth_client_audit
from gateway.auth.scopes import ScopeError, parse_scopes

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_URA = re.compile(r"^\d{8}$")
_ORGANIZATION_TYPE = re.compile(r"^[A-Za-z0-9]{1,16}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_THUMBPRINT = re.compile(r"^[A-Za-z0-9_-]{43}$")
_MIN_RSA_BITS = 2048


class RegistrationError(ValueError):
    """A registration (or change) is invalid; the message says which field and why."""


class UnknownClientError(LookupError):
    pass


class ClientExistsError(RegistrationError):
    pass


@dataclass(frozen=True)
class Delegation:
    """A URA a vendor client may act for besides its own, with that organisation's type code."""

    ura: str
    organization_type: str


@dataclass(frozen=True)
class ClientRegistration:
    client_id: str
    ura: str
    organization_type: str
    allowed_scopes: str
    allowed_roles: tuple[str, ...]
    allowed_purposes: tuple[str, ...] = ("TREAT",)
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    delegations: tuple[Delegation, ...] = ()
    pinned_cert_thumbprint: str | None = None
    enabled: bool = True
    created_at: datetime | None = field(default=None, compare=False)
    updated_at: datetime | None = field(default=None, compare=False)

    def organization_type_for(self, ura: str) -> str | None:
        """The organisation type when acting for `ura`; None when the client may not act for it."""
        if ura == self.ura:
            return self.organization_type
        return next((d.organization_type for d in self.delegations if d.ura == ura), None)

    def keyset(self) -> KeySet | None:
        return KeySet.import_key_set(self.jwks) if self.jwks else None


def validate_registration(registration: ClientRegistration) -> None:
    """Raise RegistrationError for anything that would make the client unusable or unsafe."""
    if not _CLIENT_ID.fullmatch(registration.client_id):
        raise RegistrationError("client_id: 1-128 characters of letters, digits, '.', '_', ':' or '-'")
    for ura, organization_type in [(registration.ura, registration.organization_type)] + [
        (d.ura, d.organization_type) for d in registration.delegations
    ]:
        if not _URA.fullmatch(ura):
            raise RegistrationError(f"URA {ura!r}: must be 8 digits")
        if not _ORGANIZATION_TYPE.fullmatch(organization_type):
            raise RegistrationError(f"organization type {organization_type!r}: must be an organization-type code")
    if len({d.ura for d in registration.delegations} | {registration.ura}) != len(registration.delegations) + 1:
        raise RegistrationError("delegations: each URA once, and not the client's own URA")
    try:
        parse_scopes(registration.allowed_scopes)
    except ScopeError as error:
        raise RegistrationError(f"allowed scopes: {error}") from error
    if not registration.allowed_roles or not all(_ROLE.fullmatch(role) for role in registration.allowed_roles):
        raise RegistrationError("allowed roles: at least one role code of letters, digits, '.', '_', ':' or '-'")
    unknown = set(registration.allowed_purposes) - PURPOSES_OF_USE
    if not registration.allowed_purposes or unknown:
        raise RegistrationError(f"allowed purposes: a non-empty subset of {sorted(PURPOSES_OF_USE)}")
    if (registration.jwks is None) == (registration.jwks_uri is None):
        raise RegistrationError("give exactly one of jwks (inline) or jwks_uri")
    if registration.jwks is not None:
        validate_client_jwks(registration.jwks)
    if registration.jwks_uri is not None and not registration.jwks_uri.startswith("https://"):
        raise RegistrationError("jwks_uri must be an https URL")
    if registration.pinned_cert_thumbprint and not _THUMBPRINT.fullmatch(registration.pinned_cert_thumbprint):
        raise RegistrationError("pinned certificate: a base64url SHA-256 thumbprint (43 characters)")


def validate_client_jwks(jwks: Any) -> None:
    """A client JWKS holds public RSA (>= 2048 bit) or EC P-384 keys, each with a unique kid."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise RegistrationError("jwks: a JSON object with a non-empty 'keys' array")
    kids: set[str] = set()
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str) or not entry["kid"]:
            raise RegistrationError("jwks: every key needs a 'kid'")
        if entry["kid"] in kids:
            raise RegistrationError(f"jwks: kid {entry['kid']!r} appears twice")
        kids.add(entry["kid"])
        if any(part in entry for part in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise RegistrationError(f"jwks: key {entry['kid']!r} contains private material; register the public key")
        try:
            key = KeySet.import_key_set({"keys": [entry]}).keys[0]
        except (JoseError, ValueError, TypeError) as error:
            raise RegistrationError(f"jwks: key {entry['kid']!r} cannot be read: {error}") from error
        if isinstance(key, RSAKey):
            if key.raw_value.key_size < _MIN_RSA_BITS:
                raise RegistrationError(f"jwks: RSA key {entry['kid']!r} is shorter than {_MIN_RSA_BITS} bits")
        elif not (isinstance(key, ECKey) and entry.get("crv") == "P-384"):
            raise RegistrationError(f"jwks: key {entry['kid']!r} must be RSA (RS384) or EC P-384 (ES384)")


class ClientRegistry:
    """CRUD on `auth_client`; every change also inserts an `auth_client_audit` row."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, client_id: str) -> ClientRegistration | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(auth_client).where(auth_client.c.client_id == client_id)).first()
        return _from_row(row._mapping) if row else None

    def all(self) -> list[ClientRegistration]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(auth_client).order_by(auth_client.c.client_id)).all()
        return [_from_row(row._mapping) for row in rows]

    def add(self, registration: ClientRegistration, actor: str) -> ClientRegistration:
        validate_registration(registration)
        now = datetime.now(UTC)
        stored = replace(registration, created_at=now, updated_at=now)
        try:
            with self._writing() as connection:
                connection.execute(insert(auth_client).values(**_to_row(stored)))
                _audit(connection, actor, "add", stored.client_id, _summary(stored))
        except IntegrityError as error:
            raise ClientExistsError(f"client {registration.client_id!r} is already registered") from error
        return stored

    def replace(self, registration: ClientRegistration, actor: str) -> ClientRegistration:
        """Store a changed registration (same client id); the audit row lists the changed fields."""
        validate_registration(registration)
        current = self._require(registration.client_id)
        stored = replace(registration, created_at=current.created_at, updated_at=datetime.now(UTC))
        changed = _changes(current, stored)
        with self._writing() as connection:
            values = _to_row(stored)
            values.pop("created_at")
            connection.execute(update(auth_client).where(auth_client.c.client_id == stored.client_id).values(**values))
            _audit(connection, actor, "update", stored.client_id, {"changed": changed})
        return stored

    def set_enabled(self, client_id: str, enabled: bool, actor: str) -> None:
        self._require(client_id)
        with self._writing() as connection:
            connection.execute(
                update(auth_client)
                .where(auth_client.c.client_id == client_id)
                .values(enabled=enabled, updated_at=datetime.now(UTC))
            )
            _audit(connection, actor, "enable" if enabled else "disable", client_id, {})

    def rotate_key(self, client_id: str, jwks: dict[str, Any], actor: str) -> None:
        """Replace the client's inline JWKS (include the old key too if both must work during a change-over)."""
        validate_client_jwks(jwks)
        current = self._require(client_id)
        with self._writing() as connection:
            connection.execute(
                update(auth_client)
                .where(auth_client.c.client_id == client_id)
                .values(jwks=jwks, jwks_uri=None, updated_at=datetime.now(UTC))
            )
            detail = {"old_kids": _kids(current.jwks), "new_kids": _kids(jwks)}
            _audit(connection, actor, "rotate-key", client_id, detail)

    def audit_trail(self, client_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(auth_client_audit)
                .where(auth_client_audit.c.client_id == client_id)
                .order_by(auth_client_audit.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def _require(self, client_id: str) -> ClientRegistration:
        registration = self.get(client_id)
        if registration is None:
            raise UnknownClientError(f"client {client_id!r} is not registered")
        return registration

    def _writing(self):  # type: ignore[no-untyped-def]
        # `write` makes the gateway's SQLite engine BEGIN IMMEDIATE (see gateway.store.engine); harmless elsewhere
        return self.engine.execution_options(write=True).begin()


def _audit(connection: Any, actor: str, action: str, client_id: str, detail: dict[str, Any]) -> None:
    connection.execute(
        insert(auth_client_audit).values(
            recorded_at=datetime.now(UTC), actor=actor, action=action, client_id=client_id, detail=detail
        )
    )


def _to_row(registration: ClientRegistration) -> dict[str, Any]:
    return {
        "client_id": registration.client_id,
        "enabled": registration.enabled,
        "ura": registration.ura,
        "organization_type": registration.organization_type,
        "delegations": [asdict(d) for d in registration.delegations],
        "jwks": registration.jwks,
        "jwks_uri": registration.jwks_uri,
        "allowed_scopes": registration.allowed_scopes,
        "allowed_roles": list(registration.allowed_roles),
        "allowed_purposes": list(registration.allowed_purposes),
        "pinned_cert_thumbprint": registration.pinned_cert_thumbprint,
        "created_at": registration.created_at,
        "updated_at": registration.updated_at,
    }


def _from_row(row: Any) -> ClientRegistration:
    return ClientRegistration(
        client_id=row["client_id"],
        ura=row["ura"],
        organization_type=row["organization_type"],
        allowed_scopes=row["allowed_scopes"],
        allowed_roles=tuple(row["allowed_roles"]),
        allowed_purposes=tuple(row["allowed_purposes"]),
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        delegations=tuple(Delegation(**d) for d in row["delegations"]),
        pinned_cert_thumbprint=row["pinned_cert_thumbprint"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _kids(jwks: dict[str, Any] | None) -> list[str]:
    return [str(key.get("kid")) for key in (jwks or {}).get("keys", [])]


def _summary(registration: ClientRegistration) -> dict[str, Any]:
    """What the audit row records: the registration without key material, keys by kid."""
    row = _to_row(registration)
    row.pop("created_at")
    row.pop("updated_at")
    row["jwks"] = _kids(registration.jwks)
    return row


def _changes(before: ClientRegistration, after: ClientRegistration) -> dict[str, Any]:
    old, new = _summary(before), _summary(after)
    return {name: {"from": old[name], "to": new[name]} for name in new if old[name] != new[name]}

