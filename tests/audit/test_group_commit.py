"""Group commit: concurrent submitters share writes, each gets its own outcome only after its batch is written,
and a failed write fails exactly the items of its batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine

from gateway.audit.group_commit import GroupCommit
from gateway.audit.log import AuditLog, AuditWriteError, Pending
from gateway.store.engine import create_database_engine
from gateway.store.migrate import upgrade
from tests.pg import fresh_database

THREADS, EACH = 8, 25


class SlowWriter:
    """Writes batches slowly enough that submitters queue up; records what each write held."""

    def __init__(self, fail_when: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.written: set[str] = set()
        self.fail_when = fail_when
        self.inside = 0
        self.most_inside = 0
        self._lock = threading.Lock()

    def __call__(self, items: Sequence[str]) -> list[str]:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            time.sleep(0.002)
            if self.fail_when is not None and self.fail_when in items:
                raise AuditWriteError(f"cannot write {self.fail_when}")
            with self._lock:
                self.batches.append(list(items))
                self.written.update(items)
            return [f"written:{item}" for item in items]
        finally:
            with self._lock:
                self.inside -= 1


def run_threads(commit: GroupCommit[str, str], writer: SlowWriter) -> tuple[dict[str, str], dict[str, BaseException]]:
    outcomes: dict[str, str] = {}
    errors: dict[str, BaseException] = {}
    start = threading.Barrier(THREADS)

    def submitter(t: int) -> None:
        start.wait()
        for n in range(EACH):
            item = f"t{t}-{n}"
            try:
                outcome = commit.submit(item)
                assert item in writer.written  # the outcome comes only after the item's batch is written
                outcomes[item] = outcome
            except AuditWriteError as error:
                errors[item] = error

    threads = [threading.Thread(target=submitter, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a submitter never got its outcome"
    return outcomes, errors


def test_concurrent_submitters_share_writes_and_each_gets_its_own_outcome() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer, max_batch=16)
    outcomes, errors = run_threads(commit, writer)
    assert errors == {}
    assert outcomes == {item: f"written:{item}" for item in outcomes} and len(outcomes) == THREADS * EACH
    written = [item for batch in writer.batches for item in batch]
    assert sorted(written) == sorted(outcomes)  # each item written exactly once
    assert len(writer.batches) < THREADS * EACH / 2  # shared: far fewer writes than items
    assert max(len(batch) for batch in writer.batches) <= 16
    assert writer.most_inside == 1  # one write at a time


def test_a_failed_write_fails_exactly_the_items_of_its_batch() -> None:
    writer = SlowWriter(fail_when="t3-7")
    commit: GroupCommit[str, str] = GroupCommit(writer)
    outcomes, errors = run_threads(commit, writer)
    assert "t3-7" in errors
    assert all(isinstance(error, AuditWriteError) and "t3-7" in str(error) for error in errors.values())
    assert set(outcomes) | set(errors) == {f"t{t}-{n}" for t in range(THREADS) for n in range(EACH)}
    assert set(outcomes) == writer.written and not set(errors) & writer.written
    assert len({id(error) for error in errors.values()}) == len(errors)  # each thread raises its own object


def test_a_lone_submitter_writes_its_own_item_at_once() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    assert [commit.submit(f"x{n}") for n in range(3)] == ["written:x0", "written:x1", "written:x2"]
    assert writer.batches == [["x0"], ["x1"], ["x2"]]


# -- the audit's appends outside a data transaction, on a real database ---------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    url = (f"sqlite:///{tmp_path / 'audit.db'}" if request.param == "sqlite"
           else fresh_database(request.getfixturevalue("pg_url")))
    engine = create_database_engine(url)
    upgrade(engine)
    return engine


def test_concurrent_appends_of_their_own_keep_one_intact_chain(engine: Engine) -> None:
    log = AuditLog()
    commits: list[int] = []
    append_batch = log._append_batch

    def counted(target: Engine, items: Sequence) -> list:  # type: ignore[type-arg]
        commits.append(len(items))
        return append_batch(target, items)

    log._append_batch = counted  # type: ignore[method-assign]
    failures: list[BaseException] = []
    seqs: list[int] = []

    def reader(t: int) -> None:
        try:
            for n in range(EACH):
                event = {"resourceType": "AuditEvent", "id": f"t{t}-{n}", "outcome": "0",
                         "recorded": f"2026-01-01T00:00:{n:02d}.000000+00:00"}
                (appended,) = log.append_all(engine, [Pending(event, "PatientRead", (f"p{t}",), f"c{t}")])
                assert appended.event_id == f"t{t}-{n}"
                seqs.append(appended.seq)
        except BaseException as problem:  # noqa: BLE001 - reported by the test
            failures.append(problem)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(commits) == THREADS * EACH and len(seqs) == len(set(seqs)) == THREADS * EACH
    with engine.connect() as connection:
        result = log.verify(connection)
        rows = list(log.rows(connection))
        patients = {event_id: log.events_for_patient(connection, f"p{t}") for t in range(THREADS)
                    for event_id in [f"p{t}"]}
    assert result.ok and result.count == THREADS * EACH
    assert sorted(row.seq for row in rows) == sorted(seqs)
    assert all(len(events) == EACH for events in patients.values())


# -- a caller that must not wait (the event loop) ----------------------------------------------------------------


def test_run_if_idle_writes_at_once_when_nobody_writes_and_never_waits_otherwise() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    assert commit.run_if_idle(lambda: "now") == (True, "now")

    leading, release = threading.Event(), threading.Event()

    def slow(items: Sequence[str]) -> list[str]:
        leading.set()
        release.wait(5)
        return writer(items)

    blocked: GroupCommit[str, str] = GroupCommit(slow)
    first = threading.Thread(target=blocked.submit, args=("a",))
    first.start()
    leading.wait(5)
    second_done: list[str] = []
    second = threading.Thread(target=lambda: second_done.append(blocked.submit("b")))
    second.start()
    started = time.perf_counter()
    ran: list[str] = []
    assert blocked.run_if_idle(lambda: ran.append("x") or "x") == (False, None)  # type: ignore[func-returns-value]
    assert time.perf_counter() - started < 0.5 and ran == []  # refused without waiting for the leader
    release.set()
    first.join(5)
    second.join(5)
    assert second_done == ["written:b"]  # the waiter queued behind the leader was still served
    assert blocked.run_if_idle(lambda: "later") == (True, "later")  # and leadership was handed back


def test_run_if_idle_hands_waiters_queued_meanwhile_to_a_next_leader() -> None:
    writer = SlowWriter()
    commit: GroupCommit[str, str] = GroupCommit(writer)
    served: list[str] = []

    def idle_write() -> str:  # while it "writes", another thread queues up behind it
        thread = threading.Thread(target=lambda: served.append(commit.submit("queued")))
        thread.start()
        time.sleep(0.05)
        threads.append(thread)
        return "mine"

    threads: list[threading.Thread] = []
    assert commit.run_if_idle(idle_write) == (True, "mine")
    threads[0].join(5)
    assert served == ["written:queued"]
