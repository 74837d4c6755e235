"""Where each entry came from: the released Provenance resources (one per ingested message, written by the
ingest pipeline) name the source organisation and the message. Only Provenance the client may see is used."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Source:
    organization: str  # display name of the source organisation
    message: str | None  # the source message identifier
    provenance: str  # "Provenance/<id>"


def sources_by_target(
    provenances: Iterable[dict[str, Any]], supporting: Mapping[str, dict[str, Any]], base_url: str
) -> dict[str, list[Source]]:
    """"Type/id" of every target -> the sources that produced it."""
    found: dict[str, list[Source]] = {}
    prefix = base_url.rstrip("/") + "/"
    for provenance in provenances:
        source = Source(_organization(provenance, supporting), _message(provenance), f"Provenance/{provenance['id']}")
        for target in provenance.get("target") or ():
            reference = str((target or {}).get("reference") or "").removeprefix(prefix).split("/_history")[0]
            if reference:
                found.setdefault(reference, []).append(source)
    return found


def _organization(provenance: dict[str, Any], supporting: Mapping[str, dict[str, Any]]) -> str:
    for agent in provenance.get("agent") or ():
        who = agent.get("who") or {}
        organization = supporting.get(str(who.get("reference")))
        if organization and organization.get("name"):
            return str(organization["name"])
        if who.get("display"):
            return str(who["display"])
    return ""


def _message(provenance: dict[str, Any]) -> str | None:
    for entity in provenance.get("entity") or ():
        what = entity.get("what") or {}
        identifier = what.get("identifier") or {}
        if identifier.get("value"):
            return str(identifier["value"])
        if what.get("display"):
            return str(what["display"])
    return None
