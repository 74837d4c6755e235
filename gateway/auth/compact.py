"""Reading a compact JWS *without* verifying it — only to decide how to verify it (which client, which
key, which algorithm). Nothing read here may be trusted before the signature has been checked."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS; ValueError when it is not one (strict base64url, JSON objects)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise ValueError("not a compact JWS")
    try:
        header, payload = (json.loads(_b64url(part)) for part in parts[:2])
    except (ValueError, binascii.Error) as error:
        raise ValueError("not a compact JWS") from error
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("JWS header and payload must be JSON objects")
    return header, payload


def _b64url(part: str) -> bytes:
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in part):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
