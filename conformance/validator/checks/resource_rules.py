"""Rules for particular resource types that no profile expresses but the specification (and the HL7 validator)
applies: the vital-signs profiles an Observation must meet because of its code, a MeasureReport against the
scoring of its Measure, and a SearchParameter against the one it is derived from."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Report = Callable[[str, str, str, str], None]  # severity, code, message, expression

_CORE = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

# R4 "Vital Signs" (observation-vitalsigns.html): an Observation with one of these codes SHALL conform to the
# profile. The LOINC codes are the spec's table; the SNOMED CT equivalents are the ones the HL7 validator adds.
# First match wins, in this order (the panels before their members).
VITAL_SIGNS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("vitalspanel", "Vital Signs Panel", ("85353-1",), ()),
    ("resprate", "Respiratory rate", ("9279-1",), ("86290005",)),
    ("heartrate", "Heart rate", ("8867-4",), ("364075005",)),
    ("oxygensat", "Oxygen saturation", ("2708-6", "59408-5"), ()),
    ("bodytemp", "Body temperature", ("8310-5",), ("276885007",)),
    ("bodyheight", "Body height", ("8302-2",), ("50373000",)),
    ("headcircum", "Head circumference", ("9843-4",), ("363812007",)),
    ("bodyweight", "Body weight", ("29463-7",), ("27113001",)),
    ("bmi", "Body mass index", ("39156-5",), ("60621009",)),
    ("bp", "Blood pressure", ("85354-9",), ("75367002",)),
)


def vital_signs_profile(observation: dict[str, Any]) -> tuple[str, str] | None:
    """The core vital-signs profile an Observation must conform to because of its code, and why."""
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return None
    present = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    for name, title, loinc, snomed in VITAL_SIGNS:
        for system, codes in ((LOINC, loinc), (SNOMED, snomed)):
            found = next((c for c in codes if (system, c) in present), None)
            if found is not None:
                label = "LOINC" if system == LOINC else "SNOMED CT"
                return (_CORE + name,
                        f"Validate Observation against the {title} profile ({_CORE + name}) which is required by "
                        f"the FHIR specification because the {label} code {found} was found")
    return None


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {c["code"] for c in concept.get("coding", ()) if isinstance(c, dict) and isinstance(c.get("code"), str)}


def check_measure_report(report_: dict[str, Any], measure: dict[str, Any], expression: str,
                         report: Report) -> None:
    """A cohort Measure has no score: its report's groups carry populations only."""
    scoring = _codes(measure.get("scoring"))
    groups = report_.get("group") if isinstance(report_.get("group"), list) else []
    for index, group in enumerate(groups):
        if not isinstance(group, dict):
            continue
        if "cohort" in scoring and "measureScore" in group:
            report("error", "business-rule", "No measureScore when the scoring of the message is 'cohort'",
                   f"{expression}.group[{index}].measureScore")


def _expression_parts(expression: str) -> list[str]:
    """The top-level alternatives of a search expression (`A.x | B.y`), outside parentheses."""
    parts, depth, current = [], 0, []
    for char in expression:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def check_search_parameter(parameter: dict[str, Any], parent: dict[str, Any] | None, resource_types: frozenset[str],
                           expression: str, report: Report) -> None:
    """The expression starts from the bases; a derived parameter keeps its parent's bases, type and meaning."""
    bases = [b for b in parameter.get("base", ()) if isinstance(b, str)]
    text = parameter.get("expression")
    if isinstance(text, str) and bases and not {"Resource", "DomainResource"} & set(bases):
        for part in _expression_parts(text):
            start = re.match(r"\(?\s*([A-Z][A-Za-z]+)\b", part)
            if start and start.group(1) in resource_types and start.group(1) not in bases:
                report("error", "invalid",
                       f"Error in search expression '{text}': The name '{start.group(1)}' is not valid for any of "
                       f"the possible types: [{', '.join(bases)}]", f"{expression}.expression")
                break
    if parent is None or parent.get("resourceType") != "SearchParameter":
        return
    parent_url = parent.get("url")
    parent_bases = {b for b in parent.get("base", ()) if isinstance(b, str)}
    for base in bases:
        if parent_bases and base not in parent_bases:
            report("error", "business-rule",
                   f"The resource type {base} is not listed as a base in the SearchParameter this is derived from "
                   f"({parent_url})", expression)
    if isinstance(parameter.get("type"), str) and isinstance(parent.get("type"), str) \
            and parameter["type"] != parent["type"]:
        report("error", "business-rule",
               f"The type {parameter['type']} is different to the type {parent['type']} in the derivedFrom "
               f"SearchParameter {parent_url}", f"{expression}.type")
    parent_text = parent.get("expression")
    if isinstance(text, str) and isinstance(parent_text, str) and text != parent_text:
        report("warning", "business-rule",
               f"The expression '{text}' is not compatible with the expression '{parent_text}' in the derivedFrom "
               f"SearchParameter {parent_url}, and this likely indicates that the derivation relationship is not "
               "valid", expression)
