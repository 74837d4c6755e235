"""Read what a summary may draw on from the store: the patient (by id or by identifier), every resource in the
patient's compartment (Provenance included: it targets the patient), and the resources those point to (medication,
practitioners, organisations, episodes), a few references deep. Nothing here decides what may be disclosed.

A `RecordCache` keeps the assembled record per patient between requests. It is keyed on what the database says
now, not on time: the (res_key, version) of the patient, of every compartment member and of every resource the
record followed a reference to (found or not). Every write bumps a resource's version, a new member
or a new referenced resource adds a row, a deletion removes one — so any write touching the record, from this or
another process, changes the fingerprint, and one query without bodies checks it.

On SQLite that check is skipped when nothing at all was written since the record was last found current:
`max(resource_version.vkey)` (one index lookup) is then unchanged. SQLite has one writer at a time and never
deletes version rows, so a new vkey is always higher than every committed one. Not on PostgreSQL: a sequence
value is taken before commit, so a write can become visible below the maximum already seen. There the database
folds the same rows into one digest (md5 over the distinct (res_key, version) pairs in numeric order) and
returns a single row; the record keeps the same digest of the rows it was read from. Same rows, same digest:
the check stays exact, without shipping ~1,000 rows to Python on every request."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Text, and_, cast, func, literal, or_, select, union_all
from sqlalchemy.dialects.postgresql import aggregate_order_by

from conformance import fhirjson
from gateway.consent.compartment import PatientCompartment
from gateway.fhir.errors import bad_request
from gateway.store.lookups import patient_ids_with_identifier
from gateway.store.schema import idx_reference, resource, resource_version

REFERENCE_DEPTH = 3
CACHE_SIZE = 64  # patients (a 500-resource record is ~2 MB of dicts)

Fingerprint = frozenset[tuple[int, int]]


@dataclass
class PatientRecord:
    patient: dict[str, Any]
    resources: list[dict[str, Any]] = field(default_factory=list)  # the compartment (without the Patient)
    supporting: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Type/id" -> referenced resource
    references: dict[str, set[str]] = field(default_factory=dict)  # "Type/id" -> the "Type/id"s it references
    # consent descriptions of the resources above, by id(resource), and their grouping by shape, filled by the
    # screen (a description depends on the resource only); shared by every view of a cached record
    descriptions: dict[Any, Any] = field(default_factory=dict)

    @property
    def patient_id(self) -> str:
        return str(self.patient["id"])


@dataclass
class Collected:
    """A record with what it was read from: the fingerprint that says whether it is still current."""

    record: PatientRecord
    base_url: str
    fingerprint: Fingerprint
    followed: dict[str, list[str]]  # type -> ids of every reference followed (the supporting candidates)
    documents: OrderedDict[Any, Any] = field(default_factory=OrderedDict)  # assembled documents (see operation)
    checked_at: int | None = None  # SQLite: max(resource_version.vkey) when the record was last found current
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards `documents` and `views`
    types: frozenset[str] | None = None  # the resource types in the record (see gateway.summary.operation)
    views: dict[frozenset[str], PatientRecord] = field(default_factory=dict)  # readable types -> view of record
    # PostgreSQL: `fingerprint_digest(fingerprint)` and the digest query for this record as driver SQL text and
    # parameters (compiled once: the statement is the same on every check; the driver then prepares it)
    digest: tuple[str, str, Any] | None = None

    def is_current(self, connection: Connection, compartment: PatientCompartment, patient_id: str) -> bool:
        """Whether the rows this record was read from are still exactly the live ones."""
        if connection.dialect.name != "postgresql":
            return fingerprint(connection, compartment, patient_id, self.base_url, self.followed) == self.fingerprint
        if self.digest is None:
            query = digest_query(compartment, patient_id, self.base_url, self.followed)
            compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
            self.digest = (fingerprint_digest(self.fingerprint), str(compiled), compiled.params)
        expected, sql, parameters = self.digest
        return connection.exec_driver_sql(sql, parameters).scalar() == expected


def find_patient_ids(connection: Connection, identifier: str) -> list[str]:
    """Patients carrying `system|value` (both parts required: a BSN without its system is ambiguous)."""
    system, bar, value = identifier.partition("|")
    if not bar or not system or not value:
        raise bad_request("identifier must be system|value, e.g. http://fhir.nl/fhir/NamingSystem/bsn|123456782",
                          expression=["identifier"])
    return patient_ids_with_identifier(connection, system, value)


def load_patient(connection: Connection, patient_id: str) -> tuple[dict[str, Any], tuple[int, int]] | None:
    """The live patient, and its (res_key, version)."""
    row = connection.execute(
        select(resource.c.body, resource.c.res_key, resource.c.version).where(
            resource.c.type == "Patient", resource.c.id == patient_id, resource.c.deleted.is_(False)
        )
    ).first()
    if row is None or row.body is None:
        return None
    return fhirjson.loads_trusted(row.body), (row.res_key, row.version)


class RecordCache:
    """Per-patient records, checked against the database on every use (see the module doc). Thread-safe; the
    cached dicts are shared between requests and must never be changed (nothing downstream does)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: OrderedDict[str, Collected] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(
        self,
        connection: Connection,
        compartment: PatientCompartment,
        patient_id: str,
        base_url: str,
        followed_types: frozenset[str] | None = None,
        remember: bool = True,
    ) -> Collected | None:
        """The patient's current record (None: no such live patient). `remember=False` inside a write
        transaction: what it sees may still be rolled back, so nothing learnt there is kept."""
        marker = _last_write(connection)  # read before anything else: a later write only makes it look older
        with self._lock:
            cached = self._entries.get(patient_id)
        if cached is not None and cached.base_url == base_url:
            if (marker is not None and cached.checked_at == marker) or cached.is_current(
                connection, compartment, patient_id
            ):
                if remember:
                    cached.checked_at = marker
                with self._lock:
                    self.hits += 1
                    if patient_id in self._entries:
                        self._entries.move_to_end(patient_id)
                return cached
        loaded = load_patient(connection, patient_id)
        if loaded is None:
            with self._lock:
                self._entries.pop(patient_id, None)
            return None
        collected = collect(connection, compartment, loaded[0], base_url, followed_types, loaded[1])
        collected.checked_at = marker
        with self._lock:
            self.misses += 1
            if self.size > 0 and remember:
                self._entries[patient_id] = collected
                self._entries.move_to_end(patient_id)
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return collected

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def collect_record(
    connection: Connection,
    compartment: PatientCompartment,
    patient: dict[str, Any],
    base_url: str,
    followed_types: frozenset[str] | None = None,
) -> PatientRecord:
    return collect(connection, compartment, patient, base_url, followed_types).record


