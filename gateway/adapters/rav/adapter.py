"""`translate_rav(raw)`: an ambulance message -> RavTranslation. A JSON body is an Acute Zorg FHIR message;
anything else is HL7 v2 (optionally MLLP-framed)."""

from __future__ import annotations

from gateway.adapters.rav.az_message import translate_az_message
from gateway.adapters.rav.hl7v2_messages import translate_hl7v2
from gateway.adapters.rav.translation import RavTranslation, TranslationError


def translate_rav(raw: bytes) -> RavTranslation:
    start = raw.lstrip(b"\xef\xbb\xbf \t\r\n\x0b")[:1]
    if not start:
        raise TranslationError("required", "the message is empty")
    if start == b"{":
        return translate_az_message(raw)
    if start == b"<":
        raise TranslationError("not-supported", "XML is not accepted for source 'rav': send the Acute Zorg message "
                               "as FHIR JSON, or HL7 v2 (ER7)")
    return translate_hl7v2(raw)
