"""Bundle rules the invariants do not cover: fullUrl form and consistency, ids of search results, and the
index that resolves references between entries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_RELATIVE = re.compile(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")
Report = Callable[[str, str, str, str], None]  # severity, code, message, expression


class BundleIndex:
    """Entries by fullUrl and by `Type/id`, for reference resolution inside the Bundle."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.kind = bundle.get("type") if isinstance(bundle.get("type"), str) else None
        self.by_full_url: dict[str, dict[str, Any]] = {}
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
            if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
                self.by_relative.setdefault(f"{resource['resourceType']}/{resource['id']}", []).append(resource)

    def resolve(self, reference: str) -> dict[str, Any] | None:
        if reference in self.by_full_url:
            return self.by_full_url[reference]
        bare = reference.split("/_history/", 1)[0]
        if bare in self.by_full_url:
            return self.by_full_url[bare]
        parts = bare.rsplit("/", 2)
        if len(parts) >= 2:
            relative = f"{parts[-2]}/{parts[-1]}"
            candidates = self.by_relative.get(relative)
            if candidates:
                return candidates[0]
        return None


def check_entries(bundle: dict[str, Any], expression: str, report: Report) -> None:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return
    kind = bundle.get("type")
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
        if kind == "searchset" and isinstance(resource, dict) and "id" not in resource \
                and resource.get("resourceType") != "OperationOutcome":
            mode = entry.get("search", {}).get("mode") if isinstance(entry.get("search"), dict) else None
            if mode != "outcome":
                report("error", "invalid", "Search results must have ids", f"{where}.resource")
