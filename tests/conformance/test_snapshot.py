"""Snapshot generation: slices, re-slices, children expanded from type profiles, choice types, the base chain
and the caches."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance import snapshot
from conformance.packages import PackageSet, default_package_paths
from conformance.snapshot import SnapshotError, generate_snapshot

ROOT = Path(__file__).resolve().parents[2]
NICTIZ = ROOT.parent / "shared" / "reference" / "nictiz-r4-zib2020"
CORE = "http://hl7.org/fhir/StructureDefinition/"


@cache
def core() -> PackageSet:
    return PackageSet.from_paths(p for p in default_package_paths(ROOT) if p.exists())


def lookup_with(*extra: dict[str, Any]):  # noqa: ANN201
    by_url = {sd["url"]: sd for sd in extra}

    def lookup(url: str) -> dict[str, Any] | None:
        return by_url.get(url.split("|")[0]) or core().resolve(url)
    return lookup


def profile(url: str, base: str, elements: list[dict[str, Any]], type_: str = "Patient") -> dict[str, Any]:
    return {"resourceType": "StructureDefinition", "url": url, "name": url.rsplit("/", 1)[-1], "status": "draft",
            "kind": "resource", "abstract": False, "type": type_, "baseDefinition": base, "derivation": "constraint",
            "differential": {"element": elements}}


def ids(sd: dict[str, Any]) -> list[str]:
    return [e["id"] for e in sd["snapshot"]["element"]]


def element(sd: dict[str, Any], element_id: str) -> dict[str, Any]:
    return next(e for e in sd["snapshot"]["element"] if e["id"] == element_id)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZCC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(snapshot, "_memory", {})
    return tmp_path


def test_slices_with_children_expanded_from_the_data_type() -> None:
    sd = profile("http://example.org/p1", CORE + "Patient", [
        {"id": "Patient.identifier", "path": "Patient.identifier",
         "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
        {"id": "Patient.identifier:bsn", "path": "Patient.identifier", "sliceName": "bsn", "min": 1, "max": "1"},
        {"id": "Patient.identifier:bsn.system", "path": "Patient.identifier.system", "min": 1,
         "fixedUri": "http://fhir.nl/fhir/NamingSystem/bsn"},
    ])
    result = generate_snapshot(sd, lookup_with(sd))
    found = ids(result)
    assert found.index("Patient.identifier:bsn") > found.index("Patient.identifier")
    assert "Patient.identifier:bsn.value" in found  # Identifier's children copied into the slice
    bsn_system = element(result, "Patient.identifier:bsn.system")
    assert bsn_system["fixedUri"] == "http://fhir.nl/fhir/NamingSystem/bsn" and bsn_system["min"] == 1
    assert element(result, "Patient.identifier:bsn")["min"] == 1
    assert element(result, "Patient.identifier")["slicing"]["rules"] == "open"
    assert not any(e.get("fixedUri") for e in result["snapshot"]["element"] if e["id"] == "Patient.identifier.system")
    assert len(found) == len(set(found))


def test_reslicing_over_a_derived_profile() -> None:
    base = profile("http://example.org/base", CORE + "Patient", [
        {"id": "Patient.identifier", "path": "Patient.identifier",
         "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
        {"id": "Patient.identifier:local", "path": "Patient.identifier", "sliceName": "local"},
    ])
    derived = profile("http://example.org/derived", "http://example.org/base", [
        {"id": "Patient.identifier:local", "path": "Patient.identifier", "sliceName": "local",
         "slicing": {"discriminator": [{"type": "value", "path": "use"}], "rules": "closed"}},
        {"id": "Patient.identifier:local/official", "path": "Patient.identifier", "sliceName": "local/official",
         "max": "1"},
        {"id": "Patient.identifier:local/official.use", "path": "Patient.identifier.use", "fixedCode": "official"},
    ])
    result = generate_snapshot(derived, lookup_with(base, derived))
    found = ids(result)
    assert found.index("Patient.identifier:local") < found.index("Patient.identifier:local/official")
    assert element(result, "Patient.identifier:local/official.use")["fixedCode"] == "official"
    assert element(result, "Patient.identifier:local")["slicing"]["rules"] == "closed"


def test_choice_types_renamed_and_sliced() -> None:
    sd = profile("http://example.org/obs", CORE + "Observation", [
        {"id": "Observation.valueQuantity", "path": "Observation.valueQuantity", "min": 1},
        {"id": "Observation.effective[x]:effectiveDateTime", "path": "Observation.effective[x]",
         "sliceName": "effectiveDateTime"},
    ], type_="Observation")
    result = generate_snapshot(sd, lookup_with(sd))
    value = element(result, "Observation.value[x]")
    assert [t["code"] for t in value["type"]] == ["Quantity"] and value["min"] == 1
    sliced = element(result, "Observation.effective[x]")
    assert sliced["slicing"]["discriminator"] == [{"type": "type", "path": "$this"}]
    assert [t["code"] for t in element(result, "Observation.effective[x]:effectiveDateTime")["type"]] == ["dateTime"]


def test_unknown_elements_and_bases_are_errors() -> None:
    sd = profile("http://example.org/bad", CORE + "Patient",
                 [{"id": "Patient.dateOfBirth", "path": "Patient.dateOfBirth"}])
    with pytest.raises(SnapshotError):
        generate_snapshot(sd, lookup_with(sd))
    orphan = profile("http://example.org/orphan", "http://example.org/missing", [])
    with pytest.raises(SnapshotError):
        generate_snapshot(orphan, lookup_with(orphan))


def test_results_are_cached_in_memory_and_on_disk(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sd = profile("http://example.org/cached", CORE + "Patient", [{"id": "Patient.gender", "path": "Patient.gender",
                                                                   "min": 1}])
    first = generate_snapshot(sd, lookup_with(sd))
    assert generate_snapshot(copy.deepcopy(sd), lookup_with(sd)) is first
    files = list((isolated_cache / "snapshots").glob("*.json"))
    assert len(files) == 1
    monkeypatch.setattr(snapshot, "_memory", {})
    monkeypatch.setattr(snapshot, "_generate", lambda *a: pytest.fail("the disk cache was not used"))
    assert ids(generate_snapshot(sd, lookup_with(sd))) == ids(first)
    changed = profile("http://example.org/cached", CORE + "Patient", [{"id": "Patient.gender", "path": "Patient.gender",
                                                                       "min": 0}])
    with pytest.raises(pytest.fail.Exception):  # a changed differential is a different cache key: generation runs again
        generate_snapshot(changed, lookup_with(changed))


@pytest.mark.skipif(not NICTIZ.exists(), reason="Nictiz reference data not available")
def test_nl_core_patient_over_zib_over_core() -> None:
    packages = PackageSet.from_paths([*default_package_paths(ROOT), NICTIZ / "resources" / "zib",
                                      NICTIZ / "resources" / "nl-core"])

    def lookup(url: str) -> dict[str, Any] | None:
        return packages.resolve(url) or packages.resolve(url.split("|")[0])

    sd = packages.resolve("http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient")
    assert "snapshot" not in sd
    result = generate_snapshot(sd, lookup)
    found = ids(result)
    assert len(found) == len(set(found))
    name = element(result, "Patient.name:nameInformation")  # from zib-Patient, type profile from nl-core
    assert name["type"][0]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/nl-core-NameInformation"]
    nationality_url = element(result, "Patient.extension:nationality.url")  # expanded from the extension definition
    assert nationality_url["fixedUri"] == "http://hl7.org/fhir/StructureDefinition/patient-nationality"
    assert "Patient.extension:nationality.extension:code.value[x]" in found
    assert element(result, "Patient.identifier:bsn")["sliceName"] == "bsn"
