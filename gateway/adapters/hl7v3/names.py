"""PN -> HumanName in the nl-core-NameInformation shape.

Dutch names: `family` parts are the own name (qualifier BR or none) or the partner's name (SP); a `prefix`
with qualifier VV is the voorvoegsel of the family part that follows it, other prefixes (AC, NB, ...) are
titles. The parts go into the humanname-own-/partner- extensions, `family` and `text` are rendered in the
order the message gives them (which is also the name usage NL1-NL4). Every given name carries the
EN-qualifier BR (birth name) or IN (initial); a call name (CL) becomes a second, `usual` name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.xml import V3, Element, local_name

EN_QUALIFIER = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"
OWN_PREFIX = "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix"
OWN_NAME = "http://hl7.org/fhir/StructureDefinition/humanname-own-name"
PARTNER_PREFIX = "http://hl7.org/fhir/StructureDefinition/humanname-partner-prefix"
PARTNER_NAME = "http://hl7.org/fhir/StructureDefinition/humanname-partner-name"
ASSEMBLY_ORDER = "http://hl7.org/fhir/StructureDefinition/humanname-assembly-order"
USES = {"L": "official", "C": "official", "OR": "official", "P": "nickname", "A": "anonymous", "ASGN": "usual"}
NAME_USAGES = {
    ("own",): ("NL1", "Eigen geslachtsnaam"),
    ("partner",): ("NL2", "Geslachtsnaam partner"),
    ("partner", "own"): ("NL3", "Geslachtsnaam partner gevolgd door eigen geslachtsnaam"),
    ("own", "partner"): ("NL4", "Eigen geslachtsnaam gevolgd door geslachtsnaam partner"),
}


@dataclass
class _FamilyPart:
    kind: str  # "own" | "partner"
    name: str
    prefix: str | None = None

    def rendered(self) -> str:
        return f"{self.prefix} {self.name}" if self.prefix else self.name


@dataclass
class _Parts:
    given: list[tuple[str, str]] = field(default_factory=list)  # (name, BR|IN)
    call: list[str] = field(default_factory=list)
    families: list[_FamilyPart] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)


def _qualifiers(element: Element) -> set[str]:
    return set((element.get("qualifier") or "").split())


def _parts(element: Element) -> _Parts:
    parts = _Parts()
    pending_prefix: tuple[str, bool] | None = None
    for item in element:
        if not isinstance(item.tag, str) or not item.tag.startswith(V3):
            continue
        kind, text, qualifiers = local_name(item), (item.text or "").strip(), _qualifiers(item)
        if not text:
            continue
        if kind == "given":
            if "CL" in qualifiers:
                parts.call.append(text)
            else:
                initial = "IN" in qualifiers or ("BR" not in qualifiers and text.endswith("."))
                parts.given.append((text, "IN" if initial else "BR"))
        elif kind == "prefix" and "VV" in qualifiers:
            pending_prefix = (text, "SP" in qualifiers)
        elif kind == "prefix":
            parts.titles.append(text)
        elif kind == "family":
            family_kind = "partner" if "SP" in qualifiers else "own"
            prefix = pending_prefix[0] if pending_prefix else None
            parts.families.append(_FamilyPart(family_kind, text, prefix))
            pending_prefix = None
        elif kind == "suffix":
            parts.suffixes.append(text)
    if pending_prefix:  # a voorvoegsel without a family part after it: keep it as a title, never lose it
        parts.titles.append(pending_prefix[0])
    return parts


def _family_extensions(families: list[_FamilyPart]) -> list[dict[str, Any]]:
    extensions: list[dict[str, Any]] = []
    for part in families:
        prefix_url, name_url = (OWN_PREFIX, OWN_NAME) if part.kind == "own" else (PARTNER_PREFIX, PARTNER_NAME)
        if part.prefix:
            extensions.append({"url": prefix_url, "valueString": part.prefix})
        extensions.append({"url": name_url, "valueString": part.name})
    return extensions


def human_names(element: Element | None) -> list[dict[str, Any]]:
    """The HumanName(s) of a PN: the official name and, if the message gives a call name, a usual name."""
    if element is None:
        return []
    if element.get("nullFlavor"):
        return [{"extension": [data_absent_reason(element.get("nullFlavor", ""))]}]
    has_parts = any(isinstance(item.tag, str) and item.tag.startswith(V3) for item in element)
    if not has_parts:  # a name given as plain text
        text = " ".join("".join(element.itertext()).split())
        return [{"use": "official", "text": text, "family": text}] if text else []
    parts = _parts(element)
    name: dict[str, Any] = {"use": USES.get(element.get("use") or "L", "official")}
    usage = NAME_USAGES.get(tuple(dict.fromkeys(part.kind for part in parts.families)))
    if usage:
        name["extension"] = [{"url": ASSEMBLY_ORDER, "valueCode": usage[0]}]
    family = "-".join(part.rendered() for part in parts.families)
    given_text = " ".join(text for text, _ in parts.given)
    name["text"] = " ".join(x for x in [" ".join(parts.titles), given_text, family, " ".join(parts.suffixes)] if x)
    if family:
        name["family"] = family
        name["_family"] = {"extension": _family_extensions(parts.families)}
    if parts.given:
        name["given"] = [text for text, _ in parts.given]
        name["_given"] = [
            {"extension": [{"url": EN_QUALIFIER, "valueCode": qualifier}]} for _, qualifier in parts.given
        ]
    if parts.titles:
        name["prefix"] = parts.titles
    if parts.suffixes:
        name["suffix"] = parts.suffixes
    names = [name]
    if parts.call:
        names.append({"use": "usual", "given": parts.call})
    return names
