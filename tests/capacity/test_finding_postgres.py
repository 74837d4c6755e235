"""The finding tests again on PostgreSQL: `$find-capacity` and the aggregates count Slots with one grouped
statement whose plan differs per database (SQLite without statistics, PostgreSQL with), and Slot searches
render their planner hints per dialect; the answers must be the same."""

from __future__ import annotations

import pytest

from tests.capacity.test_finding import (  # noqa: F401 - collected again here, against PostgreSQL
    region_data,
    test_aggregates_follow_updates,
    test_find_capacity_by_region_neighbours_postcode_and_group,
    test_find_capacity_nearest_first_with_free_counts,
    test_find_capacity_refuses_bad_parameters,
    test_free_slots_by_service_type_and_start,
    test_include_schedule_and_iterate_actor,
    test_multi_level_chains_from_the_issue,
    test_slots_by_schedule_actor_location_and_chains,
    test_stale_slots_can_be_found_by_source_timestamp,
)
from tests.pg import fresh_database


@pytest.fixture(scope="module")
def database_url(pg_url: str) -> str:
    return fresh_database(pg_url, "capfind")
