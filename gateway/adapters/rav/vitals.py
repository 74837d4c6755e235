"""ORU^R01 results -> Observations. Per OBR group, the OBX of one vital sign become one Observation claiming
its nl-core profile (blood pressure and GCS with their components; respiratory rate the core `resprate`);
any other OBX becomes a plain Observation with the code as sent (no profile claimed)."""

from __future__ import annotations

import re
from typing import Any

from conformance.fhirjson import FhirDecimal
from gateway.adapters.hl7v2.codes import code_system_uri, codeable_concept
from gateway.adapters.hl7v2.datatypes import date_time
from gateway.adapters.hl7v2.message import Segment, component, leaf
from gateway.adapters.hl7v3.oids import UCUM
from gateway.adapters.rav import profiles
from gateway.adapters.rav.translation import TranslationBuilder, TranslationError

_NM = re.compile(r"([+-]?)0*(\d+)?(?:\.(\d+))?")
# OBX-11 result status (HL7 table 0085) -> Observation.status
STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "R": "preliminary", "S": "preliminary",
          "I": "registered", "X": "cancelled", "D": "entered-in-error", "W": "entered-in-error", "A": "amended"}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
NUMERIC_TYPES = {"NM", "SN"}
_BETWEEN = re.compile(r"\s*([+-]?[\d.]+)\s*-\s*([+-]?[\d.]+)\s*")
_BOUND = re.compile(r"\s*([<>])=?\s*([+-]?[\d.]+)\s*")


def numeric(text: str, location: str) -> FhirDecimal:
    """HL7 NM (optional sign, digits, optional decimal point) -> an exact FHIR decimal."""
    match = _NM.fullmatch(text.strip())
    if not text.strip() or match is None or not (match.group(2) or match.group(3)):
        raise TranslationError("value", f"{location}: '{text}' is not a number (NM)", location)
    sign, whole, fraction = match.group(1), match.group(2) or "0", match.group(3)
    value = f"{'-' if sign == '-' else ''}{whole}{'.' + fraction if fraction else ''}"
    return FhirDecimal("0" if value == "-0" else value)


def group_observations(builder: TranslationBuilder, obr: Segment | None, results: list[Segment],
                       context: dict[str, Any], key_prefix: str) -> None:
    """The Observations of one OBR and its OBX segments. `context` holds subject, encounter, performer and the
    default effective time."""
    effective = context.get("effective")
    if obr is not None:
        obr.take(1), obr.take(3)  # set id; filler order number (in the Observation keys)
        effective = date_time(obr.value(7), f"OBR[{obr.position}]-7") or effective
    grouped: dict[str, dict[str, Any]] = {}
    for obx in results:
        _result(builder, obx, grouped, {**context, "effective": effective})
    for kind, resource in grouped.items():
        if kind == "gcs":
            _finish_gcs(resource)
        builder.add(f"{key_prefix}|{kind}", resource)


def _result(builder: TranslationBuilder, obx: Segment, grouped: dict[str, dict[str, Any]],
            context: dict[str, Any]) -> None:
    where = f"OBX[{obx.position}]"
    obx.take(1)
    value_type = obx.value(2)
    code_field = obx.take(3)
    if not code_field:
        raise TranslationError("required", f"{where}-3 (observation identifier) is empty", f"{where}-3")
    concept, unknown = codeable_concept(code_field[0])
    for name in unknown:
        builder.warn(f"{where}-3: coding system '{name}' is not known; the code is kept without system",
                     "code-unknown", f"{where}-3")
    code = (component(code_field[0], 3), component(code_field[0], 1))
    system = code_system_uri(code[0]) or ""
    vital = profiles.VITAL_SIGNS.get((system, code[1]))
    values = obx.take(5)
    status = STATUS.get(obx.value(11) or "F")
    if status is None:
        raise TranslationError("code-invalid", f"{where}-11: result status '{obx.value(11)}' is not in HL7 table "
                               "0085", f"{where}-11")
    unit = _unit(obx)
    when = date_time(obx.value(14), f"{where}-14") or context.get("effective")
    if vital is not None and vital.unit is not None and unit is not None and unit != vital.unit:
        builder.warn(f"{where}: {code[1]} in unit '{unit}' where {vital.profile} expects '{vital.unit}'; kept "
                     "as a plain Observation", "value", f"{where}-6")
        vital = None
    if vital is not None and value_type not in NUMERIC_TYPES and values:
        raise TranslationError("value", f"{where}-2: a vital sign ({code[1]}) needs a numeric value type (NM), "
                               f"not '{value_type}'", f"{where}-2")
    if vital is None:
        kind = f"obx-{obx.position}"
        resource = _observation(None, concept or {"text": "onbekend"}, status, when, context)
        _value(builder, obx, value_type, values, unit, resource, where)
        grouped[kind] = resource
        return
    resource = grouped.get(vital.kind)
    if resource is None:
        resource = _observation(vital.profile, {"coding": vital.codings()}, status, when, context)
        if vital.kind == "gcs":
            del resource["category"]  # the GCS is a score, not one of the FHIR vital signs
        grouped[vital.kind] = resource
    number = numeric(leaf(values), f"{where}-5") if values else None
    source_codings = (concept or {}).get("coding", [])
    reference_range = _reference_range(obx, vital.unit or unit, where)
    if vital.kind == "blood-pressure":
        code = {"coding": _merged([profiles.BLOOD_PRESSURE_COMPONENTS[vital.part or ""]], source_codings)}
        part: dict[str, Any] = {"code": code}
        if number is not None:
            part["valueQuantity"] = _quantity(number, vital.unit or "")
        else:
            part["dataAbsentReason"] = _absent()
        _interpretation(obx, part)
        if reference_range:
            part["referenceRange"] = [reference_range]
        resource.setdefault("component", []).append(part)
        return
    if vital.kind == "gcs":
        resource.setdefault("_gcs", {})[vital.part] = (number, where)
        return
    resource["code"]["coding"] = _merged(resource["code"]["coding"], source_codings)
    if number is not None:
        resource["valueQuantity"] = _quantity(number, vital.unit or unit or "1")
    else:
        resource["dataAbsentReason"] = _absent()
    if reference_range:
        resource["referenceRange"] = [reference_range]
    _interpretation(obx, resource)


