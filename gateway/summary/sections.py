"""The summary's sections, loaded from `sections.json` (data, not code): which resources each section takes and
its code and titles in Dutch and English."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SECTIONS_FILE = Path(__file__).with_name("sections.json")
LANGUAGES = ("nl", "en")


@dataclass(frozen=True)
class Selector:
    """One rule of a section: a resource type plus optional category / scope / profile conditions."""

    resource_type: str
    category: str | None = None  # "system|code" that must be among the resource's categories
    not_category: str | None = None
    scope: str | None = None  # Consent.scope code
    profile: str | None = None  # a claimed meta.profile

    def matches(self, resource: Mapping[str, Any]) -> bool:
        if resource.get("resourceType") != self.resource_type:
            return False
        categories = _category_tokens(resource)
        if self.category and self.category not in categories:
            return False
        if self.not_category and self.not_category in categories:
            return False
        if self.scope and self.scope not in _codes(resource.get("scope")):
            return False
        return not self.profile or self.profile in ((resource.get("meta") or {}).get("profile") or ())


@dataclass(frozen=True)
class Section:
    key: str
    code: dict[str, str]  # a Coding
    title: Mapping[str, str]  # language -> title
    selectors: tuple[Selector, ...]
    dedupe: bool = False
    latest_per_code: bool = False
    limit: int | None = None
    general_practitioner: bool = False

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(selector.resource_type for selector in self.selectors)

    def takes(self, resource: Mapping[str, Any]) -> bool:
        return any(selector.matches(resource) for selector in self.selectors)


@dataclass(frozen=True)
class SummaryDefinition:
    document_type: dict[str, str]
    document_title: Mapping[str, str]
    sections: tuple[Section, ...]
    phrases: Mapping[str, Mapping[str, str]]

    @property
    def resource_types(self) -> frozenset[str]:
        return frozenset(t for section in self.sections for t in section.resource_types)

    def phrase(self, key: str, language: str, **values: object) -> str:
        return self.phrases[key][language].format(**values)


@cache
def load_definition(path: Path = SECTIONS_FILE) -> SummaryDefinition:
    raw = json.loads(path.read_text(encoding="utf-8"))
    local = raw["local_system"]
    sections = []
    for item in raw["sections"]:
        code = dict(item["code"])
        if "local" in code:
            code = {"system": local, "code": code["local"], "display": code["display"]}
        selectors = tuple(
            Selector(s["type"], s.get("category"), s.get("not_category"), s.get("scope"), s.get("profile"))
            for s in item["select"]
        )
        sections.append(
            Section(
                key=item["key"],
                code=code,
                title=item["title"],
                selectors=selectors,
                dedupe=bool(item.get("dedupe")),
                latest_per_code=bool(item.get("latest_per_code")),
                limit=item.get("limit"),
                general_practitioner=bool(item.get("general_practitioner")),
            )
        )
    for section in sections:
        missing = [language for language in LANGUAGES if not section.title.get(language)]
        if missing:
            raise ValueError(f"summary section {section.key} has no title in {missing}")
    return SummaryDefinition(raw["document_type"], raw["document_title"], tuple(sections), raw["phrases"])


def _category_tokens(resource: Mapping[str, Any]) -> set[str]:
    category = resource.get("category")
    concepts = category if isinstance(category, list) else [category]
    return {
        f"{coding.get('system')}|{coding.get('code')}"
        for concept in concepts
        if isinstance(concept, dict)
        for coding in concept.get("coding") or ()
        if isinstance(coding, dict)
    }


def _codes(concept: Any) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code")) for c in concept.get("coding") or () if isinstance(c, dict)}
