"""The legal status a BgGGZ (STU3) message carries, converted by the ggz adapter to a nl-core-LegalSituation-LegalStatus
Condition, is what the `$summary` section "legal status" shows to a ggz triagist — and withholds from a HAP triagist."""

from __future__ import annotations

import json

import pytest

from gateway.ingest.actor import cli_identity
from tests.adapters.stu3_fixtures import GGZ, instantiate, stu3_bundle
from tests.reference import MISSING_MESSAGE, REFERENCE_DIR
from tests.summary import sources
from tests.summary.test_summary_operation import PATH, entry_refs, section, summary

BALS = "ggz-nl-core-patient-XXX-Bals.xml"


@pytest.fixture(scope="module")
def bals(app, services) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Patient Bals ingested from the BgGGZ fixture through the ggz adapter, with a live zcc contact."""
    if not REFERENCE_DIR.exists():
        pytest.skip(MISSING_MESSAGE)
    raw = json.dumps(stu3_bundle([instantiate((GGZ / BALS).read_bytes())], "collection")).encode()
    # lenient: his generalPractitioner is a PractitionerRole outside the BgGGZ folder (a dangling reference)
    result = app.state.ingest.ingest("ggz", raw, cli_identity(), lenient=True)
    assert result.record.status == "accepted", result.record.outcome
    ids = {location.split("/")[0]: location.split("/")[1] for location in result.record.resources}
    sources.add_contact(services.store, ids["Patient"])
    return ids


def test_ggz_triagist_sees_the_converted_legal_status(client, as_ggz, bals) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_ggz(), bals["Patient"])
    legal = section(bundle, "legal-status")
    assert entry_refs(legal) == [f"Condition/{bals['Condition']}"]
    condition = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == bals["Condition"])
    assert condition["code"]["coding"][0]["code"] == "IBS"
    assert "inbewaringstelling" in legal["text"]["div"].lower()


def test_hap_triagist_gets_the_legal_status_withheld(client, as_hap, bals) -> None:  # type: ignore[no-untyped-def]
    response = client.get(PATH.format(bals["Patient"]), headers=as_hap())
    # every resource of this ggz message, the Patient included, carries R/PSY: the whole summary is withheld
    assert response.status_code == 403 and response.json()["issue"][0]["code"] == "forbidden", response.text
    assert bals["Condition"] not in response.text and "inbewaringstelling" not in response.text.lower()
