"""Resource persistence: current and historical versions plus the search index, one transaction per write.

The store knows nothing about HTTP. It takes and returns canonical resource dicts (and the stored JSON
bytes, so reads can be served without re-serialising). Index rows come from an `indexer` callable
(resource dict -> {index kind: [row dict]}) supplied by the search package.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, Float, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import DBAPIError

from conformance import fhirjson
from gateway.store.engine import SingleStatements
from gateway.store.locks import advisory_write_lock
from gateway.store.schema import INDEX_TABLES, resource, resource_version

Indexer = Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]


@dataclass(frozen=True)
class StoredResource:
    res_key: int
    type: str
    id: str
    version: int
    last_updated: str  # FHIR instant
    deleted: bool
    body: bytes | None  # JSON as served; None for a deletion

    def resource(self) -> dict[str, Any]:
        if self.body is None:
            raise ValueError(f"{self.type}/{self.id} is deleted")
        return fhirjson.loads_trusted(self.body)


@dataclass(frozen=True)
class HistoryEntry:
    type: str
    id: str
    version: int
    last_updated: str
    method: str
    deleted: bool
    body: bytes | None


class VersionConflict(Exception):
    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


def now_instant() -> str:
    """FHIR instant (UTC, microseconds) — also sorts correctly as a string."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def new_id() -> str:
    return str(uuid.uuid4())


_GET_CURRENT = select(resource).where(and_(resource.c.type == bindparam("type"), resource.c.id == bindparam("id")))
_GET_CURRENT_MANY = select(resource).where(and_(resource.c.type.in_(bindparam("types", expanding=True)),
                                                resource.c.id.in_(bindparam("ids", expanding=True))))
_LOCK_CURRENT = _GET_CURRENT.with_for_update()  # PostgreSQL; SQLite writers are serialised by the database lock

# Writes use statements built once: building and cache-keying a fresh SQLAlchemy statement per row costs more
# than executing it (measured on ingestion: ~40 % of the store time).
_INSERT_RESOURCE = insert(resource).returning(resource.c.res_key)
_INSERT_RESOURCE_IF_ABSENT = (postgresql_insert(resource).on_conflict_do_nothing(index_elements=["type", "id"])
                              .returning(resource.c.res_key))
_UPDATE_RESOURCE = update(resource).where(resource.c.res_key == bindparam("key"))
_INSERT_VERSION = insert(resource_version)
_CLEAR_INDEX = [delete(table).where(table.c.res_key == bindparam("key")) for table in INDEX_TABLES.values()]
_INSERT_INDEX = {kind: insert(table) for kind, table in INDEX_TABLES.items()}

# SQLite, inside a transaction: the same statements as SQL text written once, run on the connection's DB-API
# cursor (the driver caches the prepared statement), as the audit log's appends do. Through SQLAlchemy's
# execution machinery each statement cost several times its execution (~20 % of the CPU of ingesting a message
# whose resources are all new). Outside a transaction the Core statements above run instead (SQLAlchemy then
# begins one, as before).
_RESOURCE_COLUMNS = ("res_key", "type", "id", "version", "last_updated", "deleted", "body")
_SQLITE_GET_CURRENT = f"SELECT {', '.join(_RESOURCE_COLUMNS)} FROM resource WHERE type = ? AND id = ?"
_SQLITE_INSERT_RESOURCE = ("INSERT INTO resource (type, id, version, last_updated, deleted, body) "
                           "VALUES (?, ?, ?, ?, ?, ?) RETURNING res_key")
