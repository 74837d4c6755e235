"""`$summary` over HTTP with real tokens, consent and audit on, for a patient built from all four sources."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import select

from conformance.packages import PackageSet, default_package_paths
from conformance.validator.validator import Validator
from gateway.audit.schema import audit_event
from gateway.summary.sections import load_definition
from tests.reference import REFERENCE_DIR
from tests.summary.sources import BSN, DIRENC_BSN

PATH = "/fhir/Patient/{}/$summary"


def summary(client, headers, patient: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(PATH.format(patient), headers=headers)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "document"
    return bundle


def composition(bundle: dict[str, Any]) -> dict[str, Any]:
    first = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "Composition"
    return first


def section(bundle: dict[str, Any], key: str) -> dict[str, Any]:
    code = next(s.code["code"] for s in load_definition().sections if s.key == key)
    return next(s for s in composition(bundle)["section"] if s["code"]["coding"][0]["code"] == code)


def refs(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}


def entry_refs(part: dict[str, Any]) -> list[str]:
    return [entry["reference"] for entry in part.get("entry", [])]


def test_sections_entries_and_narratives_for_a_hap_triagist(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_hap(), patients["direnc"])
    doc = composition(bundle)
    assert doc["type"]["coding"][0]["code"] == "60591-5" and doc["subject"]["reference"].endswith(patients["direnc"])
    assert len(doc["section"]) == len(load_definition().sections)
    allergies = section(bundle, "allergies")
    assert len(allergies["entry"]) == 1 and "Allergie" in allergies["title"]
    assert "<table>" in allergies["text"]["div"] and allergies["text"]["status"] == "generated"
    by_reference = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"] for e in bundle["entry"]}
    contra_indications = [by_reference[r] for r in entry_refs(section(bundle, "alerts"))
                          if any("MedicationContraIndication" in p for p in by_reference[r]["meta"].get("profile", []))]
    assert len(contra_indications) == 2  # QUPC's two contra-indications are zib MedicationContraIndication Flags
    assert entry_refs(section(bundle, "directives")) == [f"Consent/{patients['directive']}"]
    assert "Niet reanimeren" in section(bundle, "directives")["text"]["div"]
    encounters = entry_refs(section(bundle, "encounters"))
    assert f"Encounter/{patients['ride']}" in encounters and f"Encounter/{patients['contact']}" in encounters
    assert "RAV Utrecht" in section(bundle, "encounters")["text"]["div"]
    assert entry_refs(section(bundle, "care-team")) == [patients["gp"]]
    assert section(bundle, "medication")["entry"] and section(bundle, "vital-signs")["entry"]
    procedures = section(bundle, "procedures")
    assert "entry" not in procedures and procedures["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert "Geen gegevens beschikbaar" in procedures["text"]["div"]
    every_reference = {r for s in doc["section"] for r in entry_refs(s)}
    assert every_reference <= refs(bundle)  # every entry travels in the document


def test_duplicate_allergy_appears_once_with_both_sources(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_hap(), patients["direnc"])
    allergies = section(bundle, "allergies")
    assert f"AllergyIntolerance/{patients['hap_allergy']}" in entry_refs(allergies)
    assert f"AllergyIntolerance/{patients['vvt-allergy']}" not in entry_refs(allergies)
    row = next(line for line in allergies["text"]["div"].split("<tr>") if "Zorgcentrum De Linde" in line)
    assert "Tést Zorginstelling 04" in row  # one row, both sources


def test_conflicting_problem_is_shown_not_hidden(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_hap(), patients["direnc"])
    problems = section(bundle, "problems")
    assert f"Condition/{patients['hap_problem']}" in entry_refs(problems)
    assert f"Condition/{patients['vvt-problem']}" in entry_refs(problems)
    assert "bronnen spreken elkaar tegen" in problems["text"]["div"] and "clinicalStatus" in problems["text"]["div"]


def test_every_entry_is_traceable_to_source_and_message(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_hap(), patients["direnc"])
    provenances = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
    traced = {t["reference"] for p in provenances for t in p["target"]}
    clinical = {r for s in composition(bundle)["section"] for r in entry_refs(s)
                if not r.startswith(("Practitioner", "Organization"))}
    assert clinical and clinical - {f"Encounter/{patients['contact']}"} <= traced  # the live contact has no message
    for provenance in provenances:
        agent = provenance["agent"][0]["who"]["reference"]
        assert agent in refs(bundle) and provenance["entity"][0]["what"]["identifier"]["value"]


def test_ggz_data_is_withheld_from_a_hap_triagist_and_says_so(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    response = client.get(PATH.format(patients["direnc"]), headers=as_hap())
    bundle = response.json()
    assert f"Condition/{patients['legal']}" not in refs(bundle) and f"Flag/{patients['ggz-alert']}" not in refs(bundle)
    assert "Crisismaatregel" not in response.text and "Suïcidaliteit" not in response.text
    legal = section(bundle, "legal-status")
    assert legal["emptyReason"]["coding"][0]["code"] == "withheld" and "achtergehouden" in legal["text"]["div"]
    assert "1 gegeven(s) achtergehouden" in section(bundle, "alerts")["text"]["div"]
    assert response.headers["X-Zcc-Suppressed"] == "2"


def test_ggz_triagist_sees_the_legal_status(client, as_ggz, patients) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_ggz(), patients["direnc"])
    assert entry_refs(section(bundle, "legal-status")) == [f"Condition/{patients['legal']}"]
    assert f"Flag/{patients['ggz-alert']}" in entry_refs(section(bundle, "alerts"))
    assert "Crisismaatregel (Wvggz)" in section(bundle, "legal-status")["text"]["div"]


def test_no_active_contact_is_a_plain_404(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    known = client.get(PATH.format(patients["acceptatie"]), headers=as_hap())
    unknown = client.get(PATH.format("does-not-exist"), headers=as_hap())
    assert known.status_code == unknown.status_code == 404
    assert known.json()["issue"][0]["code"] == unknown.json()["issue"][0]["code"] == "not-found"
    assert "AllergyIntolerance" not in known.text


def test_break_the_glass_gives_the_emergency_dataset_only(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    response = client.get(PATH.format(patients["direnc"]), headers=as_hap("BTG"))
    assert response.status_code == 200, response.text
    bundle = response.json()
    types = {ref.split("/")[0] for ref in refs(bundle)}
    assert "Composition" in types and "Patient" in types and "AllergyIntolerance" in types
    assert not types & {"Encounter", "Observation", "Provenance"}  # outside the emergency dataset
    assert section(bundle, "encounters")["emptyReason"]["coding"][0]["code"] == "withheld"
    assert section(bundle, "vital-signs")["emptyReason"]["coding"][0]["code"] == "withheld"
    assert entry_refs(section(bundle, "directives")) == [f"Consent/{patients['directive']}"]
    problems = [r for r in bundle["entry"] if r["resource"]["resourceType"] == "Condition"]
    assert all(p["resource"]["clinicalStatus"]["coding"][0]["code"] in {"active", "recurrence", "relapse"}
               for p in problems)
    assert f"Condition/{patients['legal']}" not in refs(bundle)  # R/PSY never under BTG for a non-ggz role
    assert "X-Zcc-Btg-Expires" in response.headers
    assert {r for s in composition(bundle)["section"] for r in entry_refs(s)} <= refs(bundle)


def test_another_patients_data_is_never_in_the_summary(client, as_hap, as_ggz, patients) -> None:  # type: ignore[no-untyped-def]
    for own, other in (("direnc", "hansman"), ("hansman", "direnc")):
        bundle = summary(client, as_ggz(), patients[own])  # ggz: nothing of the shared message is withheld
        assert f"Provenance/{patients['shared-provenance']}" not in refs(bundle)
        text = str(bundle)
        assert f"Patient/{patients[other]}" not in text
        for entry in bundle["entry"]:
            subject = entry["resource"].get("subject") or entry["resource"].get("patient")
            if isinstance(subject, dict):
                assert subject["reference"] == f"Patient/{patients[own]}"


def test_lookup_by_bsn_matches_lookup_by_id(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    by_bsn = client.get("/fhir/Patient/$summary", params={"identifier": f"{BSN}|{DIRENC_BSN}"}, headers=as_hap())
    assert by_bsn.status_code == 200
    assert composition(by_bsn.json())["subject"]["reference"] == f"Patient/{patients['direnc']}"
    missing = client.get("/fhir/Patient/$summary", params={"identifier": f"{BSN}|999999999"}, headers=as_hap())
    assert missing.status_code == 404
    bad = client.get("/fhir/Patient/$summary", params={"identifier": DIRENC_BSN}, headers=as_hap())
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["identifier"]


def test_english_narratives_and_xml(client, as_hap, patients) -> None:  # type: ignore[no-untyped-def]
    english = client.get(PATH.format(patients["direnc"]), headers=as_hap(language="en-GB,nl;q=0.5"))
    assert english.headers["Content-Language"] == "en"
    assert section(english.json(), "procedures")["text"]["div"].count("No information available") == 1
    xml = client.get(PATH.format(patients["direnc"]), headers=as_hap(accept="application/fhir+xml"))
    assert xml.status_code == 200 and xml.text.startswith("<?xml") and "<Composition>" in xml.text
    assert "Problemen" in xml.text


def test_document_validates_against_the_base_spec(client, as_hap, patients, services) -> None:  # type: ignore[no-untyped-def]
    bundle = summary(client, as_hap(), patients["direnc"])
    for entry in bundle["entry"]:  # the base spec only: profiles claimed by stored entries are checked on write
        entry["resource"].get("meta", {}).pop("profile", None)
    outcome = base_spec_validator().validate(bundle)
    errors = [i for i in outcome["issue"] if i["severity"] in {"error", "fatal"}]
    assert errors == [], sorted({(i.get("diagnostics") or str(i.get("details")))[:90] for i in errors})[:12]


def test_summary_is_audited_as_one_disclosure_listing_every_resource(client, as_hap, patients, services) -> None:  # type: ignore[no-untyped-def]
    response = client.get(PATH.format(patients["direnc"]), headers=as_hap())
    decision = response.headers["X-Zcc-Decision-Id"]
    with services.store.read() as connection:
        events = [row.body for row in connection.execute(select(audit_event))]
    mine = [e for e in map(_json, events) if decision in str(e) and e.get("type", {}).get("code") == "rest"]
    assert len(mine) == 1
    listed = {entity["what"]["reference"] for entity in mine[0]["entity"] if "reference" in entity.get("what", {})}
    assert refs(response.json()) - {f"Composition/{composition(response.json())['id']}"} <= listed | {
        f"Patient/{patients['direnc']}"}


def test_capability_statement_lists_summary(client, as_hap) -> None:  # type: ignore[no-untyped-def]
    statement = client.get("/fhir/metadata", headers=as_hap()).json()
    patient = next(r for rest in statement["rest"] for r in rest["resource"] if r["type"] == "Patient")
    assert "summary" in {operation["name"] for operation in patient.get("operation", [])}


@cache
def base_spec_validator() -> Validator:
    """R4 core plus the Nictiz packages, so that the nl-core extensions the entries carry are known."""
    nictiz = REFERENCE_DIR / "nictiz-r4-zib2020" / "resources"
    paths = [*default_package_paths(), nictiz / "zib", nictiz / "nl-core"]
    return Validator(PackageSet.from_paths(p for p in paths if p.exists()))


def _json(body: Any) -> dict[str, Any]:
    import json

    return json.loads(body) if isinstance(body, bytes | str) else body


def test_the_consent_cases_above_ran_on_the_cached_record(app) -> None:  # type: ignore[no-untyped-def]
    """Every summary above after the first was built from the record cache: HAP, ggz, no-contact and BTG
    requesters were each judged per request on the same cached record."""
    assert app.state.services.pipeline.operations["summary"].handler.cache.hits > 0
