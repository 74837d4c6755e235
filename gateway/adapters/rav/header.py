"""What every RAV HL7v2 message shares: the MSH (message id, sender, time) and the PID (the patient)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.adapters.hl7v2 import Hl7v2Message
from gateway.adapters.hl7v2.datatypes import (
    LOCAL_SYSTEM_BASE,
    address,
    contact_point,
    cx_identifier,
    date,
    date_time,
    gender,
    hd_identifier,
    human_name,
)
from gateway.adapters.hl7v2.message import component
from gateway.adapters.rav import profiles
from gateway.adapters.rav.translation import TranslationBuilder, TranslationError

PATIENT_KEY = "Patient|0"
SENDER_KEY_PREFIX = "Organization|"


@dataclass(frozen=True)
class MessageHeader:
    message_id: str
    created: str | None
    sender: dict[str, Any] | None  # Identifier (URA/AGB) of MSH-4
    sender_name: str | None
    facility: str  # the namespace local identifiers of this sender live in


def read_header(message: Hl7v2Message) -> MessageHeader:
    msh = message.header
    for structural in (1, 2, 5, 6, 11, 12, 15, 16, 17, 18):  # separators, receiver, processing, ack modes, country
        msh.take(structural)
    application = msh.value(3)
    facility_field = msh.take(4)
    facility_rep = facility_field[0] if facility_field else ()
    sender = hd_identifier(facility_rep) if facility_rep else None
    sender_name = component(facility_rep, 1) if facility_rep else None
    facility = (sender or {}).get("value") or sender_name or application
    if not facility:
        raise TranslationError("required", "MSH-4 (sending facility) and MSH-3 (sending application) are empty: "
                               "the sender cannot be identified", "MSH-4")
    facility = facility.replace("/", "_").replace(" ", "_")
    created = date_time(msh.value(7), "MSH-7")
    control_id = message.control_id
    return MessageHeader(f"{LOCAL_SYSTEM_BASE}{facility}/message-control-id|{control_id}", created, sender,
                         sender_name or None, facility)


def add_sender(builder: TranslationBuilder, header: MessageHeader) -> str | None:
    """The sending ambulance organisation (when MSH-4 identifies it by URA/AGB); returns its key."""
    if header.sender is None:
        return None
    key = f"{SENDER_KEY_PREFIX}{header.sender['system']}|{header.sender['value']}"
    resource: dict[str, Any] = {
        "resourceType": "Organization", "meta": {"profile": [profiles.ORGANIZATION]},
        "identifier": [header.sender],
        "type": [{"coding": [{"system": profiles.ORGANIZATION_TYPE, "code": profiles.AMBULANCE_ORGANIZATION_TYPE}]}],
    }
    if header.sender_name:
        resource["name"] = header.sender_name
    builder.add(key, resource)
    return key


def add_patient(builder: TranslationBuilder, message: Hl7v2Message, header: MessageHeader) -> str:
    pid = message.first("PID")
    if pid is None:
        raise TranslationError("required", "the message has no PID segment: it identifies no patient", "PID")
    pid.take(1)  # set id
    resource: dict[str, Any] = {"resourceType": "Patient", "meta": {"profile": [profiles.PATIENT]}}
    identifiers = [i for i in (cx_identifier(rep, header.facility) for rep in pid.take(3)) if i]
    if identifiers:
        resource["identifier"] = identifiers
    names = [n for n in (human_name(rep) for rep in pid.take(5)) if n]
    if names:
        resource["name"] = names
    born = date(pid.value(7), "PID-7")
    if born:
        resource["birthDate"] = born
    sex = pid.value(8)
    if sex:
        if gender(sex) is None:
            builder.warn(f"PID-8 sex '{sex}' is not a code of HL7 table 0001; gender left out", "code-invalid",
                         f"PID[{pid.position}]-8")
        else:
            resource["gender"] = gender(sex)
    addresses = [a for a in (address(rep) for rep in pid.take(11)) if a]
    if addresses:
        resource["address"] = addresses
    telecom = [t for t in (contact_point(rep) for field in (13, 14) for rep in pid.take(field)) if t]
    if telecom:
        resource["telecom"] = telecom
    died = date_time(pid.value(29), "PID-29")
    if died:
        resource["deceasedDateTime"] = died
    elif pid.value(30) in ("Y", "N"):
        resource["deceasedBoolean"] = pid.value(30) == "Y"
    builder.add(PATIENT_KEY, resource)
    return PATIENT_KEY


def patient_display(builder: TranslationBuilder) -> str | None:
    names = builder.resources[PATIENT_KEY].resource.get("name") or [{}]
    return names[0].get("text")