_SQLITE_UPDATE_RESOURCE = "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, body = ? WHERE res_key = ?"
_SQLITE_INSERT_VERSION = ("INSERT INTO resource_version (res_key, type, id, version, last_updated, method, deleted, "
                          "body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_SQLITE_CLEAR_INDEX = [f"DELETE FROM {table.name} WHERE res_key = ?" for table in INDEX_TABLES.values()]
_INDEX_COLUMNS = {kind: tuple(column.name for column in table.columns if column.name != "res_key")
                  for kind, table in INDEX_TABLES.items()}
_SQLITE_INSERT_INDEX = {kind: f"INSERT INTO {table.name} (res_key, {', '.join(_INDEX_COLUMNS[kind])}) "
                              f"VALUES ({', '.join('?' * (len(_INDEX_COLUMNS[kind]) + 1))})"
                        for kind, table in INDEX_TABLES.items()}
# PostgreSQL, inside a transaction: `get` and `save` likewise run their statements as SQL text on the connection's
# DB-API cursor (psycopg prepares a statement it has run a few times, by its text, either way): SQLAlchemy's
# execution machinery cost more CPU than these statements' own work in the gateway, four per new resource.
_PG_GET_CURRENT = _SQLITE_GET_CURRENT.replace("?", "%s")
_PG_LOCK_CURRENT = _PG_GET_CURRENT + " FOR UPDATE"
_PG_INSERT_RESOURCE_IF_ABSENT = ("INSERT INTO resource (type, id, version, last_updated, deleted, body) "
                                 "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (type, id) DO NOTHING RETURNING res_key")
# the columns SQLAlchemy binds as floats on SQLite (Float: no native decimal), by position after res_key
_FLOAT_COLUMNS = {kind: frozenset(column.name for column in table.columns if isinstance(column.type, Float))
                  for kind, table in INDEX_TABLES.items()}


class _DriverCursor:
    """The DB-API cursor of a connection that is in a transaction; driver errors raised as SQLAlchemy's (as its
    execution would), so callers see the same exceptions either way."""

    __slots__ = ("cursor", "error")

    def __init__(self, connection: Connection) -> None:
        self.cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.error = connection.dialect.loaded_dbapi.Error

    def execute(self, sql: str, parameters: tuple[Any, ...]) -> Any:
        try:
            return self.cursor.execute(sql, parameters)
        except self.error as problem:
            raise DBAPIError.instance(sql, parameters, problem, self.error) from problem

    def executemany(self, sql: str, parameters: list[tuple[Any, ...]]) -> None:
        try:
            self.cursor.executemany(sql, parameters)
        except self.error as problem:
            raise DBAPIError.instance(sql, parameters, problem, self.error) from problem

    def close(self) -> None:
        self.cursor.close()


def _raw_cursor(connection: Connection) -> _DriverCursor | None:
    """A raw cursor when `connection` (SQLite or PostgreSQL) is in a transaction, so there is nothing for SQLAlchemy
    to begin; else None."""
    if connection.dialect.name not in ("sqlite", "postgresql") or not connection.in_transaction():
        return None
    return _DriverCursor(connection)


def _index_parameters(kind: str, res_key: int, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Index rows as the raw INSERT's parameters: res_key, then the columns in table order (an absent one NULL,
    as SQLAlchemy leaves it out), the Float columns as floats (SQLAlchemy's SQLite bind processing)."""
    floats = _FLOAT_COLUMNS[kind]
    names = _INDEX_COLUMNS[kind]
    if not floats:
        return [(res_key, *[row.get(name) for name in names]) for row in rows]
    return [(res_key, *[_float(row.get(name)) if name in floats else row.get(name) for name in names])
            for row in rows]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stored_row(row: Any) -> StoredResource:
    """A `resource` row read on the raw cursor (columns as in _RESOURCE_COLUMNS) as SQLAlchemy would return it."""
    body = row[6]
    return StoredResource(row[0], row[1], row[2], row[3], row[4], bool(row[5]),
                          body if body is None or isinstance(body, bytes) else bytes(body))


def _next_version(body: dict[str, Any], resource_id: str, current: StoredResource | None,
                  if_match: int | None) -> tuple[int, str, bytes]:
    """The version that `save` writes over `current` (VersionConflict if `if_match` does not name it): its number,
    time and stored bytes; `body` is stamped with them (id, meta.versionId, meta.lastUpdated) in place."""
    if if_match is not None and (current is None or current.version != if_match or current.deleted):
        raise VersionConflict(0 if current is None else current.version)
    version = 1 if current is None else current.version + 1
    last_updated = now_instant()
    stamped = _stamped(body, resource_id, version, last_updated)
    body.clear()
    body.update(stamped)
    return version, last_updated, fhirjson.dumps(body)


K = TypeVar("K")
V = TypeVar("V")


class _UsedOnce(Generic[K, V]):
    """A map of what a caller prepared for a later call, each entry taken once; beyond `PREPARED_INDEX_SIZE`
    entries the oldest are dropped (what was prepared and never taken). Safe to share between threads."""

    def __init__(self) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > PREPARED_INDEX_SIZE:
                self._items.popitem(last=False)

    def take(self, key: K) -> V | None:
        if not self._items:  # the common case, without the lock
            return None
        with self._lock:
            return self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._items))


