"""Group commit: items submitted by concurrent threads are written in batches, one write (one transaction) each.

The first thread to submit while nobody is writing becomes the leader: it takes everything queued (its own item
first among them), writes it, hands every waiting thread its own result (or the batch's error) and, if more
items queued up meanwhile, appoints the oldest waiter as the next leader. There is no writer thread: a lone
request writes its own item on its own thread exactly as without batching, and under load each transaction
carries the items of every request that arrived while the previous one was being written.

The audit uses it for the appends that do not join a data transaction: every request still returns only after
its own event is committed (or fails closed with the batch's error), but N concurrent requests lock the chain
head and commit once instead of N times.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")


@dataclass(eq=False)
class _Waiter(Generic[Item, Outcome]):
    item: Item
    done: threading.Event = field(default_factory=threading.Event)
    leads: bool = False  # appointed to write the next batch (woken by the previous leader)
    written: bool = False
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Item, Outcome]):
    def __init__(self, write: Callable[[Sequence[Item]], Sequence[Outcome]], max_batch: int = 64) -> None:
        """`write(items)` writes the items in one transaction and returns one outcome per item, in order; if it
        raises, every item of the batch fails with that error."""
        self._write = write
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter[Item, Outcome]] = []
        self._leading = False

    def submit(self, item: Item) -> Outcome:
        """Write `item` (in a batch with whatever else is queued) and return its outcome once it is committed."""
        waiter: _Waiter[Item, Outcome] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            leads = not self._leading
            self._leading = True
        if not leads:
            waiter.done.wait()
            if not waiter.leads:
                return _result(waiter)
        try:
            with self._lock:
                batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self._run(batch)
        finally:
            self._hand_over()
        return _result(waiter)

    def run_if_idle(self, write: Callable[[], Outcome]) -> tuple[bool, Outcome | None]:
        """Run `write()` (a write of one caller's item that never waits) as this round's leader if nobody is writing
        now: (True, its outcome). If someone is, do nothing and return (False, None) at once: a caller that must not
        block (the event loop) writes later, elsewhere. Items queued meanwhile go to the next leader as usual."""
        with self._lock:
            if self._leading:
                return False, None
            self._leading = True
        try:
            return True, write()
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """The leader is done: appoint the oldest waiter as the next leader, or stand down."""
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.leads = True
                successor.done.set()
            else:
                self._leading = False

    def _run(self, batch: list[_Waiter[Item, Outcome]]) -> None:
        try:
            outcomes = self._write([waiter.item for waiter in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"group commit: {len(outcomes)} outcomes for {len(batch)} items")
            for waiter, outcome in zip(batch, outcomes, strict=True):
                waiter.outcome = outcome
        except BaseException as error:  # noqa: BLE001 - handed to every waiter of the batch, re-raised there
            for waiter in batch:
                waiter.error = error
        finally:
            for waiter in batch:
                waiter.written = True
                waiter.leads = False
                waiter.done.set()


def _result(waiter: _Waiter[Item, Outcome]) -> Outcome:
    assert waiter.written, "a waiter returns only after its batch was written"
    if waiter.error is not None:
        error = waiter.error
        # each thread raises its own exception object (a shared one would have its traceback rewritten by all)
        try:
            copy = type(error)(*error.args)
        except Exception:  # noqa: BLE001 - an exception type that cannot be rebuilt from its args
            raise error from error.__cause__
        raise copy from error.__cause__ if error.__cause__ is not None else error
    return waiter.outcome  # type: ignore[return-value]
