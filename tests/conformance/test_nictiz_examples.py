"""The 271 official Nictiz nl-core examples validate against the profiles in their meta.profile with zero
errors, and planted errors are caught at the right place (mutation test).

Mutations are derived from each example's own profile (compiled snapshot), so they are not hand-picked:
a required element removed, a pattern/fixed value broken, a code outside a required binding, a required slice
emptied, and an invariant violated (dom-4, a contained resource with a versionId).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance.fhirxml import xml_to_json
from conformance.packages import PackageSet, default_package_paths
from conformance.validator import Validator
from conformance.validator.model import ElementNode

ROOT = Path(__file__).resolve().parents[2]
NICTIZ = ROOT.parent / "shared" / "reference" / "nictiz-r4-zib2020"
MUTATED_EXAMPLES_MIN = 30

pytestmark = pytest.mark.skipif(not NICTIZ.exists(), reason=f"Nictiz reference not found at {NICTIZ}")


@cache
def validator() -> Validator:
    paths = [*default_package_paths(ROOT), NICTIZ / "resources" / "zib", NICTIZ / "resources" / "nl-core"]
    return Validator(PackageSet.from_paths(p for p in paths if p.exists()))


@cache
def examples() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, xml_to_json(path.read_bytes())) for path in sorted((NICTIZ / "examples").glob("*.xml"))]


def errors_of(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.expression, i.message) for i in validator().validate_issues(resource) if i.is_error]


def test_all_examples_are_valid_against_their_profiles() -> None:
    failures = {}
    profiled = 0
    for name, resource in examples():
        profiled += bool(resource.get("meta", {}).get("profile"))
        errors = errors_of(resource)
        if errors:
            failures[name] = errors[:3]
    print(f"\nNictiz examples: {len(examples()) - len(failures)}/{len(examples())} with zero errors "
          f"({profiled} claim a profile)")
    missing = {url for _, r in examples() for url in r["meta"]["profile"] if validator().registry.profile(url) is None}
    for url in sorted(missing):  # the example claims a profile its package does not contain
        print(f"  profile not in the package (validated against the base spec only): {url}")
        assert validator().packages.resolve(url) is None
    assert len(examples()) == 271
    assert profiled == 271
    assert failures == {}


# -- mutations -------------------------------------------------------------------------------------------------

def _profile_root(resource: dict[str, Any]) -> tuple[str, ElementNode] | None:
    for url in resource.get("meta", {}).get("profile", ()):
        compiled = validator().registry.profile(url)
        if compiled is not None:
            return url, compiled.root
    return None


def _present(resource: dict[str, Any], node: ElementNode) -> str | None:
    name = node.json_name
    if node.is_choice:
        return next((k for k in resource if k.startswith(name) and k[len(name):][:1].isupper()), None)
    return name if name in resource else None


def mutations(resource: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(kind, mutated resource, expression where an error must be reported)."""
    found = _profile_root(resource)
    if found is None:
        return
    _, root = found
    rtype = resource["resourceType"]
    for node in root.children.values():
        key = _present(resource, node)
        if key is None or node.json_name in ("id", "meta", "text", "resourceType"):
            continue
        if node.min >= 1:
            mutated = copy.deepcopy(resource)
            del mutated[key]
            mutated.pop("_" + key, None)  # a primitive's extensions would still count as the element
            yield "required", mutated, rtype
            break
    for node in root.children.values():
        key = _present(resource, node)
        value = resource.get(key) if key else None
        if key and node.pattern is not None and isinstance(value, dict | list):
            mutated = copy.deepcopy(resource)
            broken = {"coding": [{"system": "urn:mutation", "code": "broken"}]}
            mutated[key] = [broken] if isinstance(value, list) else broken
            yield "pattern", mutated, f"{rtype}.{key}[0]" if isinstance(value, list) else f"{rtype}.{key}"
            break
    for node in root.children.values():
        key = _present(resource, node)
        binding = node.binding
        if key and binding and binding.strength == "required" and node.type_codes == ("code",) \
                and isinstance(resource.get(key), str):
            mutated = copy.deepcopy(resource)
            mutated[key] = "not-a-valid-code"
            yield "binding", mutated, f"{rtype}.{key}"
            break
    for node in root.children.values():
        key = _present(resource, node)
        if not key or not isinstance(resource.get(key), list):
            continue
        required = [s for s in node.slices if s.min >= 1]
        if required and node.slicing is not None:
            mutated = copy.deepcopy(resource)
            mutated[key] = [{"extension": [{"url": "http://example.org/mutation", "valueString": "x"}]}] \
                if key in ("extension", "modifierExtension") else []
            if not mutated[key]:
                del mutated[key]
            yield "slice", mutated, rtype
            break
    mutated = copy.deepcopy(resource)
    mutated["contained"] = [*mutated.get("contained", []), {"resourceType": "Basic", "id": "mutation",
                                                            "meta": {"versionId": "1"},
                                                            "code": {"text": "mutation"}}]
    yield "invariant", mutated, rtype


def test_planted_errors_are_caught_at_the_right_expression() -> None:
    caught: dict[str, int] = {}
    missed = []
    mutated_examples = 0
    for name, resource in examples():
        produced = False
        for kind, mutated, expression in mutations(resource):
            produced = True
            errors = errors_of(mutated)
            if any(where == expression or where.startswith(expression + ".") and kind != "required"
                   for where, _ in errors):
                caught[kind] = caught.get(kind, 0) + 1
            else:
                missed.append((name, kind, expression, errors[:2]))
        mutated_examples += produced
    print(f"\nmutations caught per kind: {caught}; missed: {len(missed)} over {mutated_examples} examples")
    for item in missed[:20]:
        print("  MISSED", item)
    assert mutated_examples >= MUTATED_EXAMPLES_MIN
    assert set(caught) == {"required", "pattern", "binding", "slice", "invariant"}
    assert missed == []
