"""Search SQL against real data on SQLite and PostgreSQL: the same statements must give the same ids.

Data: the R4 core examples of a few types (as the gateway would index them) plus small synthetic resources
whose values sit on the edges of the FHIR comparison rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import Engine, create_engine, insert, select, update

from conformance import fhirjson
from conformance.packages import PackageSet
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows
from gateway.search.query import SearchQuery, parse_search
from gateway.store import schema, search_sql
from tests.pg import fresh_database

EXAMPLE_TYPES = {"Patient", "Observation", "Practitioner", "Organization", "Provenance", "Encounter", "Group"}
EXAMPLE_UPDATED = "2024-01-01T00:00:00.000000+00:00"

SYNTHETIC = [
    (
        {
            "resourceType": "Patient",
            "id": "t-y2020",
            "birthDate": "2020",
            "gender": "female",
            "name": [{"family": "Ærøskøbing", "given": ["Zoë"]}],
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "111"}],
            "generalPractitioner": [{"reference": "Practitioner/example"}],
        },
        "2025-03-01T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Patient",
            "id": "t-d2020",
            "birthDate": "2020-06-15",
            "gender": "male",
            "name": [{"family": "Jansen_%", "given": ["Jan"]}],
            "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "222"}],
        },
        "2025-03-02T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Patient",
            "id": "t-d2021",
            "birthDate": "2021-01-01",
            "gender": "other",
            "name": [{"family": "Jansens", "given": ["Piet"]}],
            "managingOrganization": {"reference": "Organization/1"},
        },
        "2025-03-03T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Observation",
            "id": "t-q100",
            "status": "final",
            "code": {"text": "ZCC glucose"},
            "subject": {"reference": "Patient/t-y2020"},
            "effectiveDateTime": "2025-01-10T08:00:00+01:00",
            "valueQuantity": {"value": Decimal("100"), "system": "http://unitsofmeasure.org", "code": "mg"},
        },
        "2025-03-04T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Observation",
            "id": "t-q1005",
            "status": "final",
            "code": {"text": "ZCC glucose"},
            "subject": {"reference": "Patient/t-d2020"},
            "effectivePeriod": {"start": "2025-01-10", "end": "2025-01-12"},
            "valueQuantity": {"value": Decimal("100.5"), "system": "http://unitsofmeasure.org", "code": "mg"},
        },
        "2025-03-05T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Observation",
            "id": "t-q994",
            "status": "preliminary",
            "code": {"text": "ZCC glucose"},
            "subject": {"reference": "Patient/t-d2021"},
            "effectivePeriod": {"start": "2024-12-31T23:00:00Z"},
            "valueQuantity": {"value": Decimal("99.4"), "unit": "mg"},
        },
        "2025-03-06T10:00:00.000000+00:00",
    ),
    (
        {
            "resourceType": "Provenance",
            "id": "t-prov",
            "recorded": "2025-03-01T10:00:00Z",
            "target": [{"reference": "Patient/t-y2020"}, {"reference": "Observation/t-q100"}],
            "agent": [{"who": {"reference": "Organization/1"}}],
        },
        "2025-03-07T10:00:00.000000+00:00",
    ),
]


@pytest.fixture(scope="module")
def registry(packages: PackageSet) -> SearchParameterRegistry:
    return SearchParameterRegistry(packages)




def _load(engine: Engine, registry: SearchParameterRegistry, packages: PackageSet) -> None:
    resources = [
        (r, EXAMPLE_UPDATED)
        for _, r in packages.examples()
        if r["resourceType"] in EXAMPLE_TYPES and "id" in r
    ]
    resources += SYNTHETIC
    with engine.begin() as connection:
        for body, last_updated in resources:
            res_key = connection.execute(
                insert(schema.resource).values(
                    type=body["resourceType"],
                    id=body["id"],
                    version=1,
                    last_updated=last_updated,
                    deleted=False,
                    body=fhirjson.dumps(body),
                )
            ).inserted_primary_key[0]
            for kind, rows in extract_index_rows(body, registry).items():
                if rows:
                    connection.execute(
                        insert(schema.INDEX_TABLES[kind]), [{**row, "res_key": res_key} for row in rows]
                    )
        # a deleted resource keeps its row (flagged) but has no index rows: it must never match
        connection.execute(
            insert(schema.resource).values(
                type="Patient",
                id="t-deleted",
                version=2,
                last_updated=EXAMPLE_UPDATED,
                deleted=True,
                body=None,
            )
        )


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, registry, packages
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'search.db'}"
    else:
        url = fresh_database(request.getfixturevalue("pg_url"))
    engine = create_engine(url)
    schema.metadata.create_all(engine)
    _load(engine, registry, packages)
    yield engine
    engine.dispose()


def query_for(
    registry: SearchParameterRegistry, resource_type: str | None, params: list[tuple[str, str]]
) -> SearchQuery:
    query = parse_search(resource_type, params, registry)
    assert query.errors == []
    return query


def ids(engine: Engine, keys: list[int]) -> list[str]:
    if not keys:
        return []
    with engine.connect() as connection:
        by_key = {
            row.res_key: row.id
            for row in connection.execute(
                select(schema.resource.c.res_key, schema.resource.c.id).where(
                    schema.resource.c.res_key.in_(keys)
                )
            )
        }
    return [by_key[key] for key in keys]


def search(
    engine: Engine,
    registry: SearchParameterRegistry,
    resource_type: str | None,
    *params: tuple[str, str],
    ordered: bool = False,
    **paging,
) -> list[str]:
    query = query_for(registry, resource_type, list(params))
    with engine.connect() as connection:
        found = ids(engine, search_sql.match_keys(connection, query, **paging))
    return found if ordered else sorted(found)


# -- filters -----


def test_string_default_exact_contains_and_accents(engine, registry) -> None:
    assert search(engine, registry, "Patient", ("family", "jansen")) == ["t-d2020", "t-d2021"]
    assert search(engine, registry, "Patient", ("family:exact", "Jansens")) == ["t-d2021"]
    assert search(engine, registry, "Patient", ("family:exact", "jansens")) == []
    assert (
        search(engine, registry, "Patient", ("family", "aeroskobing")) == []
    )  # Æ is a letter, not an accent
    assert search(engine, registry, "Patient", ("given", "zoe")) == ["t-y2020"]
    assert search(engine, registry, "Patient", ("family:contains", "n_%")) == ["t-d2020"]  # LIKE escaped
    assert search(engine, registry, "Patient", ("family", "Chalmers")) == ["example"]
    assert search(engine, registry, "Patient", ("name", "peter")) == ["example"]
    assert search(engine, registry, "Patient", ("family", "jansen"), ("given", "piet")) == ["t-d2021"]  # AND
    # OR; starts-with also finds the example "Pieter" (f001)
    assert search(engine, registry, "Patient", ("given", "piet,zoe")) == ["f001", "t-d2021", "t-y2020"]


def test_tokens(engine, registry) -> None:
    bsn = "http://fhir.nl/fhir/NamingSystem/bsn"
    assert search(engine, registry, "Patient", ("identifier", f"{bsn}|111")) == ["t-y2020"]
    assert search(engine, registry, "Patient", ("identifier", "222")) == ["t-d2020"]
    assert search(engine, registry, "Patient", ("identifier", f"{bsn}|")) == ["t-d2020", "t-y2020"]
    assert search(engine, registry, "Patient", ("identifier", "|222")) == []  # has a system
    assert search(engine, registry, "Observation", ("code", "http://loinc.org|85354-9")) == [
        "blood-pressure",
        "blood-pressure-cancel",
        "blood-pressure-dar",
    ]
    assert search(engine, registry, "Observation", ("code:text", "zcc")) == ["t-q100", "t-q1005", "t-q994"]
    not_final = search(engine, registry, "Observation", ("status:not", "final"), ("code:text", "zcc"))
    assert not_final == ["t-q994"]
    assert search(engine, registry, "Patient", ("gender:missing", "true"), ("_id", "t-y2020,ihe-pcd")) == [
        "ihe-pcd"
    ]
    assert search(
        engine,
        registry,
        "Patient",
        ("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345"),
    ) == ["example", "xcda"]


def test_references(engine, registry) -> None:
    assert search(engine, registry, "Observation", ("subject", "Patient/t-y2020")) == ["t-q100"]
    assert search(engine, registry, "Observation", ("subject", "t-d2020")) == ["t-q1005"]
    assert search(engine, registry, "Observation", ("subject:Patient", "t-d2021")) == ["t-q994"]
    assert search(engine, registry, "Observation", ("subject:Group", "t-d2021")) == []
    assert search(
        engine,
        registry,
        "Patient",
        ("general-practitioner:missing", "false"),
        ("_id:not", "example"),
        ("_id", "example,t-y2020,t-d2020"),
    ) == ["t-y2020"]
    assert search(engine, registry, "Provenance", ("target", "Observation/t-q100")) == ["t-prov"]


def test_chained_parameters(engine, registry) -> None:
    assert search(engine, registry, "Observation", ("subject:Patient.family", "jansen")) == [
        "t-q1005",
        "t-q994",
    ]
    assert search(
        engine, registry, "Observation", ("subject.identifier", "http://fhir.nl/fhir/NamingSystem/bsn|111")
    ) == ["t-q100"]
    assert search(
        engine, registry, "Observation", ("patient.organization", "Organization/1"), ("code:text", "zcc")
    ) == ["t-q994"]  # a reference param chained to a reference param
    two_levels = ("patient.organization.name", "gastro")  # Observation -> Patient -> Organization/1
    assert search(engine, registry, "Observation", two_levels, ("code:text", "zcc")) == ["t-q994"]
    assert search(engine, registry, "Observation", ("patient.organization.name", "nobody")) == []


def test_dates_compare_ranges(engine, registry) -> None:
    patients = [("_id", "t-y2020,t-d2020,t-d2021")]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "2020")) == ["t-d2020", "t-y2020"]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "2020-06")) == ["t-d2020"]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "ne2020")) == ["t-d2021"]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "gt2020-06-15")) == [
        "t-d2021",
        "t-y2020",
    ]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "ge2020-06-15")) == [
        "t-d2020",
        "t-d2021",
        "t-y2020",
    ]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "lt2020-06-15")) == ["t-y2020"]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "sa2020")) == ["t-d2021"]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "eb2021")) == ["t-d2020", "t-y2020"]
    # ap: the search range widened by 10% of its distance from today (years here), so all three are near
    assert search(engine, registry, "Patient", *patients, ("birthdate", "ap2021-01-01")) == [
        "t-d2020",
        "t-d2021",
        "t-y2020",
    ]
    assert search(engine, registry, "Patient", *patients, ("birthdate", "ap2023-01-01")) == []
    glucose = ("code:text", "zcc gluc")
    # t-q100 at 07:00Z; t-q994 ongoing since 2024-12-31T23:00Z; t-q1005 on 10..12 January
    assert search(engine, registry, "Observation", glucose, ("date", "2025-01-10")) == ["t-q100"]
    assert search(engine, registry, "Observation", glucose, ("date", "ge2025-01-11")) == ["t-q1005", "t-q994"]
    assert search(engine, registry, "Observation", glucose, ("date", "lt2025-01-01")) == ["t-q994"]
    assert search(engine, registry, "Observation", glucose, ("date", "2025-01-10T07:00:00Z")) == ["t-q100"]
    assert search(engine, registry, "Observation", glucose, ("date", "2025-01-10T07:00Z")) == ["t-q100"]
    # a more precise search value cannot contain the stored second
    assert search(engine, registry, "Observation", glucose, ("date", "2025-01-10T07:00:00.5Z")) == []
    assert search(engine, registry, "Observation", glucose, ("date", "le2025-01-10T08:00:00+01:00")) == [
        "t-q100",
        "t-q1005",
        "t-q994",
    ]


def test_quantities_and_precision(engine, registry) -> None:
    glucose = ("code:text", "zcc gluc")
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "100")) == ["t-q100"]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "1e2")) == [
        "t-q100",
        "t-q1005",
        "t-q994",
    ]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "100.5")) == ["t-q1005"]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "gt100")) == ["t-q1005"]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "le100")) == [
        "t-q100",
        "t-q994",
    ]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "ne100")) == [
        "t-q1005",
        "t-q994",
    ]
    assert search(
        engine, registry, "Observation", glucose, ("value-quantity", "ge99|http://unitsofmeasure.org|mg")
    ) == ["t-q100", "t-q1005"]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "99.4||mg")) == ["t-q994"]
    assert search(engine, registry, "Observation", glucose, ("value-quantity", "ap111")) == [
        "t-q100",
        "t-q1005",
    ]  # ±11.1


def test_id_last_updated_and_system_search(engine, registry) -> None:
    assert search(engine, registry, "Patient", ("_id", "t-y2020,example")) == ["example", "t-y2020"]
    assert search(engine, registry, "Patient", ("_id", "t-deleted")) == []
    assert search(engine, registry, "Patient", ("_lastUpdated", "ge2025-03-02")) == ["t-d2020", "t-d2021"]
    assert search(engine, registry, "Patient", ("_lastUpdated", "2025-03-01T10:00:00Z")) == ["t-y2020"]
    assert search(
        engine,
        registry,
        "Patient",
        ("_lastUpdated", "le2025-03-01T10:00:00.000000Z"),
        ("_lastUpdated", "gt2024-01-01"),
    ) == ["t-y2020"]
    assert search(engine, registry, None, ("_lastUpdated", "gt2025-03-05")) == [
        "t-prov",
        "t-q994",
    ]  # not 03-05 itself
    assert search(engine, registry, None, ("_lastUpdated", "gt2025-03-05"), ("_type", "Provenance")) == [
        "t-prov"
    ]


# -- sorting, paging, counting, includes -----


def test_sort_and_offset_paging(engine, registry) -> None:
    base = [("_id", "t-y2020,t-d2020,t-d2021,example")]
    assert search(engine, registry, "Patient", *base, ("_sort", "birthdate"), ordered=True) == [
        "example",
        "t-y2020",
        "t-d2020",
        "t-d2021",
    ]
    assert search(engine, registry, "Patient", *base, ("_sort", "-birthdate"), ordered=True) == [
        "t-d2021",
        "t-y2020",
        "t-d2020",
        "example",
    ]
    assert search(engine, registry, "Patient", *base, ("_sort", "gender,-family"), ordered=True) == [
        "t-y2020",
        "example",
        "t-d2020",
        "t-d2021",
    ]
    assert search(
        engine, registry, "Patient", *base, ("_sort", "-_lastUpdated"), ordered=True, limit=2, offset=1
    ) == ["t-d2020", "t-y2020"]
    # resources without a value sort last in both directions, identically on both databases
    with_missing = [("_id", "t-y2020,t-d2021"), ("_sort", "general-practitioner")]
    assert search(engine, registry, "Patient", *with_missing, ordered=True) == ["t-y2020", "t-d2021"]


def test_keyset_paging_walks_every_match_once(engine, registry) -> None:
    query = query_for(registry, "Observation", [])
    with engine.connect() as connection:
        everything = search_sql.match_keys(connection, query)
        pages, after = [], None
        while True:
            page = search_sql.match_keys(connection, query, limit=7, after_key=after)
            if not page:
                break
            pages.extend(page)
            after = page[-1]
        assert pages == everything == sorted(everything)
        assert search_sql.count_matches(connection, query) == len(everything) > 20
        snapshot = search_sql.max_key(connection)
    sorted_query = query_for(registry, "Observation", [("_sort", "status")])
    with engine.connect() as connection:
        walked = []
        for offset in range(0, len(everything) + 7, 7):
            walked += search_sql.match_keys(
                connection, sorted_query, limit=7, offset=offset, max_key=snapshot
            )
    assert sorted(walked) == everything


def test_snapshot_bound_excludes_later_resources(engine, registry) -> None:
    query = query_for(registry, "Patient", [("_sort", "family")])
    with engine.connect() as connection:
        snapshot = search_sql.max_key(connection)
        before = search_sql.match_keys(connection, query, max_key=snapshot)
        assert search_sql.match_keys(connection, query, max_key=snapshot - 1) == [
            key for key in before if key <= snapshot - 1
        ]


def test_include_and_revinclude(engine, registry) -> None:
    def run(*params: tuple[str, str]) -> tuple[list[str], list[str]]:
        query = query_for(registry, None if params[0][0] == "_type" else "Observation", list(params))
        with engine.connect() as connection:
            keys = search_sql.match_keys(connection, query)
            included = search_sql.include_keys(connection, query, keys)
        return sorted(ids(engine, keys)), sorted(ids(engine, included))

    assert run(("_id", "t-q100,t-q994"), ("_include", "Observation:subject")) == (
        ["t-q100", "t-q994"],
        ["t-d2021", "t-y2020"],
    )
    assert run(("_id", "t-q100"), ("_include", "Observation:subject:Group")) == (["t-q100"], [])
    assert run(
        ("_id", "t-q100"),
        ("_include", "Observation:subject"),
        ("_include:iterate", "Patient:general-practitioner"),
    ) == (["t-q100"], ["example", "t-y2020"])
    assert run(("_id", "t-q100"), ("_revinclude", "Provenance:target")) == (["t-q100"], ["t-prov"])
    assert run(
        ("_id", "t-q994"),
        ("_include", "Observation:*"),
        ("_include:iterate", "Patient:organization"),
        ("_revinclude:iterate", "Provenance:agent"),
    ) == (["t-q994"], ["1", "t-d2021", "t-prov"])


def test_update_of_index_changes_results(engine, registry) -> None:
    """Index rows are the truth: deleting a resource (flag + no rows) removes it from results."""
    with engine.begin() as connection:
        key = connection.execute(
            select(schema.resource.c.res_key).where(
                schema.resource.c.type == "Patient", schema.resource.c.id == "t-d2021"
            )
        ).scalar_one()
        connection.execute(
            update(schema.resource).where(schema.resource.c.res_key == key).values(deleted=True)
        )
        try:
            query = query_for(registry, "Patient", [("family", "jansen")])
            assert ids(engine, []) == []
            assert sorted(search_sql.match_keys(connection, query)) == [
                k for k in search_sql.match_keys(connection, query) if k != key
            ]
            assert key not in search_sql.match_keys(connection, query)
        finally:
            connection.execute(
                update(schema.resource).where(schema.resource.c.res_key == key).values(deleted=False)
            )


# -- keyset pages with their stored rows (the search handler's path) -----

ROW_QUERIES = [
    ("Patient", [("family", "jansen")]),
    ("Patient", [("family", "jansens")]),  # same shape, another value: another statement
    ("Patient", [("birthdate", "ap2020-06-15")]),  # `ap` depends on the current time: never kept
    ("Patient", [("gender", "female,male"), ("birthdate", "ge2020")]),
    ("Observation", [("subject:Patient.name", "jansen")]),
    ("Observation", [("value-quantity", "gt99|http://unitsofmeasure.org|mg")]),
    ("Observation", []),
    (None, [("_type", "Patient,Observation"), ("_lastUpdated", "ge2025-03-02")]),
]


@pytest.mark.parametrize("resource_type, params", ROW_QUERIES)
def test_match_rows_are_the_keyset_pages_with_their_stored_rows(engine, registry, resource_type, params) -> None:
    """`match_rows` (one statement: page and bodies, the statement kept per query) gives exactly what `match_keys`
    plus a lookup of each key gives, page after page, on a first and on a repeated run."""
    query = query_for(registry, resource_type, params)
    with engine.connect() as connection:
        stored = {row[0]: tuple(row) for row in connection.execute(select(*search_sql.STORED_COLUMNS))}
        for _ in range(2):  # the second run reuses the kept statements
            for limit in (3, None):
                expected, walked, after = [], [], None
                while True:
                    keys = search_sql.match_keys(connection, query, limit=limit, after_key=after)
                    rows = search_sql.match_rows(connection, query, limit=limit, after_key=after)
                    assert rows == [stored[key] for key in keys]
                    expected += keys
                    walked += rows
                    if not keys or limit is None:
                        break
                    after = keys[-1]
                assert [row[0] for row in walked] == expected == sorted(search_sql.match_keys(connection, query))


def test_kept_statements_are_per_query_shape_and_never_for_ap(registry) -> None:
    cache = search_sql._StatementCache(size=2)

    def kept(resource_type: str, params: list[tuple[str, str]], paged: bool = False):  # type: ignore[no-untyped-def]
        return cache.get(query_for(registry, resource_type, params), 11, paged)

    jansen, _ = kept("Patient", [("family", "jansen")])
    assert jansen is kept("Patient", [("family", "jansen")])[0]
    assert jansen is not kept("Patient", [("family", "jansen")], paged=True)[0]  # with a cursor: another statement
    assert jansen is not kept("Patient", [("family", "x")])[0]  # other values (not dates): another statement
    # dates are bound parameters: another date is the same statement with other values
    first, first_values = kept("Patient", [("birthdate", "ge2020")])
    second, second_values = kept("Patient", [("birthdate", "ge2021-06-15")])
    assert first is second
    assert first_values == {"date_0_low": "2020-01-01T00:00:00.000000", "date_0_after": "2021-01-01T00:00:00.000000"}
    assert second_values["date_0_low"] == "2021-06-15T00:00:00.000000"
    assert kept("Patient", [("birthdate", "le2020")])[0] is not first  # another prefix: another statement
    near = query_for(registry, "Patient", [("birthdate", "ap2020-06-15")])
    assert cache.get(near, 11, False)[0] is not cache.get(near, 11, False)[0]
    assert len(cache._items) == 2  # bounded


def test_kept_statements_bind_each_date_of_a_query(engine, registry) -> None:
    """Two dates in one query, and one in a chain: a reused statement finds what a statement built for the values
    (`match_keys`) finds."""
    cases = [
        ("Patient", [("birthdate", "ge2000"), ("birthdate", "lt2030"), ("_lastUpdated", "ge2000")], None),
        ("Patient", [("birthdate", "ge2030"), ("birthdate", "lt2040"), ("_lastUpdated", "ge2000")], 0),
        ("Patient", [("birthdate", "ge2020-03"), ("birthdate", "lt2021"), ("_lastUpdated", "ge2000")], None),
        ("Patient", [("birthdate", "ge2000"), ("birthdate", "lt2030"), ("_lastUpdated", "ge2100")], 0),
        ("Observation", [("subject:Patient.birthdate", "ge2000")], None),
        ("Observation", [("subject:Patient.birthdate", "ge2100")], 0),
    ]
    with engine.connect() as connection:
        for resource_type, params, count in cases:
            query = query_for(registry, resource_type, params)
            keys = sorted(search_sql.match_keys(connection, query))
            assert [row[0] for row in search_sql.match_rows(connection, query)] == keys
            assert (len(keys) == count) if count is not None else keys, (params, keys)
