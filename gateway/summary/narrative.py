"""Generated section narratives (XHTML) in Dutch or English: one table row per finding, with status, date and
sources; a conflict between sources is spelled out; withheld items are counted, never described."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from gateway.summary.dedupe import Finding, onset_date, status_text
from gateway.summary.sections import SummaryDefinition
from gateway.summary.sources import Source

XHTML = "http://www.w3.org/1999/xhtml"


def describe(resource: Mapping[str, Any], supporting: Mapping[str, dict[str, Any]]) -> str:
    """A short human label for a resource."""
    for element in ("code", "medicationCodeableConcept", "vaccineCode"):
        label = _concept_label(resource.get(element))
        if label:
            return label
    medication = resource.get("medicationReference") or {}
    if isinstance(medication, Mapping):
        found = supporting.get(str(medication.get("reference")))
        label = _concept_label((found or {}).get("code")) or medication.get("display")
        if label:
            return str(label)
    for concepts in (resource.get("type"), resource.get("category"), resource.get("relationship")):
        for concept in concepts if isinstance(concepts, list) else [concepts]:
            label = _concept_label(concept)
            if label:
                return label
    name = resource.get("name")
    if isinstance(name, str):
        return name
    if isinstance(name, list) and name and isinstance(name[0], Mapping):
        return str(name[0].get("text") or " ".join([*name[0].get("given", []), name[0].get("family", "")]).strip())
    return str(resource.get("resourceType"))


def section_div(
    definition: SummaryDefinition,
    language: str,
    findings: list[Finding],
    sources: Mapping[str, list[Source]],
    supporting: Mapping[str, dict[str, Any]],
    withheld: int,
    extra_rows: list[dict[str, Any]] | None = None,
) -> str:
    phrase = lambda name, **values: definition.phrase(name, language, **values)  # noqa: E731
    parts: list[str] = []
    rows = [_row(finding, sources, supporting, phrase) for finding in findings]
    rows += [_row(Finding(resource), sources, supporting, phrase) for resource in extra_rows or ()]
    if rows:
        head = "".join(f"<th>{escape(phrase(name))}</th>" for name in ("item", "status", "date", "source"))
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    if withheld and rows:
        parts.append(f"<p>{escape(phrase('withheld', n=withheld))}</p>")
    elif withheld:
        parts.append(f"<p>{escape(phrase('all_withheld'))} {escape(phrase('withheld', n=withheld))}</p>")
    elif not rows:
        parts.append(f"<p>{escape(phrase('nothing'))}</p>")
    return f'<div xmlns="{XHTML}">{"".join(parts)}</div>'


def document_div(text: str) -> str:
    return f'<div xmlns="{XHTML}"><p>{escape(text)}</p></div>'


def _row(finding: Finding, sources: Mapping[str, list[Source]], supporting: Mapping[str, dict[str, Any]],
         phrase: Any) -> str:
    resource = finding.primary
    names = sorted({
        source.organization or phrase("unknown_source")
        for member in finding.members
        for source in sources.get(f"{member.get('resourceType')}/{member.get('id')}", ())
    })
    status = _status(resource)
    if finding.conflicts:
        details = "; ".join(f"{element}: {' / '.join(values)}" for element, values in finding.conflicts.items())
        status = f"{status} ({phrase('conflict')}: {details})"
    cells = [escape(describe(resource, supporting)), escape(status), escape(_date(resource)), escape(", ".join(names))]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _status(resource: Mapping[str, Any]) -> str:
    for element in ("clinicalStatus", "status"):
        text = status_text(resource.get(element))
        if text:
            return text
    return ""


def _date(resource: Mapping[str, Any]) -> str:
    period = resource.get("period")
    if isinstance(period, Mapping) and period.get("start"):
        return str(period["start"])[:16]
    return onset_date(resource) or str(resource.get("issued") or resource.get("dateTime") or "")[:10]


def _concept_label(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, Mapping) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return None
