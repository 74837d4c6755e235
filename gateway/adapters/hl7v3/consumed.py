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

    def marks_within(self, root: Element) -> SubtreeMarks:
        """What was consumed inside `root`, as child-index paths relative to it (to replay on an identical
        subtree with `apply`, so a mapper can reuse its result for a repeated part of a message)."""
        taken: list[tuple[int, ...]] = []
        visited: list[tuple[int, ...]] = []
        for element in root.iter():
            in_trees, in_nodes = element in self._trees, element in self._nodes
            if in_trees or in_nodes:
                where = _positions(element, root)
                if in_trees:
                    taken.append(where)
                if in_nodes:
                    visited.append(where)
        return SubtreeMarks(tuple(taken), tuple(visited))

    def apply(self, root: Element, marks: SubtreeMarks) -> None:
        """Mark the elements of `root` at the paths of `marks` as `marks_within` found them."""
        for paths, into in ((marks.taken, self._trees), (marks.visited, self._nodes)):
            for where in paths:
                node = root
                for index in where:
                    node = node[index]
                into.add(node)

    def unmapped(self, root: Element) -> list[Unmapped]:
        """Every element outside the taken subtrees that was not visited and carries a value, in document
        order. The walk does not descend into taken subtrees (most of a message), and paths are built only for
        the elements reported."""
        trees, nodes = self._trees, self._nodes
        found: list[Unmapped] = []
        stack = [root]
        while stack:
            element = stack.pop()
            tag = element.tag
            if not isinstance(tag, str) or tag in STRUCTURAL_ELEMENTS or element in trees:
                continue
            if element not in nodes:
                value = _describe(element)
                if value:
                    found.append(Unmapped(_xpath(element, root), value))
            stack.extend(reversed(element))  # children, first child on top: document order
        return found


@dataclass(frozen=True)
class SubtreeMarks:
    taken: tuple[tuple[int, ...], ...]
    visited: tuple[tuple[int, ...], ...]


def _positions(element: Element, root: Element) -> tuple[int, ...]:
    steps = []
    node = element
    while node is not root:
        parent = node.getparent()
        steps.append(parent.index(node))
        node = parent
    return tuple(reversed(steps))


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
