"""Lossless FHIR R4 XML <-> JSON (https://hl7.org/fhir/R4/xml.html, json.html), driven by the type model.

The canonical internal form is JSON (dicts, see `fhirjson`); XML is only a wire format. Both directions
walk the compiled `TypeModel`, so element names, XML order, attributes (`id`, `url`), choice types, primitive
JSON types and nested resources all come from the StructureDefinitions.

Fidelity notes, because a round trip must be byte-identical in canonical JSON:
- decimals keep their lexical form: XML `value="1.50"` becomes `FhirDecimal("1.50")`, which `fhirjson.dumps`
  writes back as `1.50`;
- the narrative `div` is written into XML verbatim, and read back as the exact source text of the element
  (falling back to a re-serialisation only when the source text cannot stand on its own, e.g. when it relies
  on a namespace prefix declared further up).

XML parsing is hardened: no DTDs, no entities, no network, no huge trees; a DOCTYPE is rejected outright.
"""

from __future__ import annotations

import re
import threading
from decimal import Decimal
from typing import Any

from lxml import etree

from conformance.fhirjson import FhirDecimal
from conformance.typemodel import ElementInfo, ModelUnavailableError, TypeInfo, TypeModel, default_model

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_FHIR = "{" + FHIR_NS + "}"
_XHTML_DIV = "{" + XHTML_NS + "}div"
INT32 = (-(2**31), 2**31 - 1)


class FhirXmlError(ValueError):
    """The XML (or the JSON being written as XML) is not acceptable FHIR; the message names the path."""



def _model(model: TypeModel | None) -> TypeModel:
    if model is not None:
        return model
    try:
        return default_model()
    except ModelUnavailableError as error:
        raise FhirXmlError(str(error)) from None


# -- JSON -> XML ------------------------------------------------------------------------------------------------

_ATTR_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]')
_ATTR_ESCAPE = re.compile(r'[&<>"\t\n\r]')
_ATTR_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _attribute_text(text: str, path: str) -> str:
    """Escape for a double-quoted attribute; tabs and newlines as character references so they survive
    attribute-value normalisation."""
    if _ATTR_SPECIAL.search(text) is None:
        return text
    if _NOT_XML_CHAR.search(text):
        raise FhirXmlError(f"{path}: contains a character that XML cannot represent")
    return _ATTR_ESCAPE.sub(lambda match: _ATTR_ENTITIES[match.group()], text)


def json_to_xml(resource: dict[str, Any], model: TypeModel | None = None, pretty: bool = False) -> bytes:
    """Write a resource (canonical JSON dict) as FHIR XML, elements in definition order."""
    if not isinstance(resource, dict):
        raise FhirXmlError("a resource must be a JSON object")
    writer = _XmlWriter(_model(model), pretty)
    writer.parts.append('<?xml version="1.0" encoding="UTF-8"?>')
    writer.resource(resource, 0, "", root=True)
    if pretty:
        writer.parts.append("\n")
    return "".join(writer.parts).encode("utf-8")


