"""Output validation is done once per resource content: the write checks of the transaction reuse the ingestion's
result for a resource written exactly as validated (not validated twice), validate anything else as usual, and
content that comes back in a later message is not validated again. Likewise the write checks' structure check:
done once per resource written, before the write transaction, and reused by the write checks in it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conformance import fhirjson, structure
from gateway.fhir.errors import FhirError, Issue
from gateway.fhir.write_checks import WriteChecks
from gateway.ingest.actor import cli_identity
from gateway.ingest.service import IngestService
from gateway.ingest.validation import OutputValidation, check_structure, prevalidated_write_checks
from tests.ingest.messages import episode_message


@pytest.fixture()
def validated_contents(services, monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:  # type: ignore[no-untyped-def]
    """Counts every validation the gateway's validator does, by resource content."""
    validation = services.validation
    counts: Counter[bytes] = Counter()
    real = validation.validation_issues

    def counting(resource: dict[str, Any], profiles: Any = (), structure: Any = None) -> Any:
        counts[fhirjson.dumps(resource)] += 1
        return real(resource, profiles, structure)

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


def test_the_validator_and_the_write_checks_share_one_structure_check_per_resource(  # type: ignore[no-untyped-def]
        services, validated_contents: Counter[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    walked: Counter[bytes] = Counter()
    real = structure._Walker.resource

    def counting(walker: Any, value: Any, path: str) -> None:
        if not path:  # a resource checked on its own (not one contained in it)
            walked[fhirjson.dumps(value)] += 1
        real(walker, value, path)

    monkeypatch.setattr(structure._Walker, "resource", counting)
    result = IngestService(services).ingest("hap", episode_message("share-1", episode_id="share-ep"), cli_identity())
    assert result.record.status == "accepted", result.record.outcome
    assert set(walked) == set(validated_contents)  # every resource validated, and nothing else ...
    assert set(walked.values()) == {1}  # ... structure-checked once, for the validator and the write checks


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


@pytest.fixture()
def structure_checks(services, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bool]]:  # type: ignore[no-untyped-def]
    """Every run of the write checks' structure checker: (content, whether inside a write transaction)."""
    checks = services.write_checks
    real = checks.structure_checker
    runs: list[tuple[bytes, bool]] = []
    writing = [False]
    real_write = type(services.store).write

    @contextmanager
    def write(store: Any) -> Iterator[Any]:
        with real_write(store) as connection:
            writing[0] = True
            try:
                yield connection
            finally:
                writing[0] = False

    def counting(resource: dict[str, Any]) -> Any:
        runs.append((fhirjson.dumps(resource), writing[0]))
        return real(resource)

    monkeypatch.setattr(checks, "structure_checker", counting)
    monkeypatch.setattr(type(services.store), "write", write)
    return runs


def test_each_written_resource_is_structure_checked_once_outside_the_write(  # type: ignore[no-untyped-def]
        services, structure_checks: list[tuple[bytes, bool]]) -> None:
    service = IngestService(services)
    result = service.ingest("hap", episode_message("structure-1", episode_id="structure-ep"), cli_identity())
    assert result.record.status == "accepted", result.record.outcome
    written = len(result.response["entry"])  # type: ignore[index]  # without the ones stored unchanged already
    assert written >= 2
    assert len(structure_checks) == written  # the write checks' checker, once per resource written
    assert len({content for content, _ in structure_checks}) == written
    assert not any(inside for _, inside in structure_checks)  # none in the write transaction


def test_write_checks_check_the_structure_of_content_other_than_checked() -> None:
    validation = FakeValidation()
    calls: list[dict[str, Any]] = []

    def structure(resource: dict[str, Any]) -> list[Any]:
        calls.append(resource)
        return []

    problem = Issue("error", "structure", "gender: not a code", ["Patient.gender"])
    checks = WriteChecks(frozenset({"Patient"}), structure, validation, "strict")
    seen = {"resourceType": "Patient", "id": "a", "gender": "male"}
    other = {"resourceType": "Patient", "id": "a", "gender": "female"}
    structured = {fhirjson.dumps(seen): [problem]}
    validated = {fhirjson.dumps(seen): [], fhirjson.dumps(other): []}
    reusing = prevalidated_write_checks(checks, validation, validated, structured=structured,  # type: ignore[arg-type]
                                        structured_by=structure)
    with pytest.raises(FhirError) as refused:  # the remembered result decides, as the checker's own would
        reusing.check(seen, "Patient", "a", require_id=True)
    assert refused.value.issues == [problem]
    assert calls == []
    assert reusing.check(other, "Patient", "a", require_id=True) == []
    assert calls == [other]
    # results of another checker are not used
    other_checker = prevalidated_write_checks(checks, validation, validated, structured=structured,  # type: ignore[arg-type]
                                              structured_by=lambda resource: [])
    assert other_checker.check(seen, "Patient", "a", require_id=True) == []
    assert calls == [other, seen]


def test_a_failing_structure_checker_is_left_to_the_write_check() -> None:
    def failing(resource: dict[str, Any]) -> list[Any]:
        raise RuntimeError("no type model")

    output = OutputValidation(FakeValidation(), structure_checker=failing)  # type: ignore[arg-type]
    resource = {"resourceType": "Patient", "id": "a"}
    assert output.structure(resource) is None
    assert check_structure([resource], output) == {}
    assert check_structure([resource], OutputValidation(FakeValidation())) == {}  # type: ignore[arg-type]


def test_structure_results_are_remembered_by_content() -> None:
    calls: list[dict[str, Any]] = []

    def structure(resource: dict[str, Any]) -> list[Any]:
        calls.append(resource)
        return []

    output = OutputValidation(FakeValidation(), size=1, structure_checker=structure)  # type: ignore[arg-type]
    first, second = {"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}
    assert check_structure([first, dict(first)], output) == {fhirjson.dumps(first): []}
    assert calls == [first]
    check_structure([second, first], output)  # size 1: `first` was dropped for `second`
    assert calls == [first, second, first]
