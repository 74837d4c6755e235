"""A StructureDefinition validated as an instance: the rules on its differential that a snapshot generator
relies on. Every element path must exist in the type it constrains (choice renames such as `valueQuantity`
only for a type the choice allows), a derived profile cannot change a value its base fixes, and a slicing
discriminator must name something the sliced element has."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from conformance.validator.model import CompiledProfile, ElementNode

Report = Callable[[str, str, str, str], None]  # severity, code, message, expression
BaseOf = Callable[[str], CompiledProfile | None]  # type code -> its core definition

_DISCRIMINATOR_FUNCTIONS = re.compile(r"\.?(resolve\(\)|extension\([^)]*\)|ofType\([^)]*\))")


def check_structure_definition(sd: dict[str, Any], base_profile: CompiledProfile | None, base_of: BaseOf,
                               expression: str, report: Report) -> None:
    differential = sd.get("differential")
    elements = differential.get("element") if isinstance(differential, dict) else None
    if not isinstance(elements, list) or sd.get("kind") == "logical":
        return
    for index, element in enumerate(elements):
        if not isinstance(element, dict) or not isinstance(element.get("path"), str):
            continue
        where = f"{expression}.differential.element[{index}]"
        path = element["path"]
        target = _resolve_path(path, base_of)
        if target is None:
            stated = _path_of_id(element.get("id"))
            hint = f" (the element id says '{stated}')" if stated and stated != path else ""
            report("error", "invalid", f"The path '{path}' does not exist in the type {path.split('.')[0]}{hint}",
                   f"{where}.path")
            continue
        if base_profile is not None and sd.get("derivation") == "constraint":
            _check_fixed(element, base_profile, where, report)
        slicing = element.get("slicing")
        if isinstance(slicing, dict):
            _check_discriminators(slicing, target, base_of, path, where, report)


def _path_of_id(element_id: Any) -> str | None:
    if not isinstance(element_id, str):
        return None
    return ".".join(part.split(":", 1)[0] for part in element_id.split("."))


def _resolve_path(path: str, base_of: BaseOf) -> ElementNode | None:
    """The core element a path names, descending through data types; None when it does not exist."""
    segments = path.split(".")
    compiled = base_of(segments[0])
    if compiled is None:
        return None
    node = compiled.root
    chosen: str | None = None
    for segment in segments[1:]:
        if not node.children:
            if node.content_reference:
                referenced = compiled.by_id.get(node.content_reference.lstrip("#"))
                if referenced is None:
                    return None
                node = referenced
            else:
                type_code = chosen or (node.types[0].code if len(node.types) == 1 else None)
                if type_code is None:
                    return None
                type_definition = base_of(type_code)
                if type_definition is None:
                    return None
                compiled, node = type_definition, type_definition.root
        chosen = None
        child = node.children.get(segment[:-3] if segment.endswith("[x]") else segment)
        if child is not None and (segment.endswith("[x]") == child.is_choice):
            node = child
            continue
        renamed = next((c for c in node.children.values() if c.is_choice and segment.startswith(c.json_name)
                        and _choice_type(c, segment[len(c.json_name):]) is not None), None)
        if renamed is None:
            return None
        chosen = _choice_type(renamed, segment[len(renamed.json_name):])
        node = renamed
    return node


def _choice_type(node: ElementNode, suffix: str) -> str | None:
    for code in node.type_codes:
        if code[:1].upper() + code[1:] == suffix:
            return code
    return None


def _check_fixed(element: dict[str, Any], base_profile: CompiledProfile, where: str, report: Report) -> None:
    fixed = next((value for key, value in element.items() if key.startswith("fixed") and key != "fixed"), None)
    if fixed is None or not isinstance(element.get("id"), str):
        return
    inherited = base_profile.by_id.get(element["id"])
    if inherited is not None and inherited.fixed is not None and inherited.fixed != fixed:
        report("error", "value",
               f"Value is {fixed!r} but is fixed to {inherited.fixed!r} in the profile {base_profile.label}, because "
               f"the value must match the fixed value defined in '{base_profile.url}'", where)


def _check_discriminators(slicing: dict[str, Any], target: ElementNode, base_of: BaseOf, path: str, where: str,
                          report: Report) -> None:
    if len(target.types) != 1:
        return  # a choice or a backbone element defined inline: its children are checked elsewhere
    children = target.children
    if not children:
        type_definition = base_of(target.types[0].code)
        if type_definition is None:
            return
        children = type_definition.root.children
    for index, discriminator in enumerate(slicing.get("discriminator", ())):
        if not isinstance(discriminator, dict) or not isinstance(discriminator.get("path"), str):
            continue
        first = _DISCRIMINATOR_FUNCTIONS.sub("", discriminator["path"]).split(".", 1)[0].strip()
        if first in ("", "$this") or discriminator["path"].startswith(("resolve()", "extension(", "$this")):
            continue
        known = first in children or any(c.is_choice and first.startswith(c.json_name) for c in children.values())
        if not known:
            report("error", "invalid",
                   f"The discriminator path '{discriminator['path']}' does not appear to be valid for the element "
                   f"that is being sliced '{path}'", f"{where}.slicing.discriminator[{index}]")
