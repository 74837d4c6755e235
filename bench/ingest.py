"""Ingestion benchmark (not a test):
- translation only: the HAP adapter over the reference messages, messages/s and MB/s on one core;
- end to end (store raw, translate, validate, one transaction through the FHIR pipeline with audit and
  consent on) over N messages made from the reference messages (each with its own message id, so none is a
  duplicate; most of their resources are then stored already and not written again), against SQLite and, with
  --pg, a throw-away PostgreSQL, with 1 or more worker threads or processes. `--new-content`: every message
  about a patient of its own with all its identifiers changed, so every resource is new (the worst case).

    .venv/bin/python bench/ingest.py [--count 2000] [--threads 2 | --processes 2] [--pg] [--new-content]

RAV, VVT and ggz (`--adapters`, on by default; `--adapters-only` skips the HAP part): translation only per adapter
(RAV: the HL7v2 ADT/ORU test messages + the AZ-IG referral; VVT/ggz: the eOverdracht / BgGGZ qualification
fixtures, STU3 -> R4) and end to end per source over `--adapter-count` messages (each with its own message id or
bytes), validated against the Nictiz nl-core profiles installed in var/packages (strict mode).

Prints a Markdown table; copy it into docs/benchmarks.md with the machine and date."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.adapters.hap import translate_hap  # noqa: E402
from gateway.adapters.hl7v3.oids import BSN_OID  # noqa: E402
from gateway.adapters.hl7v3.xml import V3  # noqa: E402
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


def valid_bsn(number: int) -> str:
    """A nine-digit BSN that passes the 11-proof, another for every `number`: of the ten candidates
    `10000000 + 10 * number` ... `+ 9` (eight digits, then the check digit) at most one has check digit 10."""
    base = 10_000_000 + 10 * number
    while True:
        digits = [int(d) for d in f"{base:08d}"]
        check = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return f"{base:08d}{check}"
        base += 1


def with_new_content(raw: bytes, number: int) -> bytes:
    """The message about a patient of its own, every identifier in it changed alike (so the message's internal
    references still agree): the patient's BSN becomes the `number`-th valid BSN, every other `<id extension>`
    gets the suffix `-number`. Nothing of it is stored yet: every resource is new (no no-op write) and validated."""
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    for element in root.iter(f"{V3}id"):
        extension = element.get("extension")
        if extension is None:
            continue
        if element.get("root") == BSN_OID:
            element.set("extension", valid_bsn(number))
        else:
            element.set("extension", f"{extension}-{number}")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


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


def end_to_end(database_url: str, messages: list[bytes], count: int, threads: int, processes: int = 0,
               server: Any = None, new_content: bool = False) -> tuple[float, dict[str, int], float, float]:
    """(messages/s, statuses, gateway CPU ms per message, PostgreSQL server CPU ms per message). With
    `processes` > 0, that many worker processes (`zcc-gateway ingest --jobs`) instead of threads; worker start-up
    (loading packages, warming the validator) is not timed, as the services of the threaded run are built first."""
    services = build_services(Settings(database_url=database_url, base_url="http://bench/fhir"))
    create_ingest_tables(services.store.engine)
    vary = with_new_content if new_content else with_message_id
    batch = [vary(messages[i % len(messages)], i) for i in range(count)]
    statuses: dict[str, int] = {}
    if processes > 0:
        from gateway.ingest.parallel import IngestWorkers
        with IngestWorkers(processes, database_url) as workers:
            workers.wait_ready()
            server_cpu, start = postgres_cpu(server), time.perf_counter()
            cpu = 0.0
            for done in workers.ingest("hap", [(str(i), raw) for i, raw in enumerate(batch)], cli_identity()):
                statuses[done.result.record.status] = statuses.get(done.result.record.status, 0) + 1
                cpu += done.cpu_seconds
            elapsed, server_cpu = time.perf_counter() - start, postgres_cpu(server) - server_cpu
        return count / elapsed, statuses, 1000 * cpu / count, 1000 * server_cpu / count
    service = IngestService(services)
    server_cpu, cpu, start = postgres_cpu(server), time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(lambda raw: service.ingest("hap", raw, cli_identity()), batch):
            statuses[result.record.status] = statuses.get(result.record.status, 0) + 1
    elapsed, cpu, server_cpu = time.perf_counter() - start, time.process_time() - cpu, postgres_cpu(server) - server_cpu
    return count / elapsed, statuses, 1000 * cpu / count, 1000 * server_cpu / count


def postgres_cpu(server: Any) -> float:
    """CPU seconds the throw-away PostgreSQL cluster has used so far (postmaster, its live backends and the ones
    that ended), from /proc; 0 without a server."""
    if server is None:
        return 0.0
    try:
        postmaster = int((server.data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime (ended backends)
        elif parent == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


# -- RAV, VVT, ggz ------------------------------------------------------------------------------------------------

MSH_10 = re.compile(rb"^(MSH\|(?:[^|\r\n]*\|){8})([^|\r\n]*)", re.MULTILINE)


def rav_messages() -> list[bytes]:
    return [path.read_bytes() for path in sorted(RAV_MESSAGES.glob("*.hl7"))] + [RAV_REFERRAL.read_bytes()]


def stu3_fixture_messages(source: str) -> list[bytes]:
    """The qualification fixtures of `source` one resource per message, as a sender's system files them (XML,
    T-dates filled), without the fixtures that are defective themselves (docs/ingest.md)."""
    from tests.adapters.stu3_fixtures import ggz_fixtures, instantiate, vvt_fixtures
    paths = vvt_fixtures() if source == "vvt" else ggz_fixtures()
    return [instantiate(p.read_bytes()) for p in paths
            if not p.name.startswith("ggz-generalmeasurement-") and not p.name.startswith("ggz-nl-core-patient-")]


def vvt_handoffs() -> list[bytes]:
    """One eOverdracht handoff per qualification scenario: the Task (in progress), its Composition and the resources
    they refer to, as one STU3 transaction Bundle (JSON)."""
    from tests.adapters.stu3_fixtures import instantiate, stu3_bundle, vvt_fixtures
    scenarios = sorted({m[1] for p in vvt_fixtures() if (m := re.search(r"-eov-((?:val|cert)-\d+_\d+b)-", p.name))})
    handoffs = []
    for scenario in scenarios:
        paths = [p for p in vvt_fixtures() if f"-eov-{scenario}-" in p.name and "COMPLETED" not in p.name]
        bundle = stu3_bundle([instantiate(p.read_bytes()) for p in paths], "transaction")
        handoffs.append(json.dumps(bundle).encode())
    return handoffs


def unique_message(raw: bytes, suffix: int) -> bytes:
    """The same message as a new one: HL7v2 another MSH-10, a FHIR JSON Bundle another identifier, a single FHIR
    XML resource other bytes (a trailing comment, not content)."""
    if raw.startswith(b"MSH"):
        return MSH_10.sub(lambda m: m.group(1) + m.group(2) + b"-" + str(suffix).encode(), raw, count=1)
    if raw.lstrip().startswith(b"{"):
        message = json.loads(raw)
        message["identifier"] = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}
        return json.dumps(message).encode()
    return raw + f"\n<!-- {suffix} -->".encode()


def adapter_end_to_end(database_url: str, source: str, messages: list[bytes], count: int, threads: int
                       ) -> tuple[float, dict[str, int]]:
    from conformance.packages import installed_package_paths
    services = build_services(Settings(database_url=database_url, base_url="http://bench/fhir",
                                       package_paths=installed_package_paths(ROOT)))
    create_ingest_tables(services.store.engine)
    service = IngestService(services)
    batch = [unique_message(messages[i % len(messages)], i) for i in range(count)]
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for result in pool.map(lambda raw: service.ingest(source, raw, cli_identity()), batch):
            statuses[result.record.status] = statuses.get(result.record.status, 0) + 1
    return count / (time.perf_counter() - start), statuses


def adapters(args: argparse.Namespace, server: Any = None) -> None:
    """RAV, VVT and ggz: translation only, then end to end on SQLite (and on the PostgreSQL `server`), each run
    on a fresh database."""
    from gateway.adapters.ggz import translate_ggz
    from gateway.adapters.vvt import translate_vvt
    def vvt(raw: bytes) -> object:
        return translate_vvt(raw, "00000000")

    def ggz(raw: bytes) -> object:
        return translate_ggz(raw, "00000000")

    runs = [("RAV", "rav", rav_messages(), translate_rav, "HL7v2 ADT/ORU test messages + AZ-IG referral"),
            ("VVT", "vvt", stu3_fixture_messages("vvt"), vvt,
             "eOverdracht fixtures, one STU3 XML resource each"),
            ("VVT", "vvt", vvt_handoffs(), vvt, "eOverdracht handoffs, Task + Composition set as one STU3 "
                                                          "JSON Bundle"),
            ("ggz", "ggz", stu3_fixture_messages("ggz"), ggz, "BgGGZ fixtures, one STU3 XML resource each")]
    for name, _, messages, translate, what in runs:
        per_second, mb_per_second, average_kb = translation(messages, args.seconds, translate)
        print(f"| {name} translation only, 1 core ({len(messages)} messages: {what}, avg {average_kb:.1f} KB) | "
              f"{per_second:.0f} messages/s, {mb_per_second:.2f} MB/s |", flush=True)
    targets: list[tuple[str, Callable[[str], str]]] = [
        ("SQLite", lambda name: f"sqlite:///{tempfile.mkdtemp()}/{name}.db")]
    if server is not None:
        from tests.pg import fresh_database
        targets.append(("PostgreSQL", lambda name: fresh_database(server.url, name)))
    for target, database in targets:
        for index, (name, source, messages, _, what) in enumerate(runs):
            rate, statuses = adapter_end_to_end(database(f"bench_{source}_{index}"), source, messages,
                                                args.adapter_count, args.threads)
            print(f"| {name} end to end, {target}, nl-core validation, {args.adapter_count} messages ({what}), "
                  f"{args.threads} threads | {rate:.1f} messages/s "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}) |", flush=True)


def adapters_only(args: argparse.Namespace) -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}\n")
    print("| measurement | result |\n|---|---|")
    server = None
    if args.pg:
        from tests.pg import start_temporary_postgres
        server = start_temporary_postgres()
    try:
        adapters(args, server)
    finally:
        if server is not None:
            server.stop()
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--processes", type=int, default=0,
                        help="end to end with this many worker processes (zcc-gateway ingest --jobs) instead of "
                             "threads")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--new-content", action="store_true",
                        help="end to end: every message about a patient of its own, all identifiers changed (no "
                             "resource stored before), instead of the reference messages resent under new message ids")
    parser.add_argument("--pg", action="store_true", help="also against a throw-away PostgreSQL")
    parser.add_argument("--adapters", action=argparse.BooleanOptionalAction, default=True,
                        help="also RAV, VVT and ggz")
    parser.add_argument("--adapters-only", action="store_true", help="only RAV, VVT and ggz")
    parser.add_argument("--adapter-count", type=int, default=500)
    args = parser.parse_args()
    if args.adapters_only:
        adapters_only(args)
        return
    messages = reference_messages()
    per_second, mb_per_second, average_kb = translation(messages, args.seconds)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cpus, "
          f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}\n")
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
            how = f"{args.processes} processes" if args.processes else f"{args.threads} threads"
            how += ", every message new content" if args.new_content else ", resent under new message ids"
            rate, statuses, cpu, server_cpu = end_to_end(url, messages, args.count, args.threads, args.processes,
                                                         server if name == "PostgreSQL" else None, args.new_content)
            server_part = f" + PostgreSQL server {server_cpu:.1f} ms" if name == "PostgreSQL" else ""
            print(f"| end to end, {name}, {args.count} messages, {how} | {rate:.1f} messages/s "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}); "
                  f"CPU {cpu:.1f} ms/message{server_part}; load average {os.getloadavg()[0]:.2f} |", flush=True)
        if args.adapters:
            adapters(args, server)
    finally:
        if server is not None:
            server.stop()
        print(f"\nload average after: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")


if __name__ == "__main__":
    main()

