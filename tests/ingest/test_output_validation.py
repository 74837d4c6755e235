"""Output validation is done once per resource content: the write checks of the transaction reuse the ingestion's
result for a resource written exactly as validated (not validated twice), validate anything else as usual, and
content that comes back in a later message is not validated again."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from conformance import fhirjson
from gateway.fhir.write_checks import WriteChecks
from gateway.ingest.actor import cli_identity
from gateway.ingest.service import IngestService
from gateway.ingest.validation import prevalidated_write_checks
from tests.ingest.messages import episode_message


@pytest.fixture()
def validated_contents(services, monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:  # type: ignore[no-untyped-def]
    """Counts every validation the gateway's validator does, by resource content."""
    validation = services.validation
    counts: Counter[bytes] = Counter()
    real = validation.validation_issues

    def counting(resource: dict[str, Any], profiles: Any = ()) -> Any:
        counts[fhirjson.dumps(resource)] += 1
        return real(resource, profiles)

    monkeypatch.setattr(validation, "validation_issues", counting)
    return counts


def test_each_resource_is_validated_once(services, validated_contents: Counter[bytes]) -> None:  # type: ignore[no-untyped-def]
    service = IngestService(services)  # a fresh result cache
    result = service.ingest("hap", episode_message("once-1", episode_id="once-ep"), cli_identity())
    assert result.record.status == "accepted", result.record.outcome
    assert len(result.record.resources) >= 4
    assert sum(validated_contents.values()) == len(result.record.resources)
    assert set(validated_contents.values()) == {1}


def test_repeated_content_is_not_validated_again(services, validated_contents: Counter[bytes]) -> None:  # type: ignore[no-untyped-def]
    service = IngestService(services)
    first = service.ingest("hap", episode_message("again-1", episode_id="again-ep"), cli_identity())
    before = sum(validated_contents.values())
    second = service.ingest("hap", episode_message("again-2", episode_id="again-ep", title="Other title"),
                            cli_identity())
    assert first.record.status == second.record.status == "accepted"
    # only what changed: the episode (its title) and the Provenance of the new ingestion
    validated_again = [fhirjson.loads(c)["resourceType"] for c in list(validated_contents)[-2:]]
    assert sum(validated_contents.values()) - before == 2
    assert sorted(validated_again) == ["EpisodeOfCare", "Provenance"]


class FakeValidation:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, resource: dict[str, Any]) -> list[Any]:
        self.calls.append(resource)
        return []


def test_write_checks_validate_content_other_than_validated() -> None:
    validation = FakeValidation()
    checks = WriteChecks(frozenset({"Patient"}), None, validation, "strict")
    seen = {"resourceType": "Patient", "id": "a", "gender": "male"}
    other = {"resourceType": "Patient", "id": "a", "gender": "female"}
    reusing = prevalidated_write_checks(checks, validation, {fhirjson.dumps(seen): []})  # type: ignore[arg-type]
    assert reusing.check(seen, "Patient", "a", require_id=True) == []
    assert validation.calls == []
    reusing.check(other, "Patient", "a", require_id=True)
    assert validation.calls == [other]
    # write checks with another validator are left alone
    assert prevalidated_write_checks(checks, FakeValidation(), {}) is checks  # type: ignore[arg-type]
