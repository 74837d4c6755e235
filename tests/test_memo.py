"""gateway.memo.Memo: a bounded dict that empties itself when full."""

from __future__ import annotations

from gateway.memo import IdentityMemo, Memo


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


def test_an_identity_memo_makes_once_per_object_and_value_and_never_for_another_object() -> None:
    memo: IdentityMemo[str] = IdentityMemo(8)
    made: list[str] = []

    def make(text: str) -> str:
        made.append(text)
        return text

    first, second = object(), object()
    assert memo.made((first,), ("x",), make, "first x") == "first x"
    assert memo.made((first,), ("x",), make, "again") == "first x"  # made once
    assert memo.made((first,), ("y",), make, "first y") == "first y"
    assert memo.made((second,), ("x",), make, "second x") == "second x"
    assert made == ["first x", "first y", "second x"]
    # an entry under a reused id (simulated: the key says `first`, the kept object is another) is not a hit
    memo[(id(first), "z")] = ((second,), "stale")
    assert memo.made((first,), ("z",), make, "first z") == "first z"
    assert memo[(id(first), "z")] == ((first,), "first z") and len(memo) == 4
