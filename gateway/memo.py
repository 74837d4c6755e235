"""Memo: a dict that holds at most `limit` entries. When it is full, the next entry empties it first.

Used for what a process derives over and over from the same input, such as a verified token, a reference text,
a stored version or a patient's consent facts. Emptying the whole memo keeps a hit a plain `dict.get` with no
bookkeeping, and a workload that cycles through more keys than the limit simply rebuilds it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def keep(self, key: K, value: V) -> V:
        """Remember `value` under `key` (after emptying the memo if it is full) and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
