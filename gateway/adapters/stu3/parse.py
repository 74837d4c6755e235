"""Read a STU3 message (JSON or XML; one resource or a Bundle) with the fhir.resources STU3 models, which
check the structure against STU3. Content that is R4 rather than STU3 is recognised and refused clearly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fhir.resources.STU3 import get_fhir_model_class
from lxml import etree
from pydantic import ValidationError

from conformance.typemodel import default_model
from gateway.adapters.hap.model import TranslationError

FHIR_NS = "http://hl7.org/fhir"
R4_PROFILE_PREFIX = "http://nictiz.nl/fhir/StructureDefinition/nl-core-"
MAX_REPORTED = 5


@dataclass(frozen=True)
class Stu3Entry:
    """A resource of the message and the URL other resources may use for it (Bundle fullUrl)."""

    resource: dict[str, Any]
    full_url: str | None


@dataclass(frozen=True)
class Stu3Message:
    entries: list[Stu3Entry]
    bundle: dict[str, Any] | None  # the Bundle (without entries) when the message is one


def parse_stu3(raw: bytes) -> Stu3Message:
    text = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        resource = _parse_xml(raw)
    elif text.startswith(b"{"):
        resource = _parse_json(raw)
    else:
        raise TranslationError("structure", "the message is neither FHIR JSON nor FHIR XML")
    if resource.get("resourceType") != "Bundle":
        return Stu3Message([Stu3Entry(resource, None)], None)
    entries = []
    for index, entry in enumerate(resource.get("entry", [])):
        if "resource" not in entry:
            raise TranslationError("required", f"Bundle.entry[{index}] has no resource", f"Bundle.entry[{index}]")
        entries.append(Stu3Entry(entry["resource"], entry.get("fullUrl")))
    if not entries:
        raise TranslationError("required", "the Bundle has no entries")
    return Stu3Message(entries, {k: v for k, v in resource.items() if k != "entry"})


def _resource_type(name: str) -> type:
    try:
        return get_fhir_model_class(name)
    except (KeyError, ValueError, AttributeError, ImportError):
        pass
    if default_model().resource(name) is not None:  # R4 has it, STU3 does not
        raise TranslationError("not-supported", f"'{name}' is an R4 resource type, not STU3: this endpoint takes "
                               "FHIR STU3 (send R4 resources to the FHIR API)")
    raise TranslationError("not-supported", f"'{name}' is not a FHIR STU3 resource type")


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        resource = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise TranslationError("structure", f"malformed JSON: {error}") from None
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        raise TranslationError("structure", "the JSON is not a FHIR resource (no resourceType)")
    _refuse_r4(resource)
    model = _resource_type(resource["resourceType"])
    try:
        model.model_validate(resource)
    except ValidationError as error:
        raise TranslationError("structure", _describe(resource["resourceType"], error)) from None
    return resource  # the original JSON: lossless (decimals, element order)


def _parse_xml(raw: bytes) -> dict[str, Any]:
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise TranslationError("structure", "DOCTYPE and entity declarations are not allowed")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as error:
        raise TranslationError("structure", f"malformed XML: {error}") from None
    qname = etree.QName(root)
    if qname.namespace != FHIR_NS:
        raise TranslationError("structure", f"the root element must be a FHIR resource in namespace {FHIR_NS}")
    model = _resource_type(qname.localname)
    try:
        parsed = model.model_validate_xml(raw)
    except ValidationError as error:
        raise TranslationError("structure", _describe(qname.localname, error)) from None
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise TranslationError("structure", f"not valid FHIR STU3 XML: {error}") from None
    resource = _without_comments(json.loads(parsed.model_dump_json(exclude_none=True)))
    _refuse_r4(resource)
    return resource


def _without_comments(node: Any) -> Any:
    """XML comments (`fhir_comments` in the models) are not content."""
    if isinstance(node, dict):
        return {k: _without_comments(v) for k, v in node.items() if k != "fhir_comments"}
    if isinstance(node, list):
        return [_without_comments(item) for item in node]
    return node


def _refuse_r4(resource: dict[str, Any]) -> None:
    """R4 nl-core content sent to a STU3 endpoint (the profile claims say which version it is)."""
    resources = [resource] + [e.get("resource", {}) for e in resource.get("entry", []) if isinstance(e, dict)]
    for item in resources:
        for profile in (item.get("meta") or {}).get("profile", []) if isinstance(item, dict) else []:
            if isinstance(profile, str) and profile.startswith(R4_PROFILE_PREFIX):
                raise TranslationError("not-supported", f"{item.get('resourceType')} claims {profile}, an R4 "
                                       "(zib2020) profile: this endpoint takes FHIR STU3 (zib2017)")


def _describe(resource_type: str, error: ValidationError) -> str:
    problems = []
    for detail in error.errors()[:MAX_REPORTED]:
        where = ".".join(str(part) for part in (resource_type, *detail["loc"]) if part != "__root__")
        value = detail.get("input")
        shown = f" (value {value!r})" if isinstance(value, str | int | float) else ""
        problems.append(f"{where}: {detail['msg']}{shown}")
    more = len(error.errors()) - MAX_REPORTED
    return "not valid FHIR STU3: " + "; ".join(problems) + (f"; and {more} more" if more > 0 else "")

