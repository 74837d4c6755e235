"""Parse the query parameters of a FHIR search into a `SearchQuery` (R4 search §3.1.1).

Input is the list of (name, value) pairs as they arrived (already URL-decoded, repeated names kept: repetition
is AND, commas inside a value are OR). Every problem becomes a `SearchError` in `SearchQuery.errors` naming
the parameter; nothing raises. The REST layer decides: 400 with an OperationOutcome, or, with
`Prefer: handling=lenient`, drop the `ignorable` ones (unknown or unsupported parameters) and report them.

Values are parsed per parameter type here, once, into small typed value objects, so the SQL builder only
combines them (gateway/store/search_sql.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gateway.search.dates import date_range
from gateway.search.definitions import SearchParamDef, SearchParameterRegistry
from gateway.search.values import normalize_text, parse_decimal, precision_range

DEFAULT_COUNT = 50
MAX_COUNT = 1000
PREFIXES = frozenset({"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"})
_PREFIXED_TYPES = frozenset({"date", "number", "quantity"})
_SUMMARY = frozenset({"true", "false", "text", "data", "count"})
_TOTAL = frozenset({"none", "estimate", "accurate"})
_IGNORED = frozenset({"_format", "_pretty"})
_COLUMN_MODIFIERS = {"_id": frozenset({"not", "missing"}), "_lastUpdated": frozenset({"missing"})}
_UNSUPPORTED_RESULT_PARAMS = frozenset(
    {"_contained", "_containedType", "_has", "_list", "_filter", "_query", "_text", "_content", "_score"}
)


# -- value objects -----


@dataclass(frozen=True)
class TokenValue:
    """`[system]|[code]`: `system` None means any system; `has_system` with system None means `|code`."""

    system: str | None
    code: str | None
    has_system: bool = False
    text: str | None = None  # `:text`: normalised search text


@dataclass(frozen=True)
class StringValue:
    text: str  # as given (for :exact)
    normalized: str  # lower case, accents stripped (default and :contains)


@dataclass(frozen=True)
class DateValue:
    low: str
    high: str


@dataclass(frozen=True)
class NumberValue:
    value: float
    low: float  # implicit precision range of the search value
    high: float


@dataclass(frozen=True)
class QuantityValue:
    number: NumberValue
    system: str | None
    code: str | None  # matched against Quantity.code, or Quantity.unit when no system is given


@dataclass(frozen=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    url: str | None  # absolute or canonical reference (version stripped)


@dataclass(frozen=True)
class UriValue:
    uri: str


@dataclass(frozen=True)
class MissingValue:
    missing: bool


@dataclass(frozen=True)
class SearchValue:
    """One OR-alternative of a parameter: a prefix (eq when absent) and a typed value."""

    prefix: str
    value: Any  # one of the *Value classes above


@dataclass(frozen=True)
class Filter:
    """One `name=value[,value]` occurrence: matches if any value matches (AND comes from repetition)."""

    name: str  # as given, e.g. `subject:Patient.name:exact` (for messages)
    param: SearchParamDef
    modifier: str | None
    values: tuple[SearchValue, ...]
    chain: tuple[tuple[str, Filter], ...] = ()  # (target type, filter on that type): any of them matches

    @property
    def index_param(self) -> str:
        """The `param` column value in the index tables (`:identifier` / `:of-type` rows are separate)."""
        if self.modifier in {"identifier", "of-type"}:
            return f"{self.param.code}:{self.modifier}"
        return self.param.code


@dataclass(frozen=True)
class SortKey:
    param: SearchParamDef
    descending: bool


@dataclass(frozen=True)
class Include:
    """`_include=Source:param[:Target]` or `_revinclude=...`; `param` None means `*` (all references)."""

    source_type: str
    param: str | None
    target_type: str | None
    iterate: bool


@dataclass(frozen=True)
class SearchError:
    param: str
    message: str
    code: str = "invalid"  # OperationOutcome issue.code
    ignorable: bool = False  # unknown/unsupported parameter: may be dropped under `handling=lenient`


@dataclass
class SearchQuery:
    resource_type: str | None
    filters: list[Filter] = field(default_factory=list)
    types: list[str] = field(default_factory=list)  # `_type` on system-level search
    sort: list[SortKey] = field(default_factory=list)
    count: int | None = None  # None: not given (the REST layer applies DEFAULT_COUNT / its setting)
    offset: int = 0
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    total: str | None = None  # None: not requested
    errors: list[SearchError] = field(default_factory=list)

    @property
    def page_size(self) -> int:
        return DEFAULT_COUNT if self.count is None else self.count


class _ValueError(ValueError):
    """A bad parameter value; becomes a SearchError for the parameter being parsed."""


class _Unsupported(ValueError):
    """An unknown or unsupported parameter/modifier; becomes an ignorable SearchError."""


# -- escaping -----


def split_unescaped(text: str, separator: str) -> list[str]:
    """Split on `separator` not preceded by a backslash; escapes are kept (removed later by `unescape`)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,$|])", r"\1", text)


