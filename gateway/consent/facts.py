"""Fetch what the PDP needs to know about patients from the store: their zcc contacts, the referrals addressed
to organisations, and their privacy Consents. This is the only consent module that touches the database; it
reads through the search index (`idx_reference`) so that one query serves a whole page of patients.

The facts are read apart from the data they judge (the consent stage reads them on an autocommit connection,
without a snapshot transaction): one statement for the contacts, referrals and Consents of every patient asked
for, a second one only for the URAs of referral recipients named by reference; each sees a committed state of
the store, as the read of the data itself does.

On SQLite a patient's facts are remembered with the store's resource generation (migration 0008), a counter
that triggers move with every committed change to `resource` or `idx_reference`, in whatever process it is
made; the counter is read before the facts, and remembered facts are used only while it has not moved, so they
are never older than facts read at that moment would be. Not inside a transaction (its uncommitted writes), not
with an external consent source, not on PostgreSQL (no counter: see the migration): there every request reads.

An optional external consent source (e.g. a Mitz connection) can be injected; if it fails, the facts say so
(`consent_error`) and every rule that needs consent fails closed.
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from conformance import fhirjson
from gateway.consent.consents import URA, parse_consent
from gateway.consent.model import ConsentRecord, Contact, PatientFacts, Referral
from gateway.consent.policy import Parameters
from gateway.consent.timeutil import parse_instant
from gateway.memo import Memo
from gateway.store.schema import resource

log = logging.getLogger("gateway.consent")

ConsentSource = Callable[[str], list[dict[str, Any]]]  # patient id -> Consent resources (may raise)
_PATIENT_PARAMS = ("patient", "subject")
_RECIPIENTS = {"Task": ("owner",), "ServiceRequest": ("performer",), "Communication": ("recipient",)}
_REMEMBERED_PATIENTS = 4096  # facts kept per FactsSource (see FactsSource.facts)


@lru_cache(maxsize=256)
def _facts_sql(postgresql: bool, patients: int, urls: int, types: int) -> str:
    """The facts query for so many patients, absolute URLs and resource types, in the driver's parameter style.

    It seeks `ix_idx_reference_param_target` on (param, target_id, target_type, source_type): only the index
    rows of contacts, referrals and Consents are visited, however many Observations or Provenances reference the
    patient (before `source_type` existed every reference to the patient was walked and joined to `resource`
    to learn its type). Two index-driven branches, not one OR: an OR with `url` made SQLite walk every
    patient/subject reference in the database; absolute references have no target_id and no target_type, so
    the second branch seeks on (param, NULL, NULL, source_type) and filters the few rows left by `url`.

    Run on the DB-API cursor (per-shape SQL text, prepared and cached by the driver): through SQLAlchemy, the
    expanding IN parameters were re-rendered on every call and cost more than the query. Parameters: see
    `_facts_parameters`."""
    mark = "%s" if postgresql else "?"

    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    head = (
        "SELECT idx_reference.target_id, idx_reference.url, resource.res_key, resource.body "
        "FROM idx_reference JOIN resource ON resource.res_key = idx_reference.res_key "
        f"WHERE idx_reference.param IN ({marks(len(_PATIENT_PARAMS))})"
    )
    tail = (
        f"idx_reference.source_type IN ({marks(types)}) AND resource.deleted IS {'false' if postgresql else '0'}"
    )
    by_id = (
        f"{head} AND idx_reference.target_id IN ({marks(patients)}) AND idx_reference.target_type = {mark} "
        f"AND {tail}"
    )
    if not urls:
        return by_id
    by_url = (
        f"{head} AND idx_reference.target_id IS NULL AND idx_reference.target_type IS NULL "
        f"AND {tail} AND idx_reference.url IN ({marks(urls)})"
    )
    return f"{by_id} UNION ALL {by_url}"


def _facts_parameters(patients: list[str], urls: list[str], types: list[str]) -> list[str]:
    parameters = [*_PATIENT_PARAMS, *patients, "Patient", *types]
    if urls:
        parameters += [*_PATIENT_PARAMS, *types, *urls]
    return parameters


class FactsSource:
    def __init__(self, params: Parameters, base_url: str = "", consent_source: ConsentSource | None = None) -> None:
        self.params = params
        self.base_url = base_url.rstrip("/")
        self.consent_source = consent_source
        # per database engine: patient -> (resource generation, facts); see `_generation`
        self._remembered: weakref.WeakKeyDictionary[Engine, Memo[str, tuple[int, PatientFacts]]] = (
            weakref.WeakKeyDictionary()
        )

    def facts(self, connection: Connection, patients: Iterable[str]) -> dict[str, PatientFacts]:
        wanted = sorted({patient for patient in patients if patient})
        if not wanted:
            return {}
        generation = _generation(connection) if self.consent_source is None else None
        if generation is None:
            return self._read(connection, wanted)
        remembered = self._remembered.get(connection.engine)
        if remembered is None:
            remembered = self._remembered.setdefault(connection.engine, Memo(_REMEMBERED_PATIENTS))
        found: dict[str, PatientFacts] = {}
        for patient in wanted:
            kept = remembered.get(patient)
            if kept is not None and kept[0] == generation:
                found[patient] = kept[1]
        missing = [patient for patient in wanted if patient not in found]
        if missing:
            read = self._read(connection, missing)
            for patient, facts in read.items():
                remembered.keep(patient, (generation, facts))
            found.update(read)
        return found

    def _read(self, connection: Connection, wanted: list[str]) -> dict[str, PatientFacts]:
        types = set(self.params.contact_types) | set(self.params.referral_types) | {"Consent"}
        by_patient: dict[str, list[dict[str, Any]]] = {patient: [] for patient in wanted}
        for patient, body in self._resources_of(connection, wanted, types):
            by_patient[patient].append(body)
        organisations = self._organisation_uras(connection, by_patient.values())
        return {patient: self._facts_for(patient, bodies, organisations) for patient, bodies in by_patient.items()}

    # -- queries -----------------------------------------------------------------------------------------

    def _resources_of(
        self, connection: Connection, patients: list[str], types: set[str]
    ) -> Iterable[tuple[str, dict[str, Any]]]:
        local = [patient for patient in patients if "/" not in patient]  # opaque foreign references have no facts
        seen: set[tuple[str, int]] = set()
        postgresql = connection.dialect.name == "postgresql"
        wanted_types = sorted(types)
        rows: list[Any] = []
        for start in range(0, len(local), 200):
            chunk = local[start : start + 200]
            urls = [f"{self.base_url}/Patient/{patient}" for patient in chunk] if self.base_url else []
            sql = _facts_sql(postgresql, len(chunk), len(urls), len(wanted_types))
            rows += _fetch(connection, sql, _facts_parameters(chunk, urls, wanted_types))
        for target_id, url, res_key, body in rows:
            patient = target_id or str(url).rsplit("/", 1)[-1]
            if (patient, res_key) in seen or body is None:
                continue
            seen.add((patient, res_key))
            yield patient, _loads(body)

    def _organisation_uras(
        self, connection: Connection, groups: Iterable[list[dict[str, Any]]]
    ) -> dict[str, frozenset[str]]:
        ids = set()
        for bodies in groups:
            for body in bodies:
                for reference in _recipient_references(body):
                    literal = reference.get("reference")
                    if isinstance(literal, str) and literal.startswith("Organization/"):
                        ids.add(literal.split("/")[1])
        if not ids:
            return {}
        query = select(resource.c.id, resource.c.body).where(
            resource.c.type == "Organization", resource.c.id.in_(sorted(ids)), resource.c.deleted.is_(False)
        )
        found = {}
        for row in connection.execute(query):
            body = _loads(row.body)
            found[f"Organization/{row.id}"] = frozenset(
                i["value"] for i in body.get("identifier") or () if i.get("system") == URA and i.get("value")
            )
        return found

    # -- assembling facts ---------------------------------------------------------------------------------

    def _facts_for(
        self, patient: str, bodies: list[dict[str, Any]], organisations: Mapping[str, frozenset[str]]
    ) -> PatientFacts:
        contacts, referrals, stored_consents = [], [], []
        for body in bodies:
            resource_type = body.get("resourceType")
            if resource_type in self.params.contact_types:
                contacts.append(_contact(patient, body))
            if resource_type in self.params.referral_types:
                referrals.append(_referral(patient, body, organisations))
            if resource_type == "Consent":
                stored_consents.append(body)
        records, error = self._consents(patient, stored_consents)
        return PatientFacts(patient, tuple(contacts), tuple(referrals), tuple(records), error)

    def _consents(self, patient: str, stored: list[dict[str, Any]]) -> tuple[list[ConsentRecord], str | None]:
        bodies = list(stored)
        if self.consent_source is not None:
            try:
                bodies += self.consent_source(patient)
            except Exception as problem:  # any failure of the consent service: no consent (fail closed)
                log.warning("consent source failed for a patient: %s", type(problem).__name__)
                return [], f"consent source unavailable ({type(problem).__name__})"
        try:
            records = [
                record
                for body in bodies
                for record in parse_consent(body, self.params.data_categories, self.params.adhoc_max_hours)
            ]
        except (AttributeError, TypeError, ValueError) as problem:
            return [], f"consent could not be read ({type(problem).__name__})"
        return [record for record in records if record.patient == patient], None


def _generation(connection: Connection) -> int | None:
    """The store's resource generation (migration 0008: moved by every committed change to the rows the facts are
    read from, in any process), read before the facts, so facts remembered with it are never older than it; or
    None when facts must be read afresh: not SQLite (no counter), or inside a transaction (its writes may not be
    committed yet, or ever)."""
    if connection.dialect.name != "sqlite":
        return None
    driver = connection.connection.dbapi_connection
    if driver is None or driver.in_transaction:  # type: ignore[attr-defined]
        return None
    try:
        row = driver.execute("SELECT n FROM resource_generation WHERE id = 1").fetchone()  # type: ignore[attr-defined]
    except sqlite3.Error:  # no counter (a database made without the migrations): read afresh
        return None
    return int(row[0]) if row is not None else None


def _fetch(connection: Connection, sql: str, parameters: list[str]) -> list[Any]:
    """All rows of `sql` on the connection's DB-API cursor (in its transaction); driver errors as SQLAlchemy's."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, parameters)
        return list(cursor.fetchall())
    except connection.dialect.loaded_dbapi.Error as problem:
        raise DBAPIError.instance(sql, parameters, problem, connection.dialect.loaded_dbapi.Error) from problem
    finally:
        cursor.close()


