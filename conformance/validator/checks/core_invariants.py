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


def _lacks(value: Any, name: str) -> bool:
    """`value` is a JSON object with no property `name` in any form (`name`, `_name`, `nameQuantity`...): FHIRPath
    finds nothing there, so `name.empty()` is true and `name.exists()`, `name.hasValue()` and `name.extension(...)
    .exists()` are false, whatever the types."""
    if not isinstance(value, dict):
        return False
    companion = "_" + name
    return not any(key.startswith(name) or key.startswith(companion) for key in value)


def _has(value: Any, name: str) -> bool:
    """`value` is a JSON object whose `name` is a non-empty string or object, or an array with one: `name.exists()`
    is true."""
    if not isinstance(value, dict):
        return False
    found = value.get(name)
    if isinstance(found, list):
        return any(isinstance(item, dict | str) and item for item in found)
    return isinstance(found, dict | str) and bool(found)


def _no_extension(value: Any, url: str) -> bool:
    """`value` is a JSON object without an extension `url`: `extension(url).exists()` is false."""
    if not isinstance(value, dict):
        return False
    found = value.get("extension", [])
    return isinstance(found, list) and not any(isinstance(e, dict) and e.get("url") == url for e in found)


def _no_coding(value: Any, name: str, system: str, code: str) -> bool:
    """`name.coding.where(system = 'system' and code = 'code')` finds nothing in the JSON object `value`: `name`
    is absent, or an object whose codings are objects with string (or absent) system and code, none both equal."""
    if _lacks(value, name):
        return True
    concept = value.get(name) if isinstance(value, dict) else None
    if not isinstance(concept, dict) or not isinstance(concept.get("coding", []), list):
        return False
    for coding in concept.get("coding", []):
        if not isinstance(coding, dict):
            return False
        found_system, found_code = coding.get("system"), coding.get("code")
        if not isinstance(found_system, str | None) or not isinstance(found_code, str | None):
            return False
        if found_system == system and found_code == code:
            return False
    return True


_SOAP_LINE_CODE = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# Invariants on the elements of (nearly) every ingested resource whose outcome is decided by a cheap look at the
# focus, keyed by their exact text; only where the operands decided on cannot fail to evaluate (an absent element,
# `exists()`/`empty()`), and `or`/`implies` are evaluated left to right as the FHIRPath engine does.
_SHORTCUTS: dict[str, Callable[[Any], bool]] = {
    # vs-3 (vital signs): no value, or no component (`value.empty()` cannot fail, the `where` has nothing to visit)
    "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()":
        lambda v: _lacks(v, "value") or _lacks(v, "component"),
    # obs-6
    "dataAbsentReason.empty() or value.empty()": lambda v: _lacks(v, "dataAbsentReason") or _lacks(v, "value"),
    # con-5
    "verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/condition-ver-status' and "
    "code='entered-in-error').empty() or clinicalStatus.empty()":
        lambda v: _no_coding(v, "verificationStatus", _CONDITION_VERIFICATION, "entered-in-error"),
    # con-3
    "clinicalStatus.exists() or verificationStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
    "condition-ver-status' and code = 'entered-in-error').exists() or category.select($this='problem-list-item')"
    ".empty()": lambda v: _has(v, "clinicalStatus"),
    # per-1
    "start.hasValue().not() or end.hasValue().not() or (start <= end)":
        lambda v: _lacks(v, "start") or (_lacks(v, "end") and isinstance(v.get("start"), str)),
    # qty-3, cpt-2
    "code.empty() or system.exists()": lambda v: _lacks(v, "code") or _has(v, "system"),
    "value.empty() or system.exists()": lambda v: _lacks(v, "value") or _has(v, "system"),
    # cmp-1, cmp-2
    "text.exists() or entry.exists() or section.exists()":
        lambda v: _has(v, "text") or _has(v, "entry") or _has(v, "section"),
    "emptyReason.empty() or entry.empty()": lambda v: _lacks(v, "emptyReason") or _lacks(v, "entry"),
    # obs-7-like (nl-core): a present component or member makes the left operand false
    "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())":
        lambda v: _has(v, "component") or _has(v, "hasMember"),
    # con-4 (the left operand decides), and a nl-core rule on Quantity
    "abatement.empty() or clinicalStatus.coding.where(system='http://terminology.hl7.org/CodeSystem/"
    "condition-clinical' and (code='resolved' or code='remission' or code='inactive')).exists()":
        lambda v: _lacks(v, "abatement"),
    "comparator.empty()": lambda v: _lacks(v, "comparator"),
    # nl-core SOAPReport: `false implies ...` without the SOAP line code extension
    f"extension('{_SOAP_LINE_CODE}').exists() implies (code.coding.where(code = '255362007' and system = "
    "'http://snomed.info/sct').exists() or code.coding.where(code = '129265001' and system = "
    "'http://snomed.info/sct').exists())": lambda v: _no_extension(v, _SOAP_LINE_CODE),
    # org-1 (and ipn-1): an identifier or a name present makes the sum positive (`count()` cannot fail)
    "(identifier.count() + name.count()) > 0": lambda v: _has(v, "identifier") or _has(v, "name"),
    # rng-2-like / ratio: any present bound
    "low.exists() or high.exists() or text.exists()": lambda v: _has(v, "low") or _has(v, "high") or _has(v, "text"),
}

HOLDS_WHEN: dict[str, Callable[[Any], bool]] = {
    DOM_3: lambda value: not _contained(value),
    **_SHORTCUTS,
}