class ResourceStore:
    def __init__(self, engine: Engine, indexer: Indexer) -> None:
        self.engine = engine
        self.indexer = indexer
        self._readers = threading.local()
        self.single_statements = SingleStatements.of(engine)  # this thread's autocommit connection
        self.never_waiting = SingleStatements.of(engine, waiting=False)  # the event loop's (see `read`)
        # index rows extracted ahead of a save (`prepare_index`), by _index_key; each used once
        self._prepared: _UsedOnce[bytes, tuple[Indexer, dict[str, list[dict[str, Any]]]]] = _UsedOnce()
        # (type, id) of resources a caller found absent just before saving them (`expect_new`); each used once
        self._expected_new: _UsedOnce[tuple[str, str], bool] = _UsedOnce()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); commits on success, rolls back on any error."""
        with self.engine.connect().execution_options(write=True) as connection:
            with connection.begin():
                yield connection

    def read(self, snapshot: bool = True, waiting: bool = True) -> AbstractContextManager[Connection]:
        """A read transaction on this thread's long-lived reader connection.

        Checking a connection out of the pool and resetting it costs several times more than a point read,
        so each thread keeps one reader; it is replaced when a database error invalidated it. `waiting=False`
        (the event loop) for a single statement: on the thread's never-waiting connection
        (`SingleStatements.of(engine, waiting=False)`). Not a generator: a point read costs less than two
        nested generator context managers."""
        connection = self._reader()
        if connection.in_transaction():  # a nested read joins the outer one
            return nullcontext(connection)
        if not snapshot:  # one statement: an autocommit connection, no BEGIN/COMMIT round trips
            return (self.single_statements if waiting else self.never_waiting)()
        return self._snapshot(connection)

    @contextmanager
    def _snapshot(self, connection: Connection) -> Iterator[Connection]:
        try:
            with connection.begin():
                yield connection
        except DBAPIError:
            connection.close()
            self._readers.connection = None
            raise

    def _reader(self) -> Connection:
        connection: Connection | None = getattr(self._readers, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            connection = self._readers.connection = self.engine.connect()
        return connection

    # -- reads --------------------------------------------------------------------------------------
    def get(self, connection: Connection, resource_type: str, resource_id: str) -> StoredResource | None:
        raw = _raw_cursor(connection)
        if raw is not None:
            sql = _SQLITE_GET_CURRENT if connection.dialect.name == "sqlite" else _PG_GET_CURRENT
            try:
                found = raw.execute(sql, (resource_type, resource_id)).fetchone()
            finally:
                raw.close()
            return None if found is None else _stored_row(found)
        row = connection.execute(_GET_CURRENT, {"type": resource_type, "id": resource_id}).first()
        if row is None:
            return None
        return StoredResource(row.res_key, row.type, row.id, row.version, row.last_updated, row.deleted, row.body)

    def get_current(self, connection: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], StoredResource]:
        """Current versions of (type, id) pairs, in one statement (chunks of 500 ids); absent ones are left out."""
        wanted = set(keys)
        found: dict[tuple[str, str], StoredResource] = {}
        ids = sorted({resource_id for _, resource_id in wanted})
        types = sorted({resource_type for resource_type, _ in wanted})
        for start in range(0, len(ids), 500):
            for row in connection.execute(_GET_CURRENT_MANY, {"types": types, "ids": ids[start : start + 500]}):
                if (row.type, row.id) in wanted:
                    found[(row.type, row.id)] = StoredResource(
                        row.res_key, row.type, row.id, row.version, row.last_updated, row.deleted, row.body
                    )
        return found

    def get_many(self, connection: Connection, res_keys: list[int]) -> list[StoredResource]:
        """Current versions for res_keys, in the order given."""
        if not res_keys:
            return []
        found: dict[int, StoredResource] = {}
        for start in range(0, len(res_keys), 500):
            chunk = res_keys[start : start + 500]
            for row in connection.execute(select(resource).where(resource.c.res_key.in_(chunk))):
                found[row.res_key] = StoredResource(
                    row.res_key, row.type, row.id, row.version, row.last_updated, row.deleted, row.body
                )
        return [found[key] for key in res_keys if key in found]

    def get_version(
        self, connection: Connection, resource_type: str, resource_id: str, version: int
    ) -> HistoryEntry | None:
        row = connection.execute(
            select(resource_version).where(
                and_(
                    resource_version.c.type == resource_type,
                    resource_version.c.id == resource_id,
                    resource_version.c.version == version,
                )
            )
        ).first()
        return None if row is None else _history_entry(row)

    def history(
        self,
        connection: Connection,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: str | None = None,
        offset: int = 0,
        limit: int = 50,
        until_vkey: int | None = None,
    ) -> tuple[list[HistoryEntry], int, int]:
        """Versions newest first; returns (entries, total, high-water vkey for stable paging)."""
        conditions = []
        if resource_type:
            conditions.append(resource_version.c.type == resource_type)
        if resource_id:
            conditions.append(resource_version.c.id == resource_id)
        if since:
            conditions.append(resource_version.c.last_updated >= since)
        if until_vkey is None:
            until_vkey = connection.execute(select(func.max(resource_version.c.vkey))).scalar() or 0
        conditions.append(resource_version.c.vkey <= until_vkey)
        where = and_(*conditions)
        total = connection.execute(select(func.count()).select_from(resource_version).where(where)).scalar_one()
        rows = connection.execute(
            select(resource_version).where(where).order_by(resource_version.c.vkey.desc()).offset(offset).limit(limit)
        )
        return [_history_entry(row) for row in rows], total, until_vkey

    # -- writes -------------------------------------------------------------------------------------
    def prepare_index(self, bodies: Iterable[dict[str, Any]]) -> None:
        """Extract the index rows of resources about to be saved, before the write transaction: on SQLite it holds
        the database's one write lock, which other writers (ingestion processes) wait for, so what can be done
        before it should be. A later `save` of exactly such content (under the same type and id) uses the rows
        instead of extracting them again; any other save extracts as usual. The rows of a version do not depend
        on its number or time (no index expression reads meta.versionId or meta.lastUpdated, see
        `_same_content`), so they are extracted here from the content stamped with placeholders. At most
        `PREPARED_INDEX_SIZE` are kept (the oldest dropped), each used once."""
        indexer = self.indexer
        for body in bodies:
            resource_id = body.get("id")
            if not isinstance(resource_id, str) or not isinstance(body.get("resourceType"), str):
                continue
            stamped = _stamped(body, resource_id, 1, _PREPARED_TIME)
            key = _index_key(fhirjson.dumps(stamped), body["resourceType"], resource_id, 1, _PREPARED_TIME)
            if key is None:
                continue
            self._prepared.put(key, (indexer, indexer(stamped)))

    def expect_new(self, keys: Iterable[tuple[str, str]]) -> None:
        """Hint that the resources (type, id) are absent, as a read just before their save found: on PostgreSQL
        their `save` (in a transaction, without if_match) then tries to create each in one statement, without
        reading it first (`_create_in_one_sql`); if it exists after all (created meanwhile, or a deleted one) the
        save goes on as usual. A wrong hint costs one statement, never a wrong version. At most
        `PREPARED_INDEX_SIZE` are kept (the oldest dropped), each used once; ignored on SQLite (its save reads
        in the process, and no other writer runs beside its transaction)."""
        if self.engine.dialect.name != "postgresql":
            return
        for key in keys:
            self._expected_new.put(key, True)

    def _index_rows(self, body: dict[str, Any], resource_type: str, resource_id: str, version: int,
                    last_updated: str, data: bytes) -> dict[str, list[dict[str, Any]]]:
        """The index rows of `body`, stamped and serialised as `data`: prepared ones when there are, else
        extracted now."""
        if self._prepared:
            key = _index_key(data, resource_type, resource_id, version, last_updated)
            prepared = self._prepared.take(key) if key is not None else None
            if prepared is not None and prepared[0] is self.indexer:
                return prepared[1]
        return self.indexer(body)

    def save(
        self,
        connection: Connection,
        body: dict[str, Any],
        resource_id: str | None = None,
        if_match: int | None = None,
    ) -> tuple[StoredResource, bool]:
        """Create or update `body` (its resourceType) under `resource_id` (new id when None).

        Sets id, meta.versionId and meta.lastUpdated in the dict, stores it, re-indexes it.
        Returns (stored, created). Raises VersionConflict when `if_match` is not the current version.
        """
        resource_type = body["resourceType"]
        resource_id = resource_id or new_id()
        postgresql = connection.dialect.name == "postgresql"
        raw = _raw_cursor(connection)
        if raw is not None:
            save = self._save_postgresql if postgresql else self._save_sqlite
            try:
                return save(raw, body, resource_type, resource_id, if_match)
            finally:
                raw.close()
        current = self._lock_current(connection, resource_type, resource_id, wait_for_creator=not postgresql)
        for _ in range(3):
            version, last_updated, data = _next_version(body, resource_id, current, if_match)
            values = {"version": version, "last_updated": last_updated, "deleted": False, "body": data}
            if current is not None:
                res_key = current.res_key
                break
            row = {"type": resource_type, "id": resource_id, **values}
            if not postgresql:
                res_key = connection.execute(_INSERT_RESOURCE, row).scalar_one()
                break
            # PostgreSQL: a concurrent creator of the same id makes this insert wait for its commit (unique key)
            # and then do nothing; the row is then updated as usual. No advisory lock needed around the create.
            inserted = connection.execute(_INSERT_RESOURCE_IF_ABSENT, row).scalar()
            if inserted is not None:
                res_key = inserted
                break
            current = self._lock_current(connection, resource_type, resource_id, wait_for_creator=False)
        else:
            raise RuntimeError(f"{resource_type}/{resource_id} could neither be created nor found")
        reindex = current is None or not _same_content(current, body)
        method = "POST" if current is None else "PUT"
        version_row = {"res_key": res_key, "type": resource_type, "id": resource_id, "method": method, **values}
        rows = self._index_rows(body, resource_type, resource_id, version, last_updated, data) if reindex else None
        if postgresql:
            _write_in_one(connection, version_row, update=current is not None, clear=reindex and current is not None,
                          rows=rows)
        else:
            if current is not None:
                connection.execute(_UPDATE_RESOURCE, {"key": res_key, **values})
                if reindex:
                    self._clear_index(connection, res_key)
            connection.execute(_INSERT_VERSION, version_row)
            if rows is not None:
                self._write_index(connection, res_key, rows)
        created = current is None or current.deleted
        return StoredResource(res_key, resource_type, resource_id, version, last_updated, False, data), created

    def _save_sqlite(self, raw: _DriverCursor, body: dict[str, Any], resource_type: str, resource_id: str,
                     if_match: int | None) -> tuple[StoredResource, bool]:
        """`save` on SQLite in a transaction: the same statements in the same order, on the raw cursor. The
        transaction holds the database's write lock, so no one creates the row meanwhile."""
        found = raw.execute(_SQLITE_GET_CURRENT, (resource_type, resource_id)).fetchone()
        current = None if found is None else _stored_row(found)
        version, last_updated, data = _next_version(body, resource_id, current, if_match)
        if current is None:
            res_key = raw.execute(_SQLITE_INSERT_RESOURCE,
                                  (resource_type, resource_id, version, last_updated, 0, data)).fetchone()[0]
        else:
            res_key = current.res_key
        reindex = current is None or not _same_content(current, body)
        rows = self._index_rows(body, resource_type, resource_id, version, last_updated, data) if reindex else None
        if current is not None:
            raw.execute(_SQLITE_UPDATE_RESOURCE, (version, last_updated, 0, data, res_key))
            if reindex:
                for statement in _SQLITE_CLEAR_INDEX:
                    raw.execute(statement, (res_key,))
        raw.execute(_SQLITE_INSERT_VERSION, (res_key, resource_type, resource_id, version, last_updated,
                                             "POST" if current is None else "PUT", 0, data))
        if rows is not None:
            for kind, kind_rows in rows.items():
                if kind_rows:
                    raw.executemany(_SQLITE_INSERT_INDEX[kind], _index_parameters(kind, res_key, kind_rows))
        created = current is None or current.deleted
        return StoredResource(res_key, resource_type, resource_id, version, last_updated, False, data), created

    def _save_postgresql(self, raw: _DriverCursor, body: dict[str, Any], resource_type: str, resource_id: str,
                         if_match: int | None) -> tuple[StoredResource, bool]:
        """`save` on PostgreSQL in a transaction: the same statements in the same order as the SQLAlchemy path,
        on the raw cursor; a resource expected to be new (`expect_new`) is first tried as a create in one
        statement."""
        rows: dict[str, list[dict[str, Any]]] | None = None
        if if_match is None and self._expected_new.take((resource_type, resource_id)):
            version, last_updated, data = _next_version(body, resource_id, None, None)
            rows = self._index_rows(body, resource_type, resource_id, version, last_updated, data)
            sql, parameters = _create_in_one_statement(resource_type, resource_id, version, last_updated, data, rows)
            created = raw.execute(sql, parameters).fetchone()
            if created is not None:
                return StoredResource(created[0], resource_type, resource_id, version, last_updated, False, data), True
            # it exists (created meanwhile, or deleted): saved as usual below, with the rows just extracted (they
            # do not depend on the version's number or time)
        current = _pg_lock_current(raw, resource_type, resource_id)
        for _ in range(3):
            version, last_updated, data = _next_version(body, resource_id, current, if_match)
            if current is not None:
                res_key = current.res_key
                break
            # a concurrent creator of the same id makes this insert wait for its commit (unique key) and then do
            # nothing; the row is then updated as usual. No advisory lock needed around the create.
            inserted = raw.execute(_PG_INSERT_RESOURCE_IF_ABSENT,
                                   (resource_type, resource_id, version, last_updated, False, data)).fetchone()
            if inserted is not None:
                res_key = inserted[0]
                break
            current = _pg_lock_current(raw, resource_type, resource_id)
        else:
            raise RuntimeError(f"{resource_type}/{resource_id} could neither be created nor found")
        reindex = current is None or not _same_content(current, body)
        method = "POST" if current is None else "PUT"
        version_row = {"res_key": res_key, "type": resource_type, "id": resource_id, "method": method,
                       "version": version, "last_updated": last_updated, "deleted": False, "body": data}
        if not reindex:
            rows = None
        elif rows is None:
            rows = self._index_rows(body, resource_type, resource_id, version, last_updated, data)
        sql, parameters = _write_in_one_statement(version_row, update=current is not None,
                                                  clear=reindex and current is not None, rows=rows)
        raw.execute(sql, parameters)
        created = current is None or current.deleted
        return StoredResource(res_key, resource_type, resource_id, version, last_updated, False, data), created

    def delete(self, connection: Connection, resource_type: str, resource_id: str) -> StoredResource | None:
        """Logical delete: a new deleted version; None when nothing (live) was there."""
        current = self._lock_current(connection, resource_type, resource_id)
        if current is None or current.deleted:
            return None
        version = current.version + 1
        last_updated = now_instant()
        values = {"version": version, "last_updated": last_updated, "deleted": True, "body": None}
        version_row = {"res_key": current.res_key, "type": resource_type, "id": resource_id, "method": "DELETE",
                       **values}
        if connection.dialect.name == "postgresql":
            _write_in_one(connection, version_row, update=True, clear=True, rows=None)
        else:
            connection.execute(_UPDATE_RESOURCE, {"key": current.res_key, **values})
            connection.execute(_INSERT_VERSION, version_row)
            self._clear_index(connection, current.res_key)
        return StoredResource(current.res_key, resource_type, resource_id, version, last_updated, True, None)

    def count(self, connection: Connection, resource_type: str | None = None) -> int:
        query = select(func.count()).select_from(resource).where(resource.c.deleted.is_(False))
        if resource_type:
            query = query.where(resource.c.type == resource_type)
        return connection.execute(query).scalar_one()

    # -- internals ----------------------------------------------------------------------------------
    def _lock_current(self, connection: Connection, resource_type: str, resource_id: str,
                      wait_for_creator: bool = True) -> StoredResource | None:
        query = _LOCK_CURRENT if connection.dialect.name == "postgresql" else _GET_CURRENT
        row = connection.execute(query, {"type": resource_type, "id": resource_id}).first()
        if row is None and wait_for_creator and advisory_write_lock(connection, f"{resource_type}/{resource_id}"):
            row = connection.execute(query, {"type": resource_type, "id": resource_id}).first()  # after a racer
        if row is None:
            return None
        return StoredResource(row.res_key, row.type, row.id, row.version, row.last_updated, row.deleted, row.body)

    def _clear_index(self, connection: Connection, res_key: int) -> None:
        for statement in _CLEAR_INDEX:
            connection.execute(statement, {"key": res_key})

    def _write_index(self, connection: Connection, res_key: int, rows: dict[str, list[dict[str, Any]]]) -> None:
        for kind, kind_rows in rows.items():
            if kind_rows:
                connection.execute(_INSERT_INDEX[kind], [{**row, "res_key": res_key} for row in kind_rows])


