"""Narrative XHTML rules (txt-1, txt-2): only the basic HTML formatting elements and attributes of the spec
(narrative.html: "chapters 7-11 (except section 4 of chapter 9) and 15 of the HTML 4.0 standard", no scripts,
forms, frames or event handlers), and some non-whitespace content. `htmlChecks()` in FHIRPath is this check."""

from __future__ import annotations

from lxml import etree

XHTML = "{http://www.w3.org/1999/xhtml}"
ALLOWED_ELEMENTS = frozenset({
    "a", "abbr", "acronym", "address", "b", "bdo", "big", "blockquote", "br", "caption", "cite", "code", "col",
    "colgroup", "dd", "del", "dfn", "div", "dl", "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "ol", "p", "pre", "q", "samp", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "tt", "ul", "var", "s", "u", "strike", "center", "font", "label",
})
ALLOWED_ATTRIBUTES = frozenset({
    "title", "style", "class", "id", "lang", "xml:lang", "dir", "accesskey", "tabindex", "href", "name", "src",
    "alt", "width", "height", "border", "colspan", "rowspan", "span", "align", "valign", "char", "charoff",
    "abbr", "axis", "headers", "scope", "cellspacing", "cellpadding", "summary", "frame", "rules", "start",
    "type", "value", "compact", "cite", "datetime", "shape", "coords", "hreflang", "rel", "rev", "bgcolor",
    "nowrap", "size", "color", "face", "clear", "noshade", "longdesc", "usemap", "ismap", "hspace", "vspace",
    "xmlns",
})
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def problems(div: str) -> list[str]:
    """What makes the narrative unacceptable (empty when it is fine)."""
    try:
        root = etree.fromstring(div.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as error:
        return [f"The narrative is not well-formed XHTML: {error}"]
    found: list[str] = []
    if root.tag != XHTML + "div":
        found.append("The narrative must be an XHTML div element")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = element.tag[len(XHTML):] if element.tag.startswith(XHTML) else element.tag
        if name not in ALLOWED_ELEMENTS:
            found.append(f"Invalid element name in the XHTML ('{name}')")
        for attribute in element.attrib:
            local = attribute.split("}", 1)[-1]
            if local.lower().startswith("on") or local not in ALLOWED_ATTRIBUTES:
                found.append(f"Invalid attribute name in the XHTML ('{local}' on '{name}')")
            elif local in ("href", "src") and element.attrib[attribute].strip().lower().startswith("javascript:"):
                found.append(f"Invalid attribute value in the XHTML (javascript: URL in '{local}')")
    return found


def html_checks(div: object) -> bool:
    return isinstance(div, str) and not problems(div)