# -- entry point -----


def parse_search(
    resource_type: str | None, params: list[tuple[str, str]], registry: SearchParameterRegistry
) -> SearchQuery:
    """Parse a search on `resource_type` (None: all types); problems are collected in `.errors`."""
    query = SearchQuery(resource_type=resource_type)
    if resource_type is not None and resource_type not in registry.resource_types:
        query.errors.append(
            SearchError("resourceType", f"unknown resource type {resource_type!r}", "not-found")
        )
        return query
    for name, value in params:
        try:
            _parse_one(query, name, value, registry)
        except _Unsupported as problem:
            query.errors.append(SearchError(name, str(problem), "not-supported", ignorable=True))
        except _ValueError as problem:
            query.errors.append(SearchError(name, str(problem), "invalid"))
    return query


def _parse_one(query: SearchQuery, name: str, value: str, registry: SearchParameterRegistry) -> None:
    base, _, modifier = name.partition(":")
    if base in _IGNORED:
        return
    if base.startswith("_") and "." not in base and base not in registry.params_for(query.resource_type):
        _parse_result_param(query, base, modifier, value, registry)
        return
    query.filters.append(_parse_filter(query.resource_type, name, value, registry))


def _parse_result_param(
    query: SearchQuery, name: str, modifier: str, value: str, registry: SearchParameterRegistry
) -> None:
    if name == "_count":
        query.count = min(_non_negative_int(value, name), MAX_COUNT)
    elif name == "_offset":
        query.offset = _non_negative_int(value, name)
    elif name == "_sort":
        query.sort = [
            _sort_key(query.resource_type, key, registry) for key in value.split(",") if key.strip()
        ]
    elif name in {"_include", "_revinclude"}:
        if modifier not in {"", "iterate", "recurse"}:
            raise _Unsupported(f"modifier :{modifier} is not supported on {name}")
        include = _include(value, bool(modifier), name == "_revinclude", query.resource_type, registry)
        (query.revincludes if name == "_revinclude" else query.includes).append(include)
    elif name == "_summary":
        if value not in _SUMMARY:
            raise _ValueError(f"_summary must be one of {', '.join(sorted(_SUMMARY))}")
        query.summary = value
    elif name == "_elements":
        query.elements = [element.strip() for element in value.split(",") if element.strip()]
    elif name == "_total":
        if value not in _TOTAL:
            raise _ValueError(f"_total must be one of {', '.join(sorted(_TOTAL))}")
        query.total = value
    elif name == "_type" and query.resource_type is None:
        types = [item.strip() for item in value.split(",") if item.strip()]
        unknown = [item for item in types if item not in registry.resource_types]
        if unknown:
            raise _ValueError(f"unknown resource type(s) in _type: {', '.join(unknown)}")
        query.types.extend(types)
    elif name in _UNSUPPORTED_RESULT_PARAMS:
        raise _Unsupported(f"the parameter {name} is not supported")
    else:
        raise _Unsupported(f"unknown search parameter {name!r}" + _on(query.resource_type))


def _on(resource_type: str | None) -> str:
    return f" for {resource_type}" if resource_type else " for all resource types"


def _non_negative_int(value: str, name: str) -> int:
    if not value.strip().isdigit():
        raise _ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _sort_key(resource_type: str | None, key: str, registry: SearchParameterRegistry) -> SortKey:
    key = key.strip()
    descending = key.startswith("-")
    code = key.lstrip("-")
    param = registry.get(resource_type, code)
    if param is None or not param.supported:
        raise _Unsupported(f"cannot sort on unknown or unsupported parameter {code!r}" + _on(resource_type))
    return SortKey(param, descending)


