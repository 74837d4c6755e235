"""Ingestion on several cores: worker processes, each with its own services (engine, validator) on the same
database, each ingesting whole messages through the same `IngestService` as one process does (keep raw, translate,
validate, one transaction, record). Translation and validation are CPU-bound and GIL-bound, so threads do not add a
core; processes do. The database orders the writes: SQLite (WAL) runs one write transaction at a time, PostgreSQL
several. What must stay exact under parallelism is decided in the service, not here: the same bytes or message id
arriving twice (one accepted record, the other a duplicate: `gateway.ingest.locks.message_locks` hold the
dedup-check-then-write window across processes) and the same patient in concurrent messages (one Patient: stable
ids, written as update-as-create inside the write transaction)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.gc_tuning import tune_for_serving
from gateway.ingest.service import IngestResult, IngestService

_service: IngestService | None = None
_worker_barrier: list[Any] = [None]


def _start_worker(database_url: str | None, barrier: Any) -> None:
    global _service
    from gateway.app import build_services  # late: loads packages and warms the validator in this process
    from gateway.settings import Settings

    settings = Settings(database_url=database_url) if database_url else Settings()
    _service = IngestService(build_services(settings))
    _worker_barrier[0] = barrier
    tune_for_serving()  # what start-up loaded lives as long as the worker, as in a serving process


def _meet(_: int) -> None:
    """Returns once every worker has started (each worker takes exactly one of these: they all wait here)."""
    _worker_barrier[0].wait()


@dataclass
class Ingested:
    """One message's result as a worker returns it: the record and issues (the response Bundle stays in the
    worker), and the CPU time the worker spent on it."""

    name: str
    result: IngestResult
    cpu_seconds: float


def _ingest(task: tuple[str, bytes | str, str, Any, bool]) -> Ingested:
    name, message, source, identity, lenient = task
    assert _service is not None, "worker not started"
    start = time.process_time()
    raw = Path(message).read_bytes() if isinstance(message, str) else message
    result = _service.ingest(source, raw, identity, lenient)
    result.response = None  # not needed by the caller; saves pickling the whole transaction-response
    return Ingested(name, result, time.process_time() - start)


class IngestWorkers:
    """`jobs` worker processes on `database_url` (default: ZCC_DATABASE_URL). The database schema must exist
    before they start (the caller builds its own services first, which migrates)."""

    def __init__(self, jobs: int, database_url: str | None = None) -> None:
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.jobs = jobs
        context = multiprocessing.get_context("spawn")  # no inherited engines, connections or locks
        self._pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                         initargs=(database_url, context.Barrier(jobs)))

    def wait_ready(self) -> None:
        """Block until every worker has built its services (start-up is not ingestion time)."""
        list(self._pool.map(_meet, range(self.jobs)))

    def ingest(self, source: str, messages: list[tuple[str, bytes | Path]], identity: Any,
               lenient: bool = False) -> Iterator[Ingested]:
        """Results in the order of `messages` (name, bytes or a file path), as they complete in that order. A
        database failure in a worker is raised here (the raw message stays kept as `received`)."""
        tasks = [(name, str(m) if isinstance(m, Path) else m, source, identity, lenient) for name, m in messages]
        yield from self._pool.map(_ingest, tasks, chunksize=1)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> IngestWorkers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