# PostgreSQL: everything a save or delete writes after locking the row, in one statement (one round trip instead
# of up to 16: the resource row, the version, the old index rows of every kind, the new ones). Data-modifying
# WITH parts all run on the statement's snapshot, so the DELETEs remove exactly the rows that were there before
# and never the ones inserted beside them. Index rows go in as one JSON array of row objects per kind, through
# json_to_recordset: one statement text per shape (whether it updates, clears, and which index kinds get rows),
# whatever the number of rows, so the driver's prepared statements are reused. (One SQL array per column cost the
# gateway ten times more: the driver dumps arrays element by element in Python; orjson writes the rows at once.)
_COLUMN_TYPES = {kind: [(column.name, "float8" if isinstance(column.type, Float) else "text")
                        for column in table.columns if column.name != "res_key"]
                 for kind, table in INDEX_TABLES.items()}
_RECORD_TYPES = {kind: ", ".join(f'"{name}" {sql_type}' for name, sql_type in columns)
                 for kind, columns in _COLUMN_TYPES.items()}


def _index_rows_sql(kind: str, created: bool) -> str:
    """The WITH part inserting the rows of `kind` (parameter `%(kind)s`, see `_index_json`) under the res_key of
    the part `r` when `created` (`_create_in_one_sql`), else of parameter `res_key`."""
    columns = ", ".join(name for name, _ in _COLUMN_TYPES[kind])
    rows = f"json_to_recordset(%({kind})s::json) AS j({_RECORD_TYPES[kind]})"
    source = f"SELECT r.res_key, j.* FROM r, {rows}" if created else f"SELECT %(res_key)s, j.* FROM {rows}"
    return f"i_{kind} AS (INSERT INTO {INDEX_TABLES[kind].name} (res_key, {columns}) {source})"


