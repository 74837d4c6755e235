"""Memo: a dict that holds at most `limit` entries. When it is full, the next entry empties it first.

Used for what a process derives over and over from the same input, such as a verified token, a reference text,
a stored version or a patient's consent facts. Emptying the whole memo keeps a hit a plain `dict.get` with no
bookkeeping, and a workload that cycles through more keys than the limit simply rebuilds it.

IdentityMemo: the same for what is made from particular immutable objects (a verified token's identity, a policy
rule, a decision) and plain values, keyed by the objects' ids.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from operator import is_
from typing import Any, Generic, TypeVar

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


class IdentityMemo(Memo[tuple[Hashable, ...], tuple[tuple[object, ...], V]]):
    def made(self, objects: tuple[object, ...], values: tuple[Hashable, ...], make: Callable[..., V],
             *arguments: Any) -> V:
        """What `make(*arguments)` made for these very objects and these values, made once. An id names one object
        only while it lives: each entry keeps its objects, and a hit must have the same ones."""
        key = (*map(id, objects), *values)
        found = self.get(key)
        if found is not None and all(map(is_, found[0], objects)):
            return found[1]
        return self.keep(key, (objects, make(*arguments)))[1]
