"""SearchQuery -> SQLAlchemy Core statements over the `resource` and `idx_*` tables.

Each filter becomes `resource.res_key IN (SELECT res_key FROM idx_x WHERE param = ... AND <value match>)`
(NOT IN for `:not` and `:missing=true`), so filters AND together and the OR-values of one filter OR inside one
subquery. Only portable constructs are used (IN/EXISTS subqueries, LIKE with escapes, string comparison of
fixed-width dates), so the same statement runs on SQLite and PostgreSQL.

Comparison semantics (R4 search §3.1.1.4): dates are ranges [low, high] on both sides; numbers and
quantities compare the stored value with the search value, `eq`/`ne` using the search value's implicit
precision range (`100` = [99.5, 100.5)). Stored dates are exactly 26 characters
(`YYYY-MM-DDTHH:MM:SS.ffffff`; `resource.last_updated` adds `+00:00`), so `x <= H` is written `x < H+1µs`,
which holds for both forms.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.sql.visitors import InternalTraversal

from gateway.search import dates
from gateway.search.query import (
    DateValue,
    Filter,
    Include,
    MissingValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
)
from gateway.store.schema import (
    INDEX_TABLES,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)

INDEX_BY_TYPE = INDEX_TABLES
MAX_INCLUDE_ROUNDS = 5
_AFTER_MAX = dates.MAX_DATE + "9"  # sorts after every stored date


class unindexed(ColumnElement):  # noqa: N801 - used like a SQL function
    """`column` in a condition that must not pick the index the database would otherwise drive by.

    SQLite plans without statistics (no ANALYZE): on `type = 'Slot'` or `param = 'status'` it walks every row
    of that value instead of the few rows of the driving filter, so there it renders as `column || ''`, which
    no index serves. PostgreSQL has statistics and needs them: the expression would hide the column from them
    (estimated 1 row instead of 85,000), and it then materialises and sorts every match instead of walking in
    key order and stopping at _count. There it renders as the plain column."""

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement) -> None:
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self) -> list:  # type: ignore[override]
        return self.column._from_objects


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    return compiler.process(element.column.concat(""), **kw)


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler, **kw) -> str:  # type: ignore[no-untyped-def]
    return compiler.process(element.column, **kw)


# -- public API -----


def match_statement(query: SearchQuery, max_key: int | None = None) -> Select:
    """SELECT res_key of current, non-deleted resources matching every filter (unordered)."""
    return select(resource.c.res_key).where(*_conditions(query, max_key))


def page_statement(
    query: SearchQuery,
    limit: int | None = None,
    after_key: int | None = None,
    offset: int = 0,
    max_key: int | None = None,
) -> Select:
    """One page: keyset (`res_key > after_key`, ordered by res_key) without `_sort`; with `_sort` ordered by
    the sort keys then res_key, paged by offset (within `res_key <= max_key`, the snapshot of page one)."""
    statement = match_statement(query, max_key)
    if query.sort:
        statement = statement.order_by(*_order_by(query.sort), resource.c.res_key)
        if offset:
            statement = statement.offset(offset)
    else:
        if after_key is not None:
            statement = statement.where(resource.c.res_key > after_key)
        statement = statement.order_by(resource.c.res_key)
        if offset:
            statement = statement.offset(offset)
    if limit is not None:
        statement = statement.limit(limit)
    return statement


def match_keys(
    connection: Connection,
    query: SearchQuery,
    limit: int | None = None,
    offset: int = 0,
    after_key: int | None = None,
    max_key: int | None = None,
) -> list[int]:
    """res_keys of one page of matches, in result order."""
    statement = page_statement(query, limit=limit, after_key=after_key, offset=offset, max_key=max_key)
    return [row[0] for row in connection.execute(statement)]


# the stored columns of a match, in `StoredResource`'s field order
STORED_COLUMNS = (resource.c.res_key, resource.c.type, resource.c.id, resource.c.version, resource.c.last_updated,
                  resource.c.deleted, resource.c.body)


def match_rows(connection: Connection, query: SearchQuery, limit: int | None = None,
               after_key: int | None = None) -> list[tuple]:
    """One keyset page of matches (no `_sort`) with their stored columns (`STORED_COLUMNS`), in result order: the
    page and its resources in one statement instead of the keys and then a lookup of every key (measured on
    1M Slots: the lookup of 50 keys cost 1.3 ms of CPU in the gateway per search, and a second round trip)."""
    assert not query.sort, "sorted pages use match_keys (offset paging inside a snapshot)"
    statement, values = _ROW_STATEMENTS.get(query, limit, after_key is not None)
    if after_key is not None:
        values = {**values, "after_key": after_key}
    return [tuple(row) for row in connection.execute(statement, values)]


class _StatementCache:
    """Built keyset-page statements by query shape — type, `_type`s, filters with their values except dates, page
    size, whether a cursor is given — with the dates and the cursor's key as bound parameters. Building a
    statement costs more than running it (1M Slots, `status` + `service-type` + `start`: ~1.5 ms of CPU to
    construct and cache-key the SQLAlchemy statement, ~0.7 ms to execute it and read 51 rows), and the same search
    repeats: a screen polling it, the next page, and clients asking "from now" (`start=ge<now>`: the same search
    with another date each time). Only statements are kept, never results: a statement is a pure function of the
    shape and its bound values a pure function of the query's dates, so reusing it is exact. Queries with an `ap`
    date prefix are not kept (their range depends on the current time)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple, Select] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, query: SearchQuery, limit: int | None, paged: bool) -> tuple[Select, dict[str, str]]:
        """The statement and the values of its bound dates."""
        if _depends_on_now(query.filters):
            return self._build(query, limit, paged), {}
        values: dict[str, str] = {}
        filters = tuple(_dates_bound(item, values) for item in query.filters)
        key = (query.resource_type, tuple(query.types), filters, limit, paged)
        if not _hashable(key):
            return self._build(query, limit, paged), {}
        with self._lock:
            statement = self._items.get(key)
            if statement is not None:
                self._items.move_to_end(key)
                return statement, values
        statement = self._build(replace(query, filters=list(filters)), limit, paged)
        with self._lock:
            self._items[key] = statement
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return statement, values

    @staticmethod
    def _build(query: SearchQuery, limit: int | None, paged: bool) -> Select:
        statement = match_statement(query)
        if paged:
            statement = statement.where(resource.c.res_key > bindparam("after_key", type_=Integer))
        statement = statement.order_by(resource.c.res_key)
        if limit is not None:
            statement = statement.limit(limit)
        return statement.with_only_columns(*STORED_COLUMNS)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class _BoundDate:
    """A date search value as two bound parameters of a kept statement: `<name>_low`, the low end of its range,
    and `<name>_after`, the smallest stored date after its high end (see `_date_bounds`)."""

    name: str