@lru_cache(maxsize=256)
def _write_in_one_sql(update: bool, clear: bool, index: tuple[str, ...]) -> str:
    """The statement for one shape: `index` names the index kinds that get rows (only those get an INSERT part:
    PostgreSQL plans every statement anew, and an empty json_to_recordset still costs planning and an executor node)."""
    parts = []
    if update:
        parts.append("u_resource AS (UPDATE resource SET version = %(version)s, last_updated = %(last_updated)s, "
                     "deleted = %(deleted)s, body = %(body)s WHERE res_key = %(res_key)s)")
    for kind, table in INDEX_TABLES.items():
        if clear:
            parts.append(f"c_{kind} AS (DELETE FROM {table.name} WHERE res_key = %(res_key)s)")
        if kind in index:
            parts.append(_index_rows_sql(kind, created=False))
    version = ("INSERT INTO resource_version (res_key, type, id, version, last_updated, method, deleted, body) "
               "VALUES (%(res_key)s, %(type)s, %(id)s, %(version)s, %(last_updated)s, %(method)s, %(deleted)s, "
               "%(body)s)")
    return f"WITH {', '.join(parts)} {version}" if parts else version


@lru_cache(maxsize=64)
def _create_in_one_sql(index: tuple[str, ...]) -> str:
    """PostgreSQL: create a resource in one statement - its row, its first version and its index rows (of the
    kinds in `index`) - returning its res_key; when a row with its type and id exists (or a concurrent creator
    commits one: the insert waits for it) nothing is written and no row returned. The version and index parts
    take the res_key from the resource part, so they write nothing either then."""
    parts = ["r AS (INSERT INTO resource (type, id, version, last_updated, deleted, body) VALUES (%(type)s, %(id)s, "
             "%(version)s, %(last_updated)s, false, %(body)s) ON CONFLICT (type, id) DO NOTHING RETURNING res_key)",
             "v AS (INSERT INTO resource_version (res_key, type, id, version, last_updated, method, deleted, body) "
             "SELECT res_key, %(type)s, %(id)s, %(version)s, %(last_updated)s, 'POST', false, %(body)s FROM r)"]
    parts += [_index_rows_sql(kind, created=True) for kind in index]
    return f"WITH {', '.join(parts)} SELECT res_key FROM r"