class _XmlWriter:
    """Appends XML text to `parts`; paths are built only for complex elements and for error messages."""

    def __init__(self, model: TypeModel, pretty: bool) -> None:
        self.types = model.types
        self.model = model
        self.pretty = pretty
        self.parts: list[str] = []

    def _newline(self, depth: int) -> None:
        self.parts.append("\n" + "  " * depth)

    def resource(self, obj: dict[str, Any], depth: int, path: str, root: bool = False) -> None:
        resource_type = obj.get("resourceType")
        info = self.model.resource(resource_type) if isinstance(resource_type, str) else None
        if info is None:
            raise FhirXmlError(f"{path or 'resource'}: unknown or missing resourceType {resource_type!r}")
        path = path or resource_type
        if self.pretty:
            self._newline(depth)
        self.parts.append(f'<{resource_type} xmlns="{FHIR_NS}">' if root else f"<{resource_type}>")
        if self.children(info, obj, depth + 1, path, skip="resourceType") and self.pretty:
            self._newline(depth)
        self.parts.append(f"</{resource_type}>")

    def children(self, info: TypeInfo, obj: dict[str, Any], depth: int, path: str, skip: str = "") -> bool:
        """Write the element children of `obj` in definition order; returns whether anything was written."""
        elements = info.elements
        present: list[tuple[int, str, ElementInfo]] = []
        for key in obj:
            if key == skip:
                continue
            element = elements.get(key)
            if element is None:
                if key[:1] == "_":
                    element = elements.get(key[1:])
                    if element is None or element.kind != "primitive" or element.xhtml or element.attribute:
                        raise FhirXmlError(f"{path}: unknown property '{key}'")
                    if key[1:] in obj:
                        continue
                else:
                    raise FhirXmlError(f"{path}: unknown property '{key}'")
            elif element.attribute:
                continue
            present.append((element.order, element.name, element))
        if len(present) > 1:
            present.sort()
        for _, name, element in present:
            value = obj.get(name)
            if element.kind == "primitive":
                extra = obj.get("_" + name)
                if element.many:
                    self.primitives(element, value, extra, depth, path)
                else:
                    if isinstance(value, list) or isinstance(extra, list):
                        raise FhirXmlError(f"{path}.{name}: must be a single value, not an array")
                    self.primitive(element, value, extra, depth, path, -1)
            elif element.many:
                if not isinstance(value, list):
                    raise FhirXmlError(f"{path}.{name}: must be an array")
                if not value:
                    raise FhirXmlError(f"{path}.{name}: empty array")
                for index, item in enumerate(value):
                    self.complex(element, item, depth, f"{path}.{name}[{index}]")
            else:
                if isinstance(value, list):
                    raise FhirXmlError(f"{path}.{name}: must be a single value, not an array")
                self.complex(element, value, depth, f"{path}.{name}")
        return bool(present)

    def complex(self, element: ElementInfo, value: Any, depth: int, path: str) -> None:
        if not isinstance(value, dict):
            raise FhirXmlError(f"{path}: must be a JSON object")
        name = element.name
        parts = self.parts
        if self.pretty:
            self._newline(depth)
        if element.kind == "resource":
            parts.append(f"<{name}>")
            self.resource(value, depth + 1, path)
            if self.pretty:
                self._newline(depth)
            parts.append(f"</{name}>")
            return
        info = self.types[element.type]
        parts.append(f"<{name}{self.attributes(info, value, path)}" if info.attributes else f"<{name}")
        mark = len(parts)
        parts.append(">")
        if self.children(info, value, depth + 1, path):
            if self.pretty:
                self._newline(depth)
            parts.append(f"</{name}>")
        else:
            parts[mark] = "/>"

    def attributes(self, info: TypeInfo, obj: dict[str, Any], path: str) -> str:
        text = ""
        for attribute in info.attributes:
            value = obj.get(attribute.name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise FhirXmlError(f"{path}.{attribute.name}: must be a string")
            text += f' {attribute.name}="{_attribute_text(value, path + "." + attribute.name)}"'
        return text

    def primitives(self, element: ElementInfo, value: Any, extra: Any, depth: int, path: str) -> None:
        """A repeated primitive: `name` and `_name` arrays zipped, nulls where one side is absent."""
        name = element.name
        if value is not None and not isinstance(value, list) or value is None and extra is None:
            raise FhirXmlError(f"{path}.{name}: must be an array")
        if extra is not None and not isinstance(extra, list):
            raise FhirXmlError(f"{path}._{name}: must be an array")
        values = value if value is not None else [None] * len(extra)
        extras = extra if extra is not None else [None] * len(values)
        if len(values) != len(extras):
            raise FhirXmlError(f"{path}.{name}: '{name}' and '_{name}' differ in length")
        if not values:
            raise FhirXmlError(f"{path}.{name}: empty array")
        for index, (item, item_extra) in enumerate(zip(values, extras, strict=True)):
            self.primitive(element, item, item_extra, depth, path, index)

    def primitive(
        self, element: ElementInfo, value: Any, extra: Any, depth: int, parent: str, index: int
    ) -> None:
        name = element.name
        parts = self.parts
        if self.pretty:
            self._newline(depth)
        if element.xhtml:
            if extra is not None:
                raise FhirXmlError(f"{parent}.{name}: the narrative div cannot have extensions or an id")
            parts.append(_checked_div(value, f"{parent}.{name}"))
            return
        ptype = self.types[element.type]
        if extra is None:
            if value is None:
                raise FhirXmlError(f"{_index_path(parent, name, index)}: null without an id or extension")
            parts.append(f'<{name} value="{_value_text(value, ptype, parent, name, index)}"/>')
            return
        path = _index_path(parent, name, index)
        if not isinstance(extra, dict):
            raise FhirXmlError(f"{path}: '_{name}' must be a JSON object")
        text = ""
        element_id = extra.get("id")
        if element_id is not None:
            if not isinstance(element_id, str):
                raise FhirXmlError(f"{path}.id: must be a string")
            text += f' id="{_attribute_text(element_id, path + ".id")}"'
        if value is not None:
            text += f' value="{_value_text(value, ptype, parent, name, index)}"'
        parts.append(f"<{name}{text}")
        mark = len(parts)
        parts.append(">")
        if self.children(ptype, extra, depth + 1, path, skip="id"):
            if self.pretty:
                self._newline(depth)
            parts.append(f"</{name}>")
        else:
            parts[mark] = "/>"


def _index_path(parent: str, name: str, index: int) -> str:
    return f"{parent}.{name}" if index < 0 else f"{parent}.{name}[{index}]"


def _value_text(value: Any, ptype: TypeInfo, parent: str, name: str, index: int) -> str:
    if type(value) is str and value:
        if ptype.json_type == "string":
            if _ATTR_SPECIAL.search(value) is None:
                return value
            return _attribute_text(value, _index_path(parent, name, index))
    return _primitive_text(value, ptype, _index_path(parent, name, index))


def _primitive_text(value: Any, ptype: TypeInfo, path: str) -> str:
    json_type = ptype.json_type
    if json_type == "boolean":
        if value is True:
            return "true"
        if value is False:
            return "false"
    elif json_type == "integer":
        if type(value) is int:
            return str(value)
    elif json_type == "decimal":
        if isinstance(value, Decimal) and value.is_finite():
            return str(value)
        if type(value) is int:
            return str(value)
        if type(value) is float and value == value and value not in (float("inf"), float("-inf")):
            return repr(value)
    elif isinstance(value, str) and value:
        return value
    raise FhirXmlError(f"{path}: {value!r} is not a valid {ptype.name}")


def _checked_div(value: Any, path: str) -> str:
    """The JSON div must be one well-formed XHTML div element: it is copied into the XML as it is."""
    if not isinstance(value, str) or not value.startswith("<") or not value.endswith(">"):
        raise FhirXmlError(f"{path}: the narrative must be an XHTML <div> element as a string")
    root = _parse_fragment(value, path)
    if root.tag != _XHTML_DIV or root.getprevious() is not None or root.getnext() is not None:
        raise FhirXmlError(f'{path}: the narrative must be a single <div xmlns="{XHTML_NS}"> element')
    return value


def _parse_fragment(text: str, path: str) -> etree._Element:
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise FhirXmlError(f"{path}: DOCTYPE and entity declarations are not allowed")
    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as error:
        raise FhirXmlError(f"{path}: the narrative is not well-formed XHTML: {error}") from None


# -- XML -> JSON ------------------------------------------------------------------------------------------------

_parsers = threading.local()


def _parser() -> etree.XMLParser:
    """One hardened parser per thread (lxml parsers must not be shared between threads)."""
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False,
            remove_comments=True, remove_pis=True, collect_ids=False,
        )
        _parsers.parser = parser
    return parser


