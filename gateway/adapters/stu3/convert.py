"""STU3 -> R4, resource by resource, the way the official STU3 <-> R4 structure maps do it.

The walk is driven by the R4 definitions (the compiled R4 `TypeModel`): an element that keeps its name and
shape is copied; cardinality changes (0..1 <-> 0..*) follow the R4 definition; renames, moves, reshapes and
value set changes come from the data tables in `maps/` (see `tables.py`); code system URIs are rewritten on
every Coding; extension URLs follow the zib2017 -> zib2020 table; `meta.profile` is rewritten to nl-core.
Everything that has no place in R4 is reported as `Unmapped`, never dropped silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conformance.typemodel import ElementInfo, TypeInfo, TypeModel
from gateway.adapters.stu3.model import Unmapped
from gateway.adapters.stu3.tables import (
    datatype_defaults,
    extension_rules,
    profile_defaults,
    profile_element_rules,
    profile_map,
    r4_code_system,
    recoded,
)
from gateway.adapters.stu3.zib import restructure

SERVER_MANAGED_META = ("versionId", "lastUpdated")
DATA_ABSENT_UNKNOWN = {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}


class UnknownResourceType(ValueError):
    """A STU3 resource type that R4 does not have (e.g. ProcessRequest, DataElement)."""


@dataclass(frozen=True)
class SplitOff:
    """A zib2017 extension that zib2020 models as a resource of its own (rule `split` in extensions.json, e.g.
    Patient LegalStatus -> a nl-core-LegalSituation-LegalStatus Condition): the caller builds that resource."""

    kind: str  # the `split` value of the rule (e.g. `legal-status`)
    path: str  # where the extension sits in the STU3 input
    extension: dict[str, Any]


@dataclass
class Conversion:
    resource: dict[str, Any]
    unmapped: list[Unmapped] = field(default_factory=list)
    split: list[SplitOff] = field(default_factory=list)


class Stu3ToR4:
    def __init__(self, model: TypeModel) -> None:
        self.model = model

    def convert(self, resource: dict[str, Any], path: str | None = None) -> Conversion:
        """The R4 form of one STU3 resource (its logical `id` is left to the caller)."""
        resource_type = resource.get("resourceType", "")
        info = self.model.resource(resource_type)
        if info is None:
            raise UnknownResourceType(f"STU3 resource type '{resource_type}' does not exist in FHIR R4")
        claimed = (resource.get("meta") or {}).get("profile") or []
        walk = _Walk(self, [], profile_element_rules(tuple(p for p in claimed if isinstance(p, str))), [])
        out: dict[str, Any] = {"resourceType": resource_type}
        body = {k: v for k, v in resource.items() if path is not None or k != "id"}
        walk.object(body, info, resource_type, path or resource_type, out)
        walk.profiles(out, path or resource_type)
        return Conversion(out, walk.unmapped, walk.split)


@dataclass
class _Walk:
    converter: Stu3ToR4
    unmapped: list[Unmapped]
    rules: dict[str, dict[str, Any]]  # element rules (general, and those of the STU3 profiles claimed)
    split: list[SplitOff]  # extensions that become resources of their own (handed to the caller)

    @property
    def model(self) -> TypeModel:
        return self.converter.model

    def lost(self, where: str, value: Any, why: str) -> None:
        self.unmapped.append(Unmapped.of(where, value, why))

    # -- objects ------------------------------------------------------------------------------------------

    def object(self, src: dict[str, Any], info: TypeInfo, defpath: str, where: str, out: dict[str, Any]) -> None:
        replacement: dict[str, Any] | None = None
        for key, value in src.items():
            if key == "resourceType" or (key.startswith("_") and key[1:] in src):
                continue
            here = f"{where}.{key}"
            if key.startswith("_"):  # a primitive that has only extensions (no value)
                self.primitive_extensions(info, out, key[1:], value, here)
                continue
            if key in ("extension", "modifierExtension"):
                replacement = self.extensions(value, key, info, defpath, here, out) or replacement
                continue
            rule = self.rules.get(f"{defpath}.{key}", {})
            if "route" in rule:
                self.route(value, rule["route"], info, defpath, here, out)
                continue
            if "take" in rule:
                value = self.take(value, rule["take"], here)
            element = self.assign(info, out, rule.get("to", key), value, rule, here)
            if element is not None and f"_{key}" in src:
                if self.model.is_primitive(element.type):
                    self.primitive_extensions(info, out, element.name, src[f"_{key}"], f"{where}._{key}")
                else:
                    self.into_complex(out.get(element.name), src[f"_{key}"], rule, f"{where}._{key}")
        if replacement is not None:
            if out.get("reference"):
                self.lost(f"{where}.reference", out["reference"], "replaced by the PractitionerRole reference")
            out["reference"] = replacement.get("reference")
            if replacement.get("display"):
                out["display"] = replacement["display"]

    def assign(self, info: TypeInfo, out: dict[str, Any], target: str, value: Any, rule: dict[str, Any],
               where: str) -> ElementInfo | None:
        """Put a STU3 value at its R4 place (`target`, dotted for moves), converted to the R4 element."""
        located = self.locate(info, target)
        if located is None:
            self.lost(where, value, "no such element in R4")
            return None
        parents, element = located
        if "wrap" in rule:
            value = [{rule["wrap"]: v} for v in value] if isinstance(value, list) else {rule["wrap"]: value}
        converted = self.value(value, element, rule, where)
        if converted is None:
            return element
        node = out
        for parent in parents:
            if parent.many:
                node = node.setdefault(parent.name, [{}])[0]
            else:
                node = node.setdefault(parent.name, {})
        if element.many and isinstance(node.get(element.name), list):
            node[element.name].extend(converted)
        else:
            node[element.name] = converted
        return element

    def locate(self, info: TypeInfo, target: str) -> tuple[list[ElementInfo], ElementInfo] | None:
        parents: list[ElementInfo] = []
        current: TypeInfo | None = info
        *heads, last = target.split(".")
        for head in heads:
            element = current.elements.get(head) if current else None
            if element is None:
                return None
            parents.append(element)
            current = self.model.type(element.type)
        element = current.elements.get(last) if current else None
        return (parents, element) if element is not None else None

    # -- values -------------------------------------------------------------------------------------------

    def value(self, value: Any, element: ElementInfo, rule: dict[str, Any], where: str) -> Any:
        items = value if isinstance(value, list) else [value]
        if not element.many and len(items) > 1:
            for index, extra in enumerate(items[1:], start=1):
                self.lost(f"{where}[{index}]", extra, "R4 allows one")
            items = items[:1]
        converted = []
        for index, item in enumerate(items):
            here = f"{where}[{index}]" if isinstance(value, list) and element.many else where
            result = self.item(item, element, rule, here)
            if isinstance(result, dict) and rule.get("requires_one_of") and not any(
                    key in result for key in rule["requires_one_of"]):
                self.lost(here, item, f"carries none of {', '.join(rule['requires_one_of'])}")
                continue
            if result is not None or (element.many and self.model.is_primitive(element.type)):
                converted.append(result)
        if not any(c is not None for c in converted):
            return None
        return converted if element.many else converted[0]

    def item(self, item: Any, element: ElementInfo, rule: dict[str, Any], where: str) -> Any:
        if item is None:
            return None
        type_name = element.type
        if self.model.is_primitive(type_name):
            if isinstance(item, dict | list):
                self.lost(where, item, f"R4 expects a {type_name} here")
                return None
            return rule.get("codes", {}).get(item, item) if isinstance(item, str) else item
        if type_name == "Resource" or element.kind == "resource":
            return self.contained(item, where)
        if not isinstance(item, dict):
            if "system" in rule and type_name == "CodeableConcept" and isinstance(item, str):
                return {"coding": [{"system": rule["system"], "code": rule.get("codes", {}).get(item, item)}]}
            self.lost(where, item, f"R4 expects a {type_name} here")
            return None
        info = self.model.type(type_name)
        if info is None:
            self.lost(where, item, f"R4 type {type_name} is unknown")
            return None
        out: dict[str, Any] = {}
        self.object(item, info, type_name, where, out)
        if type_name == "Coding" and isinstance(out.get("system"), str):
            moved = recoded(out["system"], str(out.get("code")))
            out["system"], out["code"] = moved if moved else (r4_code_system(out["system"]), out.get("code"))
        if type_name == "CodeableConcept" and "recode" in rule:
            for coding in out.get("coding", []):
                _recode(coding, rule["recode"])
        defaults = datatype_defaults().get(type_name)
        if defaults and any(e.get("url") == defaults["when"] for e in out.get("extension", [])):
            for key, default in defaults["set"].items():
                out.setdefault(key, default)
        return out or None

    def contained(self, item: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(item, dict) or "resourceType" not in item:
            self.lost(where, item, "not a resource")
            return None
        try:
            conversion = self.converter.convert(item, where)
        except UnknownResourceType as error:
            self.lost(where, item.get("resourceType"), str(error))
            return None
        self.unmapped.extend(conversion.unmapped)
        for part in conversion.split:  # a contained resource cannot carry a resource of its own
            self.lost(part.path, part.extension, f"{part.kind} of a contained resource is not converted")
        return conversion.resource

    def take(self, value: Any, child: str, where: str) -> Any:
        """The R4 element is one child of the STU3 backbone (Task.requester.agent -> Task.requester)."""
        def one(item: Any, here: str) -> Any:
            if not isinstance(item, dict):
                return item
            for key, rest in item.items():
                if key != child:
                    self.lost(f"{here}.{key}", rest, f"R4 keeps only {child}")
            return item.get(child)
        if isinstance(value, list):
            return [one(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return one(value, where)

    def route(self, value: Any, route: dict[str, Any], info: TypeInfo, defpath: str, where: str,
              out: dict[str, Any]) -> None:
        """A STU3 backbone split over R4 elements by one of its codes (Observation.related.type)."""
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            here = f"{where}[{index}]"
            target = route["routes"].get(item.get(route["by"])) if isinstance(item, dict) else None
            if target is None or route["value"] not in item:
                self.lost(here, item, f"no R4 element for {route['by']} '{item.get(route['by'])}'"
                          if isinstance(item, dict) else "not an element")
                continue
            for key, rest in item.items():
                if key not in (route["by"], route["value"]):
                    self.lost(f"{here}.{key}", rest, "not carried by the R4 element")
            self.assign(info, out, target, [item[route["value"]]], {}, f"{here}.{route['value']}")

    def primitive_extensions(self, info: TypeInfo, out: dict[str, Any], name: str, value: Any, where: str) -> None:
        """The `_element` sibling (id and extensions of a primitive), converted like any Element."""
        if info.elements.get(name) is None:
            self.lost(where, value, "no such element in R4")
            return
        element_info = self.model.type("Element")
        assert element_info is not None

        def one(item: Any, here: str) -> Any:
            if not isinstance(item, dict):
                return None
            converted: dict[str, Any] = {}
            self.object(item, element_info, "Element", here, converted)
            return converted or None
        if isinstance(value, list):
            converted_list = [one(item, f"{where}[{i}]") for i, item in enumerate(value)]
            if any(converted_list):
                out[f"_{name}"] = converted_list
            return
        converted = one(value, where)
        if converted:
            existing = out.setdefault(f"_{name}", {})
            for key, part in converted.items():
                if isinstance(part, list) and isinstance(existing.get(key), list):
                    existing[key] = part + existing[key]
                else:
                    existing[key] = part

    def into_complex(self, target: Any, value: Any, rule: dict[str, Any], where: str) -> None:
        """The `_element` of a STU3 primitive that became a complex R4 element (code -> CodeableConcept):
        its code-specification codings join the codings, its other extensions go onto the new element."""
        if not isinstance(target, dict) or not isinstance(value, dict):
            self.lost(where, value, "no R4 place for the extensions of this element")
            return
        extensions = value.get("extension", [])
        specification = [e for e in extensions if e.get("url") == rule.get("specification")]
        for extension in specification:
            concept = self.item(extension.get("valueCodeableConcept"), _CODEABLE_CONCEPT, {}, where)
            target.setdefault("coding", []).extend((concept or {}).get("coding", []))
        rest = {k: v for k, v in value.items() if k != "extension"}
        rest["extension"] = [e for e in extensions if e.get("url") != rule.get("specification")]
        converted: dict[str, Any] = {}
        element_info = self.model.type("Element")
        assert element_info is not None
        self.object({k: v for k, v in rest.items() if v}, element_info, "Element", where, converted)
        if converted.get("extension"):
            target.setdefault("extension", []).extend(converted["extension"])

    # -- extensions ---------------------------------------------------------------------------------------

    def extensions(self, extensions: list[dict[str, Any]], key: str, info: TypeInfo, defpath: str, where: str,
                   out: dict[str, Any], parent_rule: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Convert `extension`/`modifierExtension`; returns a Reference that replaces the parent Reference."""
        replacement = None
        for extension in extensions:
            url = extension.get("url", "")
            here = f"{where}('{url}')"
            if parent_rule is not None and ":" not in url:  # a sub-extension of a complex extension
                out.setdefault(key, []).append(self.extension(extension, parent_rule.get("children", {})
                                                              .get(url, url), here, None))
                continue
            rule = extension_rules().get(url)
            if rule is None:
                self.lost(here, extension, "extension unknown to the STU3 -> R4 map")
            elif rule.get("reference"):
                replacement = extension.get("valueReference")
            elif "split" in rule:
                if parent_rule is None and defpath == rule.get("on_resource", defpath):
                    self.split.append(SplitOff(rule["split"], here, extension))
                else:
                    self.lost(here, extension, f"{rule['split']} is converted only on {rule.get('on_resource')}")
            elif "element" in rule:
                value = next((v for k, v in extension.items() if k.startswith("value")), None)
                self.assign(info, out, rule["element"], value, rule, here)
            elif rule.get("to") is None:
                self.lost(here, extension, "no R4 counterpart")
            elif "on" in rule:
                sibling = out.setdefault(f"_{rule['on']}", {})
                sibling.setdefault("extension", []).append(self.extension(extension, rule["to"], here, rule))
            else:
                out.setdefault(key, []).append(self.extension(extension, rule["to"], here, rule))
        return replacement

    def extension(self, extension: dict[str, Any], url: str, where: str, rule: dict[str, Any] | None
                  ) -> dict[str, Any]:
        info = self.model.type("Extension")
        assert info is not None
        new: dict[str, Any] = {"url": url}
        body = {k: v for k, v in extension.items() if k not in ("url", "extension")}
        self.object(body, info, "Extension", where, new)
        if extension.get("extension"):
            self.extensions(extension["extension"], "extension", info, "Extension", where, new, rule or {})
        return new

    # -- profiles -----------------------------------------------------------------------------------------

    def profiles(self, out: dict[str, Any], where: str) -> None:
        meta = out.get("meta")
        if not isinstance(meta, dict):
            return
        for key in SERVER_MANAGED_META:
            if key in meta:
                self.lost(f"{where}.meta.{key}", meta.pop(key), "the sender's server copy; the gateway keeps its own")
        claimed = meta.pop("profile", [])
        mapped = profile_map()
        profiles = []
        for url in claimed:
            if mapped.get(url):
                profiles.append(mapped[url])
            else:
                why = "no R4 nl-core counterpart" if url in mapped else "profile unknown to the STU3 -> R4 map"
                self.lost(f"{where}.meta.profile", url, why)
        profiles = [restructure(out, profile, where, self.lost) for profile in profiles]
        if profiles:
            meta["profile"] = profiles
            for profile in profiles:
                defaults = profile_defaults().get(profile, {})
                for key, value in defaults.get("set", {}).items():
                    out.setdefault(key, value)
                for key in defaults.get("absent", []):
                    if key not in out and f"_{key}" not in out:
                        out[f"_{key}"] = {"extension": [DATA_ABSENT_UNKNOWN]}
                for key, value in defaults.get("add", {}).items():
                    if value not in out.setdefault(key, []):
                        out[key].append(value)
        if not meta:
            out.pop("meta")



_CODEABLE_CONCEPT = ElementInfo("valueCodeableConcept", "Extension.value[x]", "CodeableConcept", False, 0, "complex")


def _recode(coding: dict[str, Any], recode: dict[str, dict[str, str]]) -> None:
    """Move a coding to the code system R4 binds (BCP-47 `nl-NL` -> ISO 639-1 `nl`)."""
    target = recode.get(coding.get("system", ""))
    if target is None:
        return
    coding["system"] = target["system"]
    if target["code"] == "primary-subtag" and isinstance(coding.get("code"), str):
        coding["code"] = coding["code"].split("-")[0].lower()
