"""Turn a translation into the transaction Bundle the FHIR pipeline executes: every resource PUT on its
stable id (so a later message about the same entity updates it), placeholders resolved to `Type/id`."""

from __future__ import annotations

from typing import Any

from gateway.fhir.errors import Issue


def resolve_references(node: Any, urls: dict[str, str]) -> bool:
    """Replace placeholder `urn:uuid:` references by `Type/id` in place. True when a `urn:uuid:` reference is
    left that `urls` does not resolve (then `dangling_references` says where: locating every node costs ~3 ms
    per message, so it is done only when there is something to report)."""
    dangling = False
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                if key == "reference":
                    target = urls.get(value)
                    if target is not None:
                        node[key] = target  # an existing key: the dict does not change size
                    elif value.startswith("urn:uuid:"):
                        dangling = True
            elif isinstance(value, dict | list):
                dangling = resolve_references(value, urls) or dangling
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                dangling = resolve_references(item, urls) or dangling
    return dangling


def dangling_references(resources: list[dict[str, Any]]) -> list[Issue]:
    """Placeholders no resource of this message resolves (a bug in an adapter, never silently written)."""
    issues: list[Issue] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:"):
                    issues.append(Issue("error", "not-found", f"reference {value} points at nothing", [where]))
                else:
                    walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    for index, resource in enumerate(resources):
        walk(resource, f"Bundle.entry[{index}].resource")
    return issues


def transaction_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }
