"""Index rows for a resource: what each search parameter's expression finds, converted to the typed columns of
the idx_* tables (gateway/store/schema.py) following the R4 search rules per data type.

The returned rows lack `res_key`; the store adds it. Rows are de-duplicated per table, because unions such as
`Observation.code | Observation.component.code` often yield the same value twice.

`Reference.identifier` is indexed as a token row with param `<code>:identifier`, so that
`subject:identifier=system|value` is an ordinary token match. `Identifier.type` + value is indexed as a token
row with param `<code>:of-type` (system = type system, code = `type-code|value`) for `:of-type`.

Reference rows also carry `source_type`, the indexed resource's own type: the consent facts query seeks a
patient's contacts, referrals and Consents by it (see the idx_reference index in gateway/store/schema.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from gateway.search.dates import MAX_DATE, MIN_DATE, date_range
from gateway.search.definitions import SearchParamDef, SearchParameterRegistry
from gateway.search.expressions import Node
from gateway.search.values import normalize_text, parse_decimal, precision_range

Row = dict[str, Any]

_HUMAN_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")
_PRIMITIVES = frozenset(
    {
        "string",
        "boolean",
        "code",
        "date",
        "dateTime",
        "decimal",
        "instant",
        "integer",
        "uri",
        "url",
        "canonical",
        "id",
        "oid",
        "uuid",
        "markdown",
        "time",
        "positiveInt",
        "unsignedInt",
        "base64Binary",
    }
)
_QUANTITY_TYPES = frozenset(
    {"Quantity", "Age", "Distance", "Duration", "Count", "SimpleQuantity", "MoneyQuantity"}
)


def extract_index_rows(resource: dict[str, Any], registry: SearchParameterRegistry) -> dict[str, list[Row]]:
    """{index table kind: [row]} for every indexed search parameter of the resource's type."""
    tables: dict[str, list[Row]] = {kind: [] for kind in _CONVERTERS}
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        return tables
    for param in registry.indexed_params(resource_type):
        assert param.extractor is not None  # indexed implies compiled
        nodes = param.extractor(resource)
        if not nodes:
            continue
        for kind, row in _CONVERTERS[param.type](param, _unwrap_extensions(nodes)):
            if kind == "token" and row["code"] is None and row["text"] is None and row["system"] is None:
                continue  # e.g. a ContactPoint with only `use`: nothing to search on
            if kind == "reference":
                row["source_type"] = resource_type  # lets the consent facts query seek by referencing type
            key = (kind, tuple(row.values()))
            if key not in seen:
                seen.add(key)
                tables[kind].append(row)
    return tables


def _unwrap_extensions(nodes: list[Node]) -> list[Node]:
    """An expression ending in `.extension('url')` means the extension's value[x]."""
    if not any(node[0] == "Extension" for node in nodes):
        return nodes
    result: list[Node] = []
    for node_type, value in nodes:
        if node_type != "Extension":
            result.append((node_type, value))
            continue
        for key, item in value.items():
            if key.startswith("value") and len(key) > 5:
                type_name = key[5:]
                lowered = type_name[0].lower() + type_name[1:]
                result.append((lowered if lowered in _PRIMITIVES else type_name, item))
    return result