def xml_to_json(data: bytes | str, model: TypeModel | None = None) -> dict[str, Any]:
    """Read FHIR XML into canonical JSON form; raises `FhirXmlError` naming the offending path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if _declares_doctype(data):
        raise FhirXmlError("DOCTYPE and entity declarations are not allowed in FHIR XML")
    try:
        tree = etree.ElementTree(etree.fromstring(data, _parser()))
    except etree.XMLSyntaxError as error:
        raise FhirXmlError(f"malformed XML: {error}") from None
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise FhirXmlError("DOCTYPE and entity declarations are not allowed in FHIR XML")
    root = tree.getroot()
    if not isinstance(root.tag, str) or not root.tag.startswith(_FHIR):
        raise FhirXmlError(f"the root element must be a FHIR resource in namespace {FHIR_NS}")
    reader = _XmlReader(_model(model), data, docinfo.encoding or "utf-8")
    return reader.resource(root, "")


def _declares_doctype(data: bytes) -> bool:
    """Reject DTDs before parsing (the parser would not expand them, but a clear message beats a parse
    error); UTF-16 documents are decoded for the check. The parsed document is checked again."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        text = data.decode("utf-16", "replace") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            data.decode("utf-16-le" if data[:1] == b"<" else "utf-16-be", "replace"))
        return "<!DOCTYPE" in text or "<!ENTITY" in text
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


