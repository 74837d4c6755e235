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
# The nl-core errors the HAP output still has, all in the professionele samenvatting: the official mapping (and the
# STU3 oracle, tests/adapters) turns the contra-indications (G-Standaard thesaurus 40: 219 VERKEERSDEELNAME,
# 1347 ASTMA) into AllergyIntolerances, whose code nl-core binds (required) to the substance lists; zib2020 puts
# them in Flag (nl-core-Alert). See docs/conformance.md.
KNOWN_CONTRA_INDICATION_CODES = {"219", "1347"}

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


def test_ketenzorg_reference_messages_conform_to_nl_core(nl_core_service: IngestService) -> None:
    for path in sorted(KETENZORG.glob("*.xml")):
        result = nl_core_service.ingest("hap", path.read_bytes(), cli_identity())
        assert result.record.status == "accepted", (path.name, result.record.outcome)
        assert error_issues(result) == [], path.name
        not_checked = [i for i in result.record.outcome.get("issue", []) if i["code"] == "not-found"] \
            if result.record.outcome else []
        assert not_checked == [], (path.name, not_checked)


def test_summary_has_only_the_known_contra_indication_error(nl_core_service: IngestService) -> None:
    result = nl_core_service.ingest("hap", SUMMARY.read_bytes(), cli_identity())
    errors = error_issues(result)
    assert result.record.status == "rejected"
    assert len(errors) == len(KNOWN_CONTRA_INDICATION_CODES), errors
    for error in errors:
        assert error["expression"][0].endswith(".resource.code"), error
        assert error["diagnostics"].startswith("AllergyIntolerance: ") and "VeroorzakendeStof" in error["diagnostics"]
    assert {e["diagnostics"].rsplit("902.40#", 1)[1].rstrip(")") for e in errors} == KNOWN_CONTRA_INDICATION_CODES


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
