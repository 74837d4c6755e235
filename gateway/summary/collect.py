"""Read what a summary may draw on from the store: the patient (by id or by identifier), every resource in the
patient's compartment (Provenance included: it targets the patient), and the resources those point to (medication,
practitioners, organisations, episodes), a few references deep. Nothing here decides what may be disclosed."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from conformance import fhirjson
from gateway.consent.compartment import PatientCompartment
from gateway.fhir.errors import bad_request
from gateway.store.lookups import patient_ids_with_identifier
from gateway.store.schema import idx_reference, resource

REFERENCE_DEPTH = 3


@dataclass
class PatientRecord:
    patient: dict[str, Any]
    resources: list[dict[str, Any]] = field(default_factory=list)  # the compartment (without the Patient)
    supporting: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Type/id" -> referenced resource
    references: dict[str, set[str]] = field(default_factory=dict)  # "Type/id" -> the "Type/id"s it references

    @property
    def patient_id(self) -> str:
        return str(self.patient["id"])


def find_patient_ids(connection: Connection, identifier: str) -> list[str]:
    """Patients carrying `system|value` (both parts required: a BSN without its system is ambiguous)."""
    system, bar, value = identifier.partition("|")
    if not bar or not system or not value:
        raise bad_request("identifier must be system|value, e.g. http://fhir.nl/fhir/NamingSystem/bsn|123456782",
                          expression=["identifier"])
    return patient_ids_with_identifier(connection, system, value)


def load_patient(connection: Connection, patient_id: str) -> dict[str, Any] | None:
    row = connection.execute(
        select(resource.c.body).where(
            resource.c.type == "Patient", resource.c.id == patient_id, resource.c.deleted.is_(False)
        )
    ).first()
    return fhirjson.loads_trusted(row.body) if row is not None and row.body is not None else None


def collect_record(
    connection: Connection,
    compartment: PatientCompartment,
    patient: dict[str, Any],
    base_url: str,
    followed_types: frozenset[str] | None = None,
) -> PatientRecord:
    """`followed_types`: the types whose references are followed (None: all) — a summary only needs those of
    its section entries and of Provenance."""
    record = PatientRecord(patient)
    patient_id = record.patient_id
    params = sorted({param for names in compartment.params.values() for param in names})
    own_url = f"{base_url.rstrip('/')}/Patient/{patient_id}"
    query = (
        select(resource.c.res_key, resource.c.type, idx_reference.c.param, resource.c.body)
        .join(idx_reference, idx_reference.c.res_key == resource.c.res_key)
        .where(
            idx_reference.c.param.in_(params),
            or_(
                and_(idx_reference.c.target_id == patient_id, idx_reference.c.target_type == "Patient"),
                idx_reference.c.url == own_url,
            ),
            resource.c.deleted.is_(False),
            resource.c.type != "Patient",
        )
    )
    found: dict[int, bytes] = {}
    for row in connection.execute(query):
        if row.body is not None and row.param in compartment.params.get(row.type, ()):
            found[row.res_key] = row.body  # a mention outside the type's compartment parameters does not count
    shared = _about_other_patients(connection, compartment, list(found), patient_id, own_url)
    raws = [body for key, body in found.items() if key not in shared]
    record.resources = [fhirjson.loads_trusted(body) for body in raws]
    find_references = _reference_finder(base_url)
    known = {_key(r) for r in record.resources} | {f"Patient/{patient_id}"}
    frontier = [(patient, fhirjson.dumps(patient))] + [
        (body, raw) for body, raw in zip(record.resources, raws, strict=True)
        if followed_types is None or body["resourceType"] in followed_types
    ]
    for depth in range(REFERENCE_DEPTH + 1):  # what the entries point to (a document carries what it references)
        for body, raw in frontier:
            record.references[_key(body)] = find_references(raw)
        if depth == REFERENCE_DEPTH:
            break
        wanted = {ref for body, _ in frontier for ref in record.references[_key(body)] if ref not in known}
        loaded = _load_many(connection, compartment, wanted, patient_id, own_url)
        record.supporting.update({ref: body for ref, (body, _) in loaded.items()})
        known |= wanted
        frontier = list(loaded.values())
    return record


def _reference_finder(base_url: str) -> Callable[[bytes], set[str]]:
    """Local literal references ("Type/id", the patient excluded) in stored JSON, found in the bytes: a quoted
    `"reference":` inside a string value is escaped, so only real Reference.reference elements match."""
    base = re.escape(base_url.rstrip("/").encode() + b"/")
    pattern = re.compile(
        rb'"reference"\s*:\s*"(?:' + base + rb')?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^"]*)?"'
    )

    def find(raw: bytes) -> set[str]:
        return {f"{t.decode()}/{i.decode()}" for t, i in pattern.findall(raw) if t != b"Patient"}

    return find


def _key(body: dict[str, Any]) -> str:
    return f"{body.get('resourceType')}/{body.get('id')}"


def _load_many(
    connection: Connection, compartment: PatientCompartment, wanted: set[str], patient_id: str, own_url: str
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The referenced resources, except those about another patient (they never enter this patient's summary)."""
    rows: dict[int, tuple[str, bytes]] = {}
    by_type: dict[str, list[str]] = {}
    for reference in wanted:
        resource_type, resource_id = reference.split("/")
        by_type.setdefault(resource_type, []).append(resource_id)
    for resource_type, ids in by_type.items():
        query = select(resource.c.res_key, resource.c.id, resource.c.body).where(
            resource.c.type == resource_type, resource.c.id.in_(sorted(ids)), resource.c.deleted.is_(False)
        )
        for row in connection.execute(query):
            if row.body is not None:
                rows[row.res_key] = (f"{resource_type}/{row.id}", row.body)
    shared = _about_other_patients(connection, compartment, list(rows), patient_id, own_url)
    return {ref: (fhirjson.loads_trusted(body), body) for key, (ref, body) in rows.items() if key not in shared}


def _about_other_patients(
    connection: Connection, compartment: PatientCompartment, res_keys: list[int], patient_id: str, own_url: str
) -> set[int]:
    """Resources (by key) in the compartment of a patient other than `patient_id` (or a foreign patient)."""
    shared: set[int] = set()
    for start in range(0, len(res_keys), 500):
        chunk = res_keys[start : start + 500]
        query = (
            select(idx_reference.c.res_key, idx_reference.c.param, idx_reference.c.target_id,
                   idx_reference.c.url, resource.c.type)
            .join(resource, resource.c.res_key == idx_reference.c.res_key)
            .where(
                idx_reference.c.res_key.in_(chunk),
                or_(idx_reference.c.target_type == "Patient", idx_reference.c.url.contains("/Patient/")),
            )
        )
        for row in connection.execute(query):
            own = row.target_id == patient_id if row.target_id else row.url == own_url
            if not own and row.param in compartment.params.get(row.type, ()):
                shared.add(row.res_key)
    return shared
