"""The search parameters the gateway knows, per resource type, read from the SearchParameter resources of the
loaded packages (R4 core, later Nictiz): nothing is hand-listed except where the storage answers a parameter
itself (`_id`, `_lastUpdated` are columns of the `resource` table).

Expressions are compiled lazily, the first time a resource type is indexed or searched, and then kept: a
gateway that only ever sees a dozen resource types never compiles the other 130.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from conformance.packages import PackageSet
from conformance.typemodel import TypeModel
from gateway.search.expressions import CompiledExpression, compile_expression

SUPPORTED_TYPES = frozenset({"token", "string", "date", "reference", "quantity", "uri", "number"})

# Modifiers per parameter type that the SQL layer implements (`missing` everywhere); R4 search §3.1.1.5.
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"missing", "exact", "contains"}),
    "token": frozenset({"missing", "not", "text", "of-type"}),
    "reference": frozenset({"missing", "identifier"}),  # plus `:[type]`, checked against the targets
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "uri": frozenset({"missing", "above", "below"}),
}

# Parameters answered by columns of the `resource` table rather than by index rows.
RESOURCE_COLUMNS = {"_id": "id", "_lastUpdated": "last_updated"}
_ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})


@dataclass(frozen=True)
class SearchParamDef:
    """One search parameter as it applies to one resource type (or to all, for `resource_type` None)."""

    code: str
    type: str
    url: str
    expression: str | None
    description: str
    resource_type: str | None
    targets: frozenset[str] = frozenset()  # reference parameters: allowed target resource types
    modifiers: frozenset[str] = frozenset()
    multiple_or: bool = True
    multiple_and: bool = True
    column: str | None = None  # `resource` table column for `_id` / `_lastUpdated`
    extractor: CompiledExpression | None = field(default=None, compare=False, repr=False)

    @property
    def supported(self) -> bool:
        return self.type in SUPPORTED_TYPES and (self.column is not None or self.extractor is not None)

    @property
    def indexed(self) -> bool:
        """Whether values of this parameter are stored in idx_* tables (not answered by a column)."""
        return self.supported and self.column is None


class SearchParameterRegistry:
    """Search parameters per resource type with compiled extractors: one source for searching and indexing."""

    def __init__(self, packages: PackageSet, model: TypeModel | None = None) -> None:
        self.model = model if model is not None else TypeModel.from_packages(packages)
        self.resource_types = frozenset(self.model.resource_types) or frozenset(packages.resource_types())
        self._raw: dict[str, dict[str, dict[str, Any]]] = {}  # base type -> code -> SearchParameter
        self._common: dict[str, dict[str, Any]] = {}  # code -> SearchParameter on Resource/DomainResource
        self._domain_only: set[str] = (
            set()
        )  # codes based on DomainResource (not for Bundle, Binary, Parameters)
        for definition in packages.of_type("SearchParameter"):
            self._add_raw(definition)
        self._compiled: dict[str | None, dict[str, SearchParamDef]] = {}
        self._indexed: dict[str, list[SearchParamDef]] = {}
        self._lock = threading.Lock()

    def _add_raw(self, definition: dict[str, Any]) -> None:
        code = definition.get("code")
        if not isinstance(code, str) or definition.get("status") == "retired":
            return
        for base in definition.get("base") or ():
            if base in _ABSTRACT_BASES:
                self._common.setdefault(code, definition)  # first loaded package wins
                if base == "DomainResource":
                    self._domain_only.add(code)
            else:
                self._raw.setdefault(base, {}).setdefault(code, definition)

    # -- lookups -----

    def params_for(self, resource_type: str | None) -> dict[str, SearchParamDef]:
        """All parameters (supported or not) by code; `None` gives the parameters common to all types."""
        compiled = self._compiled.get(resource_type)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(resource_type)
                if compiled is None:
                    compiled = self._compile(resource_type)
                    self._compiled[resource_type] = compiled
        return compiled

    def get(self, resource_type: str | None, code: str) -> SearchParamDef | None:
        return self.params_for(resource_type).get(code)

    def indexed_params(self, resource_type: str) -> list[SearchParamDef]:
        """The parameters whose values `extract_index_rows` stores for this type (computed once per type)."""
        found = self._indexed.get(resource_type)
        if found is None:
            found = [param for param in self.params_for(resource_type).values() if param.indexed]
            self._indexed[resource_type] = found
        return found

    def _compile(self, resource_type: str | None) -> dict[str, SearchParamDef]:
        result: dict[str, SearchParamDef] = {}
        is_domain = resource_type not in {None, "Bundle", "Binary", "Parameters"}
        for code, definition in self._common.items():
            if code in self._domain_only and not is_domain:
                continue
            result[code] = self._definition(definition, resource_type, code)
        if resource_type is not None:
            for code, definition in self._raw.get(resource_type, {}).items():
                result.setdefault(code, self._definition(definition, resource_type, code))
        return result

    def _definition(self, raw: dict[str, Any], resource_type: str | None, code: str) -> SearchParamDef:
        param_type = raw.get("type", "")
        expression = raw.get("expression")
        column = RESOURCE_COLUMNS.get(code)
        extractor = None
        if param_type in SUPPORTED_TYPES and column is None and expression and resource_type is not None:
            extractor = compile_expression(expression, resource_type, self.model)
        targets = frozenset(raw.get("target") or ())
        if "Resource" in targets:
            targets = self.resource_types
        return SearchParamDef(
            code=code,
            type=param_type,
            url=raw.get("url", ""),
            expression=expression,
            description=raw.get("description", ""),
            resource_type=resource_type,
            targets=targets,
            modifiers=MODIFIERS.get(param_type, frozenset()),
            multiple_or=raw.get("multipleOr", True) is not False,
            multiple_and=raw.get("multipleAnd", True) is not False,
            column=column,
            extractor=extractor,
        )

    # -- CapabilityStatement ---------------------------------------------------------------------------------

    def capability_params(self, resource_type: str | None) -> list[dict[str, Any]]:
        """`CapabilityStatement.rest.resource.searchParam` entries: the supported parameters of a type."""
        entries = []
        for code, param in sorted(self.params_for(resource_type).items()):
            if not param.supported:
                continue
            entry: dict[str, Any] = {"name": code, "definition": param.url, "type": param.type}
            if param.description:
                entry["documentation"] = param.description
            entries.append(entry)
        return entries

    def unsupported_params(self, resource_type: str | None) -> list[str]:
        """Codes defined for the type that the gateway does not search on (composite, special, ...)."""
        return sorted(code for code, param in self.params_for(resource_type).items() if not param.supported)

    def include_names(self, resource_type: str) -> list[str]:
        """`searchInclude` values: `Type:param` for every supported reference parameter of the type."""
        return [
            f"{resource_type}:{code}"
            for code, param in sorted(self.params_for(resource_type).items())
            if param.type == "reference" and param.supported
        ]

    def revinclude_names(self, resource_type: str) -> list[str]:
        """`searchRevInclude` values: reference parameters of other types that can point at this type."""
        by_target, to_any = self._reference_params_by_target
        return [name for _, name in sorted(by_target.get(resource_type, []) + to_any)]

    @cached_property
    def _reference_params_by_target(self) -> tuple[dict[str, list[tuple[int, str]]], list[tuple[int, str]]]:
        """(target type -> [(position, `Type:param`)], the parameters that target any `Resource`), built once:
        the CapabilityStatement asks for every type, and scanning every parameter per type is quadratic."""
        by_target: dict[str, list[tuple[int, str]]] = {}
        to_any: list[tuple[int, str]] = []
        position = 0
        for source_type in sorted(self._raw):
            if source_type not in self.resource_types:
                continue
            for code, raw in sorted(self._raw[source_type].items()):
                if raw.get("type") != "reference":
                    continue
                position += 1
                targets = set(raw.get("target") or ())
                if "Resource" in targets:
                    to_any.append((position, f"{source_type}:{code}"))
                    continue
                for target in targets:
                    by_target.setdefault(target, []).append((position, f"{source_type}:{code}"))
        return by_target, to_any
