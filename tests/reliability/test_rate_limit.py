"""Per-client rate limiting: the token bucket itself (fake clock) and the middleware in a real app, where a
client over its budget gets 429 + Retry-After as an OperationOutcome while another client is unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.limits.rate import RateLimiter, retry_after_header
from gateway.settings import Settings
from tests.auth.fixtures import obtain_auth_header
from tests.reliability.conftest import FHIR_JSON, assert_outcome


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    assert limiter.acquire("b") == 0.0  # another client has its own bucket


def test_bucket_refills_no_higher_than_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    limiter.acquire("a")
    clock.now += 3600
    assert [limiter.acquire("a") == 0.0 for _ in range(3)] == [True, True, False]


def test_bucket_count_is_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_buckets=100)
    for n in range(1000):
        limiter.acquire(f"client-{n}")
        clock.now += 0.001
    assert len(limiter._buckets) <= 100


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('rate') / 'gateway.db'}"
    settings = Settings(database_url=database_url, base_url="http://testserver/fhir", consent=False,
                        rate_limit=0.001, rate_burst=8)  # no refill within a (slow) test run
    app = create_app(services=build_services(settings))
    with TestClient(app) as client:
        yield client, database_url


def test_client_over_its_budget_gets_429_with_retry_after(limited: tuple[TestClient, str]) -> None:
    client, database_url = limited
    first = obtain_auth_header(client.app, database_url, client_id="rate-a")
    second = obtain_auth_header(client.app, database_url, client_id="rate-b")
    statuses = [client.get("/fhir/Patient", headers={**FHIR_JSON, **first}).status_code for _ in range(8)]
    assert statuses == [200] * 8
    throttled = client.get("/fhir/Patient", headers={**FHIR_JSON, **first})
    assert_outcome(throttled, 429, "throttled")
    assert int(throttled.headers["retry-after"]) >= 1
    assert client.get("/fhir/Patient", headers={**FHIR_JSON, **second}).status_code == 200
    another_token = obtain_auth_header(client.app, database_url, client_id="rate-a")  # tokens share the bucket
    assert client.get("/fhir/Patient", headers={**FHIR_JSON, **another_token}).status_code == 429


def test_unauthenticated_requests_are_limited_per_address(limited: tuple[TestClient, str]) -> None:
    client, _ = limited
    statuses = [client.get("/fhir/metadata", headers=FHIR_JSON).status_code for _ in range(10)]
    assert 429 in statuses
