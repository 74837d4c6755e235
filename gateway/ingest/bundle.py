"""Turn a translation into the transaction Bundle the FHIR pipeline executes: every resource PUT on its
stable id (so a later message about the same entity updates it), placeholders resolved to `Type/id`."""

from __future__ import annotations

from typing import Any

from gateway.fhir.errors import Issue


def resolve_references(node: Any, urls: dict[str, str]) -> None:
    """Replace placeholder `urn:uuid:` references by `Type/id` in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in urls:
                node[key] = urls[value]
            else:
                resolve_references(value, urls)
    elif isinstance(node, list):
        for item in node:
            resolve_references(item, urls)


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
