"""II -> Identifier. Known OID roots become NamingSystem URIs (BSN, URA, AGB, UZI, BIG), others `urn:oid:`."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hl7v3.oids import identifier_system, oid_uri
from gateway.adapters.hl7v3.xml import Element


def identifier(element: Element | None) -> dict[str, Any] | None:
    """None for a missing or null II; a root-only II identifies by the OID itself (RFC 3986 system)."""
    if element is None or element.get("nullFlavor"):
        return None
    root, extension = element.get("root"), element.get("extension")
    if not root:
        return None
    if extension is None or not extension.strip():
        return {"system": "urn:ietf:rfc:3986", "value": oid_uri(root)}
    return {"system": identifier_system(root), "value": extension.strip()}


def identifier_key(element: Element | None) -> str | None:
    """`root|extension`: the source identity a stable resource id is derived from."""
    if element is None or element.get("nullFlavor") or not element.get("root"):
        return None
    return f"{element.get('root')}|{(element.get('extension') or '').strip()}"
