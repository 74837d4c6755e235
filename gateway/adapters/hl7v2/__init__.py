"""HL7 v2.x: parsing (strict, on top of the `hl7` library), datatypes -> FHIR, MLLP framing, ACK/NAK and an
MLLP listener. Shared by every adapter that receives HL7v2 (today: RAV)."""

from gateway.adapters.hl7v2.errors import Hl7v2Error
from gateway.adapters.hl7v2.message import Hl7v2Message, Segment
from gateway.adapters.hl7v2.parser import parse_message

__all__ = ["Hl7v2Error", "Hl7v2Message", "Segment", "parse_message"]
