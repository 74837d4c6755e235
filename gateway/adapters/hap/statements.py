"""Helpers every clinical statement mapper shares: source keys, status, authorship, text."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap.context import MappingContext, source_key
from gateway.adapters.hap.parties import health_professional
from gateway.adapters.hl7v3.identifiers import identifier
from gateway.adapters.hl7v3.times import ts_value
from gateway.adapters.hl7v3.xml import Element, child, children, text_of


def statement_key(ctx: MappingContext, resource_type: str, element: Element, fallback: str) -> str:
    """Keyed on the statement's own id; without one, on `fallback` (the parent's key and the position)."""
    id_element = ctx.take(child(element, "id"))
    key = source_key(resource_type, id_element) or f"{resource_type}|{fallback}"
    if key in ctx.resources:  # two statements with one id: keep both, in message order (deterministic)
        ctx.warn(f"{resource_type} id {key.split('|', 1)[1]} is used by more than one statement; kept apart",
                 "duplicate")
        count = sum(1 for existing in ctx.resources if existing == key or existing.startswith(key + "|#"))
        key = f"{key}|#{count + 1}"
    return key


def identifier_list(element: Element) -> list[dict[str, Any]]:
    found = [identifier(e) for e in children(element, "id")]
    return [f for f in found if f]


def status_code(ctx: MappingContext, element: Element) -> str | None:
    status = ctx.take(child(element, "statusCode"))
    return status.get("code") if status is not None else None


def text(ctx: MappingContext, element: Element) -> str | None:
    return text_of(ctx.take(child(element, "text")))


def author(ctx: MappingContext, element: Element) -> tuple[dict[str, Any] | None, str | None]:
    """(reference to the author, time authored) of `author` (AssignedPerson / assignedAuthor / ...)."""
    found = ctx.visit(child(element, "author"))
    if found is None:
        return None, None
    when = ts_value(ctx.take(child(found, "time")))
    for name in ("AssignedPerson", "assignedAuthor", "AssignedEntity", "assignedEntity"):
        assigned = child(found, name)
        if assigned is not None:
            return health_professional(ctx, assigned), when
    return None, when


def participant_professional(ctx: MappingContext, element: Element, type_codes: set[str]) -> dict[str, Any] | None:
    """The professional in a `participant`/`performer` with one of `type_codes` (RESP, PRF, CST, ...)."""
    for name in ("participant", "performer"):
        for found in children(element, name):
            if found.get("typeCode") in type_codes or (name == "performer" and not type_codes - {"PRF"}):
                ctx.visit(found)
                assigned = child(found, "participantRole")
                assigned = assigned if assigned is not None else child(found, "assignedEntity")
                return health_professional(ctx, assigned)
    return None


def note(value: str | None) -> list[dict[str, str]] | None:
    return [{"text": value}] if value else None
