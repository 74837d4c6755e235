"""The Acute Zorg FHIR R4 message (Nictiz AZ-IG): the ambulance -> huisartsenpost referral Bundle (MessageHeader
event 145 + ServiceRequest, Composition, DocumentReference, Patient, Practitioner(Role), Organizations).

The resources are stored as sent, re-keyed to the gateway's stable ids (Organizations by URA, the patient by
BSN through the pipeline, the others by sender + logical id) with the Bundle's references rewritten. The
MessageHeader is the envelope: its id is the message id, its sender the sending organisation, its focus the
referral; the referral is routable by ServiceRequest.performer (the destination organisation, by URA).
Profiles claimed that the gateway does not hold (the AZ-IG `hg-*` ones) are kept beside the nl-core profile of
the resource type; extensions it cannot check are listed as unmapped and left out."""

from __future__ import annotations

import copy
import json
from typing import Any

from conformance.structure import check_structure
from gateway.adapters.hap.model import placeholder_url
from gateway.adapters.hl7v2.datatypes import LOCAL_SYSTEM_BASE
from gateway.adapters.rav import profiles
from gateway.adapters.rav.translation import RavTranslation, TranslationBuilder, TranslationError

MESSAGE_EVENTS = "http://nictiz.nl/fhir/CodeSystem/hg-message-event"
SUPPORTED_EVENTS = {"145": "Verwijzing ambulance naar huisartsenpost"}
NL_CORE_BY_TYPE = {"Patient": profiles.PATIENT, "Organization": profiles.ORGANIZATION,
                   "Practitioner": profiles.PRACTITIONER, "PractitionerRole": profiles.PRACTITIONER_ROLE}
IDENTITY_SYSTEMS = {"Organization": ("http://fhir.nl/fhir/NamingSystem/ura", "http://fhir.nl/fhir/NamingSystem/agb-z"),
                    "Practitioner": ("http://fhir.nl/fhir/NamingSystem/uzi-nr-pers",
                                     "http://fhir.nl/fhir/NamingSystem/big", "http://fhir.nl/fhir/NamingSystem/agb-z")}
UNCHECKED_EXTENSION_PREFIX = "http://nictiz.nl/fhir/StructureDefinition/hg-"


