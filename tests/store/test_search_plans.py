"""How search statements reach the database: planner hints per dialect, no generic plans on PostgreSQL, and
on PostgreSQL a page of a search with many matches walks in result order and stops at the page size instead of
collecting and sorting every match (measured on 1M Slots: 7.5 s -> a few ms; see bench/capacity.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite

from gateway.search.query import SearchQuery
from gateway.store import search_sql
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from gateway.store.schema import idx_date, idx_token
from tests.pg import fresh_database

SLOTS = 30_000


@pytest.fixture(scope="module")
def registry(packages):  # type: ignore[no-untyped-def]
    from gateway.search.definitions import SearchParameterRegistry

    return SearchParameterRegistry(packages)


def _slot_query(registry, count: int = 10) -> SearchQuery:  # type: ignore[no-untyped-def]
    from gateway.search.query import parse_search

    query = parse_search("Slot", [("status", "free"), ("service-type", "http://example.org/cat|c3"),
                                  ("start", "ge2026-01-01"), ("_count", str(count))], registry)
    assert query.errors == []
    return query


def test_planner_hints_render_per_dialect(registry) -> None:  # type: ignore[no-untyped-def]
    """SQLite (no statistics) is kept off the type/param indexes with `|| ''`; PostgreSQL gets plain columns,
    or its estimates collapse to one row and it sorts every match."""
    statement = search_sql.page_statement(_slot_query(registry), limit=11)
    literal = {"literal_binds": True}
    on_sqlite = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs=literal))
    on_postgres = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs=literal))
    assert "resource.type || ''" in on_sqlite and "idx_token.param || ''" in on_sqlite
    assert "|| ''" not in on_postgres
    assert "resource.type = 'Slot'" in on_postgres and "idx_token.param = 'service-type'" in on_postgres


def test_hints_take_part_in_the_statement_cache_key() -> None:
    """SQLAlchemy caches compiled SQL by cache key: a hint on another column must never reuse the SQL."""
    on_token = select(idx_token.c.res_key).where(search_sql.unindexed(idx_token.c.param) == "x")
    on_date = select(idx_date.c.res_key).where(search_sql.unindexed(idx_date.c.param) == "x")
    on_code = select(idx_token.c.res_key).where(search_sql.unindexed(idx_token.c.code) == "x")
    keys = {statement._generate_cache_key().key for statement in (on_token, on_date, on_code)}
    assert len(keys) == 3
    assert str(on_date.compile(dialect=sqlite.dialect())).endswith("WHERE idx_date.param || ? = ?")


@pytest.fixture(scope="module")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = create_database_engine(fresh_database(pg_url, "plans"))
    upgrade(engine)
    yield engine
    engine.dispose()


def test_postgres_connections_never_use_generic_plans(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        assert connection.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def test_migrations_create_the_key_ordered_token_index(pg_engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sqlite_engine = create_database_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(sqlite_engine)
    for engine in (pg_engine, sqlite_engine):
        indexes = {index["name"]: index for index in inspect(engine).get_indexes("idx_token")}
        assert indexes["ix_idx_token_param_code_key"]["column_names"] == ["param", "code", "res_key"]
    # PostgreSQL: the system rides along (not a key column: the order stays by res_key); SQLite has no INCLUDE
    pg_index = {index["name"]: index for index in inspect(pg_engine).get_indexes("idx_token")}
    assert pg_index["ix_idx_token_param_code_key"]["dialect_options"].get("postgresql_include") == ["system"]
    with pg_engine.connect() as connection:
        statistics = connection.execute(text(
            "SELECT stxname, stxkind::text, (SELECT array_agg(attname::text ORDER BY attname) FROM pg_attribute "
            "WHERE attrelid = stxrelid AND attnum = ANY(stxkeys)) FROM pg_statistic_ext "
            "WHERE stxrelid = 'idx_token'::regclass")).all()
    expected = ("st_idx_token_param_code_system", "{m}", ["code", "param", "system"])
    assert [tuple(row) for row in statistics] == [expected]
    sqlite_index = {index["name"]: index for index in inspect(sqlite_engine).get_indexes("idx_token")}
    assert not sqlite_index["ix_idx_token_param_code_key"].get("dialect_options", {}).get("sqlite_include")
    sqlite_engine.dispose()


def test_metadata_creates_what_the_migrations_create(pg_url: str) -> None:
    """`schema.metadata.create_all` (used by tests and tools) gives PostgreSQL the same included column and
    extended statistics as migration 0007."""
    from gateway.store.schema import metadata

    engine = create_database_engine(fresh_database(pg_url, "plans_metadata"))
    try:
        metadata.create_all(engine)
        index = {i["name"]: i for i in inspect(engine).get_indexes("idx_token")}["ix_idx_token_param_code_key"]
        assert index["column_names"] == ["param", "code", "res_key"]
        assert index["dialect_options"].get("postgresql_include") == ["system"]
        with engine.connect() as connection:
            names = connection.execute(text(
                "SELECT stxname FROM pg_statistic_ext WHERE stxrelid = 'idx_token'::regclass")).scalars().all()
        assert names == ["st_idx_token_param_code_system"]
    finally:
        engine.dispose()


def _load_slots(engine: Engine, free: str = "i % 3 = 0", category: str = "i % 12") -> None:
    """SLOTS Slot-like resources, one start date each (server-side rows): free where `free` holds and of category
    `category` (SQL over the key `i`): by default a third free and twelve categories."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO resource (res_key, type, id, version, last_updated, deleted, body) "
            "SELECT i, 'Slot', 's' || i, 1, '2026-01-01T00:00:00.000000+00:00', false, NULL "
            "FROM generate_series(1, :n) i"), {"n": SLOTS})
        connection.execute(text(
            "INSERT INTO idx_token (res_key, param, system, code, text) "
            f"SELECT i, 'status', NULL, CASE WHEN {free} THEN 'free' ELSE 'busy' END, NULL "
            "FROM generate_series(1, :n) i UNION ALL "
            f"SELECT i, 'service-type', 'http://example.org/cat', 'c' || ({category}), NULL "
            "FROM generate_series(1, :n) i"), {"n": SLOTS})
        connection.execute(text(
            "INSERT INTO idx_date (res_key, param, low, high) SELECT i, 'start', '2026-06-01T00:00:00.000000', "
            "'2026-06-01T00:00:00.999999' FROM generate_series(1, :n) i"), {"n": SLOTS})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))  # as autovacuum would: statistics and the visibility map


