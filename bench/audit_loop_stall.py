"""How long an audited GET can hold the event loop: a writer keeps the SQLite write lock for HOLD seconds (as a
large transaction Bundle or an ingestion batch does) while a GET arrives; a ticker measures the loop's worst lag.
Also the price of the thread hand-off that avoids the stall. Run: `.venv/bin/python bench/audit_loop_stall.py`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
from starlette.concurrency import run_in_threadpool

HOLD = 0.5


async def worst_lag_during(app, services, url: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    locked = threading.Event()

    def writer() -> None:
        with services.store.write():
            locked.set()
            time.sleep(HOLD)

    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - before - 0.005)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await client.get(url)  # warm up: the first capability statement is built once
    thread = threading.Thread(target=writer)
    thread.start()
    locked.wait()
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        response = await client.get(url)
    done.set()
    await tick
    thread.join()
    return worst, response.status_code


async def hand_off_cost(rounds: int = 2000) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        await run_in_threadpool(lambda: None)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    os.environ.setdefault("ZCC_AUTH_KEY_DIR", tempfile.mkdtemp(prefix="stall-keys"))
    os.environ.setdefault("ZCC_AUDIT_KEY_DIR", os.environ["ZCC_AUTH_KEY_DIR"])
    os.environ["ZCC_INSECURE_DEV"] = "1"  # the lock wait is what is measured, not the token
    from gateway.app import build_services, create_app
    from gateway.settings import Settings

    database = Path(tempfile.mkdtemp(prefix="stall")) / "gateway.db"
    services = build_services(Settings(database_url=f"sqlite:///{database}", base_url="http://testserver/fhir"))
    app = create_app(services=services)
    for where, audit_flag in [("in a worker thread (audit on)", True), ("on the event loop (audit-off path)", False)]:
        # the stages are built; the flag only chooses where routes.py dispatches GETs, so the audited GET
        # can be measured both ways
        services.settings.audit = audit_flag
        lag, status = asyncio.run(worst_lag_during(app, services, "/fhir/metadata"))
        print(f"writer holds the SQLite lock {HOLD * 1000:.0f} ms; audited GET /fhir/metadata {where} -> {status}; "
              f"worst event-loop lag {lag * 1000:.0f} ms")
    print(f"thread hand-off (run_in_threadpool of a no-op), median: {asyncio.run(hand_off_cost()) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