def _create_in_one_statement(resource_type: str, resource_id: str, version: int, last_updated: str, data: bytes,
                             rows: dict[str, list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    parameters: dict[str, Any] = {"type": resource_type, "id": resource_id, "version": version,
                                  "last_updated": last_updated, "body": data}
    kinds = _index_json(parameters, rows)
    return _create_in_one_sql(kinds), parameters


def _index_json(parameters: dict[str, Any], rows: dict[str, list[dict[str, Any]]] | None) -> tuple[str, ...]:
    """Add the index rows to `parameters`, per kind one JSON array of the row objects (`kind`: a missing column is
    NULL); the kinds with rows."""
    kinds = tuple(kind for kind in _COLUMN_TYPES if rows and rows.get(kind))
    for kind in kinds:
        kind_rows = rows[kind]  # type: ignore[index]
        if _FLOAT_COLUMNS[kind]:
            kind_rows = [_json_floats(row, _FLOAT_COLUMNS[kind]) for row in kind_rows]
        parameters[kind] = fhirjson.dumps(kind_rows).decode()
    return kinds


_NON_FINITE = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}


def _json_floats(row: dict[str, Any], floats: frozenset[str]) -> dict[str, Any]:
    """`row` with its float columns as floats (as the driver would bind them: a Decimal too large is infinite), and
    a non-finite one as the text PostgreSQL reads as float8 (JSON has no number for it)."""
    converted = dict(row)
    for name in floats:
        value = row.get(name)
        if value is not None:
            value = float(value)
            converted[name] = value if math.isfinite(value) else _NON_FINITE[repr(value)]
    return converted


def _pg_lock_current(raw: _DriverCursor, resource_type: str, resource_id: str) -> StoredResource | None:
    found = raw.execute(_PG_LOCK_CURRENT, (resource_type, resource_id)).fetchone()
    return None if found is None else _stored_row(found)


def _write_in_one(connection: Connection, version_row: dict[str, Any], update: bool, clear: bool,
                  rows: dict[str, list[dict[str, Any]]] | None) -> None:
    connection.exec_driver_sql(*_write_in_one_statement(version_row, update, clear, rows))


def _write_in_one_statement(version_row: dict[str, Any], update: bool, clear: bool,
                            rows: dict[str, list[dict[str, Any]]] | None) -> tuple[str, dict[str, Any]]:
    """The statement `_write_in_one` runs, and its parameters."""
    parameters = dict(version_row)
    kinds = _index_json(parameters, rows)
    return _write_in_one_sql(update, clear, kinds), parameters


def _stamped_meta(meta: dict[str, Any], version: int, last_updated: str) -> dict[str, Any]:
    """The server owns meta.versionId and meta.lastUpdated; everything else in meta is kept."""
    ordered: dict[str, Any] = {"versionId": str(version), "lastUpdated": last_updated}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    return ordered


def _stamped(body: dict[str, Any], resource_id: str, version: int, last_updated: str) -> dict[str, Any]:
    """`body` as stored: resourceType, id and the server-stamped meta first, then the rest in the given order."""
    meta = body.get("meta")
    meta = _stamped_meta(meta if isinstance(meta, dict) else {}, version, last_updated)
    rest = {key: value for key, value in body.items() if key not in {"resourceType", "id", "meta"}}
    return {"resourceType": body["resourceType"], "id": resource_id, "meta": meta, **rest}


PREPARED_INDEX_SIZE = 1024
_PREPARED_TIME = "0001-01-01T00:00:00.000000+00:00"


def _index_key(data: bytes, resource_type: str, resource_id: str, version: int, last_updated: str) -> bytes | None:
    """`data`, a version's stored bytes (as `_stamped` orders it: resourceType, id, then meta with versionId and
    lastUpdated first), without the values of meta.versionId and meta.lastUpdated: equal keys, equal content
    apart from those two. None when `data` does not begin that way."""
    head = b"".join((b'{"resourceType":', fhirjson.dumps(resource_type), b',"id":', fhirjson.dumps(resource_id),
                     b',"meta":{"versionId":'))
    stamp = b"".join((fhirjson.dumps(str(version)), b',"lastUpdated":', fhirjson.dumps(last_updated)))
    if not data.startswith(head) or not data.startswith(stamp, len(head)):
        return None
    return head + data[len(head) + len(stamp):]


def _same_content(current: StoredResource, body: dict[str, Any]) -> bool:
    """Whether `body` (stamped) is the current version again, apart from meta.versionId and meta.lastUpdated:
    its search index rows are then the ones already stored (no index expression reads those two), so an
    unchanged update - the common case when a source resends a message - skips the re-index. Serialising
    with the current version's stamp and comparing bytes costs far less than extracting the rows; any other
    difference (even key order) re-indexes."""
    return as_current(current, body) is not None


def as_current(current: StoredResource, body: dict[str, Any]) -> dict[str, Any] | None:
    """`body` (as given to `save`, stamped or not) as it would be stored with `current`'s version and time, when
    that is exactly the current content (the same bytes: a no-op update); None when saving it would change
    anything."""
    if current.deleted or current.body is None:
        return None
    stamped = _stamped(body, current.id, current.version, current.last_updated)
    return stamped if fhirjson.dumps(stamped) == bytes(current.body) else None


def _history_entry(row: Any) -> HistoryEntry:
    return HistoryEntry(row.type, row.id, row.version, row.last_updated, row.method, row.deleted, row.body)
