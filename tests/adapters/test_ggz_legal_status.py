"""BgGGZ legal status (zib2017 Patient extension `zib-patient-legalstatus`) -> zib2020
nl-core-LegalSituation-LegalStatus Condition, codes mapped by the ConceptMap in profiles/nictiz/legal-status: the
fixture's legal status becomes the right Condition with the ggz labels and validates against nl-core; an unknown
code stays listed as unmapped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from starlette.testclient import TestClient

from gateway.adapters.stu3.legal_status import CONCEPT_MAP, map_code
from gateway.app import build_services, create_app
from gateway.ingest.actor import cli_identity
from gateway.ingest.service import IngestResult, IngestService
from gateway.settings import Settings
from tests.adapters.stu3_fixtures import GGZ, instantiate, nl_core_package_paths, stu3_bundle
from tests.reference import REFERENCE_DIR, requires_reference

pytestmark = requires_reference

BALS = "ggz-nl-core-patient-XXX-Bals.xml"
OLD_LIST = "urn:oid:2.16.840.1.113883.2.4.3.11.22.232"
JURIDISCHE_STATUS = "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.4.23.2"
PROFILE = "http://nictiz.nl/fhir/StructureDefinition/nl-core-LegalSituation-LegalStatus"
LEGAL_STATUS_EXTENSION = "http://nictiz.nl/fhir/StructureDefinition/zib-patient-legalstatus"
TERMINOLOGY = REFERENCE_DIR / "nictiz-r4-zib2020" / "resources" / "zib" / "terminology"
VALUE_SET = TERMINOLOGY / ("ValueSet-JuridischeStatusCodelijst-2.16.840.1.113883.2.4.3.11.60.40.2.7.17.1"
                           "--20200901000000.xml")
CODE_SYSTEM = TERMINOLOGY / "CodeSystem-JuridischeStatus-2.16.840.1.113883.2.4.3.11.60.40.4.23.2.xml"
GGZ_LABELS = [("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
              ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PSY")]
FHIR = {"f": "http://hl7.org/fhir"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestService]:
    settings = Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('legal') / 'gateway.db'}",
                        base_url="http://testserver/fhir", package_paths=nl_core_package_paths())
    app = create_app(services=build_services(settings))
    with TestClient(app):
        yield app.state.ingest


def _bals(code: str = "5", system: str = OLD_LIST) -> bytes:
    """Bals as BgGGZ sends him: in a Bundle (his BSN is masked; the entry's fullUrl identifies him), without the
    generalPractitioner that points at a PractitionerRole outside the BgGGZ folder (so strict mode applies)."""
    root = etree.fromstring(instantiate((GGZ / BALS).read_bytes()))
    for gp in root.findall("f:generalPractitioner", FHIR):
        root.remove(gp)
    coding = root.find(f"f:extension[@url='{LEGAL_STATUS_EXTENSION}']/f:valueCodeableConcept/f:coding", FHIR)
    coding.find("f:code", FHIR).set("value", code)
    coding.find("f:system", FHIR).set("value", system)
    return json.dumps(stu3_bundle([etree.tostring(root)], "collection")).encode()


def _written(service: IngestService, result: IngestResult) -> dict[str, dict[str, Any]]:
    with service.services.store.read(False) as connection:
        return {location.split("/")[0]: service.services.store.get(connection, *location.split("/")[:2]).resource()
                for location in result.record.resources}


def _errors(result: IngestResult) -> list[dict[str, Any]]:
    return [i for i in (result.record.outcome or {}).get("issue", []) if i["severity"] in {"error", "fatal"}]


def test_the_fixture_legal_status_becomes_a_nl_core_legal_status_condition(service: IngestService) -> None:
    result = service.ingest("ggz", _bals(), cli_identity())  # strict: validated against nl-core
    assert (result.record.status, _errors(result)) == ("accepted", []), result.record.outcome
    written = _written(service, result)
    assert sorted(written) == ["Condition", "Patient", "Provenance"]
    condition, patient = written["Condition"], written["Patient"]
    assert condition["meta"]["profile"] == [PROFILE]
    assert condition["category"] == [{"coding": [{"system": "http://snomed.info/sct", "code": "303186005",
                                                  "display": "juridische status van patiënt"}]}]
    assert condition["code"]["coding"][0] == {"system": JURIDISCHE_STATUS, "code": "IBS",
                                              "display": "Beschikking tot inbewaringstelling (ibs)"}
    assert condition["code"]["coding"][1:] == [{"system": OLD_LIST, "code": "5",
                                                "display": "In bewaringstelling (ibs)"}]  # as sent, beside it
    assert condition["subject"]["reference"] == f"Patient/{patient['id']}"
    for resource in (condition, patient):
        labels = [(label["system"], label["code"]) for label in resource["meta"]["security"]]
        assert labels == GGZ_LABELS, resource["resourceType"]  # the same R/PSY labels as every ggz resource
    assert LEGAL_STATUS_EXTENSION not in json.dumps(patient)
    assert not any("legalstatus" in u["path"] for u in result.record.unmapped or [])
    again = service.ingest("ggz", _bals().replace(b'"collection"', b'"collection" '), cli_identity())
    assert [loc.split("/_history")[0] for loc in again.record.resources if loc.startswith("Condition/")] == \
        [f"Condition/{condition['id']}"]  # the same patient's legal status lands on the same Condition


def test_an_unknown_legal_status_code_stays_listed_as_unmapped(service: IngestService) -> None:
    result = service.ingest("ggz", _bals(code="99"), cli_identity())
    assert (result.record.status, _errors(result)) == ("accepted", []), result.record.outcome
    assert sorted(_written(service, result)) == ["Patient", "Provenance"]  # no Condition is made up
    listed = [u for u in result.record.unmapped or [] if LEGAL_STATUS_EXTENSION in u["path"]]
    assert len(listed) == 1 and listed[0]["path"].startswith("Bundle.entry[0].resource.extension(")
    assert f"code 99 of {OLD_LIST} is not in ConceptMap" in listed[0]["value"]


def test_a_code_already_in_the_zib2020_list_is_kept(service: IngestService) -> None:
    result = service.ingest("ggz", _bals(code="CM", system=JURIDISCHE_STATUS), cli_identity())
    assert (result.record.status, _errors(result)) == ("accepted", []), result.record.outcome
    assert _written(service, result)["Condition"]["code"]["coding"] == [
        {"system": JURIDISCHE_STATUS, "code": "CM", "display": "Crisismaatregel"}]


def test_only_faithful_targets_convert() -> None:
    assert map_code(OLD_LIST, "5")[0] == {"system": JURIDISCHE_STATUS, "code": "IBS",
                                          "display": "Beschikking tot inbewaringstelling (ibs)"}
    assert map_code(OLD_LIST, "1") == (None, f"code 1 of {OLD_LIST} is not in ConceptMap "
                                             "https://zcc-gateway.nl/fhir/ConceptMap/zib2017-legalstatus-to-zib2020")
    assert map_code("http://snomed.info/sct", "303186005")[0] is None


def test_every_concept_map_target_is_in_the_official_value_set() -> None:
    """The map uses only codes (and displays) of the zib2020 JuridischeStatus code system that the required
    value set of Condition.code (JuridischeStatusCodelijst 2020-09-01) includes."""
    concept_map = json.loads(CONCEPT_MAP.read_text(encoding="utf-8"))
    value_set = etree.parse(str(VALUE_SET))
    included = {(i.findtext("f:system", namespaces=FHIR) or i.find("f:system", FHIR).get("value"),
                 c.find("f:code", FHIR).get("value"))
                for i in value_set.findall(".//f:compose/f:include", FHIR) for c in i.findall("f:concept", FHIR)}
    displays = {c.find("f:code", FHIR).get("value"): c.find("f:display", FHIR).get("value")
                for c in etree.parse(str(CODE_SYSTEM)).findall("f:concept", FHIR)}
    assert concept_map["targetUri"].endswith(value_set.find("f:url", FHIR).get("value").rsplit("/", 1)[1])
    targets = [(group["target"], target) for group in concept_map["group"] for element in group["element"]
               for target in element["target"] if target.get("code")]
    assert targets
    for system, target in targets:
        assert (system, target["code"]) in included, target
        assert target["display"] == displays[target["code"]], target
    identity = next(g for g in concept_map["group"] if g["source"] == JURIDISCHE_STATUS)
    assert {e["code"] for e in identity["element"]} == set(displays)  # every zib2020 code maps onto itself
