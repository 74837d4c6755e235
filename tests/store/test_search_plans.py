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
        indexes = {index["name"]: index["column_names"] for index in inspect(engine).get_indexes("idx_token")}
        assert indexes["ix_idx_token_param_code_key"] == ["param", "code", "res_key"]
    sqlite_engine.dispose()


def _load_slots(engine: Engine) -> None:
    """SLOTS Slot-like resources: a third free, twelve categories, one start date each (server-side rows)."""
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO resource (res_key, type, id, version, last_updated, deleted, body) "
            "SELECT i, 'Slot', 's' || i, 1, '2026-01-01T00:00:00.000000+00:00', false, NULL "
            "FROM generate_series(1, :n) i"), {"n": SLOTS})
        connection.execute(text(
            "INSERT INTO idx_token (res_key, param, system, code, text) "
            "SELECT i, 'status', NULL, CASE WHEN i % 3 = 0 THEN 'free' ELSE 'busy' END, NULL "
            "FROM generate_series(1, :n) i UNION ALL "
            "SELECT i, 'service-type', 'http://example.org/cat', 'c' || (i % 12), NULL FROM generate_series(1, :n) i"),
            {"n": SLOTS})
        connection.execute(text(
            "INSERT INTO idx_date (res_key, param, low, high) SELECT i, 'start', '2026-06-01T00:00:00.000000', "
            "'2026-06-01T00:00:00.999999' FROM generate_series(1, :n) i"), {"n": SLOTS})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def _plan(node: dict) -> Iterator[dict]:
    yield node
    for child in node.get("Plans", []):
        yield from _plan(child)


def test_postgres_page_walks_in_key_order_and_stops_at_count(pg_engine: Engine, registry) -> None:  # type: ignore[no-untyped-def]
    _load_slots(pg_engine)
    query = _slot_query(registry)
    statement = search_sql.page_statement(query, limit=11)
    with pg_engine.connect() as connection:
        keys = search_sql.match_keys(connection, query, limit=11)
        compiled = statement.compile(dialect=pg_engine.dialect, compile_kwargs={"literal_binds": True})
        plan = connection.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}")).scalar_one()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    # matches: free (i % 3 == 0) and category c3 (i % 12 == 3): i = 3, 15, 27, ... in key order
    assert keys == [3 + 12 * n for n in range(11)]
    nodes = list(_plan(plan[0]["Plan"]))
    assert nodes[0]["Node Type"] == "Limit"
    assert not [n for n in nodes if n["Node Type"] in {"Sort", "Incremental Sort", "Hash", "HashAggregate"}], nodes
    # stopped early: no node produced anywhere near all SLOTS / 36 matches, let alone every free Slot
    assert max(n["Actual Rows"] * n.get("Actual Loops", 1) for n in nodes) < SLOTS // 10
