"""Configuration of the auth stage (env vars `ZCC_AUTH_*`, `ZCC_UZI_*`, `ZCC_INSECURE_DEV`).

Defaults are the safe choice: auth on, no proxy header trusted, no mTLS requirement. Everything that weakens
security (insecure dev mode, trusting a proxy's certificate header) must be switched on explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_TOKEN_LIFETIME = 300
MAX_ASSERTION_LIFETIME = 300


def _split(raw: str, separator: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(separator) if part.strip())


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class AuthSettings:
    """`issuer` is the public origin of the gateway (scheme://host[:port]); the token endpoint, the JWKS and
    the `aud` a client assertion must carry are derived from it. `fhir_base_url` is the audience of the
    access tokens the gateway issues."""

    issuer: str
    fhir_base_url: str
    token_lifetime: int = MAX_TOKEN_LIFETIME
    clock_leeway: int = 5
    key_dir: Path = Path("var/keys")
    insecure_dev: bool = False
    require_mtls: bool = False
    client_cert_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    uzi_trust_anchors: tuple[Path, ...] = ()
    uzi_allowed_ca_oids: tuple[str, ...] = ()
    jwks_cache_seconds: int = 300
    protected_prefixes: tuple[str, ...] = ("/fhir", "/ingest")
    public_paths: frozenset[str] = field(
        default_factory=lambda: frozenset({"/fhir/metadata", "/fhir/.well-known/smart-configuration"})
    )

    def __post_init__(self) -> None:
        if not 0 < self.token_lifetime <= MAX_TOKEN_LIFETIME:
            raise ValueError(f"token lifetime must be between 1 and {MAX_TOKEN_LIFETIME} seconds")
        if not 0 <= self.clock_leeway <= 60:
            raise ValueError("clock leeway must be between 0 and 60 seconds")
        if self.client_cert_header and not self.trusted_proxies:
            raise ValueError("a certificate header is only read from trusted proxies: set ZCC_AUTH_TRUSTED_PROXIES")
        object.__setattr__(self, "issuer", self.issuer.rstrip("/"))
        object.__setattr__(self, "fhir_base_url", self.fhir_base_url.rstrip("/"))

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/auth/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/auth/jwks"

    @classmethod
    def from_environment(cls, fhir_base_url: str) -> AuthSettings:
        """Read `ZCC_*` variables; the issuer defaults to the FHIR base URL without its `/fhir` path."""
        default_issuer = fhir_base_url.rstrip("/").removesuffix("/fhir")
        anchors = _split(os.environ.get("ZCC_UZI_TRUST_ANCHORS", ""), os.pathsep)
        return cls(
            issuer=os.environ.get("ZCC_AUTH_ISSUER", default_issuer),
            fhir_base_url=fhir_base_url,
            token_lifetime=int(os.environ.get("ZCC_AUTH_TOKEN_LIFETIME", MAX_TOKEN_LIFETIME)),
            key_dir=Path(os.environ.get("ZCC_AUTH_KEY_DIR", "var/keys")),
            insecure_dev=_flag("ZCC_INSECURE_DEV"),
            require_mtls=_flag("ZCC_AUTH_REQUIRE_MTLS"),
            client_cert_header=os.environ.get("ZCC_AUTH_CLIENT_CERT_HEADER") or None,
            trusted_proxies=_split(os.environ.get("ZCC_AUTH_TRUSTED_PROXIES", ""), ","),
            uzi_trust_anchors=tuple(Path(anchor) for anchor in anchors),
            uzi_allowed_ca_oids=_split(os.environ.get("ZCC_UZI_CA_OIDS", ""), ","),
        )
