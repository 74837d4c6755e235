"""Hardened reading of HL7v3 XML: no DTDs, no entities, no network, no huge trees, a DOCTYPE is refused."""

from __future__ import annotations

import threading

from lxml import etree

V3_NS = "urn:hl7-org:v3"
V3 = "{urn:hl7-org:v3}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

Element = etree._Element

_parsers = threading.local()


class Hl7v3ParseError(ValueError):
    """The bytes are not acceptable XML (malformed, a DOCTYPE/entity declaration, too deep or too large)."""


def _parser() -> etree.XMLParser:
    parser = getattr(_parsers, "parser", None)
    if parser is None:  # lxml parsers must not be shared between threads
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False,
            remove_comments=True, remove_pis=True, collect_ids=False,
        )
        _parsers.parser = parser
    return parser


def parse_xml(raw: bytes) -> Element:
    """The root element of `raw`; raises Hl7v3ParseError for anything that is not plain, safe XML."""
    head = raw[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in raw:
        raise Hl7v3ParseError("DOCTYPE and entity declarations are not allowed in HL7v3 messages")
    try:
        tree = etree.ElementTree(etree.fromstring(raw, _parser()))
    except etree.XMLSyntaxError as error:
        raise Hl7v3ParseError(f"the message is not well-formed XML: {error}") from None
    except ValueError as error:  # e.g. a str with an encoding declaration
        raise Hl7v3ParseError(f"the message cannot be read as XML: {error}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise Hl7v3ParseError("DOCTYPE and entity declarations are not allowed in HL7v3 messages")
    return tree.getroot()


def local_name(element: Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element: Element | None, name: str) -> Element | None:
    """The first v3 child called `name` (None-safe, so lookups chain). A plain loop over the children: the
    hottest call of the mappers, and about twice as fast as lxml's tag-filtered iterchildren or find."""
    if element is None:
        return None
    tag = V3 + name
    for item in element:
        if item.tag == tag:
            return item
    return None


def children(element: Element | None, name: str) -> list[Element]:
    if element is None:
        return []
    tag = V3 + name
    return [item for item in element if item.tag == tag]


def path(element: Element | None, *names: str) -> Element | None:
    for name in names:
        element = child(element, name)
    return element


def text_of(element: Element | None) -> str | None:
    if element is None:
        return None
    value = "".join(element.itertext()).strip()
    return value or None


def xsi_type(element: Element) -> str | None:
    value = element.get(XSI_TYPE)
    return value.split(":")[-1] if value else None