def _merged(codings: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`codings` plus the source codings that are not the same system and code."""
    seen = {(c.get("system"), c.get("code")) for c in codings}
    return [*codings, *(c for c in more if (c.get("system"), c.get("code")) not in seen)]


def _reference_range(obx: Segment, unit: str | None, where: str) -> dict[str, Any] | None:
    """OBX-7 'low-high', '>low' or '<high' -> referenceRange; any other text is kept as the range text."""
    text = obx.value(7).strip()
    if not text:
        return None
    between, bound = _BETWEEN.fullmatch(text), _BOUND.fullmatch(text)
    if between:
        low, high = between.group(1), between.group(2)
    elif bound:
        low, high = (bound.group(2), None) if bound.group(1) == ">" else (None, bound.group(2))
    else:
        return {"text": text}
    result: dict[str, Any] = {}
    for name, value in (("low", low), ("high", high)):
        if value:
            result[name] = _quantity(numeric(value, f"{where}-7"), unit or "1")
    return result


def _observation(profile: str | None, code: dict[str, Any], status: str, when: str | None,
                 context: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation"}
    if profile:
        resource["meta"] = {"profile": [profile]}
        resource["category"] = [profiles.VITAL_SIGNS_CATEGORY]
    resource["status"] = status
    resource["code"] = code
    resource["subject"] = context["subject"]
    if context.get("encounter"):
        resource["encounter"] = context["encounter"]
    if when:
        resource["effectiveDateTime"] = when
    if context.get("performer"):
        resource["performer"] = [context["performer"]]
    return resource


def _unit(obx: Segment) -> str | None:
    units = obx.take(6)
    if not units:
        return None
    code, system = component(units[0], 1), component(units[0], 3)
    return profiles.UNITS.get(code, code) if system in ("UCUM", "MDC", "ISO+", "") else code


def _quantity(value: FhirDecimal, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _absent() -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}]}


def _value(builder: TranslationBuilder, obx: Segment, value_type: str, values: tuple, unit: str | None,
           resource: dict[str, Any], where: str) -> None:
    if not values:
        resource["dataAbsentReason"] = _absent()
    elif value_type in NUMERIC_TYPES:
        number = numeric(leaf(values), f"{where}-5")
        resource["valueQuantity"] = _quantity(number, unit or "1") if unit else {"value": number}
    elif value_type in ("CE", "CWE"):
        concept, _ = codeable_concept(values[0])
        resource["valueCodeableConcept"] = concept or {"text": leaf(values)}
    elif value_type in ("ST", "TX", "FT"):
        resource["valueString"] = "\n".join(leaf(values, repetition=i + 1) for i in range(len(values)))
    else:
        builder.warn(f"{where}-2: value type '{value_type}' is not mapped; the value is listed as unmapped",
                     "not-supported", f"{where}-2")
        builder.leave_unmapped(f"{where}-5", leaf(values))
    _interpretation(obx, resource)


def _interpretation(obx: Segment, resource: dict[str, Any]) -> None:
    flags = [leaf((rep,)) for rep in obx.take(8)]
    codings = [{"system": INTERPRETATION, "code": flag} for flag in flags if flag]
    if codings and "interpretation" not in resource:
        resource["interpretation"] = [{"coding": [coding]} for coding in codings]


def _finish_gcs(resource: dict[str, Any]) -> None:
    """GCS: eye/motor/verbal as coded components (E1-E4, M1-M6, V1-V5), the total as valueInteger (given, or
    the sum of the three components)."""
    parts = resource.pop("_gcs")
    total = parts.pop("total", (None, None))[0]
    for part, (number, where) in parts.items():
        snomed, prefix, system, allowed = profiles.GCS_COMPONENTS[part]
        if number is None:
            continue
        if "." in str(number) or int(str(number)) not in allowed:
            raise TranslationError("value", f"{where}-5: GCS {part} score {number} is outside "
                                   f"{allowed.start}-{allowed.stop - 1}", f"{where}-5")
        resource.setdefault("component", []).append({
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
            "valueCodeableConcept": {"coding": [{"system": system, "code": f"{prefix}{int(str(number))}"}]},
        })
    if total is None and len(parts) == 3 and all(n is not None for n, _ in parts.values()):
        total = sum(int(str(n)) for n, _ in parts.values())
    if total is not None:
        if "." in str(total) or not 3 <= int(str(total)) <= 15:
            raise TranslationError("value", f"GCS total {total} is outside 3-15", "OBX-5")
        resource["valueInteger"] = int(str(total))
