"""TEL -> ContactPoint: the URL scheme gives the system (tel/fax/mailto/http), the use codes the use."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from gateway.adapters.hl7v3.xml import Element

SCHEMES = {"tel": "phone", "fax": "fax", "mailto": "email", "http": "url", "https": "url"}
USES = {"HP": "home", "H": "home", "HV": "home", "WP": "work", "MC": "mobile", "PG": "mobile", "TMP": "temp",
        "BAD": "old"}


def contact_point(element: Element | None) -> dict[str, Any] | None:
    if element is None or element.get("nullFlavor") or not element.get("value"):
        return None
    raw = element.get("value", "").strip()
    scheme, sep, rest = raw.partition(":")
    system = SCHEMES.get(scheme.lower()) if sep else None
    result: dict[str, Any] = {"system": system or "other"}
    if system in {"url"}:
        result["value"] = raw
    else:
        result["value"] = unquote(rest if system else raw).strip()
    for code in (element.get("use") or "").split():
        if code in USES:
            result["use"] = "mobile" if code == "MC" else USES[code]
            break
    return result