# A tokenizer for the markup of an already well-formed document, used only to find the exact source text of
# each narrative div (lxml keeps no source offsets).
_MARKUP = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>"
    r"|</(?P<end>[^\s>]+)\s*>"
    r"|<(?P<start>[^\s/>!?]+)(?:\s+[^\s=/>]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*\s*(?P<empty>/?)>",
    re.S,
)
_DIV_OPEN = ('<div xmlns="http://www.w3.org/1999/xhtml"', "<div xmlns='http://www.w3.org/1999/xhtml'")
# Prefixed element or attribute names (other than namespace declarations and xml:lang/xml:space).
_PREFIXED_NAME = re.compile(r"<[^\s/>!?:]+:|\s(?!xmlns:|xml:)[^\s=<>/\"']+:[^\s=<>\"']*\s*=")
# Where a div may start: comments and CDATA sections are matched (and skipped) so `<div` inside them is ignored.
_DIV_START = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|(?P<div><(?:[A-Za-z_][\w.-]*:)?div[\s/>])", re.S)


def _div_sources(text: str) -> list[tuple[str, bool]]:
    """(source text, self-contained?) of every top-level `div` element, in document order.

    Only the narrative uses the name `div` in FHIR XML. A div is self-contained when it declares the XHTML
    namespace itself and uses no prefixed names (which could depend on declarations further up).
    """
    found: list[tuple[str, bool]] = []
    simple = ":div" not in text and "<!--" not in text and "<![CDATA[" not in text
    position = 0
    while True:
        if simple:  # the common case: plain `<div`, nothing that could hide markup
            begin = text.find("<div", position)
            if begin < 0:
                return found
            if text[begin + 4:begin + 5] not in (" ", "\t", "\r", "\n", "/", ">"):
                position = begin + 4
                continue
        else:
            candidate = _DIV_START.search(text, position)
            if candidate is None:
                return found
            if candidate.group("div") is None:
                position = candidate.end()
                continue
            begin = candidate.start()
        depth = 0
        contained = text.startswith(_DIV_OPEN, begin)
        for match in _MARKUP.finditer(text, begin):
            if match.group("start") is not None:
                tag = match.group()
                if contained and ":" in tag and _PREFIXED_NAME.search(tag):
                    contained = False
                if not match.group("empty"):
                    depth += 1
            elif match.group("end") is not None:
                depth -= 1
                if ":" in match.group("end"):
                    contained = False
            if depth == 0:
                found.append((text[begin:match.end()], contained))
                position = match.end()
                break
        else:
            return found