def _dates_bound(item: Filter, values: dict[str, str]) -> Filter:
    """`item` with each date value replaced by a `_BoundDate` (numbered in order), whose values go into `values`."""
    bound = []
    for value in item.values:
        if isinstance(value.value, DateValue):
            name = f"date_{len(values) // 2}"
            values[f"{name}_low"], values[f"{name}_after"] = value.value.low, _after(value.value.high)
            value = replace(value, value=_BoundDate(name))
        bound.append(value)
    chain = tuple((target_type, _dates_bound(inner, values)) for target_type, inner in item.chain)
    return replace(item, values=tuple(bound), chain=chain)


def _hashable(key: tuple) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _depends_on_now(filters: list[Filter] | tuple[Filter, ...]) -> bool:
    """`ap` on a date widens the range by its distance from now: such a statement must be built per request."""
    return any(value.prefix == "ap" for item in filters for value in item.values) or any(
        _depends_on_now([inner]) for item in filters for _, inner in item.chain)


_ROW_STATEMENTS = _StatementCache()


def count_statement(query: SearchQuery) -> Select:
    return select(func.count()).select_from(match_statement(query).subquery())


def count_matches(connection: Connection, query: SearchQuery) -> int:
    """The number of matches (`_total=accurate`, `_summary=count`)."""
    return int(connection.execute(count_statement(query)).scalar_one())


def max_key(connection: Connection) -> int:
    """The highest res_key now: the snapshot bound for offset paging of sorted results."""
    return int(connection.execute(select(func.coalesce(func.max(resource.c.res_key), 0))).scalar_one())


