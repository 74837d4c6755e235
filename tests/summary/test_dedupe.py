"""Deduplication across sources: same type + shared code + same onset date is one finding; disagreement on
status, verification or criticality is kept as a conflict with every version listed."""

from __future__ import annotations

from typing import Any

from gateway.summary.dedupe import coding_tokens, group_findings

PEANUT = {"coding": [{"system": "http://snomed.info/sct", "code": "91935009"}]}
LATEX = {"coding": [{"system": "http://snomed.info/sct", "code": "300916003"}]}


def allergy(rid: str, code: dict[str, Any], onset: str | None = "2020-01-01", **extra: Any) -> dict[str, Any]:
    body = {"resourceType": "AllergyIntolerance", "id": rid, "code": code, **extra}
    if onset:
        body["onsetDateTime"] = onset
    return body


def group(*resources: dict[str, Any]):  # type: ignore[no-untyped-def]
    return group_findings(resources, lambda r: coding_tokens(r.get("code")))


def test_same_code_and_onset_is_one_finding() -> None:
    (finding,) = group(allergy("hap", PEANUT, "2020-01-01T10:00:00+01:00"), allergy("vvt", PEANUT))
    assert [r["id"] for r in finding.members] == ["hap", "vvt"] and not finding.conflicts
    assert [r["id"] for r in finding.entries] == ["hap"]


def test_other_onset_or_code_or_type_stays_apart() -> None:
    findings = group(allergy("a", PEANUT), allergy("b", PEANUT, "2021-05-05"), allergy("c", LATEX),
                     {"resourceType": "Condition", "id": "d", "code": PEANUT, "onsetDateTime": "2020-01-01"})
    assert len(findings) == 4


def test_missing_onset_on_both_sides_matches_but_not_against_a_dated_one() -> None:
    assert len(group(allergy("a", PEANUT, None), allergy("b", PEANUT, None))) == 1
    assert len(group(allergy("a", PEANUT, None), allergy("b", PEANUT))) == 2


def test_conflict_keeps_every_version() -> None:
    active = {"coding": [{"code": "active"}]}
    resolved = {"coding": [{"code": "resolved"}]}
    (finding,) = group(allergy("hap", PEANUT, clinicalStatus=active, criticality="high"),
                       allergy("vvt", PEANUT, clinicalStatus=resolved, criticality="high"))
    assert finding.conflicts == {"clinicalStatus": ["active", "resolved"]}
    assert [r["id"] for r in finding.entries] == ["hap", "vvt"]


def test_uncoded_resources_never_merge() -> None:
    text_only = {"text": "pinda"}
    assert len(group(allergy("a", text_only), allergy("b", text_only))) == 2
