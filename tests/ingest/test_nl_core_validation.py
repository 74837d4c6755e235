"""With the Nictiz zib and nl-core packages on the package path, ingested HAP output is validated against the
nl-core profiles it claims: the reference messages pass with zero errors, and a planted profile violation is
refused with its location and nothing written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from conformance.packages import default_package_paths
from gateway.app import build_services, create_app
from gateway.ingest.actor import cli_identity
from gateway.ingest.service import IngestService
from gateway.settings import Settings
from tests.ingest.conftest import KETENZORG, SUMMARY
from tests.ingest.test_ingest_pipeline import stored_count
from tests.reference import REFERENCE_DIR, requires_reference

NICTIZ = REFERENCE_DIR / "nictiz-r4-zib2020" / "resources"
BODY_HEIGHT = "http://nictiz.nl/fhir/StructureDefinition/nl-core-BodyHeight"
MEASUREMENTS = KETENZORG / "algemene_bepalingen_POOB_IN990003NL_01.xml"
CONTRA_INDICATION = "http://nictiz.nl/fhir/StructureDefinition/nl-core-MedicationContraIndication"
THESAURUS_40 = "urn:oid:2.16.840.1.113883.2.4.4.1.902.40"

pytestmark = requires_reference


@pytest.fixture(scope="module")
def nl_core_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestService]:
    paths = [*default_package_paths(), NICTIZ / "zib", NICTIZ / "nl-core"]
    settings = Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('nl-core') / 'gateway.db'}",
                        base_url="http://testserver/fhir", package_paths=paths)
    app = create_app(services=build_services(settings))
    with TestClient(app):
        yield app.state.ingest


def error_issues(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return [i for i in (result.record.outcome or {}).get("issue", []) if i["severity"] in {"error", "fatal"}]


def test_nl_core_profiles_are_checked_not_skipped(nl_core_service: IngestService) -> None:
    assert nl_core_service.services.validation.knows_profile(BODY_HEIGHT)


def not_checked(result) -> list[dict]:  # type: ignore[no-untyped-def]
    """Issues saying a claimed profile could not be checked (not loaded): none may be left."""
    return [i for i in (result.record.outcome or {}).get("issue", []) if i["code"] == "not-found"]


def test_ketenzorg_reference_messages_conform_to_nl_core(nl_core_service: IngestService) -> None:
    for path in sorted(KETENZORG.glob("*.xml")):
        result = nl_core_service.ingest("hap", path.read_bytes(), cli_identity())
        assert result.record.status == "accepted", (path.name, result.record.outcome)
        assert error_issues(result) == [], path.name
        assert not_checked(result) == [], path.name


def test_summary_conforms_to_nl_core_with_contra_indications_as_flags(nl_core_service: IngestService) -> None:
    """No exceptions left: the contra-indications (G-Standaard thesaurus 40: 219 VERKEERSDEELNAME, 1347 ASTMA) are
    nl-core-MedicationContraIndication Flags, whose code binding (required) is thesaurus 40."""
    assert nl_core_service.services.validation.knows_profile(CONTRA_INDICATION)
    result = nl_core_service.ingest("hap", SUMMARY.read_bytes(), cli_identity())
    assert result.record.status == "accepted", result.record.outcome
    assert error_issues(result) == []
    assert not_checked(result) == []
    flags = []
    with nl_core_service.services.store.read(False) as connection:
        for location in result.record.resources:
            resource_type, resource_id = location.split("/")[:2]
            if resource_type == "Flag":
                flags.append(nl_core_service.services.store.get(connection, "Flag", resource_id).resource())
    contra = [f for f in flags if f["meta"]["profile"] == [CONTRA_INDICATION]]
    assert sorted(c["code"] for f in contra for c in f["code"]["coding"] if c["system"] == THESAURUS_40) == \
        ["1347", "219"]
    assert all(f["category"][0]["coding"][0]["code"] == "140401000146105" for f in contra)


def test_planted_profile_violation_is_rejected_at_its_location(nl_core_service: IngestService) -> None:
    """A body height in feet: the adapter passes the unit through, nl-core-BodyHeight requires cm or [in_i]."""
    raw = MEASUREMENTS.read_bytes()
    planted = raw.replace(b'unit="m"', b'unit="[ft_i]"', 1).replace(b"XIS-20190301-1227-", b"XIS-planted-1227-", 1)
    assert planted != raw
    before = stored_count(nl_core_service)
    result = nl_core_service.ingest("hap", planted, cli_identity())
    assert result.record.status == "rejected"
    located = [(i["expression"][0], i["diagnostics"]) for i in error_issues(result)]
    assert len(located) == 1, located
    where, why = located[0]
    assert where.startswith("Bundle.entry[") and where.endswith("].resource.value.ofType(Quantity)"), where
    assert "Body Length Units" in why and "[ft_i]" in why
    assert stored_count(nl_core_service) == before
