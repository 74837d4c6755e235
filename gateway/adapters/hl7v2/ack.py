"""HL7v2 acknowledgements (original mode, v2.5 chapter 2.9): AA accepted, AE error in the message (it can be
corrected and sent again), AR rejected as such (message type, event, version or character set not supported).
A NAK carries the reason in MSA-3 and in an ERR segment (location, HL7 table 0357 error code, user message)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.adapters.hl7v2.escapes import escape
from gateway.adapters.hl7v2.message import Separators

DEFAULT_SEPARATORS = Separators("|", "^", "~", "\\", "&")
SENDING_APPLICATION = "ZCC-GATEWAY"
# FHIR issue type -> HL7 table 0357 (message error condition codes)
ERROR_CODES = {"required": ("101", "Required field missing"), "value": ("102", "Data type error"),
               "structure": ("102", "Data type error"), "code-invalid": ("103", "Table value not found"),
               "not-supported": ("200", "Unsupported message type"), "duplicate": ("205", "Duplicate key identifier")}
APPLICATION_ERROR = ("207", "Application internal error")
REJECTING_CODES = {"not-supported"}


@dataclass(frozen=True)
class AckReason:
    code: str  # FHIR issue type
    text: str
    location: str | None = None  # "PID-3", "OBX[4]-5", "segment 3"


@dataclass(frozen=True)
class Header:
    """The parts of the received MSH an ACK echoes (read leniently: a broken message still gets an ACK)."""

    separators: Separators
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    trigger: str
    control_id: str
    processing_id: str
    version: str


def read_header(raw: bytes) -> Header:
    text = raw.replace(b"\x0b", b"").replace(b"\x1c", b"").decode("latin-1")
    first = text.replace("\r\n", "\r").replace("\n", "\r").split("\r", 1)[0].strip()
    separators = DEFAULT_SEPARATORS
    fields: list[str] = []
    if first.startswith("MSH") and len(first) >= 8:
        candidate = first[4:8]
        if len(set(first[3] + candidate)) == 5:
            separators = Separators(first[3], *candidate)
        fields = ["MSH", first[3], *first[4:].split(first[3])]

    def part(number: int, component: int = 1) -> str:
        value = fields[number] if number < len(fields) else ""
        parts = value.split(separators.repetition)[0].split(separators.component)
        return parts[component - 1] if component <= len(parts) else ""

    return Header(separators, fields[3] if len(fields) > 3 else "", fields[4] if len(fields) > 4 else "",
                  fields[5] if len(fields) > 5 else "", fields[6] if len(fields) > 6 else "",
                  part(9, 2), part(10), part(11) or "P", part(12) or "2.5")


def acknowledgement(raw: bytes, ack_code: str, reason: AckReason | None = None, control_id: str | None = None,
                    now: datetime | None = None) -> bytes:
    """The ACK for the message `raw` (segments separated by CR, no MLLP frame)."""
    header = read_header(raw)
    s = header.separators
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S+0000")
    msh = s.field.join([
        "MSH", s.encoding_characters, SENDING_APPLICATION, header.receiving_facility, header.sending_application,
        header.sending_facility, stamp, "", f"ACK{s.component}{escape(header.trigger, s)}{s.component}ACK",
        control_id or uuid.uuid4().hex[:20], header.processing_id, header.version,
    ])
    msa = ["MSA", ack_code, escape(header.control_id, s)]
    segments = [msh]
    if reason is not None:
        msa.append(escape(reason.text[:500], s))
        error_code, error_text = ERROR_CODES.get(reason.code, APPLICATION_ERROR)
        location = _error_location(reason.location, s)
        severity = "E" if ack_code != "AA" else "W"
        segments += [s.field.join(msa), s.field.join(["ERR", "", location, f"{error_code}{s.component}"
                                                      f"{error_text}{s.component}HL70357", severity, "", "", "",
                                                      escape(reason.text[:500], s)])]
    else:
        segments.append(s.field.join(msa))
    return ("\r".join(segments) + "\r").encode("utf-8")


def _error_location(location: str | None, s: Separators) -> str:
    """ERL: segment id^segment sequence^field position (from 'PID-3', 'OBX[4]-5' or 'MSH')."""
    if not location or location.startswith("segment"):
        return ""
    segment, _, field = location.partition("-")
    sequence = ""
    if "[" in segment:
        segment, _, sequence = segment.partition("[")
        sequence = sequence.rstrip("]")
    return s.component.join(x for x in (segment, sequence or "1", field) if x) if field else segment


def ack_code_for(status: str, outcome: dict[str, Any] | None) -> tuple[str, AckReason | None]:
    """The ACK for an ingestion result: accepted or duplicate -> AA; rejected -> AR when the message kind is
    not supported, AE otherwise; the first error of the OperationOutcome is the reason."""
    issues = (outcome or {}).get("issue", [])
    errors = [i for i in issues if i.get("severity") in ("error", "fatal")]
    if status in ("accepted", "duplicate"):
        first = next((i for i in issues if i.get("code") == "duplicate"), None)
        return "AA", AckReason("duplicate", first["diagnostics"]) if first else None
    if not errors:
        return "AE", AckReason("exception", "the message was not accepted")
    first = errors[0]
    location = (first.get("expression") or [None])[0]
    code = "AR" if first.get("code") in REJECTING_CODES else "AE"
    return code, AckReason(first.get("code", "exception"), first.get("diagnostics", "rejected"), location)


def ack_for_result(raw: bytes, status: str, outcome: dict[str, Any] | None) -> bytes:
    """The ACK/NAK for a message and what the ingestion made of it (record status + OperationOutcome)."""
    code, reason = ack_code_for(status, outcome)
    return acknowledgement(raw, code, reason)
