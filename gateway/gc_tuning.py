"""Garbage-collector settings for a long-running server process (and for the worker processes of
`zcc-gateway ingest --jobs N`).

A request allocates tens of thousands of containers (a 200-resource page: ~40,000 dicts and lists) that live until
its response is written and are then freed by reference counting. With CPython's default young-generation
threshold (700 allocations) such a request triggers dozens of collections that scan objects which are not
garbage, promote them, and so make the older generations' collections larger; and every full collection walks
the ~320,000 objects loaded at start-up (profiles, definitions, terminology) that live as long as the process.

So, once the process has started: collect, move everything that exists then into the permanent generation
(`gc.freeze`, never scanned again), and let the young generation grow to `YOUNG_THRESHOLD` allocations before it
is collected. Cyclic garbage is still collected, only in fewer, larger batches.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
