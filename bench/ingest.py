"""Ingestion benchmark (not a test):
- translation only: the HAP adapter over the reference messages, messages/s and MB/s on one core;
- end to end (store raw, translate, validate, one transaction through the FHIR pipeline with audit and
  consent on) over N messages made from the reference messages (each with its own message id, so none is a
  duplicate), against SQLite and, with --pg, a throw-away PostgreSQL, with 1 or more worker threads.

    .venv/bin/python bench/ingest.py [--count 2000] [--threads 2] [--pg]

Prints a Markdown table; copy it into docs/benchmarks.md with the machine and date."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.adapters.hap import translate_hap  # noqa: E402
from gateway.adapters.rav import translate_rav  # noqa: E402
from gateway.app import build_services  # noqa: E402
from gateway.ingest.actor import cli_identity  # noqa: E402
from gateway.ingest.schema import create_ingest_tables  # noqa: E402
from gateway.ingest.service import IngestService  # noqa: E402
from gateway.settings import Settings  # noqa: E402

REFERENCE = ROOT.parent / "shared" / "reference" / "hap-hl7v3"
RAV_MESSAGES = ROOT / "tests" / "adapters" / "rav_messages"
RAV_REFERRAL = REFERENCE.parent / "rav-az-ig" / "Bundle-hg-ReferralBundle-AmbulanceHAP-referral.json"
MESSAGE_ID = re.compile(rb'(<id\s+extension=")([^"]*)(")|(<id\s+root="[^"]*"\s+extension=")([^"]*)(")')


def reference_messages() -> list[bytes]:
    paths = sorted((REFERENCE / "ketenzorg").glob("*.xml")) + [REFERENCE / "professionele-samenvatting" /
                                                                "QUPC_IN990002NL_01.xml"]
    return [path.read_bytes() for path in paths]


def with_message_id(raw: bytes, suffix: int) -> bytes:
    """The same message with another message id (the first <id> in the document)."""
    def replace(match: re.Match[bytes]) -> bytes:
        if match.group(1):
            return match.group(1) + match.group(2) + b"-" + str(suffix).encode() + match.group(3)
        return match.group(4) + match.group(5) + b"-" + str(suffix).encode() + match.group(6)
    return MESSAGE_ID.sub(replace, raw, count=1)


def translation(messages: list[bytes], seconds: float = 5.0,
                translate: Callable[[bytes], object] = translate_hap) -> tuple[float, float, float]:
    done = size = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for raw in messages:
            translate(raw)
            done += 1
            size += len(raw)
    elapsed = time.perf_counter() - start
    return done / elapsed, size / elapsed / 1e6, sum(map(len, messages)) / len(messages) / 1024


def end_to_end(database_url: str, messages: list[bytes], count: int, threads: int) -> tuple[float, dict[str, int]]:
    services = build_services(Settings(database_url=database_url, base_url="http://bench/fhir"))
    create_ingest_tables(services.store.engine)
    service = IngestService(services)
    batch = [with_message_id(messages[i % len(messages)], i) for i in range(count)]
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(lambda raw: service.ingest("hap", raw, cli_identity()), batch):
            statuses[result.record.status] = statuses.get(result.record.status, 0) + 1
    return count / (time.perf_counter() - start), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pg", action="store_true", help="also against a throw-away PostgreSQL")
    args = parser.parse_args()
    messages = reference_messages()
    per_second, mb_per_second, average_kb = translation(messages, args.seconds)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}\n")
    print("| measurement | result |\n|---|---|")
    print(f"| translation only, 1 core ({len(messages)} reference messages, avg {average_kb:.1f} KB) | "
          f"{per_second:.0f} messages/s, {mb_per_second:.2f} MB/s |")
    rav_messages = [path.read_bytes() for path in sorted(RAV_MESSAGES.glob("*.hl7"))] + [RAV_REFERRAL.read_bytes()]
    per_second, mb_per_second, average_kb = translation(rav_messages, args.seconds, translate_rav)
    print(f"| RAV translation only, 1 core ({len(rav_messages)} messages: HL7v2 ADT/ORU fixtures + AZ-IG referral, "
          f"avg {average_kb:.1f} KB) | {per_second:.0f} messages/s, {mb_per_second:.2f} MB/s |")
    targets = [("SQLite", f"sqlite:///{tempfile.mkdtemp()}/bench.db")]
    server = None
    if args.pg:
        from tests.pg import fresh_database, start_temporary_postgres
        server = start_temporary_postgres()
        targets.append(("PostgreSQL", fresh_database(server.url, "bench")))
    try:
        for name, url in targets:
            rate, statuses = end_to_end(url, messages, args.count, args.threads)
            print(f"| end to end, {name}, {args.count} messages, {args.threads} threads | {rate:.1f} messages/s "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}) |")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
