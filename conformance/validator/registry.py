"""Where the validator gets its definitions: StructureDefinitions by URL (with snapshots generated for
differential-only profiles), compiled once and kept, plus resources added at run time (test fixtures,
supporting profiles)."""

from __future__ import annotations

import threading
from typing import Any

from conformance.packages import PackageSet
from conformance.terminology import Terminology
from conformance.validator.model import CORE_PREFIX, CompiledProfile, ProfileError, compile_profile


class ProfileRegistry:
    def __init__(self, packages: PackageSet) -> None:
        self.packages = packages
        self.terminology = Terminology(packages)
        self._extra: dict[str, dict[str, Any]] = {}
        self._canonical: dict[str, dict[str, Any]] = {}  # every added resource with a url
        self._compiled: dict[str, CompiledProfile | None] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.RLock()
        self._resource_types: frozenset[str] | None = None

    def add(self, resource: dict[str, Any]) -> None:
        """Make a conformance resource (StructureDefinition, ValueSet, CodeSystem) available."""
        url = resource.get("url")
        if not isinstance(url, str):
            return
        self._canonical[url] = resource
        if isinstance(resource.get("version"), str):
            self._canonical[f"{url}|{resource['version']}"] = resource
        if resource.get("resourceType") == "StructureDefinition":
            with self._lock:
                self._extra[url] = resource
                version = resource.get("version")
                if version:
                    self._extra[f"{url}|{version}"] = resource
                self._compiled.clear()
        elif resource.get("resourceType") in ("ValueSet", "CodeSystem"):
            self.terminology.add(resource)

    def structure_definition(self, canonical: str) -> dict[str, Any] | None:
        if canonical in self._extra:
            return self._extra[canonical]
        url = canonical.split("|", 1)[0]
        if url in self._extra:
            return self._extra[url]
        resource = self.packages.resolve(canonical) or self.packages.resolve(url)
        if resource is not None and resource.get("resourceType") == "StructureDefinition":
            return resource
        return None

    def resource(self, canonical: str) -> dict[str, Any] | None:
        """Any canonical resource (Questionnaire, ValueSet, ...) by `url` or `url|version`."""
        found = self._canonical.get(canonical) or self._canonical.get(canonical.split("|", 1)[0])
        if found is not None:
            return found
        return self.packages.resolve(canonical) or self.packages.resolve(canonical.split("|", 1)[0])

    def profile(self, canonical: str) -> CompiledProfile | None:
        """The compiled profile, or None when it is unknown or unusable (see `problem`)."""
        with self._lock:
            if canonical in self._compiled:
                return self._compiled[canonical]
            self._compiled[canonical] = None
            sd = self.structure_definition(canonical)
            compiled = None
            if sd is not None:
                try:
                    compiled = compile_profile(self._with_snapshot(sd))
                except ProfileError as error:
                    self._errors[canonical] = str(error)
            self._compiled[canonical] = compiled
            return compiled

    def problem(self, canonical: str) -> str | None:
        return self._errors.get(canonical)

    def _with_snapshot(self, sd: dict[str, Any]) -> dict[str, Any]:
        if sd.get("snapshot", {}).get("element"):
            return sd
        from conformance.snapshot import SnapshotError, generate_snapshot

        try:
            return generate_snapshot(sd, self.structure_definition)
        except SnapshotError as error:
            raise ProfileError(str(error)) from None

    def base(self, type_code: str) -> CompiledProfile | None:
        """The core definition of a resource or data type."""
        return self.profile(CORE_PREFIX + type_code)

    def profile_type(self, canonical: str) -> str | None:
        sd = self.structure_definition(canonical)
        return sd.get("type") if sd else None

    @property
    def resource_types(self) -> frozenset[str]:
        if self._resource_types is None:
            self._resource_types = frozenset(self.packages.resource_types())
        return self._resource_types
