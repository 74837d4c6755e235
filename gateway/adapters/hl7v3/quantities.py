"""PQ -> Quantity (UCUM), IVL_PQ -> Range. Values keep their exact decimal text (FhirDecimal)."""

from __future__ import annotations

import re
from typing import Any

from conformance.fhirjson import FhirDecimal
from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.oids import UCUM
from gateway.adapters.hl7v3.xml import Element, child

_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def decimal(text: str | None) -> FhirDecimal | None:
    if text is None:
        return None
    text = text.strip()
    if text.startswith("."):
        text = "0" + text
    if text.startswith("-."):
        text = "-0" + text[1:]
    if not _DECIMAL.fullmatch(text):
        return None
    return FhirDecimal(text)


def quantity(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    if element.get("nullFlavor"):
        return {"extension": [data_absent_reason(element.get("nullFlavor", ""))]}
    value = decimal(element.get("value"))
    if value is None:
        return None
    result: dict[str, Any] = {"value": value}
    unit = element.get("unit") or "1"
    result.update({"unit": unit, "system": UCUM, "code": unit})
    return result


def range_of(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    result = {}
    for part in ("low", "high"):
        bound = quantity(child(element, part))
        if bound and "value" in bound:
            result[part] = bound
    return result or None
