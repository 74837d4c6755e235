"""Snapshot generation for differential-only profiles (the Nictiz zib/nl-core packages ship no snapshots).

The differential is applied over the base definition's snapshot (generated first when the base has none, so
nl-core -> zib -> core works), element by element, in order:
- an element already in the snapshot (by element id, slice names included) is constrained in place;
- a new slice (`Patient.identifier:bsn`, re-slices `a:b/c`) copies the sliced element and its children and
  is inserted after the existing slices;
- an element below a data-typed element (`Patient.name:nameInformation.given`) first expands that element's
  children from its type profile (`nl-core-NameInformation`) or its base type;
- a renamed choice (`Observation.valueQuantity`) constrains `value[x]`; a choice slice
  (`value[x]:valueQuantity`) gets a type discriminator.
Results are cached in memory and on disk (`var/cache/snapshots`), keyed by the content of the whole chain.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance import fhirjson

CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
Lookup = Callable[[str], "dict[str, Any] | None"]
_FORMAT = "1"
_REPLACED_KEYS = ("type", "binding", "slicing")
_APPENDED_KEYS = ("constraint", "mapping", "condition", "alias", "code")
_NOT_INHERITED = ("sliceName",)


class SnapshotError(ValueError):
    """The differential cannot be applied (unknown base, an element that matches nothing...)."""


_memory: dict[str, dict[str, Any]] = {}
_lock = threading.RLock()


def generate_snapshot(sd: dict[str, Any], lookup: Lookup, cache_dir: Path | None = None) -> dict[str, Any]:
    """A copy of `sd` with a snapshot (the input is returned unchanged when it already has one)."""
    if sd.get("snapshot", {}).get("element"):
        return sd
    with _lock:
        key = _cache_key(sd, lookup)
        if key in _memory:
            return _memory[key]
        folder = cache_dir or Path(os.environ.get("ZCC_CACHE_DIR", "var/cache")) / "snapshots"
        cached = folder / f"{key}.json"
        if cached.exists():
            try:
                result = fhirjson.loads_trusted(cached.read_bytes())
                _memory[key] = result
                return result
            except ValueError:
                pass
        result = _generate(sd, lookup, cache_dir)
        _memory[key] = result
        try:
            folder.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(fhirjson.dumps(result))
        except OSError:
            pass  # a read-only cache only costs time
        return result


def _cache_key(sd: dict[str, Any], lookup: Lookup) -> str:
    digest = hashlib.sha256(_FORMAT.encode())
    current: dict[str, Any] | None = sd
    seen = 0
    while current is not None and seen < 20:
        digest.update(fhirjson.dumps(current.get("differential", {})))
        digest.update(str(current.get("url")).encode() + str(current.get("version")).encode())
        if current.get("snapshot", {}).get("element"):
            break
        base = current.get("baseDefinition")
        current = lookup(base) if isinstance(base, str) else None
        seen += 1
    return digest.hexdigest()[:32]


def _generate(sd: dict[str, Any], lookup: Lookup, cache_dir: Path | None) -> dict[str, Any]:
    base_url = sd.get("baseDefinition")
    if not isinstance(base_url, str):
        raise SnapshotError(f"{sd.get('url')}: no baseDefinition and no snapshot")
    base = lookup(base_url)
    if base is None:
        raise SnapshotError(f"{sd.get('url')}: base definition {base_url} not found")
    base = generate_snapshot(base, lookup, cache_dir)
    elements = [copy.deepcopy(e) for e in base["snapshot"]["element"]]
    for element in elements:
        element.setdefault("id", element["path"])
    builder = _Builder(elements, lookup, cache_dir, sd.get("url", "?"))
    for diff in sd.get("differential", {}).get("element", ()):
        builder.apply(diff)
    result = dict(sd)
    result["snapshot"] = {"element": builder.elements}
    return result


def _diff_id(diff: dict[str, Any]) -> str:
    if diff.get("id"):
        return diff["id"]
    path = diff["path"]
    return f"{path}:{diff['sliceName']}" if diff.get("sliceName") else path


class _Builder:
    def __init__(self, elements: list[dict[str, Any]], lookup: Lookup, cache_dir: Path | None, url: str) -> None:
        self.elements = elements
        self.lookup = lookup
        self.cache_dir = cache_dir
        self.url = url

    def index_of(self, element_id: str) -> int | None:
        for index, element in enumerate(self.elements):
            if element["id"] == element_id:
                return index
        return None

    def apply(self, diff: dict[str, Any]) -> None:
        element_id = _diff_id(diff)
        index = self.locate(element_id, diff)
        if index is None:
            raise SnapshotError(f"{self.url}: differential element {element_id} matches nothing in the base")
        _merge(self.elements[index], diff)

    def locate(self, element_id: str, diff: dict[str, Any]) -> int | None:
        index = self.index_of(element_id)
        if index is not None:
            return index
        if element_id.count(".") == 0:
            return 0 if self.elements and not diff.get("sliceName") else None
        parent_id, last = _split_last(element_id)
        name, _, slice_name = last.partition(":")
        if slice_name:
            sliced_id = f"{parent_id}.{name}"
            if "/" in slice_name:
                sliced_id = f"{parent_id}.{name}:{slice_name.rsplit('/', 1)[0]}"
            if self.locate(sliced_id, {}) is None:
                return None
            existing = self.index_of(element_id)  # locating the sliced element may have expanded the slice
            if existing is not None:
                return existing
            return self.add_slice(sliced_id, element_id, slice_name, diff)
        parent_index = self.locate(parent_id, {})
        if parent_index is None:
            return None
        renamed = self._choice_rename(parent_id, name, diff)
        if renamed is not None:
            return renamed
        if not self._has_children(parent_index):
            self.expand(parent_index)
            index = self.index_of(element_id)
            if index is not None:
                return index
            return self._choice_rename(parent_id, name, diff)
        return None

    def _choice_rename(self, parent_id: str, name: str, diff: dict[str, Any]) -> int | None:
        """`Observation.valueQuantity` constrains `Observation.value[x]` to Quantity."""
        for index, element in enumerate(self.elements):
            local = element["path"].rsplit(".", 1)[-1]
            if element["id"] != f"{parent_id}.{local}" or not local.endswith("[x]"):
                continue
            base = local[:-3]
            suffix = name[len(base):]
            if name.startswith(base) and suffix[:1].isupper():
                type_code = next((t["code"] for t in element.get("type", ())
                                  if t["code"][:1].upper() + t["code"][1:] == suffix), None)
                if type_code is not None:
                    if "type" not in diff:
                        element["type"] = [t for t in element.get("type", ()) if t["code"] == type_code]
                    return index
        return None

    def _has_children(self, index: int) -> bool:
        element_id = self.elements[index]["id"]
        return index + 1 < len(self.elements) and self.elements[index + 1]["id"].startswith(element_id + ".")

    def subtree_end(self, index: int) -> int:
        """The index just past `elements[index]`, its children and its slices."""
        element_id = self.elements[index]["id"]
        end = index + 1
        while end < len(self.elements):
            other = self.elements[end]["id"]
            if other.startswith(element_id + ".") or other.startswith(element_id + ":"):
                end += 1
            else:
                break
        return end

    def expand(self, index: int) -> None:
        """Insert the children of a data-typed element from its type profile or base type."""
        element = self.elements[index]
        types = element.get("type", ())
        if len(types) != 1:
            if not types:
                reference = element.get("contentReference")
                if reference:
                    self._expand_reference(index, reference.split("#", 1)[1])
            return
        type_entry = types[0]
        source = None
        for profile in type_entry.get("profile", ()):
            source = self.lookup(profile)
            if source is not None:
                break
        if source is None:
            source = self.lookup(CORE_PREFIX + type_entry["code"])
        if source is None:
            raise SnapshotError(f"{self.url}: no definition for type {type_entry['code']} of {element['id']}")
        source = generate_snapshot(source, self.lookup, self.cache_dir)
        source_elements = source["snapshot"]["element"]
        root_path = source_elements[0]["path"]
        children = []
        for child in source_elements[1:]:
            child = copy.deepcopy(child)
            child_id = child.get("id", child["path"])
            child["id"] = element["id"] + child_id[len(root_path):]
            child["path"] = element["path"] + child["path"][len(root_path):]
            children.append(child)
        self.elements[index + 1:index + 1] = children

    def _expand_reference(self, index: int, target_id: str) -> None:
        element = self.elements[index]
        start = self.index_of(target_id)
        if start is None:
            return
        children = []
        for other in self.elements[start + 1:self.subtree_end(start)]:
            child = copy.deepcopy(other)
            child["id"] = element["id"] + child["id"][len(target_id):]
            child["path"] = element["path"] + child["path"][len(self.elements[start]["path"]):]
            children.append(child)
        element.pop("contentReference", None)
        self.elements[index + 1:index + 1] = children

    def add_slice(self, sliced_id: str, element_id: str, slice_name: str, diff: dict[str, Any]) -> int:
        sliced_index = self.index_of(sliced_id)
        if sliced_index is None:
            raise SnapshotError(f"{self.url}: sliced element {sliced_id} not found")
        sliced = self.elements[sliced_index]
        end = self.subtree_end(sliced_index)
        copies = []
        for other in self.elements[sliced_index:end]:
            other_id = other["id"]
            if other_id != sliced_id and not other_id.startswith(sliced_id + "."):
                continue
            if ":" in other_id[len(sliced_id):]:
                continue  # slices of children belong to the sliced element's own children only
            clone = copy.deepcopy(other)
            clone["id"] = element_id + other_id[len(sliced_id):]
            copies.append(clone)
        root = copies[0]
        root["sliceName"] = slice_name.rsplit("/", 1)[-1] if "/" in slice_name else slice_name
        root.pop("slicing", None)
        root["min"] = 0
        local = sliced["path"].rsplit(".", 1)[-1]
        if local.endswith("[x]"):
            if "slicing" not in sliced:
                sliced["slicing"] = {"discriminator": [{"type": "type", "path": "$this"}], "rules": "open"}
            suffix = slice_name[len(local) - 3:]
            if "type" not in diff and suffix:
                narrowed = [t for t in root.get("type", ()) if t["code"][:1].upper() + t["code"][1:] == suffix]
                if narrowed:
                    root["type"] = narrowed
        self.elements[end:end] = copies
        return end


def _split_last(element_id: str) -> tuple[str, str]:
    """Split off the last id segment (slice names with dots in them are not supported)."""
    parent, _, last = element_id.rpartition(".")
    return parent, last


def _merge(target: dict[str, Any], diff: dict[str, Any]) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key in _APPENDED_KEYS and isinstance(value, list):
            existing = target.get(key, [])
            keys = {item.get("key") for item in existing if isinstance(item, dict)} if key == "constraint" else set()
            target[key] = existing + [v for v in value if not (isinstance(v, dict) and v.get("key") in keys)]
            continue
        if key.startswith(("fixed", "pattern")):
            for old in [k for k in target if k.startswith(("fixed", "pattern"))]:
                del target[old]
        if key == "binding" and isinstance(value, dict) and isinstance(target.get("binding"), dict):
            merged = dict(target["binding"])
            merged.update(value)
            target["binding"] = merged
            continue
        if key == "type" and isinstance(value, list):
            target[key] = _merge_types(target.get("type", []), value)
            continue
        target[key] = copy.deepcopy(value)


def _merge_types(base: list[dict[str, Any]], diff: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Constrained types keep the base's type extensions (fhir-type) unless the differential restates them."""
    by_code = {t.get("code"): t for t in base}
    result = []
    for entry in diff:
        merged = dict(by_code.get(entry.get("code"), {}))
        merged.pop("profile", None)
        merged.pop("targetProfile", None)
        merged.update(copy.deepcopy(entry))
        result.append(merged)
    return result
