"""Shapes of stored versions remembered across requests (Describer.shape_and_reference_of, Result.versions): a search
page and a read judge what each version's content says, a new version of a resource is judged afresh, and
resources cut by `_elements` or `_summary` are never taken for the stored version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.consent.describe import Describer
from gateway.consent.stage import ConsentStage
from gateway.fhir.context import RequestScope
from gateway.fhir.interaction import Interaction
from gateway.fhir.search_handler import search
from gateway.store.repository import StoredResource
from tests.consent.http_gateway import Gateway, build_gateway, observation

GGZ = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with pytest.MonkeyPatch.context() as patch:
        yield from build_gateway(tmp_path_factory, patch)


def _describer(gateway: Gateway) -> Describer:
    (stage,) = [stage for stage in gateway.services.pipeline.stages if isinstance(stage, ConsentStage)]
    return stage.engine.describer


def _ids(response: Any) -> set[str]:
    return {entry["resource"]["id"] for entry in response.json().get("entry", [])
            if entry["resource"]["resourceType"] == "Observation"}


def _save(gateway: Gateway, body: dict[str, Any]) -> None:
    store = gateway.services.store
    with store.write() as connection:
        store.save(connection, body, body["id"])


def test_a_new_version_is_judged_on_its_own_content(gateway: Gateway) -> None:
    _save(gateway, observation("ov", "pa", "pulse-v1"))
    assert "ov" in _ids(gateway.get("Observation?subject=Patient/pa"))
    assert "ov" in _ids(gateway.get("Observation?subject=Patient/pa"))  # its shape remembered now
    _save(gateway, observation("ov", "pa", "ggz-v2", meta=GGZ))  # version 2: ggz data, withheld from a triagist
    response = gateway.get("Observation?subject=Patient/pa")
    assert "ov" not in _ids(response) and "ggz-v2" not in response.text


def test_a_read_is_judged_on_the_content_of_the_version_it_serves(gateway: Gateway) -> None:
    _save(gateway, observation("or", "pa", "read-v1"))
    for _ in range(2):  # the second time with the version's shape remembered
        assert gateway.get("Observation/or").status_code == 200
    _save(gateway, observation("or", "pa", "ggz-read-v2", meta=GGZ))
    response = gateway.get("Observation/or")
    assert response.status_code == 403 and "ggz-read-v2" not in response.text
    assert gateway.get("Observation/or/_history/1").status_code == 200  # the old version: its own shape


def test_the_remembered_shape_is_the_described_one_and_is_kept_per_version(gateway: Gateway) -> None:
    describer = _describer(gateway)
    first = observation("ox", "pa", "x")
    version = StoredResource(1, "Observation", "ox", 1, "2026-01-01T00:00:00.000000+00:00", False, b"{}")
    assert describer.shape_and_reference_of(first, version) == describer.shape_and_reference(first)
    # remembered: the caller vouches that the dict is the version's content, so another dict is not looked at
    assert describer.shape_and_reference_of(observation("ox", "pb", "x"), version) == describer.shape_and_reference(
        first)
    later = StoredResource(1, "Observation", "ox", 2, "2026-01-02T00:00:00.000000+00:00", False, b"{}")
    moved = observation("ox", "pb", "x")
    assert describer.shape_and_reference_of(moved, later) == describer.shape_and_reference(moved)


@pytest.mark.parametrize(("params", "vouched"), [
    ([("subject", "Patient/pa")], True),
    ([("subject", "Patient/pa"), ("_elements", "status")], False),
    ([("subject", "Patient/pa"), ("_summary", "true")], False),
    ([("subject", "Patient/pa"), ("_summary", "data")], False),
])
def test_a_search_vouches_only_for_unchanged_stored_content(gateway: Gateway, params: list[tuple[str, str]],
                                                             vouched: bool) -> None:
    scope = RequestScope(gateway.services)
    it = Interaction(kind="search-type", method="GET", resource_type="Observation", params=params)
    result = search(scope, it)
    resources = [entry["resource"] for entry in result.resource["entry"]]  # type: ignore[index]
    assert resources
    if not vouched:
        assert result.versions == {}
        return
    assert set(result.versions) == {id(resource) for resource in resources}
    for resource in resources:
        kept, stored = result.versions[id(resource)]
        assert kept is resource and stored.resource() == resource


def test_a_stored_document_is_judged_by_its_parts_at_every_read(gateway: Gateway) -> None:
    """A read of one stored resource is judged on its remembered shape alone, but a stored Bundle is judged by the
    resources in it, the first time and every time after."""
    labelled = observation("od", "pa", "ggz-in-document", meta=GGZ)
    document = {"resourceType": "Bundle", "id": "doc-ggz", "type": "collection",
                "entry": [{"fullUrl": "urn:uuid:1", "resource": labelled}]}
    _save(gateway, document)
    for _ in range(2):
        response = gateway.get("Bundle/doc-ggz")
        assert response.status_code in {403, 404} and "ggz-in-document" not in response.text
