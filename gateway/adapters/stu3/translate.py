"""`translate_stu3(raw, source, submitter)`: a STU3 message (one resource, a Bundle, a Task + Composition set) -> the
translation the ingestion pipeline writes: R4 nl-core resources with their source identities, the patients,
what could not be mapped, and issues (references that point nowhere)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from conformance.typemodel import default_model
from gateway.adapters.hap.model import MappedResource, TranslationError, TranslationIssue
from gateway.adapters.stu3.convert import SplitOff, Stu3ToR4, UnknownResourceType
from gateway.adapters.stu3.legal_status import legal_status_condition
from gateway.adapters.stu3.model import Stu3Translation, Unmapped
from gateway.adapters.stu3.parse import Stu3Entry, Stu3Message, parse_stu3
from gateway.adapters.stu3.references import rewrite_references, split_reference
from gateway.ingest.identity import stable_id

SENDER_SYSTEMS = ("http://fhir.nl/fhir/NamingSystem/ura", "http://fhir.nl/fhir/NamingSystem/agb-z")


@dataclass(frozen=True)
class _Source:
    """One entry of the message with its source identity (`key`) and where it sits (`where`)."""

    entry: Stu3Entry
    key: str
    where: str

    @property
    def resource_type(self) -> str:
        return str(self.entry.resource["resourceType"])


def source_key(namespace: str, resource_type: str, logical_id: str) -> str:
    """The source identity of a STU3 resource: its logical id in `namespace` (see `translate_stu3`)."""
    return f"{resource_type}|stu3|{namespace}|{logical_id}"


def translate_stu3(raw: bytes, source: str, submitter: str) -> Stu3Translation:
    """`submitter`: the URA of the organisation the submitting client acts for. A logical id is only unique at
    its sender, so resources are identified by (source kind, submitter, logical id)."""
    message = parse_stu3(raw)
    namespace = f"{source}|{submitter}"
    sources = _sources(message, namespace)
    converter = Stu3ToR4(default_model())
    translation = _envelope(message, sources)
    aliases = _aliases(sources)
    for item in sources:
        try:
            conversion = converter.convert(item.entry.resource)
        except UnknownResourceType as error:
            raise TranslationError("not-supported", str(error), item.where) from None
        resource = conversion.resource
        unresolved: list[tuple[str, str]] = []
        rewrite_references(resource, lambda ref, _: _resolve(ref, aliases, namespace, message.bundle is None),
                           item.where, unresolved)
        for where, reference in unresolved:
            translation.issues.append(TranslationIssue(
                "error", "not-found", f"reference {reference} points at no resource of this Bundle", where))
        translation.unmapped += [_located(u, item) for u in conversion.unmapped]
        mapped = MappedResource(item.key, resource)
        translation.resources.append(mapped)
        if item.resource_type == "Patient":
            _identify_by_full_url(resource, item.entry.full_url)
            translation.patient_keys.append(item.key)
        for part in conversion.split:
            _split_off(translation, part, mapped, item)
    external = sorted({ref for ref in _external_references(sources, aliases)})
    if external:
        translation.issues.append(TranslationIssue(
            "information", "informational", "references outside this message, stored by their source identity: "
            + ", ".join(external[:20]) + (" ..." if len(external) > 20 else "")))
    return translation


def _split_off(translation: Stu3Translation, part: SplitOff, owner: MappedResource, item: _Source) -> None:
    """The resource zib2020 makes of a zib2017 extension (`split` rule), keyed by its owner's source identity
    (the same patient's legal status always lands on the same Condition), or the extension listed as unmapped."""
    lost: list[Unmapped] = []
    if part.kind == "legal-status":
        built = legal_status_condition(part.extension, owner.full_url, part.path,
                                       lambda where, value, why: lost.append(Unmapped.of(where, value, why)))
    else:  # a rule in extensions.json without a builder here
        built = None
        lost.append(Unmapped.of(part.path, part.extension, f"no converter for {part.kind}"))
    translation.unmapped += [_located(u, item) for u in lost]
    if built is not None:
        translation.resources.append(MappedResource(f"{built['resourceType']}|{part.kind}|{owner.key}", built))


def _identify_by_full_url(patient: dict[str, Any], full_url: str | None) -> None:
    """A patient without any identifier value (e.g. a BSN that is only a data-absent-reason) is identified by
    its absolute URL at the sender, its own source identifier; without one the pipeline rejects it."""
    if any(i.get("value") for i in patient.get("identifier", [])):
        return
    if full_url and full_url.startswith(("http://", "https://")):
        patient.setdefault("identifier", []).append({"system": "urn:ietf:rfc:3986", "value": full_url})


def _sources(message: Stu3Message, namespace: str) -> list[_Source]:
    sources = []
    for index, entry in enumerate(message.entries):
        resource = entry.resource
        logical = resource.get("id") or entry.full_url
        if not logical:  # no identity at all: the content is the identity (the same content lands once)
            logical = "sha256:" + hashlib.sha256(json.dumps(resource, sort_keys=True).encode()).hexdigest()
        where = f"Bundle.entry[{index}].resource" if message.bundle is not None else resource["resourceType"]
        sources.append(_Source(entry, source_key(namespace, resource["resourceType"], logical), where))
    return sources


def _aliases(sources: list[_Source]) -> dict[str, MappedResource]:
    """Every way a resource of this message can be referred to -> the resource (as placeholder holder)."""
    aliases: dict[str, MappedResource] = {}
    for item in sources:
        placeholder = MappedResource(item.key, {})
        if item.entry.full_url:
            aliases[item.entry.full_url] = placeholder
            split = split_reference(item.entry.full_url)
            if split:
                aliases[f"{split[0]}/{split[1]}"] = placeholder
        if item.entry.resource.get("id"):
            aliases[f"{item.resource_type}/{item.entry.resource['id']}"] = placeholder
    return aliases


def _resolve(reference: str, aliases: dict[str, MappedResource], namespace: str, single: bool) -> str | None:
    if reference in aliases:
        return aliases[reference].full_url
    split = split_reference(reference)
    if split and f"{split[0]}/{split[1]}" in aliases:
        return aliases[f"{split[0]}/{split[1]}"].full_url
    if split and single:  # a single resource refers to others by their logical id at the same source
        return f"{split[0]}/{stable_id(source_key(namespace, *split))}"
    return None


def _external_references(sources: list[_Source], aliases: dict[str, MappedResource]) -> list[str]:
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "reference" and isinstance(value, str) and not value.startswith("#"):
                    split = split_reference(value)
                    if split and value not in aliases and f"{split[0]}/{split[1]}" not in aliases:
                        found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    for item in sources:
        walk(item.entry.resource)
    return found


def _located(unmapped: Any, item: _Source) -> Any:
    """Unmapped paths of a Bundle entry start at the Bundle (`Bundle.entry[3].resource.code...`)."""
    if not item.where.startswith("Bundle"):
        return unmapped
    rest = unmapped.path.removeprefix(item.resource_type)
    return type(unmapped)(item.where + rest, unmapped.value)


def _envelope(message: Stu3Message, sources: list[_Source]) -> Stu3Translation:
    bundle = message.bundle
    message_id = None
    if bundle is not None and isinstance(bundle.get("identifier"), dict) and bundle["identifier"].get("value"):
        identifier = bundle["identifier"]
        message_id = f"{identifier.get('system', '')}|{identifier['value']}"
    interaction = f"Bundle.{bundle.get('type', '')}" if bundle is not None else sources[0].resource_type
    created = (bundle.get("meta") or {}).get("lastUpdated") if bundle is not None else None
    sender, name = _sender(sources)
    return Stu3Translation(interaction, message_id, created, sender, name)


def _sender(sources: list[_Source]) -> tuple[dict[str, Any] | None, str | None]:
    """The sending organisation: the Task requester's organisation or the Composition custodian, when the
    message carries that Organization with a URA or AGB."""
    by_reference = {f"Organization/{s.entry.resource.get('id')}": s.entry.resource for s in sources
                    if s.resource_type == "Organization"}
    by_reference.update({s.entry.full_url: s.entry.resource for s in sources
                         if s.resource_type == "Organization" and s.entry.full_url})
    for item in sources:
        resource = item.entry.resource
        pointer = ((resource.get("requester") or {}).get("onBehalfOf") if item.resource_type == "Task"
                   else resource.get("custodian") if item.resource_type == "Composition" else None)
        organization = by_reference.get((pointer or {}).get("reference", ""))
        if organization is None:
            continue
        for identifier in organization.get("identifier", []):
            if identifier.get("system") in SENDER_SYSTEMS and identifier.get("value"):
                return {"system": identifier["system"], "value": identifier["value"]}, organization.get("name")
    return None, None
