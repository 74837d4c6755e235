"""Hypothesis fuzzing of every parser a client's bytes reach: FHIR JSON, FHIR XML, HL7v3 (and every
ingestion adapter), and the REST endpoint as a whole. Invariants: a parser returns a value or raises its own
error type (a ValueError), never anything else; it is fast; the endpoint never answers 5xx."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import fhirjson
from conformance.fhirxml import FhirXmlError, xml_to_json
from gateway.adapters.hl7v3.xml import Hl7v3ParseError, parse_xml
from gateway.ingest.adapters import ADAPTERS
from tests.ingest.messages import episode_message
from tests.reliability.conftest import FHIR_JSON, FHIR_XML

PATIENT_JSON = json.dumps({"resourceType": "Patient", "id": "p1", "active": True, "name": [
    {"family": "Jansen", "given": ["Piet"]}], "birthDate": "1970-01-01", "extension": [
    {"url": "http://example.org/x", "valueDecimal": 1.50}]}).encode()
PATIENT_XML = (b'<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><active value="true"/>'
               b'<name><family value="Jansen"/><given value="Piet"/></name><birthDate value="1970-01-01"/>'
               b'<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">hi</div></text>'
               b"</Patient>")
HL7V3 = episode_message(message_id="fuzz")
TIME_LIMIT = 2.0
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """`seed` with a few random edits: near-valid input reaches the deep parts of a parser."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        chunk = draw(st.binary(min_size=1, max_size=12) | st.sampled_from(
            [b"<", b">", b"&", b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\u0000", b"\xff", b"&#0;", b"<!--",
             b"<![CDATA[", b"1e400", b"null", b"-0", b"\xc3", b"\xed\xa0\x80"]))
        if action == "insert":
            data[position:position] = chunk
        elif action == "delete":
            del data[position:position + len(chunk)]
        elif action == "replace":
            data[position:position + len(chunk)] = chunk
        else:
            end = draw(st.integers(position, len(data)))
            data[position:position] = data[position:end]
    return bytes(data)


def bounded(function, raw: bytes, allowed: tuple[type[BaseException], ...]):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    try:
        result = function(raw)
    except allowed:
        result = None
    assert time.monotonic() - started < TIME_LIMIT
    return result


@FUZZ
@given(st.one_of(mutated(PATIENT_JSON), st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_fhir_json_parser(raw: bytes) -> None:
    value = bounded(fhirjson.loads, raw, (fhirjson.FhirJsonError,))
    if value is not None:
        assert fhirjson.loads(fhirjson.dumps(value)) == value  # whatever is accepted can be written back


@FUZZ
@given(st.one_of(mutated(PATIENT_XML), st.binary(max_size=300)))
def test_fhir_xml_parser(raw: bytes) -> None:
    value = bounded(xml_to_json, raw, (FhirXmlError,))
    assert value is None or isinstance(value, dict)


@FUZZ
@given(st.one_of(mutated(HL7V3), st.binary(max_size=300)))
def test_hl7v3_reader(raw: bytes) -> None:
    bounded(parse_xml, raw, (Hl7v3ParseError,))


@pytest.mark.parametrize("source", sorted(ADAPTERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.one_of(mutated(HL7V3), mutated(PATIENT_JSON), mutated(PATIENT_XML), st.binary(max_size=200)))
def test_ingestion_adapters_refuse_with_a_value_error(source: str, raw: bytes) -> None:
    """The ingestion service turns a ValueError into a rejected record with its reason; anything else would
    be an internal error."""
    bounded(lambda message: ADAPTERS[source](message, "90000001"), raw, (ValueError,))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(mutated(PATIENT_JSON), mutated(PATIENT_XML)), as_xml=st.booleans())
def test_rest_endpoint_never_answers_5xx(client, raw: bytes, as_xml: bool) -> None:
    response = client.post("/fhir/Patient", content=raw, headers=FHIR_XML if as_xml else FHIR_JSON)
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
