"""Pipeline stage: refuse writes that carry a string longer than the configured maximum, or a character that
FHIR XML cannot carry.

FHIR R4 says strings SHALL NOT exceed 1 MB (https://hl7.org/fhir/R4/datatypes.html#string); the body limit
alone would still let one request store a 10 MB `gender`. JSON can escape any control character, XML 1.0
cannot represent most of them at all: a stored `"family"` with a U+0005 in it would make every XML read and search that
returns it fail (found by tests/reliability/test_schemathesis.py), so the two formats would no longer be
interchangeable. The check runs before the handler, so nothing is written, and it names the first offending
element."""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.fhir import interaction as kinds
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler

_WRITES = {kinds.CREATE, kinds.UPDATE, kinds.TRANSACTION, kinds.BATCH, kinds.OPERATION}
# Not `string`s, so not under the 1 MB rule: narrative XHTML (`div`) and base64Binary content (`data` of Attachment,
# Binary and Signature); the request body limit (ZCC_MAX_BODY) still bounds them.
_UNLIMITED_ELEMENTS = frozenset({"div", "data"})
# What XML 1.0 cannot represent (as in conformance.fhirxml); TAB, LF and CR are allowed. Lone surrogates never get
# this far (conformance.fhirjson refuses them).
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def first_oversized_string(value: Any, limit: int, path: str) -> str | None:
    """The FHIRPath-like location of the first string longer than `limit` characters, or None."""
    stack = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if len(current) > limit:
                return where
        elif isinstance(current, dict):
            stack.extend(
                (child, f"{where}.{key}") for key, child in reversed(list(current.items()))
                if key not in _UNLIMITED_ELEMENTS
            )
        elif isinstance(current, list):
            stack.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(current))))
    return None


def first_unrepresentable_string(value: Any, path: str) -> str | None:
    """The location of the first string with a character FHIR XML cannot carry (a control character), or None."""
    stack = [(value, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, str):
            if _NOT_XML_CHAR.search(current):
                return where
        elif isinstance(current, dict):
            stack.extend((child, f"{where}.{key}") for key, child in reversed(list(current.items())))
        elif isinstance(current, list):
            stack.extend((child, f"{where}[{index}]") for index, child in reversed(list(enumerate(current))))
    return None


def _any_string_at_fault(value: Any, limit: int) -> bool:
    """Whether `value` holds a string the two checks above would name. Almost no write does, so first a look at
    its JSON (~10x faster than a walk): no string is longer than the whole text, a control character is always
    written escaped (with a backslash), and U+FFFE/U+FFFF as their UTF-8 bytes. Only a body that this cannot clear
    (a backslash anywhere, a long text, or no JSON for it) is walked."""
    try:
        text = orjson.dumps(value, default=str)
    except TypeError:  # e.g. an integer beyond 64 bits
        text = None
    if text is not None and len(text) <= limit and b"\\" not in text and _NOT_XML_BYTES.search(text) is None:
        return False
    return _walk_for_fault(value, limit)


_NOT_XML_BYTES = re.compile(b"\xef\xbf[\xbe\xbf]")  # U+FFFE, U+FFFF in UTF-8


def _walk_for_fault(value: Any, limit: int) -> bool:
    """`_any_string_at_fault` by a walk (without building the location of every node, as the checks above do)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if _NOT_XML_CHAR.search(current) or len(current) > limit:
                return True
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)
    return False


class ResourceSizeLimits:
    def __init__(self, max_string: int) -> None:
        self.max_string = max_string

    def __call__(self, scope: RequestScope, it: Interaction, following: Handler) -> Result:
        if it.kind in _WRITES and it.body is not None and _any_string_at_fault(it.body, self.max_string):
            root = str(it.body.get("resourceType", "Resource"))
            where = first_oversized_string(it.body, self.max_string, root)
            if where is not None:
                raise FhirError(422, "too-long",
                                f"{where} is longer than {self.max_string} characters (the gateway's string limit)",
                                [where])
            where = first_unrepresentable_string(it.body, root)
            if where is not None:
                raise FhirError(422, "invalid", f"{where} contains a control character, which FHIR XML cannot "
                                "represent (only TAB, LF and CR are allowed)", [where])
        return following(scope, it)
