"""A serving process freezes what start-up loaded and collects its young generation in large batches."""

from __future__ import annotations

import gc

from gateway.gc_tuning import YOUNG_THRESHOLD, tune_for_serving


def test_start_up_objects_are_frozen_and_the_young_generation_grows() -> None:
    before = gc.get_threshold()
    try:
        loaded = [{"definition": n} for n in range(1000)]  # what start-up keeps
        tune_for_serving()
        assert gc.get_freeze_count() >= len(loaded)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        cycle: list[object] = []
        cycle.append(cycle)  # cyclic garbage made later is still collected
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
