"""`Accept-Language` -> "nl" or "en" (Dutch unless English is preferred)."""

from __future__ import annotations

from gateway.fhir.formats import by_preference

SUPPORTED = ("nl", "en")
DEFAULT = "nl"


def negotiate_language(header: str | None) -> str:
    for quality, tag in by_preference(header or ""):
        primary = tag.strip().lower().split("-")[0]
        if primary in SUPPORTED and quality > 0:
            return primary
    return DEFAULT