def collect(
    connection: Connection,
    compartment: PatientCompartment,
    patient: dict[str, Any],
    base_url: str,
    followed_types: frozenset[str] | None = None,
    patient_row: tuple[int, int] | None = None,
) -> Collected:
    """`followed_types`: the types whose references are followed (None: all) — a summary only needs those of
    its section entries and of Provenance. `patient_row`: the patient's (res_key, version) as read."""
    record = PatientRecord(patient)
    patient_id = record.patient_id
    own_url = _own_url(base_url, patient_id)
    columns = (resource.c.res_key, resource.c.version, resource.c.type, idx_reference.c.param, resource.c.body)
    found: dict[int, bytes] = {}
    seen: set[tuple[int, int]] = {patient_row} if patient_row else set()  # every row read, as `fingerprint` does
    for row in connection.execute(union_all(*_member_selects(compartment, patient_id, own_url, *columns))):
        seen.add((row.res_key, row.version))
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
    followed: dict[str, list[str]] = {}
    for depth in range(REFERENCE_DEPTH + 1):  # what the entries point to (a document carries what it references)
        for body, raw in frontier:
            record.references[_key(body)] = find_references(raw)
        if depth == REFERENCE_DEPTH:
            break
        wanted = {ref for body, _ in frontier for ref in record.references[_key(body)] if ref not in known}
        for reference in sorted(wanted):
            resource_type, resource_id = reference.split("/")
            followed.setdefault(resource_type, []).append(resource_id)
        loaded = _load_many(connection, compartment, wanted, patient_id, own_url, seen)
        record.supporting.update({ref: body for ref, (body, _) in loaded.items()})
        known |= wanted
        frontier = list(loaded.values())
    return Collected(record, base_url, frozenset(seen), followed)


def fingerprint(
    connection: Connection,
    compartment: PatientCompartment,
    patient_id: str,
    base_url: str,
    followed: dict[str, list[str]],
) -> Fingerprint:
    """(res_key, version) of the patient, the compartment members and the followed references, as they are now —
    the rows `collect` reads, in one query without bodies."""
    selects = _fingerprint_selects(compartment, patient_id, base_url, followed)
    return frozenset(map(tuple, connection.execute(union_all(*selects))))


