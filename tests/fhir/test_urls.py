"""RESTful URL -> Interaction mapping (gateway/fhir/urls.py), shared by HTTP and Bundle entries."""

from __future__ import annotations

import pytest

from gateway.fhir import interaction as kinds
from gateway.fhir.errors import FhirError
from gateway.fhir.urls import interaction_for

TYPES = frozenset({"Patient", "Observation", "Bundle"})


@pytest.mark.parametrize(
    ("method", "path", "kind", "resource_type", "resource_id", "version", "operation"),
    [
        ("GET", "metadata", kinds.CAPABILITIES, None, None, None, None),
        ("GET", "", kinds.SEARCH_SYSTEM, None, None, None, None),
        ("GET", "_history", kinds.HISTORY_SYSTEM, None, None, None, None),
        ("GET", "Patient", kinds.SEARCH_TYPE, "Patient", None, None, None),
        ("POST", "Patient/_search", kinds.SEARCH_TYPE, "Patient", None, None, None),
        ("POST", "Patient", kinds.CREATE, "Patient", None, None, None),
        ("PUT", "Patient", kinds.UPDATE, "Patient", None, None, None),
        ("GET", "Patient/1", kinds.READ, "Patient", "1", None, None),
        ("PUT", "Patient/1", kinds.UPDATE, "Patient", "1", None, None),
        ("DELETE", "Patient/1", kinds.DELETE, "Patient", "1", None, None),
        ("GET", "Patient/1/_history", kinds.HISTORY_INSTANCE, "Patient", "1", None, None),
        ("GET", "Patient/1/_history/2", kinds.VREAD, "Patient", "1", "2", None),
        ("GET", "Patient/_history", kinds.HISTORY_TYPE, "Patient", None, None, None),
        ("POST", "$validate", kinds.OPERATION, None, None, None, "validate"),
        ("POST", "Patient/$validate", kinds.OPERATION, "Patient", None, None, "validate"),
        ("GET", "Patient/1/$summary", kinds.OPERATION, "Patient", "1", None, "summary"),
    ],
)
def test_urls_map_to_interactions(method, path, kind, resource_type, resource_id, version, operation):
    it = interaction_for(method, path, [], TYPES)
    assert (it.kind, it.resource_type, it.id, it.version, it.operation) == (
        kind,
        resource_type,
        resource_id,
        version,
        operation,
    )


def test_post_to_base_distinguishes_batch_and_transaction():
    assert interaction_for("POST", "", [], TYPES, body={"resourceType": "Bundle", "type": "batch"}).kind == kinds.BATCH
    transaction = interaction_for("POST", "", [], TYPES, body={"resourceType": "Bundle", "type": "transaction"})
    assert transaction.kind == kinds.TRANSACTION


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "Unknown/1", 404), ("PATCH", "Patient", 405), ("POST", "Patient/1", 405), ("GET", "Patient/1/x/y", 404)],
)
def test_bad_urls(method, path, status):
    with pytest.raises(FhirError) as refused:
        interaction_for(method, path, [], TYPES)
    assert refused.value.status == status