class _XmlReader:
    """Walks the lxml tree against the type model; kept as one object so the div sources are found once."""

    def __init__(self, model: TypeModel, data: bytes, encoding: str) -> None:
        self.types = model.types
        self.model = model
        self.data = data
        self.encoding = encoding
        self.divs: list[tuple[str, bool]] | None = None
        self.div_index = 0
        self.div_count: int | None = None

    def divs_match(self, node: etree._Element) -> bool:
        """The source scan found as many narrative divs as the parser did (else positions are unreliable)."""
        if self.div_count is None:
            root = node.getroottree().getroot()
            self.div_count = sum(
                1 for div in root.iter(_XHTML_DIV)
                if (parent := div.getparent()) is not None and str(parent.tag).startswith(_FHIR)
            )
        return self.div_count == len(self.divs or ())

    def resource(self, node: etree._Element, path: str) -> dict[str, Any]:
        tag = node.tag
        if not isinstance(tag, str) or not tag.startswith(_FHIR):
            raise FhirXmlError(f"{path or 'root'}: expected a FHIR resource element, found {_name(node)}")
        resource_type = tag[len(_FHIR):]
        info = self.model.resource(resource_type)
        if info is None:
            raise FhirXmlError(f"{path or 'root'}: unknown resource type '{resource_type}'")
        if node.attrib:
            _check_attributes(node, (), path or resource_type)
        obj: dict[str, Any] = {"resourceType": resource_type}
        self.children(node, info, obj, path or resource_type)
        return obj

    def children(self, node: etree._Element, info: TypeInfo, obj: dict[str, Any], path: str) -> None:
        text = node.text
        if text is not None and not text.isspace():
            raise FhirXmlError(f"{path}: text is not allowed here ({text.strip()[:40]!r})")
        by_tag = info.by_tag
        last: ElementInfo | None = None
        index = 0
        repeated: dict[str, tuple[list[Any], list[Any]]] | None = None
        for child in node:
            tail = child.tail
            if tail is not None and not tail.isspace():
                raise FhirXmlError(f"{path}: text is not allowed here ({tail.strip()[:40]!r})")
            element = by_tag.get(child.tag)  # type: ignore[arg-type]
            if element is None:
                _unknown_child(child, path)
            local = element.name
            if element is last:
                if not element.many:
                    raise FhirXmlError(f"{path}.{local}: element may occur only once")
                index += 1
            else:
                if last is not None and (
                    element.order < last.order or (element.order == last.order and element is not last)
                ):
                    raise FhirXmlError(f"{path}.{local}: element out of order (definition order is required)")
                if local in obj or (repeated is not None and local in repeated):
                    raise FhirXmlError(f"{path}.{local}: element out of order (repetitions must be adjacent)")
                last, index = element, 0
            kind = element.kind
            if kind == "primitive":
                value, extra = self.primitive(child, element, path, index)
                if element.many:
                    if repeated is None:
                        repeated = {}
                    values, extras = repeated.setdefault(local, ([], []))
                    values.append(value)
                    extras.append(extra)
                else:
                    if value is not None:
                        obj[local] = value
                    if extra is not None:
                        obj["_" + local] = extra
                continue
            child_path = f"{path}.{local}[{index}]" if element.many else f"{path}.{local}"
            if kind == "resource":
                if child.attrib:
                    _check_attributes(child, (), child_path)
                item: Any = self.nested_resource(child, child_path)
            else:
                target = self.types[element.type]
                item = {}
                if child.attrib:
                    _check_attributes(child, tuple(a.name for a in target.attributes), child_path)
                    for attribute in target.attributes:
                        attribute_value = child.get(attribute.name)
                        if attribute_value is not None:
                            item[attribute.name] = attribute_value
                self.children(child, target, item, child_path)
            if element.many:
                obj.setdefault(local, []).append(item)
            else:
                obj[local] = item
        if repeated:
            for local, (values, extras) in repeated.items():
                if any(value is not None for value in values):
                    obj[local] = values
                if any(extra is not None for extra in extras):
                    obj["_" + local] = extras

    def nested_resource(self, node: etree._Element, path: str) -> dict[str, Any]:
        if node.text is not None and not node.text.isspace():
            raise FhirXmlError(f"{path}: text is not allowed here")
        inner = list(node)
        if len(inner) != 1:
            raise FhirXmlError(f"{path}: must contain exactly one resource element, found {len(inner)}")
        if inner[0].tail is not None and not inner[0].tail.isspace():
            raise FhirXmlError(f"{path}: text is not allowed here")
        return self.resource(inner[0], path)

    def primitive(self, node: etree._Element, element: ElementInfo, parent: str, index: int) -> tuple[Any, Any]:
        """(JSON value, `_name` object) of a primitive element; paths are only built for errors."""
        if element.xhtml:
            return self.div(node), None
        ptype = self.types[element.type]
        value = extra = None
        for name, text in node.items():
            if name == "value":
                value = _primitive_value(text, ptype)
                if value is None:
                    raise FhirXmlError(
                        f"{_path(parent, element, index)}: '{text[:60]}' is not a valid {ptype.name}"
                    )
            elif name == "id":
                extra = {"id": text}
            elif not name.startswith("{" + XSI_NS):
                raise FhirXmlError(f"{_path(parent, element, index)}: unexpected attribute '{name}'")
        if len(node) or (node.text is not None and not node.text.isspace()):
            children: dict[str, Any] = {}
            path = _path(parent, element, index)
            self.children(node, ptype, children, path)
            if children:
                extra = {**(extra or {}), **children}
        if value is None and extra is None:
            raise FhirXmlError(f"{_path(parent, element, index)}: element has no value and no children")
        return value, extra

    def div(self, node: etree._Element) -> str:
        if self.divs is None:
            try:
                self.divs = _div_sources(self.data.decode(self.encoding))
            except (LookupError, UnicodeDecodeError):
                self.divs = []
        index = self.div_index
        self.div_index += 1
        if index < len(self.divs) and self.divs_match(node):
            source, contained = self.divs[index]
            if contained:
                return source
            try:
                standalone = etree.fromstring(source.encode("utf-8"), _parser())
            except etree.XMLSyntaxError:
                standalone = None
            if standalone is not None and _same_names(standalone, node):
                return source
        return _serialise_div(node)


