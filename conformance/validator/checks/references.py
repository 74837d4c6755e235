"""References: the syntax of `Reference.reference`, resolution within contained resources and Bundles, and the
target resource type against the element's target profiles."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from conformance.validator.model import CORE_PREFIX, TypeRef

Report = Callable[[str, str, str], None]
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")
_ABSOLUTE = re.compile(r"(?:https?://[^\s]+/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")


def reference_type(reference: str) -> str | None:
    """The resource type a literal reference names (None for fragments, URNs and unparseable URLs)."""
    if reference.startswith(("#", "urn:")):
        return None
    match = _ABSOLUTE.fullmatch(reference)
    return match.group(1) if match else None


def allowed_target_types(type_ref: TypeRef, profile_type: Callable[[str], str | None]) -> set[str] | None:
    """The resource types a Reference may point to (None: any)."""
    if not type_ref.target_profiles:
        return None
    types: set[str] = set()
    for url in type_ref.target_profiles:
        if url.startswith(CORE_PREFIX):
            name = url[len(CORE_PREFIX):]
        else:
            name = profile_type(url) or ""
        if name in ("Resource", "DomainResource", ""):
            return None
        types.add(name)
    return types


def check_reference(value: dict[str, Any], type_ref: TypeRef | None, resource_types: frozenset[str],
                    resolve: Callable[[str], Any], profile_type: Callable[[str], str | None],
                    report: Report, must_resolve_local: bool) -> dict[str, Any] | None:
    """Check one Reference; returns the resolved target when it could be found."""
    reference = value.get("reference")
    if not isinstance(reference, str):
        return None
    target = resolve(reference)
    if reference.startswith("#"):
        if target is None:
            report("error", "structure", f"Unable to resolve resource with reference '{reference}'")
            return None
    elif not reference.startswith("urn:"):
        named = reference_type(reference)
        if named is not None and named not in resource_types:
            report("error", "structure", f"Invalid Resource target type '{named}' in reference '{reference}'")
            return target
        if target is None and must_resolve_local and named is not None and "://" not in reference:
            report("error", "structure",
                   f"Bundled or contained reference not found within the bundle/resource {reference}")
    elif target is None and must_resolve_local:
        report("error", "structure", f"Can't find '{reference}' in the bundle")
    found_type = target.get("resourceType") if isinstance(target, dict) else reference_type(reference)
    stated_type = value.get("type")
    if isinstance(stated_type, str) and found_type and stated_type != found_type:
        report("error", "structure",
               f"The type '{stated_type}' stated in the reference does not match the type of the target '{found_type}'")
    if type_ref is not None and found_type:
        allowed = allowed_target_types(type_ref, profile_type)
        if allowed is not None and found_type not in allowed:
            how = "of the resource" if target is not None else "implied by the reference URL " + reference
            report("error", "structure",
                   f"The type '{found_type}' {how} is not a valid Target for this element "
                   f"(must be one of [{', '.join(sorted(allowed))}])")
    return target if isinstance(target, dict) else None
