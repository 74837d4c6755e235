"""Content negotiation and (de)serialisation: FHIR JSON (default) and FHIR XML, chosen by `_format`,
`Accept` and `Content-Type`. Parsing is strict and never partial: a body either becomes a resource dict or
a FhirError."""

from __future__ import annotations

from typing import Any

from conformance import fhirjson
from gateway.fhir.errors import FhirError

JSON = "application/fhir+json"
XML = "application/fhir+xml"

_JSON_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "json", "text/json"}
_XML_TYPES = {"application/fhir+xml", "application/xml", "application/xml+fhir", "text/xml", "xml"}
_ANY = {"*/*", "application/*", "text/html", "text/*", "application/xhtml+xml"}


def _mime(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def format_of(mime: str) -> str | None:
    """Map a mime type or `_format` value to JSON/XML (None when unsupported)."""
    mime = _mime(mime)
    if mime in _JSON_TYPES:
        return JSON
    if mime in _XML_TYPES:
        return XML
    return None


def by_preference(header: str) -> list[tuple[float, str]]:
    """The values of an `Accept`-style header (RFC 9110 §12.4.2) with their quality, most preferred first (the
    header's order among equal qualities); parameters other than `q` are dropped, an unreadable `q` counts as 0."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        value, _, parameters = part.partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, number = parameter.strip().partition("=")
            if name == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        weighted.append((-quality, position, value))
    return [(-negative, value) for negative, _, value in sorted(weighted)]


def negotiate(accept: str | None, format_param: str | None) -> str:
    """Pick the response format: `_format` wins over `Accept`; JSON when nothing decides."""
    if format_param:
        chosen = format_of(format_param)
        if chosen is None:
            raise FhirError(406, "not-supported", f"_format '{format_param}' is not supported (use json or xml)")
        return chosen
    if not accept:
        return JSON
    for _, value in by_preference(accept):
        mime = _mime(value)
        chosen = format_of(mime)
        if chosen:
            return chosen
        if mime in _ANY:
            return JSON
    raise FhirError(
        406, "not-supported", f"none of the accepted types ({accept}) can be produced; use FHIR JSON or XML"
    )


def parse_body(body: bytes, content_type: str | None, model: Any = None) -> dict[str, Any]:
    """Parse a request body into a resource dict; 415 for unknown content types, 400 for bad content."""
    kind = format_of(content_type or "")
    if kind is None:
        raise FhirError(
            415,
            "not-supported",
            f"Content-Type '{content_type or '(none)'}' is not supported; "
            "send application/fhir+json or application/fhir+xml",
        )
    if not body.strip():
        raise FhirError(400, "structure", "the request body is empty")
    if kind == JSON:
        try:
            parsed = fhirjson.loads(body)
        except fhirjson.FhirJsonError as error:
            raise FhirError(400, "structure", str(error)) from None
    else:
        parsed = parse_xml(body, model)
    if not isinstance(parsed, dict):
        raise FhirError(400, "structure", "the body must be a JSON object with a resourceType")
    if not isinstance(parsed.get("resourceType"), str):
        raise FhirError(400, "structure", "the body has no resourceType", ["resourceType"])
    return parsed


def parse_xml(body: bytes, model: Any = None) -> dict[str, Any]:
    from conformance.fhirxml import FhirXmlError, xml_to_json

    try:
        return xml_to_json(body, model)
    except FhirXmlError as error:
        raise FhirError(400, "structure", f"invalid FHIR XML: {error}") from None


def serialize(resource: dict[str, Any], fmt: str, pretty: bool = False, model: Any = None) -> bytes:
    if fmt == XML:
        from conformance.fhirxml import FhirXmlError, json_to_xml

        try:
            return json_to_xml(resource, model, pretty=pretty)
        except FhirXmlError as error:  # e.g. a control character, which XML 1.0 cannot carry at all
            raise FhirError(406, "not-supported", f"the answer cannot be written as FHIR XML ({error}); "
                            "ask for application/fhir+json") from None
    return fhirjson.dumps(resource, pretty=pretty)


def json_bytes_to(body: bytes, fmt: str, pretty: bool = False, model: Any = None) -> bytes:
    """Serve stored JSON bytes: as-is for JSON (no re-serialisation), converted for XML or pretty output."""
    if fmt == JSON and not pretty:
        return body
    return serialize(fhirjson.loads_trusted(body), fmt, pretty, model)
