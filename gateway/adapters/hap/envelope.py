"""The wrappers around the payload: find the interaction element(s) (also inside SOAP/HTTP envelopes and
MCCI_IN200101 batches), and read the transmission and control act wrappers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.parties import organization
from gateway.adapters.hl7v3.identifiers import identifier, identifier_key
from gateway.adapters.hl7v3.times import ts_value
from gateway.adapters.hl7v3.xml import V3, Element, child, local_name, path, text_of

INTERACTION_NAME = re.compile(r"[A-Z]{4}_(IN|EX)\d{6}[A-Z]{0,2}\d{0,2}")
BATCH = "MCCI_IN200101"
TRANSMISSION_PARTS = ("id", "creationTime", "versionCode", "interactionId", "profileId", "processingCode",
                      "processingModeCode", "acceptAckCode", "acknowledgement", "receiver", "sender",
                      "attentionLine", "respondTo", "batchTotalNumber")


@dataclass
class Envelope:
    interaction: str
    message_id: str | None
    created: str | None
    sender_organization: dict[str, Any] | None
    sender_name: str | None
    payload: Element | None  # ControlActProcess/subject content


def find_interactions(root: Element) -> list[Element]:
    """The HL7v3 interaction elements in the document: the root, one inside an envelope, or a batch's."""
    first = root if _is_interaction(root) else next((e for e in root.iter() if _is_interaction(e)), None)
    if first is None:
        return []
    if local_name(first) == BATCH:
        return [e for e in first if _is_interaction(e)]
    return [first]


def _is_interaction(element: Element) -> bool:
    return (isinstance(element.tag, str) and element.tag.startswith(V3)
            and INTERACTION_NAME.fullmatch(local_name(element)) is not None)


def interaction_id(element: Element) -> str:
    declared = child(element, "interactionId")
    if declared is not None and declared.get("extension"):
        return declared.get("extension", "")
    return local_name(element)


def read_envelope(ctx: MappingContext, element: Element) -> Envelope:
    ctx.visit(element)
    for name in TRANSMISSION_PARTS:
        for part in element.findall(V3 + name):
            ctx.take(part)
    control = ctx.visit(child(element, "ControlActProcess"))
    ctx.take(child(control, "code"))
    ctx.take(child(control, "effectiveTime"))
    ctx.take(child(control, "queryAck"))
    ctx.take(child(control, "reasonOf"))
    device = path(control, "authorOrPerformer", "participant", "AssignedDevice")
    sender_org, sender_name = None, None
    if device is not None:
        ctx.visit(path(control, "authorOrPerformer"))
        ctx.visit(path(control, "authorOrPerformer", "participant"))
        ctx.visit(device)
        for device_id in device.findall(V3 + "id"):
            ctx.take(device_id)
        org_element = child(device, "Organization")
        if org_element is not None:
            sender_org = next((identifier(e) for e in org_element.findall(V3 + "id") if identifier(e)), None)
            sender_name = text_of(child(org_element, "name"))
            organization(ctx, org_element)
    if sender_org is None:
        sender_device = path(element, "sender", "device", "id")
        sender_org = identifier(sender_device)
    subject = ctx.visit(child(control, "subject"))
    payload = next((e for e in subject if isinstance(e.tag, str)), None) if subject is not None else None
    return Envelope(
        interaction=interaction_id(element),
        message_id=identifier_key(child(element, "id")),
        created=ts_value(child(element, "creationTime")),
        sender_organization=sender_org,
        sender_name=sender_name,
        payload=payload,
    )
