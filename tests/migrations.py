"""For the migration tests: a fresh database (SQLite or PostgreSQL) and Alembic run on it to a given revision."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine

from gateway.store.engine import create_database_engine
from gateway.store.migrate import alembic_config
from tests.pg import fresh_database


def fresh_engine(request: pytest.FixtureRequest, tmp_path, name: str) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """An engine on an empty database: `request.param` is "sqlite" or "postgres" (a fresh database `name`)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
    else:
        url = fresh_database(request.getfixturevalue("pg_url"), name)
    built = create_database_engine(url)
    yield built
    built.dispose()


def migrate(engine: Engine, action: str, revision: str) -> None:
    """`alembic upgrade|downgrade revision` on `engine`."""
    config = alembic_config()
    with engine.connect().execution_options(write=True) as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)
        connection.commit()
