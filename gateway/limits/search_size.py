"""Pipeline stage: bound the size of a query before it reaches the database.

Without it, 10,000 OR values become a 10,000-term SQL expression (SQLite refuses trees deeper than 1,000; on
PostgreSQL it is merely slow) and 1,000 `_sort` keys exceed the ORDER BY limit. The limits hold for every
interaction that carries parameters (search, conditional create/update/delete), from HTTP and Bundle entries
alike, and are refused with 400 `too-costly` naming the parameter."""

from __future__ import annotations

from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Handler

MAX_SORT_KEYS = 10


class SearchSizeLimits:
    def __init__(self, max_params: int, max_or_values: int) -> None:
        self.max_params, self.max_or_values = max_params, max_or_values

    def __call__(self, scope: RequestScope, it: Interaction, following: Handler) -> Result:
        check_search_size(it.params, self.max_params, self.max_or_values)
        return following(scope, it)


def check_search_size(params: list[tuple[str, str]], max_params: int, max_or_values: int) -> None:
    if len(params) > max_params:
        raise FhirError(400, "too-costly", f"the query has {len(params)} parameters; at most {max_params} are allowed")
    for name, value in params:
        limit = MAX_SORT_KEYS if name == "_sort" else max_or_values
        values = value.count(",") + 1
        if values > limit:
            raise FhirError(400, "too-costly",
                            f"parameter '{name}' has {values} comma-separated values; at most {limit} are allowed",
                            [name])
