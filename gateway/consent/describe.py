"""A resource dict -> DisclosedResource: the facts the PDP needs (patients, labels, categories), never the data.

Security labels are the codes in `meta.security` of the resource and of its contained resources (a label on a
contained resource taints the container). The data holder is read from `meta.tag` codings with the
organisation-type naming system (category) and the URA naming system (organisation); adapters set them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.consent.compartment import PatientCompartment
from gateway.consent.consents import ORGANIZATION_TYPE, URA
from gateway.consent.model import DisclosedResource
from gateway.consent.policy import Parameters
from gateway.memo import Memo


class StoredVersion(Protocol):
    """What identifies a stored version (gateway.store.repository.StoredResource has it)."""

    type: str
    id: str
    version: int
    last_updated: str


MAX_REMEMBERED_VERSIONS = 32768  # ~380 bytes each (measured): ~12 MB at most


@dataclass(frozen=True)
class Describer:
    compartment: PatientCompartment
    params: Parameters
    # shape_and_reference of stored versions, by (type, id, version, last updated): see shape_and_reference_of
    _versions: Memo[tuple[str, str, int, str], tuple[tuple[object, ...], str]] = field(
        default_factory=lambda: Memo(MAX_REMEMBERED_VERSIONS), repr=False, compare=False
    )

    def patient_data_type(self, resource_type: str | None) -> bool:
        """Whether resources of this type can carry patient data (decides query-shape checks)."""
        if resource_type is None:
            return True
        return (
            resource_type in self.compartment.resource_types or resource_type in self.params.always_patient_data_types
        )

    def describe(self, resource: Mapping[str, Any]) -> DisclosedResource:
        resource_id = resource.get("id")
        return DisclosedResource.from_shape(self.shape(resource), resource_id if isinstance(resource_id, str) else None)

    def shape(self, resource: Mapping[str, Any]) -> tuple[object, ...]:
        """`describe(resource).shape` without building the description: what a decision depends on (all but the
        id)."""
        return self.shape_and_reference(resource)[0]

    def remembered(self, version: StoredVersion) -> tuple[tuple[object, ...], str] | None:
        """`shape_and_reference_of` a stored version if it is remembered (without its content)."""
        return self._versions.get(_version_key(version))

    def shape_and_reference_of(
        self, resource: Mapping[str, Any], version: StoredVersion
    ) -> tuple[tuple[object, ...], str]:
        """`shape_and_reference(resource)` for a resource that is `version`'s stored content, unchanged (the caller
        vouches for that): remembered per version, which never changes. A page of search results is mostly
        versions seen before; describing each again cost more than its decision."""
        key = _version_key(version)
        found = self._versions.get(key)
        return found if found is not None else self._versions.keep(key, self.shape_and_reference(resource))

    def shape_and_reference(self, resource: Mapping[str, Any]) -> tuple[tuple[object, ...], str]:
        """`describe(resource).shape` and `.reference` without building the description. Straight-line code for
        the common resource (no contained resources, a few meta codings): the consent stage computes this for
        every resource of every response."""
        resource_type = resource.get("resourceType", "")
        if type(resource_type) is not str:
            resource_type = str(resource_type)
        patients = self.compartment.patients_of(resource)
        contained = resource.get("contained")
        if contained:
            found = set(patients)
            for item in contained:
                if isinstance(item, dict):
                    found |= self.compartment.patients_of(item)
                    if item.get("resourceType") == "Patient":
                        found.add(str(item.get("id", "#contained")))
            patients = frozenset(found)
        meta = resource.get("meta")
        holder_category = holder_ura = None
        labels = _NO_LABELS
        if isinstance(meta, dict):
            if meta.get("security"):
                labels = frozenset(_meta_codes(resource, "security"))
            if meta.get("tag"):
                holder_category, holder_ura = _holder(resource)
        if contained:
            labels = security_labels(resource)
        if resource_type == "Consent" or resource_type == "Composition":
            category = self.data_category(resource)
        else:
            category = self.params.data_categories.get(resource_type, "other")
        status = resource.get("status")
        if not isinstance(status, str):
            status = _status(resource)
        resource_id = resource.get("id")
        shape = (
            resource_type,
            patients,
            bool(patients) or resource_type in self.params.always_patient_data_types,
            labels,
            category,
            holder_category,
            holder_ura,
            status,
        )
        reference = f"{resource_type}/{resource_id}" if isinstance(resource_id, str) and resource_id else resource_type
        return shape, reference

    def data_category(self, resource: Mapping[str, Any]) -> str:
        resource_type = str(resource.get("resourceType", ""))
        if resource_type == "Consent":
            for coding in (resource.get("scope") or {}).get("coding") or ():
                category = self.params.consent_scope_categories.get(str(coding.get("code")))
                if category:
                    return category
        if resource_type == "Composition":
            for coding in (resource.get("type") or {}).get("coding") or ():
                category = self.params.document_categories.get(f"{coding.get('system')}|{coding.get('code')}")
                if category:
                    return category
        return self.params.data_categories.get(resource_type, "other")


_NO_LABELS: frozenset[str] = frozenset()


def _version_key(version: StoredVersion) -> tuple[str, str, int, str]:
    return version.type, version.id, version.version, version.last_updated


def security_labels(resource: Mapping[str, Any]) -> frozenset[str]:
    labels = set(_meta_codes(resource, "security"))
    for contained in resource.get("contained") or ():
        if isinstance(contained, dict):
            labels |= _meta_codes(contained, "security")
    return frozenset(labels)


def _meta_codes(resource: Mapping[str, Any], element: str) -> set[str]:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    return {c["code"] for c in meta.get(element) or () if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _holder(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    category = ura = None
    for coding in meta.get("tag") or ():
        if not isinstance(coding, dict):
            continue
        if coding.get("system") == ORGANIZATION_TYPE:
            category = coding.get("code")
        elif coding.get("system") == URA:
            ura = coding.get("code")
    return category, ura


def _status(resource: Mapping[str, Any]) -> str | None:
    status = resource.get("status")
    if isinstance(status, str):
        return status
    for element in ("clinicalStatus", "verificationStatus"):
        for coding in (resource.get(element) or {}).get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"]
    return None
