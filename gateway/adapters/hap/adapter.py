"""`translate_hap(raw)`: bytes of an HL7v3 message -> HapTranslation (resources, unmapped parts, issues)."""

from __future__ import annotations

from gateway.adapters.hap.context import MappingContext
from gateway.adapters.hap.envelope import BATCH, find_interactions, read_envelope
from gateway.adapters.hap.ketenzorg import STATEMENTS, map_organizer
from gateway.adapters.hap.model import HapTranslation, TranslationError
from gateway.adapters.hap.summary import map_summary
from gateway.adapters.hl7v3.xml import Hl7v3ParseError, local_name, parse_xml

SUMMARY = "QUPC_IN990002NL"
SUPPORTED_INTERACTIONS = frozenset({SUMMARY, *STATEMENTS})


def translate_hap(raw: bytes) -> HapTranslation:
    """Raises TranslationError when the message cannot be translated at all; otherwise every element of the
    message is either mapped or listed in `unmapped`."""
    try:
        root = parse_xml(raw)
    except Hl7v3ParseError as error:
        raise TranslationError("structure", str(error)) from None
    interactions = find_interactions(root)
    if not interactions:
        raise TranslationError("not-supported", f"no HL7v3 interaction found (root element {local_name(root)})")
    ctx = MappingContext()
    translation: HapTranslation | None = None
    for index, element in enumerate(interactions):
        envelope = read_envelope(ctx, element)
        if envelope.interaction not in SUPPORTED_INTERACTIONS:
            supported = ", ".join(sorted(SUPPORTED_INTERACTIONS))
            raise TranslationError("not-supported",
                                   f"interaction {envelope.interaction} is not supported (supported: {supported})")
        if envelope.payload is None:
            raise TranslationError("required", f"{envelope.interaction} has no ControlActProcess/subject payload")
        patient_key = f"Patient|{index}"
        if envelope.interaction == SUMMARY:
            map_summary(ctx, envelope.payload, patient_key)
        else:
            map_organizer(ctx, envelope.payload, envelope.interaction, patient_key)
        if translation is None:
            outer = local_name(root) if local_name(root) == BATCH else envelope.interaction
            translation = HapTranslation(outer, envelope.message_id, envelope.created,
                                         envelope.sender_organization, envelope.sender_name)
        translation.patient_keys.append(patient_key)
        translation.unmapped.extend(ctx.consumption.unmapped(element))
    assert translation is not None
    translation.resources = list(ctx.resources.values())
    translation.issues = ctx.issues
    return translation
