"""Bundle rules the invariants do not cover: fullUrl form and consistency, ids of search results, and the
index that resolves references between entries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

_RELATIVE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
Report = Callable[[str, str, str, str], None]  # severity, code, message, expression


class BundleIndex:
    """Entries by fullUrl and by `Type/id`, for reference resolution inside the Bundle."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.kind = bundle.get("type") if isinstance(bundle.get("type"), str) else None
        self.by_full_url: dict[str, dict[str, Any]] = {}
        self.all_by_full_url: dict[str, list[dict[str, Any]]] = {}
        self.by_relative: dict[str, list[dict[str, Any]]] = {}
        for entry in bundle.get("entry", ()) if isinstance(bundle.get("entry"), list) else ():
            if not isinstance(entry, dict):
                continue
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                self.by_full_url.setdefault(full_url, resource)
                self.all_by_full_url.setdefault(full_url, []).append(resource)
            if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
                self.by_relative.setdefault(f"{resource['resourceType']}/{resource['id']}", []).append(resource)

    def resolve(self, reference: str) -> dict[str, Any] | None:
        if reference in self.by_full_url:
            return self.by_full_url[reference]
        bare, _, version = reference.partition("/_history/")
        if version:
            candidates = self.all_by_full_url.get(bare) or self.by_relative.get("/".join(bare.rsplit("/", 2)[-2:]))
            for candidate in candidates or ():
                if _version(candidate) == version:
                    return candidate
        if bare in self.by_full_url:
            return self.by_full_url[bare]
        parts = bare.rsplit("/", 2)
        if len(parts) >= 2:
            relative = f"{parts[-2]}/{parts[-1]}"
            candidates = self.by_relative.get(relative)
            if candidates:
                return candidates[0]
        return None


    def problem(self, reference: str) -> tuple[str, str] | None:
        """(severity, message) when a reference to an entry is ambiguous (error) or names a version the Bundle
        does not hold (warning: resources of that type and id are there); None when fine. Bundles that
        legitimately carry several versions of a resource (history, transactions) are exempt."""
        if self.kind in _MANY_VERSIONS or reference.startswith(("#", "urn:")):
            return None
        bare, _, version = reference.partition("/_history/")
        candidates = self.all_by_full_url.get(bare)
        if candidates is None:
            parts = bare.rsplit("/", 2)
            if len(parts) < 2:
                return None
            candidates = self.by_relative.get(f"{parts[-2]}/{parts[-1]}")
        if not candidates:
            return None
        if version:
            if any(_version(c) == version for c in candidates):
                return None
            return ("warning", f"The bundle contains no match for {reference}: {len(candidates)} resource(s) match "
                               f"by type and id but none has version {version}")
        if len(candidates) > 1:
            return "error", f"Multiple matches in bundle for reference {reference}"
        return None


_MANY_VERSIONS = frozenset({"history", "batch", "transaction", "batch-response", "transaction-response"})


def _version(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def check_entries(bundle: dict[str, Any], expression: str, report: Report) -> None:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    kind = bundle.get("type")
    types = searchset_types(bundle) if kind == "searchset" else None
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"{expression}.entry[{index}]"
        full_url = entry.get("fullUrl")
        resource = entry.get("resource")
        if isinstance(full_url, str):
            if _RELATIVE.fullmatch(full_url):
                report("error", "invalid", f"The fullUrl must be an absolute URL (not '{full_url}')", where)
            elif isinstance(resource, dict) and isinstance(resource.get("id"), str) and "://" in full_url:
                tail = full_url.split("/_history/", 1)[0].rstrip("/").rsplit("/", 2)
                if tail[-1] != resource["id"] and len(tail) >= 2 and tail[-2] == resource.get("resourceType"):
                    report("error", "invalid",
                           f"The fullUrl '{full_url}' does not match the resource id '{resource['id']}'", where)
            version = resource.get("meta", {}).get("versionId") if isinstance(resource, dict) else None
            key = f"{full_url}|{version}"
            if key in seen and kind not in ("history", "batch", "transaction", "batch-response",
                                            "transaction-response"):
                report("error", "invalid", f"Duplicate fullUrl '{full_url}' in the Bundle", where)
            seen[key] = index
        if kind == "searchset" and isinstance(resource, dict):
            _check_search_entry(entry, resource, types, f"{where}.resource", report)


def _check_search_entry(entry: dict[str, Any], resource: dict[str, Any], search_types: list[str] | None,
                        where: str, report: Report) -> None:
    """A searchset entry: `outcome` entries are OperationOutcomes; matches and includes have ids, and matches
    have a type the search (its self link) asked for. Without a mode an OperationOutcome is taken as the
    outcome."""
    mode = entry.get("search", {}).get("mode") if isinstance(entry.get("search"), dict) else None
    resource_type = resource.get("resourceType")
    if mode == "outcome":
        if resource_type != "OperationOutcome":
            report("error", "invalid", f"This is not an OperationOutcome ({resource_type})", where)
        return
    if mode is None and resource_type == "OperationOutcome":
        return
    if "id" not in resource:
        report("error", "invalid", "Search results must have ids", where)
    if mode == "match" and search_types and resource_type not in search_types:
        report("error", "invalid", f"This is not a matching resource type for the specified search "
               f"({resource_type} expecting [{', '.join(search_types)}])", where)


def searchset_types(bundle: dict[str, Any]) -> list[str] | None:
    """The resource types a searchset's self link searched for: `[base]/Type?...` or `_type=A,B`."""
    links = bundle.get("link") if isinstance(bundle.get("link"), list) else []
    url = next((link.get("url") for link in links if isinstance(link, dict) and link.get("relation") == "self"
                and isinstance(link.get("url"), str)), None)
    if url is None:
        return None
    path, _, query = url.partition("?")
    for parameter in query.split("&"):
        name, _, value = parameter.partition("=")
        if name == "_type" and value:
            return [unquote(t) for t in value.split(",") if t]
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if re.fullmatch(r"[A-Z][A-Za-z]+", last):
        return [last]
    return None