def _infer_type(value: Any) -> str | None:
    """The FHIR type of a value from the fhirpathpy fallback, by shape (typed nodes never need this)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if not isinstance(value, dict):
        return "decimal" if parse_decimal(value) is not None else None
    if "coding" in value or ("text" in value and len(value) == 1):
        return "CodeableConcept"
    if "reference" in value or ("identifier" in value and "type" in value and "value" not in value):
        return "Reference"
    if "family" in value or "given" in value:
        return "HumanName"
    if "line" in value or "city" in value or "postalCode" in value:
        return "Address"
    if "start" in value or "end" in value:
        return "Period"
    if "value" in value and (
        "unit" in value or "code" in value and "system" in value and parse_decimal(value["value"]) is not None
    ):
        return "Quantity"
    if "system" in value and "value" in value:
        return (
            "ContactPoint"
            if value.get("system") in {"phone", "fax", "email", "pager", "url", "sms", "other"}
            else "Identifier"
        )
    if "code" in value:
        return "Coding"
    return None


def _typed(nodes: list[Node]) -> Iterator[tuple[str | None, Any]]:
    for node_type, value in nodes:
        yield (node_type if node_type is not None else _infer_type(value)), value


# -- string -----


def _string_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    for node_type, value in _typed(nodes):
        if node_type == "HumanName":
            texts = _parts(value, _HUMAN_NAME_PARTS)
        elif node_type == "Address":
            texts = _parts(value, _ADDRESS_PARTS)
        elif isinstance(value, str):
            texts = [value]
        elif isinstance(value, dict) and isinstance(value.get("text"), str):
            texts = [value["text"]]  # e.g. an Annotation or a CodeableConcept reached via a choice
        else:
            texts = []
        for text in texts:
            if text.strip():
                yield "string", {"param": param.code, "value": normalize_text(text), "exact": text}


def _parts(value: Any, names: tuple[str, ...]) -> list[str]:
    if not isinstance(value, dict):
        return []
    texts: list[str] = []
    for name in names:
        part = value.get(name)
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, list):
            texts.extend(item for item in part if isinstance(item, str))
    return texts


# -- token -----


def _token(param: str, system: Any, code: Any, text: Any = None) -> tuple[str, Row]:
    return "token", {
        "param": param,
        "system": system if isinstance(system, str) else None,
        "code": code if isinstance(code, str) else None,
        "text": normalize_text(text) if isinstance(text, str) and text.strip() else None,
    }


def _token_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    code = param.code
    for node_type, value in _typed(nodes):
        if node_type == "CodeableConcept" and isinstance(value, dict):
            yield from _codeable_concept_rows(code, value)
        elif node_type == "Coding" and isinstance(value, dict):
            yield _token(code, value.get("system"), value.get("code"), value.get("display"))
        elif node_type == "Identifier" and isinstance(value, dict):
            yield from _identifier_rows(code, value)
        elif node_type == "ContactPoint" and isinstance(value, dict):
            yield _token(code, value.get("system"), value.get("value"))
        elif isinstance(value, bool):
            yield _token(code, None, "true" if value else "false")
        elif isinstance(value, str):
            yield _token(code, None, value)
        elif node_type in _QUANTITY_TYPES and isinstance(value, dict):
            yield _token(code, value.get("system"), value.get("code"), value.get("unit"))


def _codeable_concept_rows(code: str, concept: dict[str, Any]) -> Iterator[tuple[str, Row]]:
    text = concept.get("text")
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict):
            yield _token(code, coding.get("system"), coding.get("code"), coding.get("display"))
    if isinstance(text, str):
        yield _token(code, None, None, text)  # only for `:text`


def _identifier_rows(code: str, identifier: dict[str, Any]) -> Iterator[tuple[str, Row]]:
    identifier_type = identifier.get("type") if isinstance(identifier.get("type"), dict) else {}
    yield _token(code, identifier.get("system"), identifier.get("value"), identifier_type.get("text"))
    value = identifier.get("value")
    if isinstance(value, str):
        for coding in identifier_type.get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                yield _token(f"{code}:of-type", coding.get("system"), f"{coding['code']}|{value}")


# -- reference -----


def _reference_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    code = param.code
    for node_type, value in _typed(nodes):
        if isinstance(value, str):  # canonical / uri used as a reference: the URL without `|version`
            yield (
                "reference",
                {"param": code, "target_type": None, "target_id": None, "url": value.split("|")[0]},
            )
        elif node_type == "Reference" and isinstance(value, dict):
            yield from _reference_value_rows(code, value)
        elif isinstance(value, dict) and isinstance(
            value.get("resourceType"), str
        ):  # Bundle.entry[0].resource
            yield (
                "reference",
                {
                    "param": code,
                    "target_type": value["resourceType"],
                    "target_id": value.get("id"),
                    "url": None,
                },
            )


def _reference_value_rows(code: str, reference: dict[str, Any]) -> Iterator[tuple[str, Row]]:
    literal = reference.get("reference")
    if isinstance(literal, str) and not literal.startswith("#"):
        parsed = parse_reference(literal)
        if parsed is not None:
            yield "reference", {"param": code, "target_type": parsed[0], "target_id": parsed[1], "url": None}
        else:
            yield (
                "reference",
                {"param": code, "target_type": None, "target_id": None, "url": literal.split("|")[0]},
            )
    identifier = reference.get("identifier")
    if isinstance(identifier, dict):
        yield _token(f"{code}:identifier", identifier.get("system"), identifier.get("value"))


def parse_reference(literal: str) -> tuple[str, str] | None:
    """`Type/id` or `Type/id/_history/n` as (type, id); None for absolute URLs, URNs and anything else."""
    if ":" in literal:
        return None
    parts = literal.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 2 and parts[0][:1].isupper() and parts[0].isalnum() and parts[1]:
        return parts[0], parts[1]
    return None


# -- date -----


def _date_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    for node_type, value in _typed(nodes):
        if isinstance(value, str):
            found = date_range(value)
            if found:
                yield "date", {"param": param.code, "low": found[0], "high": found[1]}
        elif node_type == "Period" and isinstance(value, dict):
            row = _period_row(param.code, value)
            if row:
                yield "date", row
        elif node_type == "Timing" and isinstance(value, dict):
            events = [found for event in value.get("event") or () if (found := date_range(event))]
            for low, high in events:
                yield "date", {"param": param.code, "low": low, "high": high}
            bounds = (value.get("repeat") or {}).get("boundsPeriod")
            if not events and isinstance(bounds, dict):
                row = _period_row(param.code, bounds)
                if row:
                    yield "date", row


def _period_row(code: str, period: dict[str, Any]) -> Row | None:
    """A Period covers [start.low, end.high]; a missing end means ongoing (open to the future)."""
    start = date_range(period["start"]) if isinstance(period.get("start"), str) else None
    end = date_range(period["end"]) if isinstance(period.get("end"), str) else None
    if start is None and end is None:
        return None
    return {"param": code, "low": start[0] if start else MIN_DATE, "high": end[1] if end else MAX_DATE}


# -- number, quantity, uri -----


def _number_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    for _, value in nodes:
        number = parse_decimal(value)
        if number is not None:
            low, high = precision_range(number)
            yield "number", {"param": param.code, "value": float(number), "low": low, "high": high}


def _quantity_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    for node_type, value in _typed(nodes):
        if not isinstance(value, dict):
            continue
        if node_type == "Range":
            yield from _range_rows(param.code, value)
            continue
        if node_type == "SampledData":
            value = value.get("origin") or {}
        number = parse_decimal(value.get("value"))
        if number is None:
            continue
        low, high = precision_range(number)
        yield (
            "quantity",
            {
                "param": param.code,
                "value": float(number),
                "low": low,
                "high": high,
                "system": _text_or_none(value.get("system")),
                "code": _text_or_none(value.get("code")),
                "unit": _text_or_none(value.get("unit")),
            },
        )


def _range_rows(code: str, value: dict[str, Any]) -> Iterator[tuple[str, Row]]:
    """A Range: `low`/`high` are its bounds (open ends unbounded); `value` (for sorting) its lower bound."""
    low_q, high_q = value.get("low") or {}, value.get("high") or {}
    low, high = parse_decimal(low_q.get("value")), parse_decimal(high_q.get("value"))
    if low is None and high is None:
        return
    units = low_q if low is not None else high_q
    yield (
        "quantity",
        {
            "param": code,
            "value": float(low if low is not None else high),  # type: ignore[arg-type]
            "low": float(low) if low is not None else -1e308,
            "high": float(high) if high is not None else 1e308,
            "system": _text_or_none(units.get("system")),
            "code": _text_or_none(units.get("code")),
            "unit": _text_or_none(units.get("unit")),
        },
    )


def _uri_rows(param: SearchParamDef, nodes: list[Node]) -> Iterator[tuple[str, Row]]:
    for _, value in nodes:
        if isinstance(value, str) and value:
            yield "uri", {"param": param.code, "value": value}


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_CONVERTERS: dict[str, Callable[[SearchParamDef, list[Node]], Iterator[tuple[str, Row]]]] = {
    "string": _string_rows,
    "token": _token_rows,
    "reference": _reference_rows,
    "date": _date_rows,
    "number": _number_rows,
    "quantity": _quantity_rows,
    "uri": _uri_rows,
}
