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
        """Every element outside the taken subtrees that was not visited and carries a value, in document
        order. Paths are built only for those (the walk itself stays in lxml's C iteration)."""
        consumed: set[Element] = set()
        for tree in self._trees:
            consumed.update(tree.iter())
        for skipped in root.iter(*STRUCTURAL_ELEMENTS):
            consumed.update(skipped.iter())
        found: list[Unmapped] = []
        for element in root.iter():
            if not isinstance(element.tag, str) or element in consumed or element in self._nodes:
                continue
            value = _describe(element)
            if value:
                found.append(Unmapped(_xpath(element, root), value))
        return found


def _xpath(element: Element, root: Element) -> str:
    """`/hl7:a/hl7:b[2]/...` from `root` down to `element` (a position only where a name repeats)."""
    steps = []
    node = element
    while node is not root:
        parent = node.getparent()
        same = list(parent.iterchildren(node.tag))
        steps.append(_step(node) + (f"[{same.index(node) + 1}]" if len(same) > 1 else ""))
        node = parent
    steps.append(_step(root))
    return "/" + "/".join(reversed(steps))


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
