"""`parse_message(raw)`: bytes (optionally MLLP-framed) -> Hl7v2Message, or Hl7v2Error saying what is wrong
and where. The `hl7` library splits segments, fields, repetitions, components and sub-components with the
encoding characters the message declares in MSH-1/MSH-2; around it this module is strict about what the
library lets pass (the MSH, segment ids, encoding characters, character set, escape sequences)."""

from __future__ import annotations

import re

import hl7

from gateway.adapters.hl7v2.errors import Hl7v2Error
from gateway.adapters.hl7v2.escapes import unescape
from gateway.adapters.hl7v2.framing import unframe
from gateway.adapters.hl7v2.message import Field, Hl7v2Message, Segment, Separators

SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{2}")
BATCH_HEADERS = ("FHS", "BHS")
# HL7 table 0211 (MSH-18) -> Python codec; an absent MSH-18 means ASCII by the standard, read as UTF-8 (a superset)
CHARSETS = {"": "utf-8", "ASCII": "ascii", "8859/1": "latin-1", "8859/15": "iso8859-15", "UNICODE UTF-8": "utf-8",
            "UNICODE": "utf-8"}


def parse_message(raw: bytes) -> Hl7v2Message:
    data = unframe(raw)
    if not data.strip():
        raise Hl7v2Error("the message is empty", "required", "MSH")
    charset = _charset(data)
    try:
        text = data.decode(charset)
    except UnicodeDecodeError as error:
        raise Hl7v2Error(f"the message is not valid {charset} (byte {error.start}); declare the character set in "
                         "MSH-18", "structure", "MSH-18") from None
    lines = [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line.strip()]
    separators = _separators(lines[0])
    for position, line in enumerate(lines, start=1):
        _check_segment(line, position, separators)
    try:
        parsed = hl7.parse("\r".join(lines))
    except Exception as error:  # noqa: BLE001 - the library's own errors become a clear rejection
        raise Hl7v2Error(f"the message cannot be parsed: {error}", "structure") from None
    segments = [_segment(parsed_segment, line, position, separators, charset)
                for position, (parsed_segment, line) in enumerate(zip(parsed, lines, strict=True), start=1)]
    message = Hl7v2Message(separators, segments, charset)
    for number, name in ((9, "message type"), (10, "message control id")):
        if not message.header.peek(number):
            raise Hl7v2Error(f"MSH-{number} ({name}) is empty", "required", f"MSH-{number}")
    return message


def _charset(data: bytes) -> str:
    first = data.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")  # ASCII-compatible, never fails
    if len(first) < 4 or not first.startswith("MSH"):
        starts = first[:3]
        if starts in BATCH_HEADERS:
            raise Hl7v2Error(f"HL7v2 batches ({starts}) are not supported: send one message at a time",
                             "not-supported", starts, "AR")
        raise Hl7v2Error(f"an HL7v2 message starts with an MSH segment, this one starts with '{first[:10]}'",
                         "structure", "MSH")
    parts = first.split(first[3])
    declared = parts[17].split("^")[0].split("~")[0].strip() if len(parts) > 17 else ""
    if declared not in CHARSETS:
        raise Hl7v2Error(f"character set '{declared}' (MSH-18) is not supported (supported: "
                         f"{', '.join(c for c in CHARSETS if c)})", "not-supported", "MSH-18", "AR")
    return CHARSETS[declared]


def _separators(header: str) -> Separators:
    field_separator = header[3]
    encoding = header[4:].split(field_separator, 1)[0]
    allowed = not any(c.isalnum() or c.isspace() for c in field_separator + encoding)
    if len(encoding) not in (4, 5) or len(set(field_separator + encoding)) != len(encoding) + 1 or not allowed:
        raise Hl7v2Error(f"MSH-1/MSH-2 do not declare valid encoding characters ('{field_separator}{encoding}'): "
                         "expected a field separator and four distinct non-alphanumeric characters, e.g. |^~\\&",
                         "structure", "MSH-2")
    return Separators(field_separator, encoding[0], encoding[1], encoding[2], encoding[3])


def _check_segment(line: str, position: int, separators: Separators) -> None:
    segment_id = line[:3]
    if not SEGMENT_ID.fullmatch(segment_id) or (len(line) > 3 and line[3] != separators.field):
        raise Hl7v2Error(f"segment {position} ('{line[:20]}') does not start with a segment id followed by "
                         f"'{separators.field}'", "structure", f"segment {position}")
    if position > 1 and segment_id in ("MSH", *BATCH_HEADERS):
        raise Hl7v2Error(f"segment {position} is a second {segment_id}: batches are not supported, send one "
                         "message at a time", "not-supported", f"{segment_id}[{position}]", "AR")


def _segment(parsed: hl7.Segment, line: str, position: int, separators: Separators, charset: str) -> Segment:
    segment_id = line[:3]
    if segment_id == "MSH":
        raw_fields = ["MSH", separators.field, *line[4:].split(separators.field)]
    else:
        raw_fields = line.split(separators.field)
    fields: list[Field] = []
    for number, parsed_field in enumerate(parsed):
        if segment_id == "MSH" and number in (1, 2):  # the separators themselves: never unescaped
            fields.append(((((raw_fields[number]),),),))
            continue
        try:
            fields.append(_field(parsed_field, separators, charset))
        except Hl7v2Error as error:
            location = f"{segment_id}-{number}"
            raise Hl7v2Error(f"{location} (segment {position}): {error.diagnostics}", error.code, location) from None
    return Segment(segment_id, position, fields, raw_fields)


def _field(parsed: hl7.Field, separators: Separators, charset: str) -> Field:
    if all(isinstance(item, str) for item in parsed):
        return (((unescape("".join(parsed), separators, charset),),),)
    return tuple(_repetition(rep, separators, charset) for rep in parsed)


def _repetition(parsed: hl7.Repetition | str, separators: Separators, charset: str) -> tuple[tuple[str, ...], ...]:
    if isinstance(parsed, str):
        return ((unescape(parsed, separators, charset),),)
    return tuple(
        (unescape(item, separators, charset),) if isinstance(item, str)
        else tuple(unescape(sub, separators, charset) for sub in item)
        for item in parsed
    )
