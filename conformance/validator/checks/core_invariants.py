"""Native equivalents of the core invariants that sit on nearly every element or resource.

Evaluating them with the FHIRPath engine costs a large share of validation time. Each native check is keyed
by the exact expression text of the R4 core definition, so a profile that words an invariant differently
still goes through FHIRPath. Each function returns whether the invariant holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

NativeCheck = Callable[[Any, dict[str, Any]], bool]  # (focus value, root resource) -> holds


def _contained(value: Any) -> list[dict[str, Any]]:
    contained = value.get("contained") if isinstance(value, dict) else None
    return [c for c in contained if isinstance(c, dict)] if isinstance(contained, list) else []


def _ref_1(value: Any, root: dict[str, Any]) -> bool:
    reference = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(reference, str) or not reference.startswith("#"):
        return True
    return any(c.get("id") == reference[1:] for c in _contained(root))


def _dom_2(value: Any, root: dict[str, Any]) -> bool:
    return not any(_contained(c) for c in _contained(value))


def _dom_4(value: Any, root: dict[str, Any]) -> bool:
    for contained in _contained(value):
        meta = contained.get("meta")
        if isinstance(meta, dict) and ("versionId" in meta or "lastUpdated" in meta
                                       or "_versionId" in meta or "_lastUpdated" in meta):
            return False
    return True


def _dom_5(value: Any, root: dict[str, Any]) -> bool:
    for contained in _contained(value):
        meta = contained.get("meta")
        if isinstance(meta, dict) and meta.get("security"):
            return False
    return True


def _dom_6(value: Any, root: dict[str, Any]) -> bool:
    text = value.get("text") if isinstance(value, dict) else None
    return isinstance(text, dict) and ("div" in text)


def _ext_1(value: Any, root: dict[str, Any]) -> bool:
    if not isinstance(value, dict):
        return True
    has_value = any(k.startswith("value") and k[5:6].isupper() for k in value) or \
        any(k.startswith("_value") and k[6:7].isupper() for k in value)
    return bool(value.get("extension")) != has_value


def _html_checks(value: Any, root: dict[str, Any]) -> bool:
    from conformance.validator.checks.narrative import html_checks

    return html_checks(value)


NATIVE: dict[str, NativeCheck] = {
    "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
    "%rootResource.contained.id.trace('ids'))": _ref_1,
    "contained.contained.empty()": _dom_2,
    "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()": _dom_4,
    "contained.meta.security.empty()": _dom_5,
    "text.`div`.exists()": _dom_6,
    "extension.exists() != value.exists()": _ext_1,
    "htmlChecks()": _html_checks,
}

# Invariants that hold without evaluation in the common case, checked by FHIRPath otherwise (dom-3: every contained
# resource is referenced — vacuous without contained resources, the expression's `contained.where(...)` is empty).
DOM_3 = ("contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
         "%resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = "
         "'#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
         "'#').exists()).not()).trace('unmatched', id).empty()")
HOLDS_WHEN: dict[str, Callable[[Any], bool]] = {
    DOM_3: lambda value: not _contained(value),
}