def _check_attributes(node: etree._Element, allowed: tuple[str, ...], path: str) -> None:
    for name in node.attrib:
        if name not in allowed and not name.startswith("{" + XSI_NS):
            raise FhirXmlError(f"{path}: unexpected attribute '{name}'")


def _unknown_child(child: etree._Element, path: str) -> None:
    tag = child.tag
    if not isinstance(tag, str):
        raise FhirXmlError(f"{path}: entity references are not allowed")
    if tag.startswith(_FHIR):
        raise FhirXmlError(f"{path}: unknown element '{tag[len(_FHIR):]}'")
    raise FhirXmlError(f"{path}: element {_name(child)} is not allowed here (wrong namespace?)")


def _same_names(standalone: etree._Element, node: etree._Element) -> bool:
    """The source text stands on its own: same element and attribute names once parsed alone (a prefix
    declared further up would leave `h:p` unresolved, which shows up here)."""
    if standalone.tag != _XHTML_DIV:
        return False
    first, second = list(standalone.iter()), list(node.iter())
    if len(first) != len(second):
        return False
    return all(a.tag == b.tag and a.keys() == b.keys() for a, b in zip(first, second, strict=True))


def _serialise_div(node: etree._Element) -> str:
    """Re-serialise a div whose source text cannot be used as is, without inherited namespace clutter."""
    copy = etree.fromstring(etree.tostring(node, with_tail=False))
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding=str)


def _path(parent: str, element: ElementInfo, index: int) -> str:
    return f"{parent}.{element.name}[{index}]" if element.many else f"{parent}.{element.name}"


def _primitive_value(text: str, ptype: TypeInfo) -> Any:
    """The JSON value for an XML `value` attribute, or None when it cannot be one.

    Only what decides the JSON representation is checked here (booleans, integers, decimals, no empty
    strings); string formats (id, date, code...) are `conformance.structure`'s job, so that reading XML and
    writing it are symmetric and every format error gets the same precise report whatever the wire format.
    """
    json_type = ptype.json_type
    if json_type == "string":
        return text if text else None
    regex = ptype.regex
    if regex is not None and not regex.fullmatch(text):
        return None
    if json_type == "boolean":
        return True if text == "true" else False if text == "false" else None
    if json_type == "integer":
        number = int(text)
        return number if INT32[0] <= number <= INT32[1] else None
    try:
        return FhirDecimal(text)
    except ArithmeticError:
        return None


def _name(node: etree._Element) -> str:
    tag = node.tag if isinstance(node.tag, str) else "?"
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return f"'{local}' (namespace {namespace})"
    return f"'{tag}' (no namespace)"
