"""References between the resources of one STU3 message, and to resources outside it.

Inside the message a reference (`Type/id`, an absolute URL ending in `Type/id`, or a Bundle `fullUrl`)
becomes the placeholder of the resource it names; the pipeline turns placeholders into stored ids. A
reference outside the message becomes `Type/<stable id>` of the same source identity, so that a resource
sent in an earlier or later message with that logical id is the one it points at."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_RELATIVE = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def split_reference(reference: str) -> tuple[str, str] | None:
    """(`Type`, `id`) of a relative or absolute RESTful reference; None for `#contained`, urn: and others."""
    match = _RELATIVE.search(reference)
    return (match["type"], match["id"]) if match and not reference.startswith("#") else None


def rewrite_references(node: Any, resolve: Callable[[str, str], str | None], where: str,
                       unresolved: list[tuple[str, str]]) -> None:
    """Replace every `reference` in place by what `resolve(reference, where)` says; collect the ones it
    cannot resolve as (where, reference)."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}"
            if key == "reference" and isinstance(value, str) and not value.startswith("#"):
                resolved = resolve(value, here)
                if resolved is None:
                    unresolved.append((here, value))
                else:
                    node[key] = resolved
            else:
                rewrite_references(value, resolve, here, unresolved)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            rewrite_references(item, resolve, f"{where}[{index}]", unresolved)
