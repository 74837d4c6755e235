"""A serving process freezes what start-up loaded and collects its young generation in large batches."""

from __future__ import annotations

import subprocess
import sys

# in a fresh interpreter: the test process's own collector state stays as it is (and its heap is not walked)
CHECK = """
import gc
from gateway.gc_tuning import YOUNG_THRESHOLD, tune_for_serving
before = gc.get_threshold()
loaded = [{"definition": n} for n in range(1000)]  # what start-up keeps
tune_for_serving()
assert gc.get_freeze_count() >= len(loaded), gc.get_freeze_count()
assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2]), gc.get_threshold()
cycle = []
cycle.append(cycle)  # cyclic garbage made later is still collected
del cycle
assert gc.collect() >= 1
print("ok")
"""


def test_start_up_objects_are_frozen_and_the_young_generation_grows() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
