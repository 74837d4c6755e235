"""The one exception the HL7v2 parser raises: what is wrong, and where (segment, field)."""

from __future__ import annotations


class Hl7v2Error(ValueError):
    """A message that cannot be read. `code` is a FHIR issue type (`structure`, `not-supported`, `required`,
    `value`); `ack_code` the HL7 acknowledgment it deserves (AE: error in the message, AR: rejected as such,
    e.g. an unsupported message type or version); `location` names the segment (and field) at fault."""

    def __init__(self, diagnostics: str, code: str = "structure", location: str | None = None,
                 ack_code: str = "AE") -> None:
        super().__init__(diagnostics)
        self.diagnostics, self.code, self.location, self.ack_code = diagnostics, code, location, ack_code
