"""Scale-out: three `zcc-gateway serve` processes against one PostgreSQL server, as behind a load balancer.

Nothing a client relies on may be bound to the instance that served it: tokens, paging links and client-
assertion replay detection work on every instance; concurrent writers of one resource get exactly one winner
per version; the same message ingested through several instances at once is written once; and the audit
chain stays one valid chain."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from gateway.audit.log import AuditLog
from gateway.auth.demo import token_request_form
from gateway.ingest.schema import ingest_message
from gateway.store.engine import create_database_engine
from tests.auth.fixtures import ensure_test_client, obtain_auth_header
from tests.ingest.messages import episode_message
from tests.pg import fresh_database
from tests.reliability.live import GatewayProcess, gateway_cluster, start_all

pytestmark = pytest.mark.postgres
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def cluster(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[GatewayProcess], str]]:
    database_url = fresh_database(pg_url, "scale")
    gateways = gateway_cluster(3, database_url, tmp_path_factory.mktemp("cluster"))
    try:
        start_all(gateways)
        yield gateways, database_url
    finally:
        for gateway in gateways:
            gateway.stop()


@pytest.fixture(scope="module")
def headers(cluster: tuple[list[GatewayProcess], str]) -> dict[str, str]:
    gateways, database_url = cluster
    return {**FHIR_JSON, **obtain_auth_header(gateways[0].origin, database_url)}


def on(gateway: GatewayProcess, url: str) -> str:
    """The same URL, sent to another instance (what a load balancer does between two requests)."""
    path = url.split("/fhir", 1)[1]
    return f"{gateway.base}{path}"


def test_a_token_from_one_instance_works_on_every_instance(cluster, headers: dict[str, str]) -> None:
    gateways, _ = cluster
    for gateway in gateways:
        assert httpx.get(f"{gateway.base}/Patient?_count=1", headers=headers).status_code == 200


@pytest.mark.parametrize("sort", [None, "family"])
def test_paging_links_are_valid_on_any_instance(cluster, headers: dict[str, str], sort: str | None) -> None:
    gateways, _ = cluster
    tag = uuid.uuid4().hex
    created = set()
    for n in range(7):
        body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:paging", "value": tag}],
                "name": [{"family": f"Pager{n}"}]}
        response = httpx.post(f"{gateways[n % 3].base}/Patient", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created.add(response.json()["id"])
    params = {"identifier": f"urn:test:paging|{tag}", "_count": "3", **({"_sort": sort} if sort else {})}
    page = httpx.get(f"{gateways[0].base}/Patient", params=params, headers=headers).json()
    seen, hops = [], 0
    while True:
        seen += [entry["resource"]["id"] for entry in page.get("entry", [])]
        next_links = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not next_links:
            break
        hops += 1
        response = httpx.get(on(gateways[hops % 3], next_links[0]), headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
    assert hops == 2
    assert len(seen) == 7 and set(seen) == created
    if sort:  # the pages, served by three instances, are in the order one instance gives in one page
        single = httpx.get(f"{gateways[1].base}/Patient", params={**params, "_count": "10"}, headers=headers).json()
        assert [e["resource"]["id"] for e in single["entry"]] == seen
        assert [e["resource"]["name"][0]["family"] for e in single["entry"]] == [f"Pager{n}" for n in range(7)]


def test_concurrent_updates_have_exactly_one_winner_per_version(cluster, headers: dict[str, str]) -> None:
    gateways, _ = cluster
    created = httpx.post(f"{gateways[0].base}/Patient", json={"resourceType": "Patient", "gender": "male"},
                         headers=headers).json()
    resource_id = created["id"]
    rounds, writers = 4, 6
    winners: list[str] = []
    for version in range(1, rounds + 1):
        barrier = threading.Barrier(writers)

        def update(writer: int, version: int = version, barrier: threading.Barrier = barrier) -> tuple[int, int]:
            body = {"resourceType": "Patient", "id": resource_id, "gender": "other",
                    "name": [{"family": f"writer-{writer}-round-{version}"}]}
            with httpx.Client(headers=headers, timeout=30) as http:
                barrier.wait()
                response = http.put(f"{gateways[writer % 3].base}/Patient/{resource_id}", json=body,
                                    headers={"If-Match": f'W/"{version}"'})
            return writer, response.status_code

        with ThreadPoolExecutor(writers) as pool:
            results = list(pool.map(update, range(writers)))
        statuses = Counter(status for _, status in results)
        assert statuses[200] == 1, results
        assert set(statuses) <= {200, 409, 412}, results
        winners.append(next(f"writer-{w}-round-{version}" for w, status in results if status == 200))
    history = httpx.get(f"{gateways[2].base}/Patient/{resource_id}/_history", headers=headers).json()
    assert history["total"] == rounds + 1
    names = [e["resource"]["name"][0]["family"] for e in history["entry"] if "name" in e["resource"]]
    assert sorted(names) == sorted(winners)  # every acknowledged update is there, nothing else
    current = httpx.get(f"{gateways[1].base}/Patient/{resource_id}", headers=headers).json()
    assert current["meta"]["versionId"] == str(rounds + 1)
    assert current["name"][0]["family"] == winners[-1]


def test_concurrent_creates_with_the_same_condition_create_one(cluster, headers: dict[str, str]) -> None:
    gateways, _ = cluster
    tag = uuid.uuid4().hex
    body = {"resourceType": "Patient", "identifier": [{"system": "urn:test:conditional", "value": tag}]}
    barrier = threading.Barrier(6)

    def create(writer: int) -> int:
        with httpx.Client(headers=headers, timeout=30) as http:
            barrier.wait()
            return http.post(f"{gateways[writer % 3].base}/Patient", json=body,
                             headers={"If-None-Exist": f"identifier=urn:test:conditional|{tag}"}).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(create, range(6)))
    found = httpx.get(f"{gateways[0].base}/Patient", params={"identifier": f"urn:test:conditional|{tag}"},
                      headers=headers).json()
    assert found["total"] == 1, statuses
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409, 412}, statuses


def test_the_same_message_ingested_through_three_instances_is_written_once(cluster, headers) -> None:
    gateways, database_url = cluster
    message_id = f"concurrent-{uuid.uuid4().hex[:8]}"
    raw = episode_message(message_id=message_id, episode_id=f"ep-{message_id}")
    barrier = threading.Barrier(6)

    def ingest(sender: int) -> tuple[int, str]:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            response = http.post(f"{gateways[sender % 3].origin}/ingest/hap", content=raw,
                                 headers={"Authorization": headers["Authorization"], "Content-Type": "application/xml"})
            return response.status_code, response.text[:300]

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(ingest, range(6)))
    sha256 = hashlib.sha256(raw).hexdigest()
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        records = Counter(connection.execute(
            select(ingest_message.c.status).where(ingest_message.c.sha256 == sha256)).scalars())
    engine.dispose()
    assert sum(records.values()) == 6, records  # every received message is kept
    assert records["accepted"] == 1, (records, statuses)
    assert records["duplicate"] == 5, (records, statuses)
    provenance = httpx.get(f"{gateways[0].base}/Provenance", params={"_count": "1000"}, headers=headers).json()
    mine = [e for e in provenance.get("entry", []) if message_id in str(e["resource"])]
    assert len(mine) == 1


def test_client_assertion_replay_is_refused_by_every_other_instance(cluster) -> None:
    gateways, database_url = cluster
    key = ensure_test_client(database_url)
    token_url = httpx.get(f"{gateways[0].origin}/.well-known/smart-configuration").json()["token_endpoint"]
    path = token_url.removeprefix(gateways[0].origin)
    form = token_request_form("test-suite", key, token_url, "system/Patient.rs",
                              {"subject_role": "triagist-hap", "purpose_of_use": "TREAT"})
    barrier = threading.Barrier(3)

    def use(gateway: GatewayProcess) -> httpx.Response:
        barrier.wait()
        return httpx.post(f"{gateway.origin}{path}", data=form, timeout=30)

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(use, gateways))
    statuses = sorted(response.status_code for response in responses)
    assert statuses[0] == 200 and statuses[1:] in ([400, 400], [401, 401]), [r.text for r in responses]
    refused = [r.json() for r in responses if r.status_code != 200]
    assert all(error["error"] == "invalid_client" and "already used" in error["error_description"]
               for error in refused), refused


def test_audit_chain_stays_valid_under_concurrent_writes(cluster, headers: dict[str, str]) -> None:
    gateways, database_url = cluster

    def work(n: int) -> int:
        with httpx.Client(headers=headers, timeout=30) as http:
            gateway = gateways[n % 3]
            created = http.post(f"{gateway.base}/Patient", json={"resourceType": "Patient", "gender": "female"})
            read = http.get(f"{gateways[(n + 1) % 3].base}/Patient/{created.json()['id']}")
            return read.status_code

    with ThreadPoolExecutor(9) as pool:
        assert set(pool.map(work, range(45))) == {200}
    engine = create_database_engine(database_url)
    with engine.connect() as connection:
        verification = AuditLog().verify(connection)
    engine.dispose()
    assert verification.ok, verification
    assert verification.count >= 90
