"""Each BgZ query (gateway.summary.bgz) over HTTP as a HAP triagist, consent and audit on: it answers 200 with a
searchset that holds only this patient's data, and the queries that should find something do."""

from __future__ import annotations

import pytest

from gateway.summary.bgz import BGZ_QUERIES
from tests.summary.sources import DIRENC_BSN

EXPECTED_MATCHES = {"Patient and general practitioner", "Problems", "Alerts", "Allergies", "Treatment directives",
                    "Vital signs", "Encounters (contacts, ambulance rides)", "Medication agreements",
                    "Provenance of the problems"}


@pytest.mark.parametrize(("what", "query"), BGZ_QUERIES, ids=[what for what, _ in BGZ_QUERIES])
def test_bgz_query(client, as_hap, patients, what: str, query: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fhir/" + query.format(bsn=DIRENC_BSN), headers=as_hap())
    assert response.status_code == 200, response.text
    bundle = response.json()
    resources = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "outcome"]
    other = f"Patient/{patients['hansman']}"
    assert all(other not in str(resource) for resource in resources)
    matches = [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
    if what in EXPECTED_MATCHES:
        assert matches, f"{what}: nothing found"
    if "_revinclude=Provenance" in query:
        assert any(r["resourceType"] == "Provenance" for r in resources)
    if "_include=Patient:general-practitioner" in query:
        assert {r["resourceType"] for r in resources} - {"Patient"}, "the general practitioner is included"
