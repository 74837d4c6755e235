"""Content negotiation and parsing rules (gateway/fhir/formats.py), without a server."""

from __future__ import annotations

import pytest

from gateway.fhir import formats
from gateway.fhir.errors import FhirError


@pytest.mark.parametrize(
    ("accept", "format_param", "expected"),
    [
        (None, None, formats.JSON),
        ("application/fhir+xml", None, formats.XML),
        ("application/xml;q=0.5, application/fhir+json", None, formats.JSON),
        ("text/html,application/xhtml+xml", None, formats.JSON),
        ("application/fhir+json", "xml", formats.XML),
        (None, "application/fhir+xml", formats.XML),
        ("*/*", None, formats.JSON),
    ],
)
def test_negotiation(accept, format_param, expected):
    assert formats.negotiate(accept, format_param) == expected


def test_unproducible_accept_and_bad_format_are_406():
    with pytest.raises(FhirError) as refused:
        formats.negotiate("application/pdf", None)
    assert refused.value.status == 406
    with pytest.raises(FhirError):
        formats.negotiate(None, "yaml")


def test_parse_body_requires_a_fhir_content_type():
    with pytest.raises(FhirError) as refused:
        formats.parse_body(b'{"resourceType": "Patient"}', "text/plain")
    assert refused.value.status == 415
    assert formats.parse_body(b'{"resourceType": "Patient"}', "application/json; charset=utf-8") == {
        "resourceType": "Patient"
    }


def test_stored_json_is_served_untouched():
    stored = b'{"resourceType":"Observation","valueQuantity":{"value":1.50}}'
    assert formats.json_bytes_to(stored, formats.JSON) is stored
    assert b'<value value="1.50"/>' in formats.json_bytes_to(stored, formats.XML)
