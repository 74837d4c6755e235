"""Every resource of the R4 examples package (hl7.fhir.r4.examples 4.0.1 — examples and definitions alike)
loads through transactions and reads back identical (apart from the server-owned meta.versionId and
meta.lastUpdated)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance import fhirjson
from gateway.app import build_services
from gateway.capacity.subscriptions import OWNER_SYSTEM
from tests.fhir.conftest import FHIR_JSON, core_settings

# The package has two ImplementationGuide resources with id "fhir"; the later one is loaded as a second version.
# One official example breaks the spec itself: its id has 66 characters (ids are limited to 64), so the gateway
# must refuse it — asserted below rather than skipped.
INVALID_EXAMPLES = {"SearchParameter/questionnaireresponse-extensions-QuestionnaireResponse-item-subject"}
BATCH = 250
BATCH_BYTES = 8_000_000


@pytest.fixture(scope="module")
def services(database_url: str):  # type: ignore[no-untyped-def]
    """The package holds Bundles of up to 15 MB (compact JSON): this module raises ZCC_MAX_BODY to 64 MiB.

    It tests storage round trips, so profile validation on write is off (ZCC_VALIDATION=off; the REST id rules
    still apply): 188 of the 5306 package resources have errors by the HL7 rules (mostly definitions using the
    structuredefinition-normative-version extension outside its context, example extensions that are not
    defined, version-specific fullUrls) and strict mode refuses them — tests/fhir/test_write_validation.py covers
    that — and validating 5306 resources, Bundles of thousands of ValueSets among them, would add minutes.

    The audit trail is off too (ZCC_AUDIT=off): with it on, AuditEvents belong to the tamper-evident chain and
    cannot be written by PUT (tests/audit covers that), but the package's AuditEvent examples must round-trip."""
    settings = core_settings(database_url, max_body=64 * 1024 * 1024, validation="off", audit=False)
    return build_services(settings)


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """What the server owns is left out of the comparison: meta.versionId/lastUpdated, and on a Subscription
    the activation (`requested` -> `active`) and the owner tag the server records (gateway/capacity)."""
    resource = copy.deepcopy(resource)
    meta = resource.get("meta", {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if resource.get("resourceType") == "Subscription":
        meta["tag"] = [tag for tag in meta.get("tag", []) if tag.get("system") != OWNER_SYSTEM]
        if not meta["tag"]:
            del meta["tag"]
        if resource.get("status") == "requested":
            resource["status"] = "active"
    if not meta:
        resource.pop("meta", None)
    return resource


def _canonical(resource: dict[str, Any]) -> bytes:
    return fhirjson.dumps(_sorted(resource))


def _sorted(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _sorted(node[key]) for key in sorted(node)}
    if isinstance(node, list):
        return [_sorted(item) for item in node]
    return node


def test_every_r4_example_loads_and_reads_back_identical(client, packages):
    originals: dict[str, dict[str, Any]] = {}
    batch: list[dict[str, Any]] = []
    size = 0

    def flush() -> None:
        nonlocal size
        size = 0
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": batch[:]}
        response = client.post(
            "/fhir", content=fhirjson.dumps(bundle), headers={**FHIR_JSON, "Prefer": "return=minimal"}
        )
        assert response.status_code == 200, response.text[:2000]
        batch.clear()

    for package in packages.packages:
        for entry in package.entries:
            resource = copy.deepcopy(package.resource(entry))
            key = f"{resource['resourceType']}/{resource['id']}"
            if key in INVALID_EXAMPLES:
                refused = client.put(f"/fhir/{key}", content=fhirjson.dumps(resource), headers=FHIR_JSON)
                assert refused.status_code == 400 and refused.json()["issue"][0]["code"] == "invalid"
                continue
            if key in originals:  # the duplicate ImplementationGuide/fhir: keep the version stored last
                flush()
            originals[key] = resource
            batch.append({"resource": copy.deepcopy(resource), "request": {"method": "PUT", "url": key}})
            size += len(fhirjson.dumps(resource))
            if len(batch) >= BATCH or size >= BATCH_BYTES:
                flush()
    if batch:
        flush()
    assert len(originals) > 5000
    mismatches = []
    for key, original in originals.items():
        response = client.get(f"/fhir/{key}")
        assert response.status_code == 200, (key, response.text[:500])
        stored = fhirjson.loads(response.content)
        if _canonical(_without_server_meta(stored)) != _canonical(_without_server_meta(original)):
            mismatches.append(key)
    assert mismatches == []
