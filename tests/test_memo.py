"""gateway.memo.Memo: a bounded dict that empties itself when full."""

from __future__ import annotations

from gateway.memo import Memo


def test_a_memo_keeps_what_it_is_given_until_it_is_full_and_then_starts_again() -> None:
    memo: Memo[str, int] = Memo(3)
    assert memo.keep("a", 1) == 1
    memo.keep("b", 2)
    memo.keep("c", 3)
    assert dict(memo) == {"a": 1, "b": 2, "c": 3}
    assert memo.keep("d", 4) == 4  # full: emptied first
    assert dict(memo) == {"d": 4}
    memo.keep("d", 5)  # a key already there is replaced (the memo still empties when full)
    assert memo.get("d") == 5 and memo.get("a") is None