def _include(
    value: str, iterate: bool, reverse: bool, resource_type: str | None, registry: SearchParameterRegistry
) -> Include:
    parts = value.split(":")
    if value == "*" or len(parts) not in {2, 3}:
        raise _ValueError(f"expected Type:parameter[:targetType], got {value!r}")
    source_type, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source_type not in registry.resource_types:
        raise _ValueError(f"unknown resource type {source_type!r}")
    if target is not None and target not in registry.resource_types:
        raise _ValueError(f"unknown target type {target!r}")
    if code != "*":
        param = registry.get(source_type, code)
        if param is None or param.type != "reference":
            raise _ValueError(f"{source_type} has no reference search parameter {code!r}")
        if target is not None and param.targets and target not in param.targets:
            raise _ValueError(f"{source_type}:{code} cannot refer to {target}")
    if not reverse and not iterate and resource_type is not None and source_type != resource_type:
        raise _ValueError(f"_include must start with the searched type {resource_type} (or use :iterate)")
    return Include(source_type, None if code == "*" else code, target, iterate)


# -- filters -----


def _parse_filter(
    resource_type: str | None, name: str, value: str, registry: SearchParameterRegistry
) -> Filter:
    head, dot, tail = name.partition(".")
    code, _, modifier = head.partition(":")
    param = _known_param(registry, resource_type, code)
    if dot:
        return _chained_filter(name, param, modifier or None, tail, value, registry)
    return _simple_filter(name, param, modifier or None, value)


def _known_param(registry: SearchParameterRegistry, resource_type: str | None, code: str) -> SearchParamDef:
    param = registry.get(resource_type, code)
    if param is None:
        raise _Unsupported(f"unknown search parameter {code!r}" + _on(resource_type))
    if not param.supported:
        raise _Unsupported(f"search parameter {code!r} of type {param.type} is not supported")
    return param


MAX_CHAIN_DEPTH = 3
"""`Slot?schedule.actor:HealthcareService.location.address-city=...` has 3 levels; longer chains are refused."""


def _chained_filter(
    name: str,
    param: SearchParamDef,
    type_modifier: str | None,
    tail: str,
    value: str,
    registry: SearchParameterRegistry,
    depth: int = 1,
) -> Filter:
    """`param[:Type].tail=value`: a reference to a current resource that matches `tail` (itself a chain when it
    holds another `.`), for every target type that has the next parameter."""
    if param.type != "reference":
        raise _ValueError(f"{param.code} is not a reference parameter: it cannot be chained")
    if depth > MAX_CHAIN_DEPTH:
        raise _Unsupported(f"chains longer than {MAX_CHAIN_DEPTH} levels are not supported")
    if type_modifier is not None:
        if type_modifier not in (param.targets or registry.resource_types):
            raise _ValueError(f"{param.code} cannot refer to {type_modifier}")
        target_types = [type_modifier]
    else:
        target_types = sorted(param.targets)
    head, dot, rest = tail.partition(".")
    code, _, modifier = head.partition(":")
    chain = []
    problem: ValueError | None = None
    for target_type in target_types:
        target_param = registry.get(target_type, code)
        if target_param is None or not target_param.supported:
            continue
        try:
            if dot:
                inner = _chained_filter(name, target_param, modifier or None, rest, value, registry, depth + 1)
            else:
                inner = _simple_filter(name, target_param, modifier or None, value)
        except (_ValueError, _Unsupported) as error:  # this target cannot continue the chain; another may
            problem = error
            continue
        chain.append((target_type, inner))
    if not chain:
        if problem is not None:
            raise problem
        raise _Unsupported(f"no target of {param.code} has a supported search parameter {code!r}")
    return Filter(name=name, param=param, modifier=type_modifier, values=(), chain=tuple(chain))


def _simple_filter(name: str, param: SearchParamDef, modifier: str | None, value: str) -> Filter:
    _check_modifier(param, modifier)
    if modifier == "missing":
        if value not in {"true", "false"}:
            raise _ValueError(f"{name}: :missing takes true or false, got {value!r}")
        return Filter(name, param, modifier, (SearchValue("eq", MissingValue(value == "true")),))
    alternatives = split_unescaped(value, ",")
    if len(alternatives) > 1 and not param.multiple_or:
        raise _ValueError(f"{param.code} does not allow several values (multipleOr is false)")
    values = tuple(_parse_value(param, modifier, alternative) for alternative in alternatives)
    return Filter(name, param, modifier, values)


