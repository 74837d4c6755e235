"""HL7 v2.x messages of ambulance patient-record systems and monitors: ADT^A04/A08 (registration of the ride)
and ORU^R01 (vital signs). Every field no mapper took is listed as unmapped."""

from __future__ import annotations

from gateway.adapters.hl7v2 import Hl7v2Error, Hl7v2Message, parse_message
from gateway.adapters.rav.header import MessageHeader, add_patient, add_sender, patient_display, read_header
from gateway.adapters.rav.ride import add_ride, ride_identifier
from gateway.adapters.rav.translation import RavTranslation, TranslationBuilder, TranslationError
from gateway.adapters.rav.vitals import group_observations

ADT_EVENTS = {"A04": False, "A08": False, "A03": True}  # trigger -> the ride has ended
SUPPORTED = ("ADT^A04", "ADT^A08", "ADT^A03", "ORU^R01")


def translate_hl7v2(raw: bytes) -> RavTranslation:
    try:
        message = parse_message(raw)
        return _translate(message)
    except Hl7v2Error as error:
        raise TranslationError(error.code, error.diagnostics, error.location) from None


def _translate(message: Hl7v2Message) -> RavTranslation:
    code, trigger, _ = message.message_type
    interaction = f"{code}^{trigger}"
    if interaction not in SUPPORTED:
        raise TranslationError("not-supported", f"message type {interaction} (MSH-9) is not supported (supported: "
                               f"{', '.join(SUPPORTED)})", "MSH-9")
    if not message.version.startswith("2."):
        raise TranslationError("not-supported", f"HL7 version '{message.version}' (MSH-12) is not supported: "
                               "send HL7 v2.x (2.5)", "MSH-12")
    header = read_header(message)
    builder = TranslationBuilder()
    sender_key = add_sender(builder, header)
    patient_key = add_patient(builder, message, header)
    patient = builder.reference(patient_key, patient_display(builder))
    if code == "ADT":
        evn = message.first("EVN")
        if evn is not None:
            evn.take(1), evn.take(2)
        add_ride(builder, message, header, patient, sender_key, ADT_EVENTS[trigger])
    else:
        _results(builder, message, header, patient, sender_key)
    for location, value in message.unmapped():
        builder.leave_unmapped(location, value)
    return builder.translation(interaction, header.message_id, header.created, header.sender, header.sender_name,
                               [patient_key])


def _results(builder: TranslationBuilder, message: Hl7v2Message, header: MessageHeader, patient: dict,
             sender_key: str | None) -> None:
    pv1 = message.first("PV1")
    if pv1 is not None:
        pv1.take(1)  # set id
    ride = ride_identifier(pv1)
    context: dict = {"subject": patient, "effective": header.created}
    if ride:
        context["encounter"] = {"type": "Encounter", "identifier": ride}
    if sender_key:
        context["performer"] = builder.reference(sender_key)
    groups: list[tuple] = []
    for segment in message.segments:
        if segment.id == "OBR":
            groups.append((segment, []))
        elif segment.id == "OBX":
            if not groups:
                groups.append((None, []))
            groups[-1][1].append(segment)
    if not any(results for _, results in groups):
        raise TranslationError("required", "the ORU^R01 message has no OBX segment: no result to record", "OBX")
    for index, (obr, results) in enumerate(groups, start=1):
        filler = obr.value(3) if obr is not None else ""
        key = f"Observation|{header.message_id}|{filler or index}"
        group_observations(builder, obr, results, context, key)