def include_keys(connection: Connection, query: SearchQuery, keys: list[int], limit: int = 10_000) -> list[int]:
    """res_keys of `_include`d and `_revinclude`d resources for the matches `keys` (excluding those), sorted.

    Plain includes apply to the matches; `:iterate` ones also to what was included, repeatedly, until nothing
    new turns up (at most MAX_INCLUDE_ROUNDS rounds)."""
    specs = [(spec, False) for spec in query.includes] + [(spec, True) for spec in query.revincludes]
    if not specs or not keys:
        return []
    seen = set(keys)
    found: set[int] = set()
    frontier = list(keys)
    for round_number in range(MAX_INCLUDE_ROUNDS):
        new: set[int] = set()
        for spec, reverse in specs:
            if round_number > 0 and not spec.iterate:
                continue
            for chunk in _chunks(frontier, 500):
                statement = (revinclude_statement if reverse else include_statement)(spec, chunk)
                new.update(row[0] for row in connection.execute(statement.limit(limit)))
        new -= seen
        if not new:
            break
        seen |= new
        found |= new
        if len(found) >= limit:
            break
        frontier = sorted(new)
    return sorted(found)[:limit]


def include_statement(spec: Include, keys: list[int]) -> Select:
    """res_keys of resources referenced by `spec.source_type` resources among `keys` via `spec.param`."""
    source = resource.alias("src")
    target = resource.alias("tgt")
    conditions = [
        idx_reference.c.res_key.in_(keys),
        source.c.res_key == idx_reference.c.res_key,
        source.c.type == spec.source_type,
        target.c.type == idx_reference.c.target_type,
        target.c.id == idx_reference.c.target_id,
        target.c.deleted.is_(False),
    ]
    if spec.param is not None:
        conditions.append(idx_reference.c.param == spec.param)
    if spec.target_type is not None:
        conditions.append(target.c.type == spec.target_type)
    return select(target.c.res_key).distinct().where(*conditions)


def revinclude_statement(spec: Include, keys: list[int]) -> Select:
    """res_keys of `spec.source_type` resources whose `spec.param` refers to one of `keys`."""
    source = resource.alias("src")
    target = resource.alias("tgt")
    conditions = [
        target.c.res_key.in_(keys),
        idx_reference.c.target_type == target.c.type,
        idx_reference.c.target_id == target.c.id,
        source.c.res_key == idx_reference.c.res_key,
        source.c.type == spec.source_type,
        source.c.deleted.is_(False),
    ]
    if spec.param is not None:
        conditions.append(idx_reference.c.param == spec.param)
    if spec.target_type is not None:
        conditions.append(target.c.type == spec.target_type)
    return select(source.c.res_key).distinct().where(*conditions)


# -- filters -----


