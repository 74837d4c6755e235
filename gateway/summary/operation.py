"""`GET [base]/Patient/{id}/$summary` and `GET [base]/Patient/$summary?identifier=system|value` as a pipeline
Operation: it runs inside the auth, scope, consent and audit stages like every other interaction.

The handler reads the patient's resources, keeps the types the token may read, screens them with the consent
engine (see gateway.summary.screen) and assembles the document from what is released. A patient the client
may not see is answered exactly like an unknown one (404)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from gateway.auth.enforcement import require_scope
from gateway.auth.errors import Forbidden
from gateway.consent.compartment import PatientCompartment
from gateway.consent.engine import SUPPRESSED_HEADER
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError, not_found
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation
from gateway.fhir.write_checks import check_id
from gateway.summary.collect import CACHE_SIZE, Collected, PatientRecord, RecordCache, find_patient_ids
from gateway.summary.document import Assembled, assemble, wrap
from gateway.summary.language import negotiate_language
from gateway.summary.screen import Screen, Screening
from gateway.summary.sections import SummaryDefinition, load_definition

NAME = "summary"
DEFINITION = "http://zcc-gateway.nl/fhir/OperationDefinition/summary"
DOCUMENTS_PER_PATIENT = 8  # assembled documents kept per cached record (one per language and screening outcome)
VIEWS_PER_PATIENT = 4  # record views kept per cached record (one per set of readable types)


def summary_operation(compartment: PatientCompartment, screen: Screen,
                      definition: SummaryDefinition | None = None, cache_size: int = CACHE_SIZE) -> Operation:
    """`cache_size`: patients whose record (and assembled documents) are kept between requests; each use is
    checked against the database first (gateway.summary.collect.RecordCache), consent is judged and the audit
    written per request regardless."""
    summary = definition or load_definition()
    followed = summary.resource_types | {"Provenance"}
    cache = RecordCache(cache_size)

    def handler(scope: RequestScope, it: Interaction) -> Result:
        if it.method not in {"GET", "HEAD"}:
            raise FhirError(405, "not-supported", "$summary is GET [base]/Patient/{id}/$summary")
        language = negotiate_language(it.header("accept-language"))
        with scope.reading() as connection:
            patient_id = _patient_id(connection, it)
            collected = cache.get(connection, compartment, patient_id, scope.base_url, followed,
                                  remember=scope.connection is None)
        if collected is None:
            raise not_found("Patient", it.id)
        record = _readable(scope.identity, collected)
        screening = screen(scope, it, [record.patient, *record.resources, *record.supporting.values()],
                           memo=record.descriptions)
        if not screening.allows(record.patient):
            if screening.visibly_withheld(record.patient):
                raise FhirError(403, "forbidden", "the patient's data is withheld / de gegevens zijn achtergehouden")
            raise not_found("Patient", it.id)
        assembled = _assembled(collected, record, screening, language, scope.base_url)
        document = wrap(summary, assembled, language, scope.base_url, datetime.now(UTC))
        headers = {"Content-Language": language}
        if document.withheld:
            headers[SUPPRESSED_HEADER] = str(document.withheld)
        return Result(200, resource=document.bundle, headers=headers)

    def _assembled(collected: Collected, record: PatientRecord, screening: Screening, language: str,
                   base_url: str) -> Assembled:
        """The document content for this screening outcome: the same released and visibly withheld resources
        in the same language give the same content (the record is the current one: the cache checked it)."""
        key = (language, frozenset(screening.released), frozenset(screening.withheld_visible))
        with collected.lock:
            found = collected.documents.get(key)
        if found is None:
            found = assemble(summary, record, screening, language, base_url)
            with collected.lock:
                collected.documents[key] = found
                while len(collected.documents) > DOCUMENTS_PER_PATIENT:
                    collected.documents.popitem(last=False)
        return found

    handler.cache = cache  # type: ignore[attr-defined]  # for tests and benchmarks (hit/miss counters)

    return Operation(
        name=NAME,
        handler=handler,
        definition=DEFINITION,
        levels=frozenset({"instance", "type"}),
        resource_types=frozenset({"Patient"}),
        documentation="Patient summary document for zcc applications (NL-PS direction, LOINC 60591-5), built "
        "under consent: withheld sections say so, every entry carries its Provenance. Accept-Language nl/en.",
    )


def _patient_id(connection: Any, it: Interaction) -> str:
    unknown = sorted({name for name, _ in it.params if name not in {"identifier", "_format", "_pretty"}})
    if unknown:
        raise FhirError(400, "invalid", f"$summary does not take the parameter(s) {', '.join(unknown)}",
                        expression=unknown)
    if it.id:
        check_id(it.id)
        if any(name == "identifier" for name, _ in it.params):
            raise FhirError(400, "invalid", "give either Patient/{id}/$summary or ?identifier=, not both",
                            expression=["identifier"])
        return it.id
    identifiers = [value for name, value in it.params if name == "identifier"]
    if len(identifiers) != 1:
        raise FhirError(400, "required", "Patient/$summary needs exactly one identifier=system|value",
                        expression=["identifier"])
    ids = find_patient_ids(connection, identifiers[0])
    if not ids:
        raise not_found("Patient")
    if len(ids) > 1:
        raise FhirError(409, "multiple-matches", "more than one patient carries this identifier")
    return ids[0]


def _readable(identity: Any, collected: Collected) -> PatientRecord:
    """A summary discloses many types: only those the token may read without restriction go in. A view: the
    (cached) record itself is never changed; the view is kept with it per set of readable types."""
    record = collected.record
    if identity is None:
        return record
    types = collected.types
    if types is None:
        types = collected.types = frozenset(
            str(r.get("resourceType")) for r in [*record.resources, *record.supporting.values()]
        )
    readable = frozenset(t for t in types if _may_read(identity, t))
    if readable == types:
        return record
    with collected.lock:
        view = collected.views.get(readable)
    if view is None:
        view = replace(
            record,
            resources=[r for r in record.resources if str(r.get("resourceType")) in readable],
            supporting={ref: r for ref, r in record.supporting.items() if str(r.get("resourceType")) in readable},
        )
        with collected.lock:
            collected.views[readable] = view
            while len(collected.views) > VIEWS_PER_PATIENT:
                collected.views.pop(next(iter(collected.views)))
    return view


def _may_read(identity: Any, resource_type: str) -> bool:
    try:
        return not require_scope(identity, resource_type, "read").restrictions
    except Forbidden:
        return False
