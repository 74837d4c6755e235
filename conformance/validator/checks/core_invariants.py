"""Native equivalents of the core invariants that sit on nearly every element or resource.

Evaluating them with the FHIRPath engine costs a large share of validation time. Each native check is keyed
by the exact expression text of the R4 core definition, so a profile that words an invariant differently
still goes through FHIRPath. Each function returns whether the invariant holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
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


def _extension_urls(value: Any) -> list[str] | None:
    """The urls of the extensions of `value` (a JSON object or a primitive's `_name` companion); None when anything
    in them is not as FHIR JSON has it (then a shortcut leaves the question to the FHIRPath engine)."""
    if not isinstance(value, dict):
        return None
    found = value.get("extension", [])
    if not isinstance(found, list) or not all(isinstance(e, dict) and isinstance(e.get("url"), str) for e in found):
        return None
    return [e["url"] for e in found]


def _no_extension(value: Any, url: str) -> bool:
    """`extension(url).exists()` and `extension.where(url = ...).exists()` are false: `value` is a JSON object whose
    extensions (if any) are objects with string urls, none of them `url`."""
    urls = _extension_urls(value)
    return urls is not None and url not in urls


def _prefix_has_name(value: Any, prefix: str, name: str) -> bool:
    """`family.extension(prefix).empty().not() implies family.extension(name).empty().not()` holds: the family
    name has no extensions, or no `prefix` one, or a `name` one."""
    if not isinstance(value, dict):
        return False
    if "_family" not in value:
        return True
    urls = _extension_urls(value["_family"])
    return urls is not None and (prefix not in urls or name in urls)


def _has_value_choice(value: Any, name: str) -> bool:
    """`name.exists()` for a choice element `name[x]`: `value` is a JSON object with a non-empty `name<Type>`
    object or string."""
    if not isinstance(value, dict):
        return False
    return any(key.startswith(name) and key[len(name):len(name) + 1].isupper() and isinstance(found, dict | str)
               and bool(found) for key, found in value.items())


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,3})?"
                      r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})")


def _ordered(start: Any, end: Any) -> bool:
    """`start <= end` is true for two FHIR dates, or two dateTimes to the second (or millisecond: one precision
    for FHIRPath) in the same time zone; anything else (other or mixed precisions or zones) is left to the
    engine."""
    if not isinstance(start, str) or not isinstance(end, str):
        return False
    if not (_DATE.fullmatch(start) and _DATE.fullmatch(end)):
        first, second = _INSTANT.fullmatch(start), _INSTANT.fullmatch(end)
        if not first or not second or first["zone"] != second["zone"]:
            return False
    try:
        return datetime.fromisoformat(start) <= datetime.fromisoformat(end)
    except ValueError:  # e.g. month 13: not a date, the engine decides
        return False


_SOAP_LINE_CODE = "http://nictiz.nl/fhir/StructureDefinition/ext-SOAPReport.SOAPLineCode"
_CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_OWN_PREFIX = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"
_OWN_NAME = "http://hl7.org/fhir/StructureDefinition/humanname-own-name"
_PARTNER_PREFIX = "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix"
_PARTNER_NAME = "http://hl7.org/fhir/StructureDefinition/humanname-partner-name"
_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
_ALERT_CODES = "http://decor.nictiz.nl/fhir/ValueSet/2.16.840.1.113883.2.4.3.11.60.40.2.8.3.2--20200901000000"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"

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
        lambda v: _lacks(v, "start") or (_lacks(v, "end") and isinstance(v.get("start"), str))
        or (isinstance(v, dict) and _ordered(v.get("start"), v.get("end"))),
    # qty-3, cpt-2
    "code.empty() or system.exists()": lambda v: _lacks(v, "code") or _has(v, "system"),
    "value.empty() or system.exists()": lambda v: _lacks(v, "value") or _has(v, "system"),
    # cmp-1, cmp-2
    "text.exists() or entry.exists() or section.exists()":
        lambda v: _has(v, "text") or _has(v, "entry") or _has(v, "section"),
    "emptyReason.empty() or entry.empty()": lambda v: _lacks(v, "emptyReason") or _lacks(v, "entry"),
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
    # nl-core-NameInformation: a family name without extensions, or with the name part its prefix belongs to
    f"family.extension('{_OWN_PREFIX}').empty().not() implies family.extension('{_OWN_NAME}').empty().not()":
        lambda v: _prefix_has_name(v, _OWN_PREFIX, _OWN_NAME),
    f"family.extension('{_PARTNER_PREFIX}').empty().not() implies family.extension('{_PARTNER_NAME}').empty().not()":
        lambda v: _prefix_has_name(v, _PARTNER_PREFIX, _PARTNER_NAME),
    "(family.exists() or given.extension.where(url = 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier')"
    ".where(value != 'IN').exists()) implies text.hasValue()":
        lambda v: isinstance(v, dict) and isinstance(v.get("text"), str) and bool(v["text"]),
    # nl-core-ContactInformation-TelephoneNumbers / -AddressInformation: not a home entry
    "where(use = 'home').empty()":
        lambda v: _lacks(v, "use") or (isinstance(v, dict) and isinstance(v.get("use"), str) and v["use"] != "home"),
    # obs-7-like (nl-core), the right operand: a value or a data absent reason
    "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())":
        lambda v: _has(v, "component") or _has(v, "hasMember") or _has(v, "dataAbsentReason")
        or _has_value_choice(v, "value"),
    # nl-core-Alert: no flag-detail extension
    f"code.memberOf('{_ALERT_CODES}') implies extension.where(url = '{_FLAG_DETAIL}').exists().not()":
        lambda v: _no_extension(v, _FLAG_DETAIL),
    f"extension('{_FLAG_DETAIL}').exists() implies code.coding.where($this.system = "
    "'http://terminology.hl7.org/CodeSystem/data-absent-reason' and $this.code = 'not-applicable').exists()":
        lambda v: _no_extension(v, _FLAG_DETAIL),
    # ait-1, ait-2 (AllergyIntolerance)
    f"verificationStatus.coding.where(system = '{_ALLERGY_VERIFICATION}' and code = 'entered-in-error').exists() "
    "or clinicalStatus.exists()": lambda v: _has(v, "clinicalStatus"),
    f"verificationStatus.coding.where(system = '{_ALLERGY_VERIFICATION}' and code = 'entered-in-error').empty() "
    "or clinicalStatus.empty()":
        lambda v: _no_coding(v, "verificationStatus", _ALLERGY_VERIFICATION, "entered-in-error"),
    # tim-1 .. tim-10 (Timing.repeat): the element the rule is about is absent
    "duration.empty() or durationUnit.exists()": lambda v: _lacks(v, "duration"),
    "period.empty() or periodUnit.exists()": lambda v: _lacks(v, "period"),
    "duration.exists() implies duration >= 0": lambda v: _lacks(v, "duration"),
    "period.exists() implies period >= 0": lambda v: _lacks(v, "period"),
    "periodMax.empty() or period.exists()": lambda v: _lacks(v, "periodMax"),
    "durationMax.empty() or duration.exists()": lambda v: _lacks(v, "durationMax"),
    "countMax.empty() or count.exists()": lambda v: _lacks(v, "countMax"),
    "offset.empty() or (when.exists() and ((when in ('C' | 'CM' | 'CD' | 'CV')).not()))": lambda v: _lacks(v, "offset"),
    "timeOfDay.empty() or when.empty()": lambda v: _lacks(v, "timeOfDay") or _lacks(v, "when"),
}

# Invariants on primitive elements, decided by their value alone (whatever the primitive's type).
_PRIMITIVE_SHORTCUTS: dict[str, Callable[[Any], bool]] = {
    # nl-core-NameInformation on `family`: a family name that has a value
    f"(extension('{_OWN_PREFIX}').exists() or extension('{_OWN_NAME}').exists() or extension('{_PARTNER_PREFIX}')"
    f".exists() or extension('{_PARTNER_NAME}').exists()) implies $this.hasValue()":
        lambda v: isinstance(v, str) and bool(v),
}

HOLDS_WHEN: dict[str, Callable[[Any], bool]] = {
    DOM_3: lambda value: not _contained(value),
    **_SHORTCUTS,
    **_PRIMITIVE_SHORTCUTS,
}
