"""The pipeline guarantees: raw kept, rejected kept with a reason and nothing written, unmapped listed,
idempotent, stable ids, patient identity rules, one Provenance per ingestion, strict vs lenient."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select

from gateway.ingest.actor import cli_identity
from gateway.ingest.identity import bsn_valid, stable_id
from gateway.ingest.service import IngestService
from gateway.store.schema import resource
from tests.ingest.messages import OTHER_VALID_BSN, episode_message


def stored_count(service: IngestService, resource_type: str | None = None) -> int:
    query = select(func.count()).select_from(resource)
    if resource_type:
        query = query.where(resource.c.type == resource_type)
    with service.services.store.engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def read(service: IngestService, location: str) -> dict:
    resource_type, resource_id = location.split("/")[:2]
    with service.services.store.read(False) as connection:
        stored = service.services.store.get(connection, resource_type, resource_id)
    assert stored is not None, location
    return stored.resource()


def ingest(service: IngestService, raw: bytes, lenient: bool = False):  # type: ignore[no-untyped-def]
    return service.ingest("hap", raw, cli_identity(), lenient)


def test_accepted_message_is_kept_raw_with_its_facts(service: IngestService) -> None:
    raw = episode_message("keep-1", episode_id="keep-ep")
    result = ingest(service, raw)
    record = service.records.get(result.record.id)
    assert record is not None and record.status == "accepted"
    assert service.records.raw(record.id) == raw
    assert record.sha256 == hashlib.sha256(raw).hexdigest()
    assert record.sender == "http://fhir.nl/fhir/NamingSystem/ura|02234567"
    assert record.message_id == "2.16.840.1.113883.2.4.6.6.1.1|keep-1"
    assert record.interaction == "REPC_IN990111NL" and record.received_at.endswith("Z")
    types = sorted(location.split("/")[0] for location in record.resources)
    assert types == ["Condition", "EpisodeOfCare", "Organization", "Patient", "Provenance"]


@pytest.mark.parametrize(("raw", "code", "phrase"), [
    (b"<REPC_IN990111NL xmlns='urn:hl7-org:v3'><id", "structure", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "structure",
     "DOCTYPE"),
    (b"<QUQI_IN000001NL xmlns='urn:hl7-org:v3'><interactionId extension='QUQI_IN000001NL'/></QUQI_IN000001NL>",
     "not-supported", "QUQI_IN000001NL is not supported"),
    (b"<html><body>hello</body></html>", "not-supported", "no HL7v3 interaction"),
    (episode_message("no-patient", bsn=None), "required", "identifies no patient"),
    (episode_message("bad-bsn", bsn="123456789"), "value", "fails the 11-proof"),
])
def test_rejected_message_is_kept_with_reason_and_writes_nothing(
    service: IngestService, raw: bytes, code: str, phrase: str
) -> None:
    before = stored_count(service)
    result = ingest(service, raw)
    assert result.record.status == "rejected"
    record = service.records.get(result.record.id)
    assert record is not None and record.status == "rejected"
    assert service.records.raw(record.id) == raw
    issues = record.outcome["issue"]
    assert any(issue["code"] == code and phrase in issue["diagnostics"] for issue in issues), issues
    assert stored_count(service) == before


def test_oversized_message_is_kept_and_rejected(services) -> None:  # type: ignore[no-untyped-def]
    service = IngestService(services, max_message=20 * 1024 * 1024)
    raw = episode_message("big").replace(b"<text>COPD</text>", b"<text>" + b"x" * (50 * 1024 * 1024) + b"</text>")
    before = stored_count(service)
    result = ingest(service, raw)
    assert result.record.status == "rejected" and result.issues[0].code == "too-costly"
    assert service.records.get(result.record.id).size == len(raw)  # type: ignore[union-attr]
    assert stored_count(service) == before


def test_unmapped_elements_are_listed_with_xpath_and_value(service: IngestService) -> None:
    extra = '<maritalStatusCode code="M" codeSystem="2.16.840.1.113883.5.2"/>'
    result = ingest(service, episode_message("unmapped-1", episode_id="unmapped-ep", extra=extra))
    assert result.record.status == "accepted"
    assert {"xpath": "/hl7:REPC_IN990111NL/hl7:ControlActProcess/hl7:subject/hl7:organizer/hl7:recordTarget"
                     "/hl7:patientRole/hl7:patient/hl7:maritalStatusCode",
            "value": "@code=M @codeSystem=2.16.840.1.113883.5.2"} in result.record.unmapped


def test_same_bytes_twice_creates_nothing_new(service: IngestService) -> None:
    raw = episode_message("twice-1", episode_id="twice-ep")
    first = ingest(service, raw)
    count = stored_count(service)
    second = ingest(service, raw)
    assert (first.record.status, second.record.status) == ("accepted", "duplicate")
    assert second.record.duplicate_of == first.record.id
    assert stored_count(service) == count


def test_same_message_id_twice_creates_nothing_new(service: IngestService) -> None:
    first = ingest(service, episode_message("same-id", episode_id="same-id-ep"))
    count = stored_count(service)
    second = ingest(service, episode_message("same-id", episode_id="same-id-ep", title="COPD (resent)"))
    assert second.record.status == "duplicate" and second.record.duplicate_of == first.record.id
    assert stored_count(service) == count


def test_later_message_about_the_same_entity_updates_it(service: IngestService) -> None:
    first = ingest(service, episode_message("update-1", episode_id="upd-ep", title="COPD"))
    second = ingest(service, episode_message("update-2", episode_id="upd-ep", title="COPD GOLD II"))
    episode_location = next(x for x in second.record.resources if x.startswith("EpisodeOfCare/"))
    assert episode_location.rsplit("/", 1)[0] in {x.rsplit("/", 1)[0] for x in first.record.resources}
    episode = read(service, episode_location)
    assert episode["id"] == stable_id("EpisodeOfCare|2.16.528.1.1007.3.3.765332.1.12|upd-ep")
    assert episode["meta"]["versionId"] == "2"
    assert episode["extension"][0]["valueString"] == "COPD GOLD II"


def test_patient_is_matched_on_bsn_only(service: IngestService) -> None:
    first = ingest(service, episode_message("bsn-1", bsn=OTHER_VALID_BSN, episode_id="bsn-ep-1"))
    second = ingest(service, episode_message("bsn-2", bsn=OTHER_VALID_BSN, episode_id="bsn-ep-2",
                                              source_id="local-77"))
    patients = {x.rsplit("/", 2)[0] for x in first.record.resources + second.record.resources
                if x.startswith("Patient/")}
    assert patients == {f"Patient/{stable_id('Patient|http://fhir.nl/fhir/NamingSystem/bsn|' + OTHER_VALID_BSN)}"}


def test_without_bsn_the_source_identifier_makes_a_separate_patient(service: IngestService) -> None:
    """Same name and birth date as a BSN patient: never merged on demographics."""
    result = ingest(service, episode_message("no-bsn-1", bsn=None, source_id="local-1", episode_id="nb-ep"))
    patient = next(x for x in result.record.resources if x.startswith("Patient/"))
    expected = stable_id("Patient|urn:oid:2.16.840.1.113883.2.4.6.6.90000258.2.460320|local-1")
    assert patient.split("/")[1] == expected
    assert read(service, patient)["identifier"] == [
        {"system": "urn:oid:2.16.840.1.113883.2.4.6.6.90000258.2.460320", "value": "local-1"}]


def test_bsn_with_other_birth_date_is_flagged_and_not_overwritten(service: IngestService) -> None:
    bsn = "111222333"
    assert bsn_valid(bsn)
    ingest(service, episode_message("conflict-1", bsn=bsn, birth="19800101", episode_id="cf-1"))
    second = ingest(service, episode_message("conflict-2", bsn=bsn, birth="19810202", episode_id="cf-2"))
    assert second.record.status == "accepted"
    assert second.record.flags == ["bsn-demographics-conflict"]
    assert any(i["code"] == "conflict" for i in second.record.outcome["issue"])
    patient_id = stable_id(f"Patient|http://fhir.nl/fhir/NamingSystem/bsn|{bsn}")
    assert read(service, f"Patient/{patient_id}")["birthDate"] == "1980-01-01"


def test_invalid_bsn_is_accepted_in_lenient_mode_without_the_bsn(service: IngestService) -> None:
    result = ingest(service, episode_message("lenient-bsn", bsn="123456789", source_id="local-9",
                                             episode_id="len-ep"), lenient=True)
    assert result.record.status == "accepted"
    assert any(i["severity"] == "warning" and "11-proof" in i["diagnostics"] for i in result.record.outcome["issue"])
    patient = next(x for x in result.record.resources if x.startswith("Patient/"))
    assert all(i["value"] != "123456789" for i in read(service, patient)["identifier"])


def test_one_provenance_targets_everything_written(service: IngestService) -> None:
    result = ingest(service, episode_message("prov-1", episode_id="prov-ep"))
    provenances = [x for x in result.record.resources if x.startswith("Provenance/")]
    assert len(provenances) == 1
    provenance = read(service, provenances[0])
    written = {x.rsplit("/", 2)[0] for x in result.record.resources if not x.startswith("Provenance/")}
    assert {t["reference"] for t in provenance["target"]} == written
    assert provenance["recorded"] == result.record.received_at
    assert provenance["agent"][0]["who"]["reference"].startswith("Organization/")
    assert provenance["entity"][0]["what"]["identifier"] == {"system": "urn:oid:2.16.840.1.113883.2.4.6.6.1.1",
                                                              "value": "prov-1"}


def test_retry_reprocesses_a_rejected_record_after_a_fix(services) -> None:  # type: ignore[no-untyped-def]
    from gateway.adapters.hap import translate_hap

    def broken(raw: bytes, submitter: str):  # type: ignore[no-untyped-def]
        raise ValueError("adapter bug")

    broken_service = IngestService(services, adapters={"hap": broken})
    rejected = ingest(broken_service, episode_message("retry-1", episode_id="retry-ep"))
    assert rejected.record.status == "rejected"
    fixed = IngestService(services, adapters={"hap": lambda raw, _: translate_hap(raw)})
    assert rejected.record.id in fixed.records.ids_with_status("rejected")
    retried = fixed.retry(rejected.record.id, cli_identity())
    assert retried.record.id == rejected.record.id and retried.record.status == "accepted"
    assert fixed.records.get(rejected.record.id).attempts == 2  # type: ignore[union-attr]


def test_database_unavailable_is_not_a_rejection(services) -> None:  # type: ignore[no-untyped-def]
    """A server-side failure is the sender's cue to retry (503), not a verdict on the message: the raw message
    stays kept as `received`, so it can be re-processed, and it is not listed as rejected."""
    from sqlalchemy.exc import OperationalError

    def database_gone(raw: bytes, submitter: str):  # type: ignore[no-untyped-def]
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    service = IngestService(services, adapters={"hap": database_gone})
    raw = episode_message("unavailable-1", episode_id="unavailable-ep")
    with pytest.raises(OperationalError):
        service.ingest("hap", raw, cli_identity())
    received = service.records.ids_with_status("received")
    assert any(service.records.raw(record_id) == raw for record_id in received)
    assert not any(service.records.raw(record_id) == raw for record_id in service.records.ids_with_status("rejected"))


def test_source_without_adapter_is_kept_and_rejected(service: IngestService) -> None:
    service = IngestService(service.services, service.records, adapters={})  # every source has an adapter now
    result = service.ingest("rav", b'{"resourceType": "Bundle"}', cli_identity())
    assert result.record.status == "rejected" and "no adapter" in result.issues[0].diagnostics
    assert service.records.raw(result.record.id) == b'{"resourceType": "Bundle"}'


@pytest.mark.parametrize(("bsn", "valid"), [("012345672", True), ("111222333", True), ("999911624", True),
                                            ("123456789", False), ("000000000", False), ("12345672", True),
                                            ("01234567X", False), ("0123456720", False)])
def test_bsn_eleven_proof(bsn: str, valid: bool) -> None:
    assert bsn_valid(bsn) is valid


def test_the_resources_found_absent_are_hinted_new_to_the_store(service: IngestService,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The store creates a resource hinted new without reading it first (PostgreSQL): ingestion hints those its
    read of the current versions found absent, and no other."""
    hinted: list[set[tuple[str, str]]] = []
    monkeypatch.setattr(service.services.store, "expect_new", lambda keys: hinted.append(set(keys)))
    episode = ("EpisodeOfCare", stable_id("EpisodeOfCare|2.16.528.1.1007.3.3.765332.1.12|hint-ep"))
    first = ingest(service, episode_message("hint-1", episode_id="hint-ep", title="COPD"))
    second = ingest(service, episode_message("hint-2", episode_id="hint-ep", title="COPD GOLD II"))
    assert first.record.status == second.record.status == "accepted"
    provenances = [("Provenance", stable_id(f"Provenance|ingest|{r.record.id}")) for r in (first, second)]
    assert episode in hinted[0] and provenances[0] in hinted[0]
    assert episode not in hinted[1] and provenances[1] in hinted[1]  # the episode is stored: an update
    assert all(key[0] != "Patient" for key in hinted[1])  # the patient of the first message is stored too