@pytest.fixture(scope="module")
def slots_engine(pg_engine: Engine) -> Engine:
    _load_slots(pg_engine)
    return pg_engine


def _plan(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan(child)


def _explain(engine: Engine, statement) -> list:  # type: ignore[no-untyped-def]
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as connection:
        plan = connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}")).scalar_one()
    return plan if isinstance(plan, list) else json.loads(plan)


def test_postgres_page_walks_in_key_order_and_stops_at_count(slots_engine: Engine, registry) -> None:  # type: ignore[no-untyped-def]
    pg_engine = slots_engine
    query = _slot_query(registry)
    statement = search_sql.page_statement(query, limit=11)
    with pg_engine.connect() as connection:
        keys = search_sql.match_keys(connection, query, limit=11)
    plan = _explain(pg_engine, statement)
    # matches: free (i % 3 == 0) and category c3 (i % 12 == 3): i = 3, 15, 27, ... in key order
    assert keys == [3 + 12 * n for n in range(11)]
    nodes = list(_plan(plan[0]["Plan"]))
    assert nodes[0]["Node Type"] == "Limit"
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort", "Hash", "HashAggregate"}], nodes
    # stopped early: no node produced anywhere near all SLOTS / 36 matches, let alone every free Slot
    assert max(n["Actual Rows"] * n.get("Actual Loops", 1) for n in nodes) < SLOTS // 10


UNIT = 26  # Slots per provider unit, as bench/capacity.py loads them: a unit's Slots share its category


@pytest.fixture(scope="module")
def units_engine(pg_url: str) -> Iterator[Engine]:
    """SLOTS Slots in units of UNIT (consecutive keys), the unit's category cycling over twelve, every third Slot
    of a unit free: status and category independent, as in the capacity benchmark."""
    engine = create_database_engine(fresh_database(pg_url, "plans_units"))
    upgrade(engine)
    _load_slots(engine, free=f"i % {UNIT} % 3 = 0", category=f"i / {UNIT} % 12")
    yield engine
    engine.dispose()


def test_postgres_walks_a_system_token_index_only_in_key_order(units_engine: Engine, registry) -> None:  # type: ignore[no-untyped-def]
    """`service-type=<system>|<code>` is walked in key order from the key-ordered token index alone: the system is
    included in it (migration 0007), so neither the table nor a per-candidate lookup of a Slot's token rows is
    needed to test it. On 1M Slots this lets PostgreSQL merge both token filters of the capacity search instead of
    looking up every free Slot's token rows (2,763 -> ~570 buffers, 1.65 -> 0.8 ms of backend CPU per page)."""
    query = _slot_query(registry)
    plan = _explain(units_engine, search_sql.page_statement(query, limit=11))
    nodes = list(_plan(plan[0]["Plan"]))
    service_type = [n for n in nodes if n.get("Relation Name") == "idx_token" and "service-type" in n.get(
        "Index Cond", "") + n.get("Filter", "")]
    assert len(service_type) == 1, nodes
    (scan,) = service_type
    assert scan["Node Type"] == "Index Only Scan" and scan["Index Name"] == "ix_idx_token_param_code_key", scan
    assert "system" in scan["Filter"] and scan["Actual Loops"] == 1, scan  # one walk, the system tested in the index
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort", "Hash", "HashAggregate"}], nodes
    with units_engine.connect() as connection:
        rows = search_sql.match_rows(connection, query, limit=11)
        keys = search_sql.match_keys(connection, query, limit=11)
    expected = [i for i in range(1, SLOTS + 1) if i // UNIT % 12 == 3 and i % UNIT % 3 == 0][:11]
    assert [row[0] for row in rows] == keys == expected
