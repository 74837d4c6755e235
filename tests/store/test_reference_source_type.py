"""Migration 0006 on SQLite and PostgreSQL: `idx_reference.source_type` is filled from `resource.type` for the
rows already there, is NOT NULL afterwards (a reference row without it would be invisible to the consent facts
query), and closes the (param, target_id, target_type, source_type) index; the downgrade undoes it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from gateway.store.migrate import upgrade
from tests.migrations import fresh_engine, migrate

ROWS = [  # res_key, type, id; then its reference rows (param, target_type, target_id, url)
    (1, "Encounter", "e1", [("subject", "Patient", "p1", None), ("patient", "Patient", "p1", None)]),
    (2, "Provenance", "v1", [("patient", "Patient", "p1", None), ("target", "Patient", "p1", None)]),
    (3, "Consent", "c1", [("patient", None, None, "http://testserver/fhir/Patient/p1")]),
]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    yield from fresh_engine(request, tmp_path, "migrate")


def _reference_index(engine: Engine) -> list[str]:
    indexes = {index["name"]: index for index in inspect(engine).get_indexes("idx_reference")}
    return list(indexes["ix_idx_reference_param_target"]["column_names"])


def test_existing_rows_get_their_source_type(engine: Engine) -> None:
    migrate(engine, "upgrade", "0005")
    with engine.begin() as connection:
        for res_key, resource_type, resource_id, references in ROWS:
            connection.execute(
                text("INSERT INTO resource (res_key, type, id, version, last_updated, deleted, body) "
                     "VALUES (:key, :type, :id, 1, '2026-01-01T00:00:00.000000+00:00', false, :body)"),
                {"key": res_key, "type": resource_type, "id": resource_id, "body": b"{}"},
            )
            for param, target_type, target_id, url in references:
                connection.execute(
                    text("INSERT INTO idx_reference (res_key, param, target_type, target_id, url) "
                         "VALUES (:key, :param, :target_type, :target_id, :url)"),
                    {"key": res_key, "param": param, "target_type": target_type, "target_id": target_id, "url": url},
                )
    assert _reference_index(engine) == ["param", "target_id", "target_type"]

    upgrade(engine)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT res_key, param, source_type FROM idx_reference ORDER BY res_key, param")
        ).all()
    assert [tuple(row) for row in found] == [
        (res_key, param, resource_type)
        for res_key, resource_type, _, references in ROWS
        for param, *_ in sorted(references)
    ]
    assert _reference_index(engine) == ["param", "target_id", "target_type", "source_type"]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO idx_reference (res_key, param, target_type, target_id) "
                                "VALUES (1, 'subject', 'Patient', 'p2')"))

    migrate(engine, "downgrade", "0005")
    assert _reference_index(engine) == ["param", "target_id", "target_type"]
    assert "source_type" not in {column["name"] for column in inspect(engine).get_columns("idx_reference")}
    upgrade(engine)  # and up again
    assert _reference_index(engine) == ["param", "target_id", "target_type", "source_type"]
