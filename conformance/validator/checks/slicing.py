"""Slice matching: which slice of a sliced element an instance item belongs to, by the slicing's
discriminators (value, pattern, type, profile, exists)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from conformance.validator.checks.values import matches_fixed, matches_pattern
from conformance.validator.model import Discriminator, ElementNode

_EXTENSION_CALL = re.compile(r"extension\((['\"])(.*?)\1\)")
_OF_TYPE = re.compile(r"ofType\((\w+)\)")


def _segments(path: str) -> list[str]:
    """`extension('http://a.b/c').value` -> ["extension('http://a.b/c')", "value"] (dots inside calls kept)."""
    parts, depth, current = [], 0, ""
    for char in path:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return [p for p in parts if p != "$this"]


def definition_at(node: ElementNode, path: str, type_profile: Callable[[ElementNode], ElementNode | None]
                  ) -> ElementNode | None:
    """The element definition the discriminator path points at, inside a slice definition."""
    current: ElementNode | None = node
    for segment in _segments(path):
        if current is None:
            return None
        call = _EXTENSION_CALL.fullmatch(segment)
        if call:
            extension = current.children.get("extension") or _via_type(current, type_profile, "extension")
            if extension is None:
                return None
            current = next((s for s in extension.slices if _extension_url(s, type_profile) == call.group(2)), None)
            continue
        if segment == "resolve()" or _OF_TYPE.fullmatch(segment):
            continue
        child = current.children.get(segment) or _via_type(current, type_profile, segment)
        if child is None and current.children.get(segment.rstrip("]").split("[")[0]) is None:
            # a renamed choice (valueQuantity) or a slice of a child
            for name, candidate in current.children.items():
                if candidate.is_choice and segment.startswith(name):
                    child = candidate
        current = child
    return current


def _via_type(node: ElementNode, type_profile: Callable[[ElementNode], ElementNode | None], name: str
              ) -> ElementNode | None:
    root = type_profile(node)
    return root.children.get(name) if root is not None else None


def _extension_url(slice_node: ElementNode, type_profile: Callable[[ElementNode], ElementNode | None]) -> str | None:
    url_node = slice_node.children.get("url")
    if url_node is not None and isinstance(url_node.fixed, str):
        return url_node.fixed
    for type_ref in slice_node.types:
        if type_ref.profiles:
            return type_ref.profiles[0]
    return None


def values_at(value: Any, path: str, resolve: Callable[[Any], Any]) -> list[Any]:
    """The values the discriminator path selects on one instance item (plain navigation)."""
    current = [value]
    for segment in _segments(path):
        following: list[Any] = []
        call = _EXTENSION_CALL.fullmatch(segment)
        for item in current:
            if call:
                if isinstance(item, dict):
                    following.extend(e for e in item.get("extension", ()) if isinstance(e, dict)
                                     and e.get("url") == call.group(2))
            elif segment == "resolve()":
                target = resolve(item)
                if target is not None:
                    following.append(target)
            elif _OF_TYPE.fullmatch(segment):
                following.append(item)
            elif isinstance(item, dict):
                if segment in item:
                    child = item[segment]
                    following.extend(child if isinstance(child, list) else [child])
                else:
                    for key, child in item.items():  # choice: `value` selects valueQuantity
                        if key.startswith(segment) and key[len(segment):][:1].isupper():
                            following.extend(child if isinstance(child, list) else [child])
        current = following
    return current


def type_of_value(value: Any, json_type: str | None) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value["resourceType"]
    return json_type


MemberOf = Callable[[Any, str], "bool | None"]


def slice_matches(value: Any, json_type: str | None, slice_node: ElementNode, discriminators: tuple[Discriminator, ...],
                  type_profile: Callable[[ElementNode], ElementNode | None], resolve: Callable[[Any], Any],
                  conforms: Callable[[Any, str], bool], member_of: MemberOf) -> bool:
    for discriminator in discriminators:
        if not _one_matches(value, json_type, slice_node, discriminator, type_profile, resolve, conforms, member_of):
            return False
    return True


def _one_matches(value: Any, json_type: str | None, slice_node: ElementNode, discriminator: Discriminator,
                 type_profile: Callable[[ElementNode], ElementNode | None], resolve: Callable[[Any], Any],
                 conforms: Callable[[Any, str], bool], member_of: MemberOf) -> bool:
    path = discriminator.path
    kind = discriminator.type
    definition = definition_at(slice_node, path, type_profile)
    if kind in ("value", "pattern"):
        if path in ("url", "$this.url") and (definition is None or definition.fixed is None):
            url = _extension_url(slice_node, type_profile)
            return url is not None and isinstance(value, dict) and value.get("url") == url
        if definition is None:
            return True
        expected_fixed, expected_pattern = definition.fixed, definition.pattern
        found = values_at(value, path, resolve)
        if expected_fixed is None and expected_pattern is None:
            binding = definition.binding
            if binding is not None and binding.value_set and binding.strength == "required":
                # slicing by a required binding: the slice holds the values from that value set
                return any(member_of(v, binding.value_set) is not False for v in found)
            return True
        if expected_fixed is not None:
            return any(matches_fixed(v, expected_fixed) or matches_pattern(v, expected_fixed) for v in found)
        return any(matches_pattern(v, expected_pattern) for v in found)
    if kind == "exists":
        found = values_at(value, path, resolve)
        if definition is None:
            return True
        if definition.min >= 1:
            return bool(found)
        if definition.max == 0:
            return not found
        return True
    if kind == "type":
        if definition is None or not definition.types:
            return True
        wanted = {t.code for t in definition.types}
        found = values_at(value, path, resolve) if _segments(path) else [value]
        if not _segments(path):
            actual = type_of_value(value, json_type)
            return actual in wanted
        return any(type_of_value(v, None) in wanted for v in found)
    if kind == "profile":
        if definition is None:
            return True
        found = values_at(value, path, resolve) if _segments(path) else [value]
        profiles = [p for t in definition.types for p in (t.profiles or t.target_profiles)]
        if not profiles or not found:
            return not profiles
        return any(conforms(v, p) for v in found for p in profiles)
    return True
