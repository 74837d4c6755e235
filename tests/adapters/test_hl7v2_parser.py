"""The HL7v2 parser: encoding characters from the MSH, repetitions, components, sub-components, escapes,
MLLP framing, and a clear Hl7v2Error (with the segment named) for anything it cannot read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.hl7v2 import Hl7v2Error, parse_message
from gateway.adapters.hl7v2.escapes import escape
from gateway.adapters.hl7v2.framing import frame, unframe
from gateway.adapters.hl7v2.message import Separators

MSH = "MSH|^~\\&|AMBUREG|RAV^00000001^URA|ZCC|GW|20260608110500+0200||ADT^A04^ADT_A01|C1|P|2.5"
DEFAULT = Separators("|", "^", "~", "\\", "&")


def message(*segments: str, header: str = MSH) -> bytes:
    return "\r".join([header, *segments]).encode()


def test_fields_repetitions_components_and_subcomponents() -> None:
    parsed = parse_message(message("PID|1||999999990^^^NLMINBIZA^NNNLD~R1^^^RAV^PI||de Vries&de&Vries^Patrick"))
    pid = parsed.first("PID")
    assert pid is not None
    assert [rep[0][0] for rep in pid.take(3)] == ["999999990", "R1"]
    assert pid.take(3)[0][3] == ("NLMINBIZA",)
    assert pid.take(5)[0][0] == ("de Vries", "de", "Vries")
    assert pid.value(5, 2) == "Patrick"
    assert parsed.message_type == ("ADT", "A04", "ADT_A01") and parsed.control_id == "C1"


def test_other_encoding_characters_are_read_from_the_msh() -> None:
    header = "MSH#:*!$#APP#FAC#ZCC#GW#20260608##ORU:R01#C2#P#2.5"
    parsed = parse_message(message("PID#1##a:b*c$d#x!F!y", header=header))
    pid = parsed.first("PID")
    assert pid is not None and pid.take(3) == ((("a",), ("b",)), (("c", "d"),))
    assert pid.value(4) == "x#y"  # \F\ in this message's escape character
    assert parsed.message_type[:2] == ("ORU", "R01")


def test_escape_sequences() -> None:
    raw = "NTE|1||a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f \\H\\bold\\N\\ caf\\XC3A9\\\\.br\\next \\Zlocal\\"
    parsed = parse_message(message(raw, header=MSH + "||||||UNICODE UTF-8"))
    assert parsed.first("NTE").value(3) == "a|b^c&d~e\\f bold café\nnext \\Zlocal\\"  # type: ignore[union-attr]


def test_latin1_declared_in_msh18() -> None:
    parsed = parse_message(message("PID|1||||M\xfcller", header=MSH + "||||||8859/1").replace(b"\xc3\xbc", b"\xfc"))
    assert parsed.first("PID").value(5) == "Müller"  # type: ignore[union-attr]


def test_line_feeds_and_mllp_frame_are_accepted() -> None:
    raw = frame(message("PID|1||X^^^RAV^PI").replace(b"\r", b"\r\n"))
    assert unframe(raw).startswith(b"MSH")
    assert parse_message(raw).first("PID").value(3) == "X"  # type: ignore[union-attr]


@pytest.mark.parametrize(("raw", "location", "words"), [
    (b"", "MSH", "empty"),
    (b"PID|1", "MSH", "starts with an MSH"),
    (b"MSH|^~", "MSH-2", "encoding characters"),
    (b"MSH|^^\\&|A", "MSH-2", "encoding characters"),
    (MSH.encode() + b"\rpid|1", "segment 2", "segment id"),
    (MSH.encode() + b"\rPID|1\rOBX1|2", "segment 3", "segment id"),
    (MSH.encode() + b"\rPID|1||a\\F", "PID-3", "unterminated escape"),
    (MSH.encode() + b"\rPID|1||a\\Q\\b", "PID-3", "unknown escape"),
    (MSH.encode() + b"\r" + MSH.encode(), "MSH[2]", "batches"),
    (b"FHS|^~\\&|A", "FHS", "batches"),
    (MSH.encode() + b"||||||EBCDIC", "MSH-18", "character set"),
    (MSH.encode() + b"\rPID|1||caf\xe9", "MSH-18", "not valid utf-8"),
    (b"MSH|^~\\&|A|B|C|D|2026||||P|2.5", "MSH-9", "message type"),
])
def test_bad_input_is_rejected_with_location(raw: bytes, location: str, words: str) -> None:
    with pytest.raises(Hl7v2Error) as caught:
        parse_message(raw)
    assert caught.value.location == location
    assert words in caught.value.diagnostics


def test_unsupported_kinds_deserve_ar_and_errors_ae() -> None:
    with pytest.raises(Hl7v2Error) as batch:
        parse_message(b"BHS|^~\\&|A")
    with pytest.raises(Hl7v2Error) as broken:
        parse_message(MSH.encode() + b"\r1PID")
    assert (batch.value.ack_code, broken.value.ack_code) == ("AR", "AE")


text_values = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\n") | st.sampled_from(
    "|^~\\&\n"), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.lists(text_values, min_size=1, max_size=3), min_size=1, max_size=3), min_size=1,
                max_size=4))
def test_random_field_contents_with_escapes_survive(field: list[list[list[str]]]) -> None:
    """Any text, separators and line breaks included, escaped into a field, parses back to the same leaves."""
    s = DEFAULT
    encoded = s.repetition.join(s.component.join(s.subcomponent.join(escape(x, s) for x in comp) for comp in rep)
                                for rep in field)
    parsed = parse_message(message(f"NTE|1||{encoded}", header=MSH + "||||||UNICODE UTF-8"))
    nte = parsed.first("NTE")
    assert nte is not None
    # the parser leaves out repetitions that are entirely empty (HL7: an empty repetition carries nothing)
    expected = [[list(comp) for comp in rep] for rep in field if any(any(comp) for comp in rep)]
    assert [[list(comp) for comp in rep] for rep in nte.take(3)] == expected


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_raise_only_hl7v2_error(raw: bytes) -> None:
    try:
        parse_message(raw)
    except Hl7v2Error as error:
        assert error.diagnostics


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="MSHPIDOBX|^~\\&\r\n0129AZ.-+ é", max_size=200))
def test_message_like_text_raises_only_hl7v2_error(text: str) -> None:
    try:
        parse_message(("MSH|^~\\&|" + text).encode())
    except Hl7v2Error as error:
        assert error.location is not None or error.diagnostics
