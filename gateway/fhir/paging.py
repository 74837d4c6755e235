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
    if not isinstance(state, dict) or not all(_is_position(state.get(name)) for name in _POSITIONS):
        raise FhirError(400, "invalid", "the paging token is not valid")
    return state


_POSITIONS = ("after", "offset", "max_key", "prev", "until", "count")  # storage keys, offsets, sizes


def _is_position(value: Any) -> bool:
    """A forged cursor must not reach SQL with a string, a float or a negative number as a position."""
    return value is None or (type(value) is int and 0 <= value < 2**63)