def _conditions(query: SearchQuery, max_key: int | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [resource.c.deleted.is_(False)]
    driver = _driving_filter(query.filters)
    if query.resource_type is not None:
        # With a driving filter, keep SQLite off the type index: without ANALYZE statistics it would scan every
        # resource of the type instead of looking up the filter's few keys (see `unindexed`).
        type_column = unindexed(resource.c.type) if driver is not None else resource.c.type
        conditions.append(type_column == query.resource_type)
    elif query.types:
        conditions.append(resource.c.type.in_(query.types))
    if max_key is not None:
        conditions.append(resource.c.res_key <= max_key)
    conditions.extend(
        filter_condition(item, resource.c.res_key, resource, drives=item is driver) for item in query.filters
    )
    return conditions


_SELECTIVITY = {"reference": 0, "token": 1, "uri": 2, "string": 2, "date": 3, "number": 3, "quantity": 3}


def _driving_filter(filters: list[Filter]) -> Filter | None:
    """The filter most likely to match few rows: it becomes an `IN (subquery)` the database drives the search
    from; every other filter is a correlated `EXISTS` checked on those candidates only. (SQLite otherwise
    materialises every IN list — 10,000 rows for `code=...` — before intersecting.)"""
    candidates = [item for item in filters if item.param.column is None and item.modifier not in {"missing", "not"}]
    if not candidates:
        return None
    return min(candidates, key=lambda item: (0 if item.chain else 1, _SELECTIVITY.get(item.param.type, 4)))


def filter_condition(item: Filter, key: ColumnElement[int], table=resource, drives: bool = True) -> ColumnElement[bool]:  # noqa: ANN001,E501
    """The condition that the resource with res_key `key` (a row of `table`) satisfies `item`: an `IN` list
    when this filter drives the search, else a correlated `EXISTS` on the candidate's own index rows."""
    if item.chain:
        return or_(*(_chain_condition(item, target_type, inner, key) for target_type, inner in item.chain))
    if item.param.column is not None:
        return _column_condition(item, table)
    index = idx_token if item.modifier in {"identifier", "of-type"} else INDEX_BY_TYPE[item.param.type]
    # correlate(None): a subquery on idx_reference nested in a chain over idx_reference stays independent
    in_index = select(index.c.res_key).where(index.c.param == item.index_param).correlate(None)
    if item.modifier == "missing":
        (missing,) = item.values
        assert isinstance(missing.value, MissingValue)
        return key.not_in(in_index) if missing.value.missing else key.in_(in_index)
    alternatives = or_(*(_value_condition(item, index, value.prefix, value.value) for value in item.values))
    if item.modifier == "not":
        return key.not_in(in_index.where(alternatives))
    if not drives:
        # SQLite: look the candidate's rows up by res_key, not by scanning every row of the parameter
        return exists().where(index.c.res_key == key, unindexed(index.c.param) == item.index_param, alternatives)
    return key.in_(in_index.where(alternatives))


def _chain_condition(item: Filter, target_type: str, inner: Filter, key: ColumnElement[int]) -> ColumnElement[bool]:
    """`subject:Patient.name=x`: a reference row to a current Patient that itself matches `name=x`."""
    target = resource.alias()  # anonymous: a chain may pass the same type twice (nested chains)
    linked = (
        select(idx_reference.c.res_key)
        .where(
            idx_reference.c.param == item.param.code,
            idx_reference.c.target_type == target_type,
            target.c.type == target_type,
            target.c.id == idx_reference.c.target_id,
            target.c.deleted.is_(False),
            filter_condition(inner, target.c.res_key, target),
        )
        .correlate(None)
    )
    return key.in_(linked)


def _column_condition(item: Filter, table) -> ColumnElement[bool]:  # noqa: ANN001
    """`_id` and `_lastUpdated`, answered by columns of the resource table."""
    if item.modifier == "missing":
        (missing,) = item.values
        assert isinstance(missing.value, MissingValue)
        return false() if missing.value.missing else true()  # every resource has an id and a lastUpdated
    column = table.c[item.param.column]
    if item.param.column == "id":
        ids = [value.value.code for value in item.values]
        return column.not_in(ids) if item.modifier == "not" else column.in_(ids)
    return or_(*(_date_condition(column, column, value.prefix, value.value) for value in item.values))


def _value_condition(item: Filter, index, prefix: str, value: object) -> ColumnElement[bool]:  # noqa: ANN001
    if isinstance(value, TokenValue):
        return _token_condition(index, value)
    if isinstance(value, StringValue):
        return _string_condition(item.modifier, value)
    if isinstance(value, DateValue | _BoundDate):
        return _date_condition(idx_date.c.low, idx_date.c.high, prefix, value)
    if isinstance(value, QuantityValue):
        return _quantity_condition(prefix, value)
    if isinstance(value, NumberValue):
        return _number_condition(idx_number.c.value, prefix, value)
    if isinstance(value, ReferenceValue):
        return _reference_condition(value)
    if isinstance(value, UriValue):
        return _uri_condition(item.modifier, value)
    raise TypeError(f"unexpected search value {value!r}")


def _token_condition(index, value: TokenValue) -> ColumnElement[bool]:  # noqa: ANN001
    if value.text is not None:
        return or_(
            index.c.text.startswith(value.text, autoescape=True),
            index.c.text.contains(" " + value.text, autoescape=True),
        )
    conditions = []
    if value.code is not None:
        conditions.append(index.c.code == value.code)
    if value.has_system:
        conditions.append(index.c.system == value.system if value.system is not None else index.c.system.is_(None))
    return and_(*conditions)


def _string_condition(modifier: str | None, value: StringValue) -> ColumnElement[bool]:
    if modifier == "exact":
        return idx_string.c.exact == value.text
    if modifier == "contains":
        return idx_string.c.value.contains(value.normalized, autoescape=True)
    return idx_string.c.value.startswith(value.normalized, autoescape=True)


def _after(moment: str) -> str:
    """The smallest stored date string greater than `moment`: `x <= moment` iff `x < _after(moment)`."""
    return _AFTER_MAX if moment >= dates.MAX_DATE else dates.shift(moment, timedelta(microseconds=1))


def _date_bounds(value: DateValue | _BoundDate) -> tuple[object, object]:
    """The search range [L, H] as (L, the smallest stored date after H): values, or a kept statement's parameters."""
    if isinstance(value, _BoundDate):
        return bindparam(f"{value.name}_low", type_=String), bindparam(f"{value.name}_after", type_=String)
    return value.low, _after(value.high)


def _date_condition(low, high, prefix: str, value: DateValue | _BoundDate) -> ColumnElement[bool]:  # noqa: ANN001
    """Stored range [low, high] against search range [L, H]."""
    lo, hi_next = _date_bounds(value)
    if prefix == "eq":
        return and_(low >= lo, high < hi_next)
    if prefix == "ne":
        return or_(low < lo, high >= hi_next)
    if prefix == "gt":
        return high >= hi_next
    if prefix == "ge":
        return high >= lo
    if prefix == "lt":
        return low < lo
    if prefix == "le":
        return low < hi_next
    if prefix == "sa":
        return low >= hi_next
    if prefix == "eb":
        return high < lo
    # ap: overlap with the search range widened by 10% of its distance from now (at least a day); never kept
    assert isinstance(value, DateValue)
    now = datetime.now(UTC).replace(tzinfo=None)
    margin = max(timedelta(days=1), dates.distance(value.low, now) / 10)
    return and_(low < _after(dates.shift(value.high, margin)), high >= dates.shift(value.low, -margin))


def _number_condition(column, prefix: str, value: NumberValue) -> ColumnElement[bool]:  # noqa: ANN001
    if prefix == "eq":
        return and_(column >= value.low, column < value.high)
    if prefix == "ne":
        return or_(column < value.low, column >= value.high)
    if prefix == "gt":
        return column > value.value
    if prefix == "ge":
        return column >= value.value
    if prefix == "lt":
        return column < value.value
    if prefix == "le":
        return column <= value.value
    if prefix == "sa":
        return column >= value.high
    if prefix == "eb":
        return column < value.low
    margin = max(abs(value.value) / 10, (value.high - value.low) / 2)  # ap: ±10%
    return and_(column >= value.value - margin, column <= value.value + margin)


def _quantity_condition(prefix: str, value: QuantityValue) -> ColumnElement[bool]:
    conditions = [_number_condition(idx_quantity.c.value, prefix, value.number)]
    if value.system is not None:
        conditions.append(idx_quantity.c.system == value.system)
    if value.code is not None:
        if value.system is not None:
            conditions.append(idx_quantity.c.code == value.code)
        else:
            conditions.append(or_(idx_quantity.c.code == value.code, idx_quantity.c.unit == value.code))
    return and_(*conditions)


def _reference_condition(value: ReferenceValue) -> ColumnElement[bool]:
    if value.url is not None:
        return idx_reference.c.url == value.url
    conditions = [idx_reference.c.target_id == value.target_id]
    if value.target_type is not None:
        conditions.append(idx_reference.c.target_type == value.target_type)
    return and_(*conditions)


def _uri_condition(modifier: str | None, value: UriValue) -> ColumnElement[bool]:
    if modifier == "below":
        return idx_uri.c.value.startswith(value.uri, autoescape=True)
    if modifier == "above":
        return idx_uri.c.value.in_(_uri_prefixes(value.uri))
    return idx_uri.c.value == value.uri


def _uri_prefixes(uri: str) -> list[str]:
    """`http://a.org/fhir/ValueSet/x` -> itself and each shorter path prefix, down to `http://a.org`."""
    scheme, sep, rest = uri.partition("://")
    segments = rest.split("/")
    head = scheme + sep if sep else ""
    return [head + "/".join(segments[:count]) for count in range(len(segments), 0, -1)]


# -- sorting -----


_SORT_COLUMN = {
    "string": "value",
    "token": "code",
    "reference": "target_id",
    "number": "value",
    "quantity": "value",
    "uri": "value",
}


def _order_by(keys: list[SortKey]) -> list[ColumnElement]:
    """ORDER BY terms; resources without a value sort last in both directions, on both databases."""
    terms: list[ColumnElement] = []
    for key in keys:
        param = key.param
        if param.column is not None:
            column: ColumnElement = resource.c[param.column]
            terms.append(column.desc() if key.descending else column.asc())
            continue
        index = INDEX_BY_TYPE[param.type]
        if param.type == "date":
            source: ColumnClause = index.c.high if key.descending else index.c.low
        else:
            source = index.c[_SORT_COLUMN[param.type]]
        aggregate = func.max(source) if key.descending else func.min(source)
        value = (
            select(aggregate)
            .where(index.c.res_key == resource.c.res_key, index.c.param == param.code)
            .scalar_subquery()
        )
        terms.append(value.is_(None).asc())
        terms.append(value.desc() if key.descending else value.asc())
    return terms


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


__all__ = [
    "count_matches",
    "count_statement",
    "filter_condition",
    "include_keys",
    "include_statement",
    "match_keys",
    "match_rows",
    "match_statement",
    "max_key",
    "page_statement",
    "revinclude_statement",
    "unindexed",
]
