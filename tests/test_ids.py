"""gateway.ids.uuid7: valid version 7 UUIDs, ordered by time, unique, and not repeated by a forked child."""

from __future__ import annotations

import os
import re
import time
import uuid

from gateway.ids import uuid7

_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_a_uuid7_is_a_valid_version_7_uuid_carrying_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert _TEXT.match(made)
    parsed = uuid.UUID(made)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert str(parsed) == made
    assert before <= parsed.int >> 80 <= after


def test_ids_made_later_sort_later_and_none_repeat() -> None:
    made = []
    for _ in range(3):
        made += [uuid7() for _ in range(700)]  # several fetches of random bytes
        time.sleep(0.002)
    assert len(set(made)) == len(made)
    millis = [uuid.UUID(text).int >> 80 for text in made]
    assert millis == sorted(millis)
    assert millis[0] < millis[-1]


def test_a_forked_child_does_not_repeat_the_parents_ids() -> None:
    uuid7()  # the parent holds unused random bytes now
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, "\n".join(uuid7() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        from_child = pipe.read().split("\n")
    from_parent = [uuid7() for _ in range(50)]
    random_part = {text[15:] for text in from_parent}  # without the time and version digits
    assert not random_part & {text[15:] for text in from_child}
