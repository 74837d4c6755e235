"""The ambulance ride: PV1/PV2 -> Encounter (nl-core-Encounter). The ride number (PV1-19, visit number) is the
Encounter identifier, the ambulance urgency (PV2-25, A0/A1/A2/B) its priority, next to the v3-ActPriority
equivalent."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hl7v2 import Hl7v2Message
from gateway.adapters.hl7v2.codes import codeable_concept
from gateway.adapters.hl7v2.datatypes import date_time
from gateway.adapters.hl7v2.message import Segment, component
from gateway.adapters.rav import profiles
from gateway.adapters.rav.header import MessageHeader
from gateway.adapters.rav.translation import TranslationBuilder
from gateway.adapters.rav.urgency import AMBULANCE_URGENCY, urgency

RIDE_NUMBER_SYSTEM = "urn:oid:2.16.840.1.113883.2.4.3.32.5"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# PV1-2 patient class (HL7 table 0004) -> v3 ActCode encounter class; an ambulance ride is an emergency contact
CLASSES = {"E": ("EMER", "emergency"), "O": ("AMB", "ambulatory"), "I": ("IMP", "inpatient encounter"),
           "P": ("PRENC", "pre-admission")}


def ride_identifier(pv1: Segment | None) -> dict[str, Any] | None:
    """The ride number of PV1-19 (an OID assigning authority overrides the national ride-number system)."""
    if pv1 is None:
        return None
    visit = pv1.take(19)
    if not visit or not component(visit[0], 1).strip():
        return None
    oid = component(visit[0], 4, 2)
    system = f"urn:oid:{oid}" if oid and component(visit[0], 4, 3).upper() in ("ISO", "") else RIDE_NUMBER_SYSTEM
    return {"system": system, "value": component(visit[0], 1).strip()}


def add_ride(builder: TranslationBuilder, message: Hl7v2Message, header: MessageHeader, patient: dict[str, Any],
             sender_key: str | None, finished_event: bool) -> str:
    pv1, pv2 = message.first("PV1"), message.first("PV2")
    if pv1 is None:
        builder.warn("the message has no PV1 segment: the ride is recorded without ride number", "incomplete",
                     "PV1")
    ride = ride_identifier(pv1)
    key = f"Encounter|{ride['system']}|{ride['value']}" if ride else f"Encounter|{header.message_id}"
    if pv1 is not None and ride is None:
        builder.warn("PV1-19 (visit number) carries no ride number", "incomplete", f"PV1[{pv1.position}]-19")
    resource: dict[str, Any] = {"resourceType": "Encounter", "meta": {"profile": [profiles.ENCOUNTER]}}
    if ride:
        resource["identifier"] = [ride]
    class_code = pv1.value(2) if pv1 is not None else ""
    if pv1 is not None:
        pv1.take(1)
    act_code, display = CLASSES.get(class_code or "E", CLASSES["E"])
    if class_code and class_code not in CLASSES:
        builder.warn(f"PV1-2 patient class '{class_code}' is not known; the ride is recorded as an emergency",
                     "code-invalid", f"PV1[{pv1.position}]-2" if pv1 else None)
    resource["class"] = {"system": ACT_CODE, "code": act_code, "display": display}
    start = date_time(pv1.value(44), "PV1-44") if pv1 is not None else None
    end = date_time(pv1.value(45), "PV1-45") if pv1 is not None else None
    resource["status"] = "finished" if end or finished_event else "in-progress"
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    resource["subject"] = patient
    if pv2 is not None:
        _priority_and_reason(builder, pv2, resource)
    if sender_key:
        resource["serviceProvider"] = builder.reference(sender_key)
    builder.add(key, resource)
    return key


def _priority_and_reason(builder: TranslationBuilder, pv2: Segment, resource: dict[str, Any]) -> None:
    code = pv2.value(25)
    if code:
        found = urgency(AMBULANCE_URGENCY, code)
        if found:
            resource["priority"] = found.encounter_priority()
        else:
            builder.warn(f"PV2-25 urgency '{code}' is not an ambulance urgency (A0, A1, A2, B); left out",
                         "code-invalid", f"PV2[{pv2.position}]-25")
            builder.leave_unmapped(f"PV2[{pv2.position}]-25", code)
    reasons = [concept for concept, _ in (codeable_concept(rep) for rep in pv2.take(3)) if concept]
    if reasons:
        resource["reasonCode"] = reasons
