"""Shared assertions for the REST tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gateway.store.schema import INDEX_TABLES, resource, resource_version


def store_fingerprint(services: Any) -> tuple[int, ...]:
    """Row counts of every table: equal before and after means nothing was written."""
    tables = [resource, resource_version, *INDEX_TABLES.values()]
    with services.store.read() as connection:
        return tuple(connection.execute(select(func.count()).select_from(table)).scalar_one() for table in tables)


def assert_outcome(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    codes = [issue["code"] for issue in body["issue"]]
    assert code in codes, body
    assert all(issue.get("diagnostics") for issue in body["issue"]), body
    assert "Traceback" not in response.text
    return body
