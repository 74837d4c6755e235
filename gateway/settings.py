"""Gateway configuration: environment variables `ZCC_*`, with an embedded-SQLite default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conformance.packages import default_package_paths

DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _package_paths_from_env() -> list[Path]:
    raw = os.environ.get("ZCC_PACKAGE_PATH", "")
    paths = [Path(part) for part in raw.split(":") if part]
    return paths or default_package_paths()


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

    def __post_init__(self) -> None:
        if self.validation not in {"strict", "lenient", "off"}:
            raise ValueError(f"ZCC_VALIDATION must be strict, lenient or off, not {self.validation!r}")
        self.base_url = self.base_url.rstrip("/")
