"""Validation benchmark (not a test): full validation (structure, bindings, invariants, profiles) of
- the 271 Nictiz nl-core examples against the profiles in their meta.profile, and
- the R4 core examples (hl7.fhir.r4.examples) against the base specification,
single process and with N worker processes; warm throughput, and cold start (a fresh process, warm disk
cache, until the first result).

    .venv/bin/python bench/validate.py [--jobs 2] [--core-limit 2000]

Prints a Markdown table; copy it into docs/benchmarks.md with the machine and date."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NICTIZ = ROOT.parent / "shared" / "reference" / "nictiz-r4-zib2020"

_validator: Any = None


def package_paths(nictiz: bool) -> list[Path]:
    from conformance.packages import default_package_paths

    paths = [p for p in default_package_paths(ROOT) if p.exists()]
    if nictiz:
        paths += [NICTIZ / "resources" / "zib", NICTIZ / "resources" / "nl-core"]
    return paths


def make_validator(nictiz: bool) -> Any:
    from conformance.packages import PackageSet
    from conformance.validator import Validator

    return Validator(PackageSet.from_paths(package_paths(nictiz)))


def nictiz_resources() -> list[dict[str, Any]]:
    from conformance.fhirxml import xml_to_json

    return [xml_to_json(p.read_bytes()) for p in sorted((NICTIZ / "examples").glob("*.xml"))]


def core_resources(limit: int) -> list[dict[str, Any]]:
    from conformance.packages import PackageSet

    packages = PackageSet.from_paths(package_paths(False))
    return [resource for _, resource in list(packages.examples())[:limit]]


def _init(nictiz: bool) -> None:
    global _validator
    _validator = make_validator(nictiz)
    _validator.validate_issues({"resourceType": "Patient", "id": "warm"})


def _validate_chunk(chunk: list[dict[str, Any]]) -> int:
    return sum(1 for resource in chunk for issue in _validator.validate_issues(resource) if issue.is_error)


def throughput(resources: list[dict[str, Any]], nictiz: bool, jobs: int, rounds: int = 1) -> float:
    """Resources per second, warm (every profile compiled, every expression parsed, before the clock runs)."""
    if jobs <= 1:
        _init(nictiz)
        _validate_chunk(resources)  # warm-up round
        start = time.perf_counter()
        for _ in range(rounds):
            _validate_chunk(resources)
        return rounds * len(resources) / (time.perf_counter() - start)
    chunks = [resources[i::jobs * 8] for i in range(jobs * 8)]
    with ProcessPoolExecutor(jobs, initializer=_init, initargs=(nictiz,)) as pool:
        list(pool.map(_validate_chunk, chunks))  # warm-up round in every worker
        start = time.perf_counter()
        for _ in range(rounds):
            list(pool.map(_validate_chunk, chunks))
        return rounds * len(resources) / (time.perf_counter() - start)


COLD = """
import sys, time
start = time.perf_counter()
sys.path.insert(0, {root!r})
from pathlib import Path
from conformance.packages import PackageSet, default_package_paths
from conformance.validator import Validator
nictiz = Path({nictiz!r})
paths = [p for p in default_package_paths({root!r}) if p.exists()]
paths += [nictiz / "resources" / "zib", nictiz / "resources" / "nl-core"]
validator = Validator(PackageSet.from_paths(paths))
outcome = validator.validate_file(nictiz / "examples" / "nl-core-Patient-01.xml")
print(time.perf_counter() - start)
"""


def cold_start() -> float:
    """Seconds from interpreter start to the first nl-core result, with a warm disk cache (run twice)."""
    script = COLD.format(root=str(ROOT), nictiz=str(NICTIZ))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="0")
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, cwd=ROOT, env=env)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT,
                            env=env)
    total = time.perf_counter() - started
    return max(float(result.stdout.strip().splitlines()[-1]), total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--core-limit", type=int, default=1000, help="how many R4 core examples (of ~5000)")
    args = parser.parse_args()
    os.chdir(ROOT)
    rows = []
    nl_core = nictiz_resources()
    core = core_resources(args.core_limit)
    for label, resources, nictiz in (("nl-core examples vs their profiles", nl_core, True),
                                     ("R4 core examples vs base spec", core, False)):
        single = throughput(resources, nictiz, 1)
        multi = throughput(resources, nictiz, args.jobs)
        rows.append((label, len(resources), single, multi))
    cold = cold_start()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"\n| workload | resources | 1 process (res/s) | {args.jobs} processes (res/s) | ratio |")
    print("|---|---:|---:|---:|---:|")
    for label, count, single, multi in rows:
        print(f"| {label} | {count} | {single:.0f} | {multi:.0f} | {multi / single:.2f} |")
    print(f"\ncold start to first nl-core result (fresh process, warm disk cache): {cold:.2f} s")


if __name__ == "__main__":
    main()