def _loads(body: Any) -> Any:
    """A stored body: the facts read codes, references, periods and identifiers, never a decimal, so orjson's
    floats are fine (5-10x faster than the decimal-exact parse); anything orjson refuses takes that parse."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return fhirjson.loads_trusted(bytes(body))


def fetch_facts(source: FactsSource, connection: Connection, patients: Iterable[str]) -> dict[str, PatientFacts]:
    """Facts for `patients`; a database failure yields facts that deny (fail closed) rather than a crash."""
    wanted = list(patients)
    try:
        return source.facts(connection, wanted)
    except SQLAlchemyError as problem:
        log.error("consent facts could not be read: %s", type(problem).__name__)
        return {patient: PatientFacts(patient, consent_error="facts unavailable") for patient in wanted}


def _contact(patient: str, body: dict[str, Any]) -> Contact:
    resource_type = body["resourceType"]
    period = body.get("executionPeriod") if resource_type == "Task" else body.get("period")
    period = period if isinstance(period, dict) else {}
    start = parse_instant(period.get("start")) or parse_instant(body.get("authoredOn"))
    end = parse_instant(period.get("end"), end=True)
    if resource_type == "Task" and end is None:
        end = parse_instant(body.get("lastModified"))
    return Contact(f"{resource_type}/{body.get('id')}", patient, str(body.get("status", "")), start, end)


def _referral(patient: str, body: dict[str, Any], organisations: Mapping[str, frozenset[str]]) -> Referral:
    uras: set[str] = set()
    for reference in _recipient_references(body):
        identifier = reference.get("identifier") or {}
        if isinstance(identifier, dict) and identifier.get("system") == URA and identifier.get("value"):
            uras.add(identifier["value"])
        literal = reference.get("reference")
        if isinstance(literal, str):
            uras |= organisations.get(literal, frozenset())
    reference = f"{body['resourceType']}/{body.get('id')}"
    return Referral(reference, patient, str(body.get("status", "")), frozenset(uras))


def _recipient_references(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for element in _RECIPIENTS.get(str(body.get("resourceType")), ()):
        value = body.get(element)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                found.append(item)
    return found
