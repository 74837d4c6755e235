"""Opaque paging cursors: the state of a page (query, position, snapshot) as URL-safe base64 JSON.

Clients must treat them as opaque; the server can change what is inside without breaking links it
has not handed out yet."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from gateway.fhir.errors import FhirError


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def decode_cursor(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise FhirError(400, "invalid", f"the paging token '{token[:40]}' is not valid") from None
    if not isinstance(state, dict):
        raise FhirError(400, "invalid", "the paging token is not valid")
    return state
