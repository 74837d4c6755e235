"""RAV content oracles: every source field that matters lands where it should (HL7v2 ADT/ORU fixtures written
for these tests, the AZ-IG referral message from the reference folder), and the output validates against
nl-core with zero errors."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance.packages import PackageSet, default_package_paths
from conformance.validator import Validator
from gateway.adapters.hap.model import TranslationError
from gateway.adapters.rav import RavTranslation, translate_rav
from tests.reference import REFERENCE_DIR, requires_reference

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = Path(__file__).parent / "rav_messages"
AZ_REFERRAL = REFERENCE_DIR / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
NICTIZ = REFERENCE_DIR / "nictiz-r4-zib2020" / "resources"
LOINC, SNOMED = "http://loinc.org", "http://snomed.info/sct"


def translate(name: str) -> RavTranslation:
    return translate_rav((MESSAGES / name).read_bytes())


def of_type(translation: RavTranslation, resource_type: str) -> list[dict[str, Any]]:
    return [m.resource for m in translation.resources if m.resource_type == resource_type]


def observation(translation: RavTranslation, loinc: str) -> dict[str, Any]:
    return next(r for r in of_type(translation, "Observation")
                if any(c.get("code") == loinc for c in r["code"].get("coding", [])))


@cache
def validator() -> Validator:
    paths = [*default_package_paths(ROOT), NICTIZ / "zib", NICTIZ / "nl-core", ROOT / "profiles/nictiz/urgency"]
    return Validator(PackageSet.from_paths(p for p in paths if p.exists()))


def test_adt_a04_patient_ride_urgency_and_sender() -> None:
    t = translate("ADT_A04_ride_registration.hl7")
    assert t.interaction == "ADT^A04" and t.message_id.endswith("/message-control-id|RAVU-20260608-000123")
    assert t.sender_organization == {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "00000001"}
    patient = of_type(t, "Patient")[0]
    assert patient["identifier"][0] == {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999999990"}
    assert patient["identifier"][1]["value"] == "R-88231"
    name = patient["name"][0]
    assert name["family"] == "de Vries-Jong" and name["given"] == ["Patrick", "P.", "J."]
    assert name["text"] == "Patrick P. J. de Vries-Jong"
    assert [e["valueCode"] for g in name["_given"] for e in g["extension"]] == ["BR", "IN", "IN"]
    parts = [(e["url"].rsplit("/", 1)[-1], e["valueString"]) for e in name["_family"]["extension"]]
    assert parts == [("humanname-own-prefix", "de"), ("humanname-own-name", "Vries"),
                     ("humanname-partner-name", "Jong")]
    assert name["extension"][0]["valueCode"] == "NL4"
    assert patient["birthDate"] == "1944-03-10" and patient["gender"] == "male"
    address = patient["address"][0]
    assert (address["city"], address["postalCode"], address["use"]) == ("Utrecht", "3511AA", "home")
    assert {e["valueString"] for e in address["_line"][0]["extension"]} == {"Dorpsstraat", "12", "A"}
    assert {(c["value"], c.get("use")) for c in patient["telecom"]} == {("030-1234567", "home"),
                                                                      ("06-12345678", "mobile")}
    ride = of_type(t, "Encounter")[0]
    assert ride["identifier"] == [{"system": "urn:oid:2.16.840.1.113883.2.4.3.32.5", "value": "2026060800123"}]
    assert ride["class"]["code"] == "EMER" and ride["status"] == "in-progress"
    assert ride["period"] == {"start": "2026-06-08T10:45:00+02:00"}
    codes = {(c["system"], c["code"]) for c in ride["priority"]["coding"]}
    assert codes == {("https://zcc-gateway.nl/fhir/CodeSystem/ambulance-urgency", "A1"),
                     ("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "EM")}
    assert ride["reasonCode"][0]["coding"][0]["display"] == "Pijn in de buik&bekken"  # \T\ unescaped
    assert ride["serviceProvider"]["type"] == "Organization"
    organization = of_type(t, "Organization")[0]
    assert organization["name"] == "RAV Utrecht" and organization["type"][0]["coding"][0]["code"] == "AMB"
    assert {u.xpath for u in t.unmapped} >= {"PV1[4]-3"}  # the vehicle location is not mapped: listed


def test_adt_a08_ends_the_ride_and_changes_urgency() -> None:
    ride = of_type(translate("ADT_A08_ride_update.hl7"), "Encounter")[0]
    assert ride["status"] == "finished" and ride["period"]["end"] == "2026-06-08T11:18:00+02:00"
    assert ride["priority"]["coding"][0]["code"] == "A2"


def test_adt_without_bsn_unknown_urgency_and_z_segment() -> None:
    t = translate("ADT_A04_without_bsn.hl7")
    patient = of_type(t, "Patient")[0]
    assert [i["system"] for i in patient["identifier"]] == [
        "https://zcc-gateway.nl/fhir/NamingSystem/local/00000001/AMBUREG"]
    ride = of_type(t, "Encounter")[0]
    assert "priority" not in ride
    assert ride["identifier"][0]["value"] == "2026060800140" and "period" not in ride
    assert any("Z9" in i.diagnostics for i in t.issues)
    assert {u.xpath for u in t.unmapped} >= {"PV2[5]-25", "ZAM[6]-2", "ZAM[6]-3"}


def test_oru_vital_signs_with_loinc() -> None:
    t = translate("ORU_R01_vital_signs.hl7")
    bp = observation(t, "85354-9")
    assert bp["meta"]["profile"] == ["http://nictiz.nl/fhir/StructureDefinition/nl-core-BloodPressure"]
    values = {c["code"]["coding"][0]["code"]: str(c["valueQuantity"]["value"]) for c in bp["component"]}
    assert values == {"8480-6": "142", "8462-4": "88"}
    systolic = bp["component"][0]
    assert systolic["interpretation"][0]["coding"][0]["code"] == "H"
    assert str(systolic["referenceRange"][0]["high"]["value"]) == "140"
    assert bp["effectiveDateTime"] == "2026-06-08T11:08:00+02:00"
    assert bp["encounter"] == {"type": "Encounter", "identifier": {
        "system": "urn:oid:2.16.840.1.113883.2.4.3.32.5", "value": "2026060800123"}}
    assert str(observation(t, "8867-4")["valueQuantity"]["value"]) == "96"
    spo2 = observation(t, "59408-5")
    assert [c["code"] for c in spo2["code"]["coding"]][:2] == ["2708-6", "59408-5"]
    assert spo2["interpretation"][0]["coding"][0]["code"] == "L"
    temperature = observation(t, "8310-5")["valueQuantity"]
    assert (str(temperature["value"]), temperature["code"]) == ("37.8", "Cel")
    resp = observation(t, "9279-1")
    assert resp["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/resprate"]
    gcs = observation(t, "35088-4")
    assert gcs["valueInteger"] == 15
    assert {c["valueCodeableConcept"]["coding"][0]["code"] for c in gcs["component"]} == {"E4", "V5", "M6"}
    note = next(r for r in of_type(t, "Observation") if "valueString" in r)
    assert note["valueString"] == "Patiënt gaf aan: pijn 7/10 | misselijk\nna antacidum\nminder pijn"


def test_oru_monitor_with_mdc_codes_and_units() -> None:
    t = translate("ORU_R01_monitor_mdc.hl7")
    bp = observation(t, "85354-9")
    parts = {c["code"]["coding"][0]["code"]: (str(c["valueQuantity"]["value"]), c["valueQuantity"]["code"])
             for c in bp["component"]}
    assert parts == {"8480-6": ("128", "mm[Hg]"), "8462-4": ("79", "mm[Hg]"), "6797001": ("95", "mm[Hg]")}
    assert {"system": "urn:iso:std:iso:11073:10101", "code": "150021", "display": "MDC_PRESS_BLD_NONINV_SYS"} in \
        bp["component"][0]["code"]["coding"]
    assert observation(t, "8867-4")["valueQuantity"]["code"] == "/min"
    assert observation(t, "59408-5")["valueQuantity"]["code"] == "%"
    assert observation(t, "8310-5")["valueQuantity"]["code"] == "Cel"
    local = next(r for r in of_type(t, "Observation") if "meta" not in r)
    assert local["code"]["coding"] == [{"code": "999999", "display": "LOCAL_ETCO2"}]  # unknown system: reported
    assert any("99CORP" in i.diagnostics for i in t.issues)


@pytest.mark.parametrize(("raw", "code", "words"), [
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A99|C|P|2.5\rPID|1||1^^^X^PI", "not-supported", "ADT^A99"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A04|C|P|3.0\rPID|1||1^^^X^PI", "not-supported", "version"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A04|C|P|2.5\rEVN|A04", "required", "PID"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ORU^R01|C|P|2.5\rPID|1||1^^^X^PI\rOBX|1|NM|8867-4^HR^LN||fast",
     "value", "OBX[3]-5"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ORU^R01|C|P|2.5\rPID|1||1^^^X^PI\rOBX|1|NM|9267-6^E^LN||7", "value",
     "GCS eye"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ORU^R01|C|P|2.5\rPID|1||1^^^X^PI", "required", "no OBX"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A04|C|P|2.5\rPID|1||1^^^X^PI||x||1944-03-10", "value", "PID-7"),
    (b"MSH|^~\\&|A|R^00000001^URA|Z|G|2026||ADT^A04|C|P|2.5\rP!D|1", "structure", "segment 2"),
    (b"<ClinicalDocument/>", "not-supported", "XML"),
    (b'{"resourceType": "Patient"}', "structure", "message Bundle"),
])
def test_bad_messages_are_rejected_with_a_reason(raw: bytes, code: str, words: str) -> None:
    with pytest.raises(TranslationError) as caught:
        translate_rav(raw)
    assert caught.value.code == code and words in caught.value.diagnostics


@requires_reference
def test_az_referral_message_resources_and_routing() -> None:
    t = translate_rav(AZ_REFERRAL.read_bytes())
    source = json.loads(AZ_REFERRAL.read_bytes())
    counts_in: dict[str, int] = {}
    for entry in source["entry"][1:]:  # the MessageHeader is the envelope
        counts_in[entry["resource"]["resourceType"]] = counts_in.get(entry["resource"]["resourceType"], 0) + 1
    counts_out: dict[str, int] = {}
    for mapped in t.resources:
        counts_out[mapped.resource_type] = counts_out.get(mapped.resource_type, 0) + 1
    assert counts_in == counts_out
    assert t.interaction == "http://nictiz.nl/fhir/CodeSystem/hg-message-event#145" and t.sender_name == "RAV Utrecht"
    referral = of_type(t, "ServiceRequest")[0]
    destination = next(m for m in t.resources if m.key == "Organization|http://fhir.nl/fhir/NamingSystem/ura|00000002")
    assert referral["performer"][0]["reference"] == destination.full_url
    document = of_type(t, "DocumentReference")[0]
    assert document["content"][0]["attachment"]["data"] == "JVBERi0xLjQK"
    assert "extension" not in document
    assert any(u.xpath == "Bundle.entry[8].resource.extension[0]" for u in t.unmapped)
    patient = of_type(t, "Patient")[0]
    assert "http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient" in patient["meta"]["profile"]


@requires_reference
def test_az_message_faults() -> None:
    source = json.loads(AZ_REFERRAL.read_bytes())
    dangling = json.loads(json.dumps(source))
    dangling["entry"] = [e for e in dangling["entry"] if e["resource"]["resourceType"] != "Practitioner"]
    stu3 = json.loads(json.dumps(source))
    stu3["entry"][0]["resource"]["event"] = stu3["entry"][0]["resource"].pop("eventCoding")
    other_event = json.loads(json.dumps(source))
    other_event["entry"][0]["resource"]["eventCoding"]["code"] = "146"
    for bundle, code in ((dangling, "not-found"), (stu3, "not-supported"), (other_event, "not-supported")):
        with pytest.raises(TranslationError) as caught:
            translate_rav(json.dumps(bundle).encode())
        assert caught.value.code == code


@requires_reference
@pytest.mark.parametrize("name", sorted(p.name for p in MESSAGES.glob("*.hl7")) + ["az-referral"])
def test_output_validates_against_nl_core(name: str) -> None:
    t = translate_rav(AZ_REFERRAL.read_bytes()) if name == "az-referral" else translate(name)
    errors = []
    for mapped in t.resources:
        resource = {"id": "x", **mapped.resource}
        errors += [(mapped.key, i.expression, i.message) for i in validator().validate_issues(resource) if i.is_error]
    assert errors == []
