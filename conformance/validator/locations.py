"""Line and column of every element in a JSON text, keyed by the validator's expression form
(`Patient.name[0].given[1]`), so issues can point into the source."""

from __future__ import annotations

import json
import re
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_SCALAR = re.compile(r"[^,\]}\s]+")

Locations = dict[str, tuple[int, int]]


def json_locations(text: str) -> Locations:
    """Best effort: an unparseable text yields what was found before the problem."""
    scanner = _Scanner(text)
    try:
        scanner.value("")
    except (IndexError, ValueError):
        pass
    return scanner.found


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: Locations = {}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, pos: int) -> tuple[int, int]:
        import bisect

        line = bisect.bisect_right(self._line_starts, pos)
        return line, pos - self._line_starts[line - 1] + 1

    def skip(self) -> None:
        self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def value(self, path: str) -> None:
        self.skip()
        char = self.text[self.pos]
        if char == "{":
            self.obj(path)
        elif char == "[":
            self.array(path)
        elif char == '"':
            self.pos = _STRING.match(self.text, self.pos).end()  # type: ignore[union-attr]
        else:
            match = _SCALAR.match(self.text, self.pos)
            if match is None:
                raise ValueError("bad scalar")
            self.pos = match.end()

    def obj(self, path: str) -> None:
        self.pos += 1
        resource_type = _peek_resource_type(self.text, self.pos)
        if resource_type and not path:
            path = resource_type
        while True:
            self.skip()
            if self.text[self.pos] == "}":
                self.pos += 1
                return
            match = _STRING.match(self.text, self.pos)
            if match is None:
                raise ValueError("expected a property name")
            key = json.loads(match.group())
            start = self.pos
            self.pos = match.end()
            self.skip()
            self.pos += 1  # ':'
            name = key[1:] if key.startswith("_") else key
            child = f"{path}.{name}" if path else name
            self.found.setdefault(child, self.where(start))
            self.value(child)
            self.skip()
            if self.text[self.pos] == ",":
                self.pos += 1

    def array(self, path: str) -> None:
        self.pos += 1
        index = 0
        while True:
            self.skip()
            if self.text[self.pos] == "]":
                self.pos += 1
                return
            item = f"{path}[{index}]"
            self.found.setdefault(item, self.where(self.pos))
            self.value(item)
            index += 1
            self.skip()
            if self.text[self.pos] == ",":
                self.pos += 1


_RESOURCE_TYPE = re.compile(r'"resourceType"\s*:\s*"([A-Za-z]+)"')


def _peek_resource_type(text: str, pos: int) -> str | None:
    """The resourceType of the object starting at `pos`, if it is its direct property (cheap look-ahead)."""
    depth = 0
    for match in re.finditer(r'[{}\[\]]|"resourceType"\s*:\s*"([A-Za-z]+)"|"(?:[^"\\]|\\.)*"', text[pos:pos + 200000]):
        token = match.group()
        if token in "{[":
            depth += 1
        elif token in "}]":
            if depth == 0:
                return None
            depth -= 1
        elif match.group(1) and depth == 0:
            return match.group(1)
    return None


def locate(locations: Locations | None, expression: str) -> tuple[int, int] | None:
    """The position of `expression` or of its nearest located ancestor."""
    if not locations:
        return None
    candidate = expression
    while candidate:
        if candidate in locations:
            return locations[candidate]
        cut = max(candidate.rfind("."), candidate.rfind("["))
        if cut <= 0:
            break
        candidate = candidate[:cut]
    return (1, 1) if "." not in expression else None


def xml_locations(tree_root: Any) -> Locations:
    """Positions of the elements of an lxml tree (line only; lxml gives no column)."""
    found: Locations = {}

    def walk(node: Any, path: str) -> None:
        counts: dict[str, int] = {}
        names = [_local(child.tag) for child in node if isinstance(child.tag, str)]
        repeated = {n for n in names if names.count(n) > 1}
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = _local(child.tag)
            index = counts.get(name, 0)
            counts[name] = index + 1
            child_path = f"{path}.{name}[{index}]" if name in repeated else f"{path}.{name}"
            found.setdefault(child_path, (child.sourceline or 1, 1))
            if name in repeated or index == 0:
                found.setdefault(f"{path}.{name}[{index}]", (child.sourceline or 1, 1))
            walk(child, child_path if name not in repeated else f"{path}.{name}[{index}]")

    name = _local(tree_root.tag)
    found[name] = (tree_root.sourceline or 1, 1)
    walk(tree_root, name)
    return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
