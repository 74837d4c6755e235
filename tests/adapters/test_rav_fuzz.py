"""Hypothesis against the RAV adapter: whatever a sender puts in a field, the adapter either translates the
message or rejects it with TranslationError (never another exception), and text survives escaping into the
resources unchanged."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.adapters.hap.model import TranslationError
from gateway.adapters.hl7v2.ack import DEFAULT_SEPARATORS
from gateway.adapters.hl7v2.escapes import escape
from gateway.adapters.rav import translate_rav
from tests.reference import REFERENCE_DIR, requires_reference

MESSAGES = Path(__file__).parent / "rav_messages"
AZ_REFERRAL = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
FIXTURES = [path.read_bytes().decode("latin-1") for path in sorted(MESSAGES.glob("*.hl7"))]
FIELD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from("|^~\\&\r\n\x0b\x1c0123456789."),
                     max_size=30)


def replace_field(message: str, segment: int, field: int, value: str) -> str:
    lines = message.splitlines()
    index = 1 + segment % (len(lines) - 1)  # never the MSH: its own faults are the parser's tests
    parts = lines[index].split("|")
    position = 1 + field % 30
    parts += [""] * (position + 1 - len(parts))
    parts[position] = value
    lines[index] = "|".join(parts)
    return "\r".join(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIXTURES), st.integers(0, 20), st.integers(0, 40), FIELD_TEXT)
def test_any_field_content_translates_or_is_rejected(message: str, segment: int, field: int, value: str) -> None:
    raw = replace_field(message, segment, field, value).encode("utf-8")
    try:
        translation = translate_rav(raw)
    except TranslationError as error:
        assert error.code and error.diagnostics
    else:
        assert translation.patient_keys == ["Patient|0"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FIXTURES), st.binary(max_size=40), st.integers(0, 2000))
def test_bytes_spliced_into_a_message_translate_or_are_rejected(message: str, junk: bytes, at: int) -> None:
    raw = message.encode("latin-1")
    at = at % len(raw)
    try:
        translate_rav(raw[:at] + junk + raw[at:])
    except TranslationError as error:
        assert error.diagnostics


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                        st.sampled_from(["resourceType", "type", "entry", "resource", "fullUrl", "reference",
                                         "eventCoding", "system", "code", "sender", "focus", "identifier", "id"]),
                        inner, max_size=4), max_leaves=20))
def test_any_json_is_translated_or_rejected(document: object) -> None:
    if isinstance(document, dict):
        document = {"resourceType": "Bundle", "type": "message", **document}
    try:
        translate_rav(json.dumps(document).encode())
    except TranslationError as error:
        assert error.diagnostics


NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")) | st.sampled_from("|^~\\&"),
                    min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(NAME_TEXT, NAME_TEXT, NAME_TEXT)
def test_names_and_ride_text_with_separators_survive_escaping(given_name: str, family: str, reason: str) -> None:
    s = DEFAULT_SEPARATORS
    message = FIXTURES[0].replace("\n", "\r").replace("8859/1", "UNICODE UTF-8")
    name = f"{escape(family, s)}^{escape(given_name, s)}"
    message = message.replace("de Vries-Jong&de&Vries&&Jong^Patrick^P. J.", name)
    message = message.replace("R10^Pijn in de buik\\T\\bekken^ICPC", f"R10^{escape(reason, s)}^ICPC")
    translation = translate_rav(message.encode("utf-8"))
    patient = next(m.resource for m in translation.resources if m.resource_type == "Patient")
    ride = next(m.resource for m in translation.resources if m.resource_type == "Encounter")
    assert patient["name"][0]["family"] == family
    assert patient["name"][0]["given"][0] == given_name.split()[0] if " " in given_name else given_name
    assert ride["reasonCode"][0]["coding"][0]["display"] == reason


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@requires_reference
@settings(max_examples=300, deadline=None)
@given(st.data())
def test_az_referral_with_any_node_replaced_is_translated_or_rejected(data: st.DataObject) -> None:
    bundle = json.loads(AZ_REFERRAL.read_bytes())
    path = data.draw(st.sampled_from(_paths(bundle)[1:]))
    replacement = data.draw(st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                            | st.sampled_from(["Patient/x", "urn:uuid:x", "#x", "", "Organization/hg-Patient"])
                            | st.just({}) | st.just([]) | st.just({"reference": "Practitioner/nope"}))
    parent = bundle
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = replacement
    try:
        translate_rav(json.dumps(bundle).encode())
    except TranslationError as error:
        assert error.diagnostics