def _fingerprint_selects(
    compartment: PatientCompartment, patient_id: str, base_url: str, followed: dict[str, list[str]]
) -> list[Any]:
    columns = (resource.c.res_key, resource.c.version)
    selects = _member_selects(compartment, patient_id, _own_url(base_url, patient_id), *columns)
    selects.append(select(*columns).where(
        resource.c.type == "Patient", resource.c.id == patient_id, resource.c.deleted.is_(False)
    ))
    if followed:
        selects.append(select(*columns).where(_by_type_and_id(followed), resource.c.deleted.is_(False)))
    return selects


def fingerprint_digest(rows: Fingerprint) -> str:
    """The digest `digest_query` computes in the database, of rows held in Python."""
    joined = ",".join(f"{key}:{version}" for key, version in sorted(rows))
    return hashlib.md5(joined.encode(), usedforsecurity=False).hexdigest()


def digest_query(
    compartment: PatientCompartment, patient_id: str, base_url: str, followed: dict[str, list[str]]
) -> Any:
    """PostgreSQL: `fingerprint_digest` of the rows `fingerprint` would return, computed by the database."""
    rows = union_all(*_fingerprint_selects(compartment, patient_id, base_url, followed)).subquery()
    pairs = select(rows.c.res_key, rows.c.version).distinct().subquery()
    pair = cast(pairs.c.res_key, Text).op("||")(literal(":")).op("||")(cast(pairs.c.version, Text))
    joined = func.string_agg(pair, aggregate_order_by(literal(","), pairs.c.res_key, pairs.c.version))
    return select(func.md5(func.coalesce(joined, literal(""))))


def _last_write(connection: Connection) -> int | None:
    """SQLite only (see the module doc): the highest version key, which moves with every committed write."""
    if connection.dialect.name != "sqlite":
        return None
    return connection.execute(select(func.max(resource_version.c.vkey))).scalar()


def _own_url(base_url: str, patient_id: str) -> str:
    return f"{base_url.rstrip('/')}/Patient/{patient_id}"


def _member_selects(compartment: PatientCompartment, patient_id: str, own_url: str, *columns: Any) -> list[Any]:
    """Resources with a reference to the patient in one of the compartment parameters: a relative reference (the
    index gives its target) or an absolute one under our base (the index keeps the URL, without a target). Two
    statements, each able to seek ix_idx_reference_param_target on (param, target_id)."""
    params = sorted({param for names in compartment.params.values() for param in names})
    base = (
        select(*columns)
        .join(idx_reference, idx_reference.c.res_key == resource.c.res_key)
        .where(idx_reference.c.param.in_(params), resource.c.deleted.is_(False), resource.c.type != "Patient")
    )
    return [
        base.where(idx_reference.c.target_id == patient_id, idx_reference.c.target_type == "Patient"),
        base.where(idx_reference.c.target_id.is_(None), idx_reference.c.url == own_url),
    ]


def _by_type_and_id(by_type: dict[str, list[str]]) -> Any:
    return or_(*(and_(resource.c.type == t, resource.c.id.in_(sorted(ids))) for t, ids in sorted(by_type.items())))


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
    connection: Connection,
    compartment: PatientCompartment,
    wanted: Iterable[str],
    patient_id: str,
    own_url: str,
    seen: set[tuple[int, int]],
) -> dict[str, tuple[dict[str, Any], bytes]]:
    """The referenced resources, except those about another patient (they never enter this patient's summary).
    Adds the (res_key, version) of every row read to `seen`."""
    rows: dict[int, tuple[str, bytes]] = {}
    by_type: dict[str, list[str]] = {}
    for reference in wanted:
        resource_type, resource_id = reference.split("/")
        by_type.setdefault(resource_type, []).append(resource_id)
    if not by_type:
        return {}
    query = select(resource.c.res_key, resource.c.version, resource.c.type, resource.c.id, resource.c.body).where(
        _by_type_and_id(by_type), resource.c.deleted.is_(False)
    )
    for row in connection.execute(query):
        seen.add((row.res_key, row.version))
        if row.body is not None:
            rows[row.res_key] = (f"{row.type}/{row.id}", row.body)
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
