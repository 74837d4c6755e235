"""Gateway configuration: environment variables `ZCC_*`, with an embedded-SQLite default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.packages import installed_package_paths

DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _package_paths_from_env() -> list[Path]:
    raw = os.environ.get("ZCC_PACKAGE_PATH", "")
    paths = [Path(part) for part in raw.split(":") if part]
    return paths or installed_package_paths()


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get("ZCC_DATABASE_URL", "sqlite:///var/gateway.db"))
    package_paths: list[Path] = field(default_factory=_package_paths_from_env)
    base_url: str = field(default_factory=lambda: os.environ.get("ZCC_BASE_URL", "http://127.0.0.1:8080/fhir"))
    max_body: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_BODY", DEFAULT_MAX_BODY)))
    validation: str = field(default_factory=lambda: os.environ.get("ZCC_VALIDATION", "strict"))
    # Consent and audit are on unless switched off explicitly — only for FHIR-conformance test deployments
    # without patient data (never in a zcc): ZCC_CONSENT=off, ZCC_AUDIT=off.
    consent: bool = field(default_factory=lambda: os.environ.get("ZCC_CONSENT", "on") != "off")
    audit: bool = field(default_factory=lambda: os.environ.get("ZCC_AUDIT", "on") != "off")
    default_count: int = 50
    max_count: int = 1000
    # Request limits (gateway/limits): requests per second per client (0 = off) with bursts up to rate_burst;
    # seconds a request body may take to arrive; the longest string a written resource may hold (FHIR: 1 MB).
    rate_limit: float = field(default_factory=lambda: float(os.environ.get("ZCC_RATE_LIMIT", "0")))
    rate_burst: int = field(default_factory=lambda: int(os.environ.get("ZCC_RATE_BURST", "100")))
    rate_limit_trust_forwarded: bool = field(
        default_factory=lambda: os.environ.get("ZCC_TRUST_FORWARDED", "off") == "on")
    body_timeout: float = field(default_factory=lambda: float(os.environ.get("ZCC_BODY_TIMEOUT", "30")))
    max_string: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_STRING", 1024 * 1024)))
    # Audit trail (gateway/audit): days AuditEvents are kept before `zcc-gateway audit purge` may remove them
    # (NEN 7513 / WGBO practice: 5 years); a signed checkpoint every N events (0 = only `audit checkpoint`);
    # the roles that may read the audit trail over the API (besides the consent policy's admin roles).
    audit_retention_days: int = field(default_factory=lambda: int(os.environ.get("ZCC_AUDIT_RETENTION_DAYS", 1826)))
    audit_checkpoint_every: int = field(
        default_factory=lambda: int(os.environ.get("ZCC_AUDIT_CHECKPOINT_EVERY", 1000)))
    audit_reader_roles: tuple[str, ...] = field(default_factory=lambda: tuple(
        r.strip() for r in os.environ.get("ZCC_AUDIT_READER_ROLES", "privacy-officer").split(",") if r.strip()))
    # request line + headers: total bytes and number of headers (431 beyond)
    max_header_bytes: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_HEADER_BYTES", 64 * 1024)))
    max_header_count: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_HEADER_COUNT", "100")))
    # seconds any wait on the database may take (SQLite busy wait, PostgreSQL connect/lock/pool) before a 503
    database_timeout: float = field(default_factory=lambda: float(os.environ.get("ZCC_DB_TIMEOUT", "30")))
    # query size: parameters per request, comma-separated (OR) values per parameter
    max_search_params: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_SEARCH_PARAMS", "100")))
    max_or_values: int = field(default_factory=lambda: int(os.environ.get("ZCC_MAX_OR_VALUES", "200")))

    def __post_init__(self) -> None:
        if self.validation not in {"strict", "lenient", "off"}:
            raise ValueError(f"ZCC_VALIDATION must be strict, lenient or off, not {self.validation!r}")
        self.base_url = self.base_url.rstrip("/")
