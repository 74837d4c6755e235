"""Where an audited request's server time goes: `zcc-gateway serve` (one worker, pinned as in
bench/consent_audit.py) with a timer around every pipeline stage, the handler and the parts of the consent and
audit stages. After a warm-up, N requests of one kind; prints the median latency, the server's CPU per request
(all threads, from /proc/<pid>/task/*/schedstat: the WAL checkpoint every 150 audit appends included) and each
timer's mean per request. A stage's time includes the stages inside it (the order printed); the timers add
~0.1-0.3 µs each.

    .venv/bin/python bench/stage_times.py [bare|consent|full] [path] [requests]
    .venv/bin/python bench/stage_times.py full /Observation/o7 3000
"""

from __future__ import annotations

import collections
import os
import runpy
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATIONS = {"bare": (False, False), "consent": (True, False), "full": (True, True)}
_SERVE_WITH_TIMERS = "--serve-with-timers"


# -- inside the server -------------------------------------------------------------------------------------------


def serve_with_timers(arguments: list[str]) -> None:
    """Install the timers, then run `zcc-gateway <arguments>`; SIGUSR2 zeroes them, SIGUSR1 writes them to the
    file named by STAGE_TIMES_OUT."""
    sys.path.insert(0, str(ROOT))
    total: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return function(*args, **kwargs)
            finally:
                total[name] += time.perf_counter_ns() - started
                calls[name] += 1
        return wrapper

    import gateway.app as app_module
    import gateway.audit.log as audit_log
    import gateway.audit.stage as audit_stage
    import gateway.consent.stage as consent_stage
    import gateway.fhir.pipeline as pipeline

    def dispatch(self: Any, scope: Any, it: Any) -> Any:
        handler = timed("handler", self._route)
        for stage in reversed(self.stages):
            handler = pipeline._bind(timed(getattr(stage, "__name__", None) or type(stage).__name__, stage), handler)
        return handler(scope, it)

    pipeline.Pipeline.dispatch = dispatch  # type: ignore[method-assign]
    for owner, names in (
        (audit_stage.AuditStage, ("events",)),
        (audit_log.AuditLog, ("append_now", "_append_alone", "_append_rows")),
        (consent_stage.ConsentStage, ("_check_request", "_filter", "_judge")),
    ):
        for name in names:
            setattr(owner, name, timed(f"{owner.__name__}.{name}", getattr(owner, name)))
    audit_log._canonical = timed("canonical JSON", audit_log._canonical)  # type: ignore[assignment]
    consent_stage.decide_shape = timed("consent decide_shape", consent_stage.decide_shape)  # type: ignore[assignment]

    create_app = app_module.create_app

    def timed_app(*args: Any, **kwargs: Any) -> Any:
        app = create_app(*args, **kwargs)

        async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
            started = time.perf_counter_ns()
            try:
                await app(scope, receive, send)
            finally:
                if scope["type"] == "http":
                    total["whole request (ASGI)"] += time.perf_counter_ns() - started
                    calls["whole request (ASGI)"] += 1
        return application

    app_module.create_app = timed_app  # type: ignore[assignment]

    def write(*_: Any) -> None:
        requests = calls["whole request (ASGI)"] or 1
        with open(os.environ["STAGE_TIMES_OUT"], "w", encoding="utf-8") as out:
            for name, nanoseconds in total.most_common():
                mean = nanoseconds / requests / 1000
                out.write(f"  {name:<34} {mean:8.1f} µs   {calls[name] / requests:.2f} calls\n")

    signal.signal(signal.SIGUSR1, write)
    signal.signal(signal.SIGUSR2, lambda *_: (total.clear(), calls.clear()))
    sys.argv = ["zcc-gateway", *arguments]
    runpy.run_module("gateway.cli", run_name="__main__")


# -- the driver --------------------------------------------------------------------------------------------------


def main(configuration: str, path: str, requests: int) -> None:
    os.environ.setdefault("ZCC_AUTH_KEY_DIR", tempfile.mkdtemp(prefix="bench-keys"))
    os.environ.setdefault("ZCC_AUDIT_KEY_DIR", os.environ["ZCC_AUTH_KEY_DIR"])
    sys.path.insert(0, str(ROOT))
    from bench.consent_audit import CLIENT_CPUS, Server

    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
    consent, audit = CONFIGURATIONS[configuration]
    out = Path(tempfile.mkdtemp(prefix="bench-stage-times")) / "times.txt"
    server = Server(out.parent, configuration, consent, audit, launcher=(__file__, _SERVE_WITH_TIMERS),
                    env={"STAGE_TIMES_OUT": str(out)})
    try:
        server.batch(path, 0, 500)  # warm-up
        server.process.send_signal(signal.SIGUSR2)
        time.sleep(0.2)
        latencies, cpu = server.batch(path, 0, requests)
        server.process.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
    finally:
        server.stop()
    print(f"{configuration} {path}: {requests} requests, median latency {statistics.median(latencies) * 1000:.3f} ms, "
          f"server CPU {cpu * 1e6:.0f} µs per request; timers, mean per request:")
    print(out.read_text(encoding="utf-8"), end="")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == _SERVE_WITH_TIMERS:
        serve_with_timers(sys.argv[2:])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "full", sys.argv[2] if len(sys.argv) > 2 else "/Observation/o7",
             int(sys.argv[3]) if len(sys.argv) > 3 else 3000)
