"""`bench/soak.py` in short mode, as a test: 3 instances + PostgreSQL, mixed traffic with capacity
Subscriptions (two rest-hooks to a receiver in the soak process, a websocket client on every instance).

It checks the soak's delivery accounting, not performance: every Slot change the load wrote reached each
rest-hook Subscription exactly once (no missing, duplicate or unrequested entries) and every websocket client
at least once, and no request got an unexpected answer. The full 10-minute soak is run by hand
(docs/reliability.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg import fresh_database

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).parents[2]
SECONDS = 20


def test_short_soak_delivers_every_capacity_change(pg_url: str, tmp_path: Path) -> None:
    database_url = fresh_database(pg_url, "soakshort")
    figures = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--duration", str(SECONDS), "--clients", "3",
         "--database-url", database_url, "--json", str(figures)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(figures.read_text())
    assert result["errors"] == 0, run.stdout
    deliveries = result["subscriptions"]
    assert set(deliveries) == {"rest-hook all", "rest-hook free", "websocket @0", "websocket @1", "websocket @2"}
    assert deliveries["rest-hook all"]["expected"] > 0, "the load wrote no Slot changes"
    assert deliveries["rest-hook free"]["expected"] > 0
    for name, row in deliveries.items():
        assert row["missing"] == 0, (name, row)
        if name.startswith("rest-hook"):
            assert row["delivered"] == row["expected"], (name, row)
            assert row["duplicates"] == 0 and row["unrequested"] == 0, (name, row)
        else:
            assert row["messages"] > 0 and "problem" not in row, (name, row)
    assert result["unexpected_deliveries"] == 0, run.stdout