def translate_az_message(raw: bytes) -> RavTranslation:
    bundle = _bundle(raw)
    entries = [e for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if not entries or entries[0]["resource"].get("resourceType") != "MessageHeader":
        raise TranslationError("structure", "a FHIR message Bundle starts with its MessageHeader", "Bundle.entry[0]")
    header = entries[0]["resource"]
    event = header.get("eventCoding") or {}
    if event.get("system") != MESSAGE_EVENTS or event.get("code") not in SUPPORTED_EVENTS:
        raise TranslationError("not-supported", f"message event {event.get('system')}#{event.get('code')} is not "
                               f"supported (supported: {MESSAGE_EVENTS}#145)", "Bundle.entry[0].resource.eventCoding")
    by_url = _index(entries)
    sender_resource = _resolve(header.get("sender"), by_url)
    sender = _identity(sender_resource)
    if sender is None:
        raise TranslationError("required", "MessageHeader.sender must be an Organization of the message with a URA "
                               "or AGB identifier", "Bundle.entry[0].resource.sender")
    namespace = f"{LOCAL_SYSTEM_BASE}{sender['value']}"
    message_id = _message_id(bundle, header, namespace)
    builder = TranslationBuilder()
    keys = {id(resource): _key(resource, namespace) for resource in by_url.values() if resource is not header}
    patient_keys = []
    for index, entry in enumerate(entries[1:], start=1):
        resource = copy.deepcopy(entry["resource"])
        _claim_profiles(resource)
        _drop_unchecked_extensions(builder, resource, f"Bundle.entry[{index}].resource")
        _rewrite_references(resource, by_url, keys, builder, f"Bundle.entry[{index}].resource")
        resource.pop("id", None)
        builder.add(keys[id(entry["resource"])], resource)
        if resource["resourceType"] == "Patient":
            patient_keys.append(keys[id(entry["resource"])])
    if len(patient_keys) != 1:
        raise TranslationError("required", f"the referral must carry exactly one Patient (found {len(patient_keys)})",
                               "Bundle.entry")
    focus = [_resolve(f, by_url) for f in header.get("focus", [])]
    if not any(r is not None and r.get("resourceType") == "ServiceRequest" for r in focus):
        raise TranslationError("required", "MessageHeader.focus must point at the referral (a ServiceRequest in the "
                               "message)", "Bundle.entry[0].resource.focus")
    _list_header_parts(builder, header)
    return builder.translation(f"{MESSAGE_EVENTS}#{event['code']}", message_id, bundle.get("timestamp"), sender,
                               sender_resource.get("name") if sender_resource else None, patient_keys)


def _bundle(raw: bytes) -> dict[str, Any]:
    try:
        bundle = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise TranslationError("structure", f"the body is not valid JSON: {error}") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
        kind = bundle.get("resourceType") if isinstance(bundle, dict) else type(bundle).__name__
        raise TranslationError("structure", f"expected a FHIR message Bundle (Bundle.type 'message'), got {kind}")
    entries = bundle.get("entry")
    first = entries[0].get("resource") if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
    if isinstance(first, dict) and "event" in first and "eventCoding" not in first:  # STU3 has MessageHeader.event
        raise TranslationError("not-supported", "this is a FHIR STU3 message (MessageHeader.event): source 'rav' "
                               "takes FHIR R4 (4.0.1) Acute Zorg messages", "Bundle.entry[0].resource.event")
    # well-formed R4 JSON first (types, arrays, known elements), so the mapping below can rely on the shapes
    errors = [issue for issue in check_structure(bundle) if issue.severity == "error"]
    if errors:
        raise TranslationError(errors[0].code, f"the message is not well-formed FHIR R4: {errors[0].message} "
                               f"(at {errors[0].expression}; {len(errors)} error(s))", errors[0].expression)
    return bundle


def _entry_url(entry: dict[str, Any]) -> str:
    resource = entry["resource"]
    return entry.get("fullUrl") or f"{resource.get('resourceType')}/{resource.get('id')}"


def _index(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every way a resource of the message may be referenced: its fullUrl and `Type/id`."""
    found: dict[str, dict[str, Any]] = {}
    for entry in entries:
        resource = entry["resource"]
        if not resource.get("resourceType"):
            raise TranslationError("structure", "a Bundle entry carries a resource without resourceType")
        found[_entry_url(entry)] = resource
        if resource.get("id"):
            found.setdefault(f"{resource['resourceType']}/{resource['id']}", resource)
    return found


def _resolve(reference: dict[str, Any] | None, by_url: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
        return None
    return by_url.get(reference["reference"])


def _identity(resource: dict[str, Any] | None) -> dict[str, Any] | None:
    if resource is None:
        return None
    for system in IDENTITY_SYSTEMS.get(resource.get("resourceType", ""), ()):
        for identifier in resource.get("identifier", []):
            if identifier.get("system") == system and identifier.get("value"):
                return {"system": system, "value": identifier["value"]}
    return None


def _key(resource: dict[str, Any], namespace: str) -> str:
    """Organizations and Practitioners by their national identifier; anything else by sender + logical id."""
    kind = resource["resourceType"]
    identity = _identity(resource)
    if identity:
        return f"{kind}|{identity['system']}|{identity['value']}"
    if kind == "Patient":
        return "Patient|0"
    return f"{kind}|{namespace}|{resource.get('id') or json.dumps(resource, sort_keys=True)}"


def _message_id(bundle: dict[str, Any], header: dict[str, Any], namespace: str) -> str:
    identifier = bundle.get("identifier") or {}
    if identifier.get("system") and identifier.get("value"):
        return f"{identifier['system']}|{identifier['value']}"
    if header.get("id"):
        return f"{namespace}/message|{header['id']}"
    raise TranslationError("required", "the message has no Bundle.identifier and no MessageHeader.id",
                           "Bundle.identifier")


def _claim_profiles(resource: dict[str, Any]) -> None:
    nl_core = NL_CORE_BY_TYPE.get(resource["resourceType"])
    if nl_core:
        claimed = resource.setdefault("meta", {}).setdefault("profile", [])
        if nl_core not in claimed:
            claimed.append(nl_core)
    if resource["resourceType"] == "Patient":  # nl-core-NameInformation-01: `text` holds the rendered name
        for name in resource.get("name") or []:
            given = [g for g in name.get("given") or [] if isinstance(g, str)]
            family = name.get("family") if isinstance(name.get("family"), str) else ""
            if "text" not in name and (family or given):
                name["text"] = " ".join([*given, family]).strip()


def _drop_unchecked_extensions(builder: TranslationBuilder, resource: dict[str, Any], where: str) -> None:
    kept = []
    for index, extension in enumerate(resource.get("extension", [])):
        if str(extension.get("url", "")).startswith(UNCHECKED_EXTENSION_PREFIX):
            builder.leave_unmapped(f"{where}.extension[{index}]", json.dumps(extension, ensure_ascii=False)[:200])
        else:
            kept.append(extension)
    if kept:
        resource["extension"] = kept
    else:
        resource.pop("extension", None)


def _rewrite_references(node: Any, by_url: dict[str, dict[str, Any]], keys: dict[int, str],
                        builder: TranslationBuilder, where: str) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "reference" and isinstance(value, str):
                target = by_url.get(value)
                if target is None:
                    if not value.startswith("#"):
                        raise TranslationError("not-found", f"{where}: reference '{value}' points at nothing in "
                                               "the message", where)
                    continue
                if id(target) not in keys:
                    raise TranslationError("not-supported", f"{where}: a resource refers to the MessageHeader", where)
                node[name] = placeholder_url(keys[id(target)])
            else:
                _rewrite_references(value, by_url, keys, builder, f"{where}.{name}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _rewrite_references(item, by_url, keys, builder, f"{where}[{index}]")


def _list_header_parts(builder: TranslationBuilder, header: dict[str, Any]) -> None:
    """The MessageHeader is the envelope, not stored: what it says beyond sender, event and focus is listed."""
    for name in ("source", "destination", "receiver", "author", "enterer", "responsible", "reason", "definition"):
        if name in header:
            builder.leave_unmapped(f"Bundle.entry[0].resource.{name}", json.dumps(header[name],
                                                                                  ensure_ascii=False)[:200])
