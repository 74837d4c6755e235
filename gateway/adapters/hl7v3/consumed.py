"""Which parts of a message a mapper used, so that everything else can be listed as unmapped (XPath + value)
instead of being dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.adapters.hl7v3.xml import V3, XSI_TYPE, Element, local_name

# RIM structural attributes: they say how a message is built, not what it says about the patient
STRUCTURAL_ATTRIBUTES = frozenset({
    "classCode", "moodCode", "typeCode", "determinerCode", "contextControlCode", "contextConductionInd",
    "inversionInd", "ITSVersion", "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation", XSI_TYPE,
})
STRUCTURAL_ELEMENTS = frozenset({V3 + "templateId"})
MAX_VALUE = 200


@dataclass(frozen=True)
class Unmapped:
    xpath: str
    value: str

    def as_dict(self) -> dict[str, str]:
        return {"xpath": self.xpath, "value": self.value}


@dataclass
class Consumption:
    """Marks elements as used: `take` a whole subtree (a datatype mapped as one value), `visit` one element."""

    _trees: set[Element] = field(default_factory=set)
    _nodes: set[Element] = field(default_factory=set)

    def take(self, element: Element | None) -> Element | None:
        if element is not None:
            self._trees.add(element)
        return element

    def visit(self, element: Element | None) -> Element | None:
        if element is not None:
            self._nodes.add(element)
        return element

    def unmapped(self, root: Element) -> list[Unmapped]:
        found: list[Unmapped] = []
        self._walk(root, "/" + _step(root), found)
        return found

    def _walk(self, element: Element, where: str, found: list[Unmapped]) -> None:
        if element in self._trees:
            return
        if element not in self._nodes:
            value = _describe(element)
            if value:
                found.append(Unmapped(where, value))
        counts: dict[str, int] = {}
        for item in element:
            if isinstance(item.tag, str) and item.tag not in STRUCTURAL_ELEMENTS:
                counts[item.tag] = counts.get(item.tag, 0) + 1
        seen: dict[str, int] = {}
        for item in element:
            if not isinstance(item.tag, str) or item.tag in STRUCTURAL_ELEMENTS:
                continue
            seen[item.tag] = seen.get(item.tag, 0) + 1
            step = _step(item) + (f"[{seen[item.tag]}]" if counts[item.tag] > 1 else "")
            self._walk(item, f"{where}/{step}", found)


def _step(element: Element) -> str:
    tag = element.tag
    if tag.startswith(V3):
        return "hl7:" + local_name(element)
    if tag.startswith("{"):
        return f"*[local-name()='{local_name(element)}']"
    return tag


def _describe(element: Element) -> str:
    parts = [
        f"@{local_name_of(name)}={value}" for name, value in element.attrib.items()
        if name not in STRUCTURAL_ATTRIBUTES
    ]
    text = (element.text or "").strip()
    if text:
        parts.append(text)
    value = " ".join(parts)
    return value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"


def local_name_of(name: str) -> str:
    return name.rsplit("}", 1)[-1]
