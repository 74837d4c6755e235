"""The capacity profiles' rules that the store must hold for every capacity Slot and Schedule, whoever
writes it (FHIR feed, PUT of one Slot, the bed-status feed): checked cheaply on each write, so a feed cannot
store capacity the dashboard and `$find-capacity` would misread. The full profiles are in
profiles/nictiz/capacity and `$validate` checks against them; these are the rules the capacity code relies on."""

from __future__ import annotations

from typing import Any

from gateway.capacity.model import category_code, parse_instant, source_timestamp
from gateway.capacity.terms import CapacityTerms
from gateway.capacity.urls import CATEGORY_SYSTEM, PROFILE_SCHEDULE, PROFILE_SLOT
from gateway.fhir.errors import Issue


def is_capacity(resource: dict[str, Any]) -> bool:
    """Claims a capacity profile, or is typed with a capacity category."""
    profiles = (resource.get("meta") or {}).get("profile") or []
    if PROFILE_SLOT in profiles or PROFILE_SCHEDULE in profiles:
        return True
    return any(coding.get("system") == CATEGORY_SYSTEM
               for concept in resource.get("serviceType", []) or [] if isinstance(concept, dict)
               for coding in concept.get("coding", []) or [] if isinstance(coding, dict))


def check(resource: dict[str, Any], terms: CapacityTerms) -> list[Issue]:
    kind = resource.get("resourceType")
    issues = _category_issues(resource, terms, kind)
    issues += _timestamp_issues(resource, kind, required=kind == "Slot")
    if kind == "Slot":
        schedule = (resource.get("schedule") or {}).get("reference", "")
        if not str(schedule).startswith("Schedule/"):
            issues.append(Issue("error", "required", "a capacity Slot references its Schedule (Schedule/<id>)",
                                ["Slot.schedule"]))
        issues += _period_issues(resource.get("start"), resource.get("end"), "Slot")
    elif kind == "Schedule":
        if not resource.get("actor"):
            issues.append(Issue("error", "required", "a capacity Schedule names its actor", ["Schedule.actor"]))
        horizon = resource.get("planningHorizon") or {}
        if not horizon:
            issues.append(Issue("error", "required", "a capacity Schedule has a planningHorizon",
                                ["Schedule.planningHorizon"]))
    return issues


def _category_issues(resource: dict[str, Any], terms: CapacityTerms, kind: Any) -> list[Issue]:
    code = category_code(resource)
    where = [f"{kind}.serviceType"]
    if code is None:
        return [Issue("error", "required", f"a capacity {kind} has exactly one serviceType from {CATEGORY_SYSTEM}",
                      where)]
    if code not in terms.categories:
        hint = " (a group: use one of its categories)" if code in terms.groups else ""
        return [Issue("error", "code-invalid", f"'{code}' is not a capacity category{hint}", where)]
    if len(resource.get("serviceType", [])) != 1:
        return [Issue("error", "structure", f"a capacity {kind} has exactly one serviceType", where)]
    return []


def _timestamp_issues(resource: dict[str, Any], kind: Any, required: bool) -> list[Issue]:
    value = source_timestamp(resource)
    where = [f"{kind}.extension"]
    if value is None:
        return [Issue("error", "required", "a capacity Slot carries the source timestamp extension", where)] \
            if required else []
    try:
        parse_instant(value)
    except ValueError:
        return [Issue("error", "invalid", f"source timestamp '{value}' is not an instant", where)]
    return []


def _period_issues(start: Any, end: Any, kind: str) -> list[Issue]:
    try:
        if parse_instant(str(start)) >= parse_instant(str(end)):
            return [Issue("error", "invariant", f"{kind}.start must be before {kind}.end", [f"{kind}.start"])]
    except ValueError:
        return [Issue("error", "invalid", f"{kind}.start and .end must be instants with a zone", [f"{kind}.start"])]
    return []