def _check_modifier(param: SearchParamDef, modifier: str | None) -> None:
    if modifier is None:
        return
    allowed = _COLUMN_MODIFIERS.get(param.code, param.modifiers) if param.column else param.modifiers
    if modifier in allowed:
        return
    if param.type == "reference" and modifier[:1].isupper():
        if param.targets and modifier not in param.targets:
            raise _ValueError(f"{param.code} cannot refer to {modifier}")
        return
    raise _Unsupported(f"modifier :{modifier} is not supported for {param.code} ({param.type})")


def _parse_value(param: SearchParamDef, modifier: str | None, raw: str) -> SearchValue:
    prefix = "eq"
    if (
        param.type in _PREFIXED_TYPES
        and raw[:2] in PREFIXES
        and raw[2:3]
        and (raw[2].isdigit() or raw[2] in "-.")
    ):
        prefix, raw = raw[:2], raw[2:]
    if raw == "":
        raise _ValueError(f"{param.code}: empty value")
    if param.column == "id":
        return SearchValue(prefix, TokenValue(None, unescape(raw)))
    parser = _VALUE_PARSERS[param.type]
    return SearchValue(prefix, parser(param, modifier, raw))


def _token_value(param: SearchParamDef, modifier: str | None, raw: str) -> TokenValue:
    if modifier == "text":
        return TokenValue(None, None, text=normalize_text(unescape(raw)))
    parts = [unescape(part) for part in split_unescaped(raw, "|")]
    if modifier == "of-type":
        if len(parts) != 3 or not all(parts):
            raise _ValueError(f"{param.code}:of-type takes system|code|value, got {raw!r}")
        return TokenValue(parts[0], f"{parts[1]}|{parts[2]}", has_system=True)
    if len(parts) == 1:
        return TokenValue(None, parts[0])
    if len(parts) != 2:
        raise _ValueError(f"{param.code}: a token is [system]|[code], got {raw!r}")
    system, code = parts
    if not system and not code:
        raise _ValueError(f"{param.code}: empty token")
    return TokenValue(system or None, code or None, has_system=True)


def _string_value(param: SearchParamDef, modifier: str | None, raw: str) -> StringValue:
    text = unescape(raw)
    return StringValue(text, normalize_text(text))


def _date_value(param: SearchParamDef, modifier: str | None, raw: str) -> DateValue:
    text = unescape(raw)
    if " " in text:  # an unencoded `+01:00` arrives as a space after URL decoding
        text = text.replace(" ", "+")
    found = date_range(text)
    if found is None:
        raise _ValueError(f"{param.code}: {raw!r} is not a valid date/dateTime")
    return DateValue(*found)


def _number(param: SearchParamDef, raw: str) -> NumberValue:
    parsed = parse_decimal(raw)
    if parsed is None:
        raise _ValueError(f"{param.code}: {raw!r} is not a number")
    low, high = precision_range(parsed)
    return NumberValue(float(parsed), low, high)


def _number_value(param: SearchParamDef, modifier: str | None, raw: str) -> NumberValue:
    return _number(param, unescape(raw))


def _quantity_value(param: SearchParamDef, modifier: str | None, raw: str) -> QuantityValue:
    parts = [unescape(part) for part in split_unescaped(raw, "|")]
    if len(parts) not in {1, 3}:
        raise _ValueError(f"{param.code}: a quantity is number[|system|code], got {raw!r}")
    number = _number(param, parts[0])
    if len(parts) == 1:
        return QuantityValue(number, None, None)
    return QuantityValue(number, parts[1] or None, parts[2] or None)


def _reference_value(param: SearchParamDef, modifier: str | None, raw: str) -> Any:
    if modifier == "identifier":
        return _token_value(param, None, raw)
    text = unescape(raw)
    if "://" in text or text.startswith("urn:"):
        return ReferenceValue(None, None, text.split("|")[0])
    parts = text.split("/")
    if len(parts) == 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 1:
        return ReferenceValue(modifier, parts[0], None)
    if len(parts) == 2 and parts[0] and parts[1]:
        if modifier is not None and parts[0] != modifier:
            raise _ValueError(f"{param.code}:{modifier} does not match {parts[0]}")
        return ReferenceValue(parts[0], parts[1], None)
    raise _ValueError(f"{param.code}: {raw!r} is not [Type/]id or an absolute URL")


def _uri_value(param: SearchParamDef, modifier: str | None, raw: str) -> UriValue:
    return UriValue(unescape(raw))


_VALUE_PARSERS = {
    "token": _token_value,
    "string": _string_value,
    "date": _date_value,
    "number": _number_value,
    "quantity": _quantity_value,
    "reference": _reference_value,
    "uri": _uri_value,
}
