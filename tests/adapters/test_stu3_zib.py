"""The zib2017 -> zib2020 restructurings of the STU3 converter (gateway/adapters/stu3/zib.py), on small STU3
resources: what zib2020 can carry is carried the way zib2020 models it, the rest is listed as unmapped."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.typemodel import default_model
from gateway.adapters.stu3 import Conversion, Stu3ToR4

ZIB = "http://nictiz.nl/fhir/StructureDefinition/"
SNOMED = "http://snomed.info/sct"
BANK = "http://nictiz.nl/fhir/StructureDefinition/zib-Payer-BankInformation"
AGB_SPECIALISM = "urn:oid:2.16.840.1.113883.2.4.6.7"
ORGANIZATION_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"


@pytest.fixture(scope="module")
def converter() -> Stu3ToR4:
    return Stu3ToR4(default_model())


def unmapped(conversion: Conversion) -> dict[str, str]:
    return {u.path: u.value for u in conversion.unmapped}


def tobacco(value: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Observation", "meta": {"profile": [ZIB + "zib-TobaccoUse"]}, "status": "final",
            "code": {"coding": [{"system": SNOMED, "code": "365980008"}]},
            "component": [{"code": {"coding": [{"system": SNOMED, "code": "401201003"}]}, "valueQuantity": value}]}


def test_whole_pack_years_become_the_zib2020_integer(converter: Stu3ToR4) -> None:
    quantity = {"value": 10, "unit": "PackYears", "system": "http://unitsofmeasure.org", "code": "{PackYears}"}
    conversion = converter.convert(tobacco(quantity))
    assert conversion.resource["meta"]["profile"] == [ZIB + "nl-core-TobaccoUse"]
    assert conversion.resource["component"][0]["valueInteger"] == 10
    assert "valueQuantity" not in conversion.resource["component"][0]
    assert "{PackYears}" in unmapped(conversion)["Observation.component[0].valueQuantity"]  # listed, not silent


@pytest.mark.parametrize("quantity", [{"value": 10.5, "code": "{PackYears}"}, {"value": 3, "code": "a"}])
def test_pack_years_that_are_no_integer_are_listed_not_rounded(converter: Stu3ToR4, quantity: dict) -> None:  # type: ignore[type-arg]
    conversion = converter.convert(tobacco(quantity))
    assert "component" not in conversion.resource
    assert "401201003" in unmapped(conversion)["Observation.component[0]"]


def payer(*payors: dict[str, Any], coverage_type: dict[str, Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Coverage", "meta": {"profile": [ZIB + "zib-Payer"]},
                                "beneficiary": {"reference": "Patient/p1"}, "payor": list(payors)}
    if coverage_type:
        resource["type"] = coverage_type
    return resource


def account(bank: str, number: str) -> dict[str, Any]:
    return {"url": BANK, "extension": [{"url": "BankName", "valueString": bank},
                                       {"url": "AccountNumber", "valueString": number}]}


def test_one_payer_with_two_bank_accounts_is_one_payor_person_with_both_accounts(converter: Stu3ToR4) -> None:
    conversion = converter.convert(payer(
        {"extension": [account("ING", "NL98INGB0003856625")], "reference": "RelatedPerson/r1", "display": "J. Rijk"},
        {"extension": [account("Triodos", "NL98TRIO0254712320")], "reference": "RelatedPerson/r1",
         "display": "J. Rijk"}))
    coverage = conversion.resource
    assert coverage["meta"]["profile"] == [ZIB + "nl-core-Payer.PayerPerson"]
    assert coverage["payor"] == [{"reference": "RelatedPerson/r1", "display": "J. Rijk"}]
    banks = [e for e in coverage["extension"] if e["url"] == ZIB + "ext-Payer.BankInformation"]
    assert [b["extension"][0] for b in banks] == [{"url": "bankName", "valueString": "ING"},
                                                   {"url": "bankName", "valueString": "Triodos"}]
    assert coverage["type"]["coding"][0]["code"] == "pay"  # PayerPerson's required type
    assert conversion.unmapped == []


def test_a_second_different_payer_is_listed_as_unmapped(converter: Stu3ToR4) -> None:
    insurance = {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.3.11.60.101.5.1", "code": "B"}]}
    conversion = converter.convert(payer({"reference": "Organization/insurer"}, {"reference": "Organization/other"},
                                         coverage_type=insurance))
    assert conversion.resource["meta"]["profile"] == [ZIB + "nl-core-Payer.InsuranceCompany"]
    assert conversion.resource["payor"] == [{"reference": "Organization/insurer"}]
    assert "Organization/other" in unmapped(conversion)["Coverage.payor[1]"]


def test_organisation_keeps_one_type_per_zib2020_slice(converter: Stu3ToR4) -> None:
    organization = {"resourceType": "Organization", "meta": {"profile": ["http://fhir.nl/fhir/StructureDefinition/"
                                                                          "nl-core-organization"]},
                    "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": "V6"}]},
                             {"coding": [{"system": AGB_SPECIALISM, "code": "0330"}]},
                             {"coding": [{"system": AGB_SPECIALISM, "code": "0318"}]},
                             {"text": "locally coded"}]}
    conversion = converter.convert(organization)
    assert [t.get("coding", [{}])[0].get("code") for t in conversion.resource["type"]] == ["V6", "0330", None]
    assert "0318" in unmapped(conversion)["Organization.type[2]"]
    assert "departmentSpecialty" in unmapped(conversion)["Organization.type[2]"]


def test_help_from_others_type_of_help_and_nature_move_to_their_zib2020_elements(converter: Stu3ToR4) -> None:
    plan = {"resourceType": "CarePlan", "meta": {"profile": [ZIB + "zib-HelpFromOthers"]}, "status": "active",
            "intent": "plan", "subject": {"reference": "Patient/p1"},
            "activity": [{"detail": {"category": {"coding": [{"system": SNOMED, "code": "386229000"}]},
                                     "code": {"text": "Mentale ondersteuning"}, "status": "in-progress"}}]}
    conversion = converter.convert(plan)
    detail = conversion.resource["activity"][0]["detail"]
    assert detail["code"] == {"coding": [{"system": SNOMED, "code": "386229000"}]}  # TypeOfHelp
    assert detail["description"] == "Mentale ondersteuning"  # Nature
    assert conversion.unmapped == []
    other = {**plan, "meta": {}}  # another CarePlan: STU3 detail.category has no R4 place
    assert "CarePlan.activity[0].detail.category" in unmapped(converter.convert(other))
