"""Ingestion on several cores (`zcc-gateway ingest --jobs N`): the same store content as one process, the same
message twice still one record, concurrent messages about one patient still one Patient; and the unchanged
resources of a resent message are not written again."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from conformance.packages import default_package_paths
from gateway.ingest.actor import cli_identity
from gateway.ingest.cli import ingest_app
from gateway.ingest.identity import stable_id
from gateway.ingest.locks import SLOTS, lock_file, message_lock, message_locks
from gateway.ingest.schema import ingest_message
from gateway.ingest.service import IngestService
from gateway.store.locks import lock_key
from gateway.store.schema import resource
from tests.ingest.messages import VALID_BSN, episode_message

PATIENT = f"Patient/{stable_id(f'Patient|http://fhir.nl/fhir/NamingSystem/bsn|{VALID_BSN}')}"


def _folder(tmp_path: Path) -> Path:
    """Eight messages about one patient (other episodes), the same bytes twice, and one message id resent in
    other bytes: 8 accepted, 2 duplicates, whatever the order."""
    folder = tmp_path / "messages"
    folder.mkdir()
    for index in range(8):
        (folder / f"m{index}.xml").write_bytes(episode_message(f"par-{index}", episode_id=f"par-ep-{index}"))
    (folder / "m0-again.xml").write_bytes(episode_message("par-0", episode_id="par-ep-0"))
    # the same message id in other bytes (re-encoded): which of the two is accepted depends on the order, so the
    # content is the same
    (folder / "m1-resent.xml").write_bytes(episode_message("par-1", episode_id="par-ep-1") + b"\n<!-- resent -->")
    return folder


def _store_content(database: str) -> tuple[dict[str, bytes], list[str], int]:
    """(Type/id -> body without meta for every clinical resource, sorted record statuses, Provenance count)."""
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(select(resource.c.type, resource.c.id, resource.c.body)).all()
        statuses = sorted(connection.execute(select(ingest_message.c.status)).scalars())
    engine.dispose()
    content = {}
    for row in rows:
        if row.type in {"Provenance", "AuditEvent"}:
            continue
        body = json.loads(row.body)
        body.pop("meta", None)
        content[f"{row.type}/{row.id}"] = json.dumps(body, sort_keys=True).encode()
    return content, statuses, sum(1 for row in rows if row.type == "Provenance")


def test_jobs_2_gives_the_same_store_content_as_jobs_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZCC_PACKAGE_PATH", ":".join(str(p) for p in default_package_paths()))  # workers too
    folder = _folder(tmp_path)
    results = {}
    for jobs in (1, 2):
        database = f"sqlite:///{tmp_path / f'jobs{jobs}.db'}"
        outcome = CliRunner().invoke(ingest_app, ["--database", database, "--jobs", str(jobs), str(folder)])
        assert outcome.exit_code == 0, outcome.output
        assert "accepted: 8  rejected: 0  duplicate: 2" in outcome.output
        results[jobs] = _store_content(database)
    one, two = results[1], results[2]
    assert one[1] == two[1] == ["accepted"] * 8 + ["duplicate"] * 2
    assert one[0] == two[0]  # the same resources with the same content
    assert sum(1 for key in two[0] if key.startswith("Patient/")) == 1 and PATIENT in two[0]
    assert sum(1 for key in two[0] if key.startswith("EpisodeOfCare/")) == 8
    assert one[2] == two[2] == 8  # one Provenance per accepted message


def test_a_resent_message_writes_only_what_changed(service: IngestService) -> None:
    first = service.ingest("hap", episode_message("same-content-1", episode_id="same-ep"), cli_identity())
    assert first.record.status == "accepted"
    again = service.ingest("hap", episode_message("same-content-2", episode_id="same-ep"), cli_identity())
    assert again.record.status == "accepted"
    # nothing new but the Provenance: the record names the current versions, the Provenance targets them all
    assert again.record.resources[:-1] == first.record.resources[:-1]
    assert again.record.resources[-1].startswith("Provenance/")
    assert [e["response"]["location"].split("/")[0] for e in again.response["entry"]] == ["Provenance"]
    assert any("not written again" in i["diagnostics"] for i in again.record.outcome["issue"])
    with service.services.store.read(False) as connection:
        provenance_id = again.record.resources[-1].split("/")[1]
        provenance = service.services.store.get(connection, "Provenance", provenance_id).resource()
    assert {t["reference"] for t in provenance["target"]} == {x.rsplit("/", 2)[0] for x in first.record.resources
                                                              if not x.startswith("Provenance/")}
    changed = service.ingest("hap", episode_message("same-content-3", episode_id="same-ep", title="COPD GOLD III"),
                             cli_identity())
    episode = next(x for x in changed.record.resources if x.startswith("EpisodeOfCare/"))
    before = next(x for x in first.record.resources if x.startswith("EpisodeOfCare/"))
    assert episode.rsplit("/", 1)[1] == str(int(before.rsplit("/", 1)[1]) + 1)  # changed: a new version
    assert next(x for x in changed.record.resources if x.startswith("Patient/")) == next(
        x for x in first.record.resources if x.startswith("Patient/"))  # unchanged: the same version


def test_two_messages_about_one_patient_do_not_overlap(service: IngestService) -> None:
    """The demographics check (and the no-op check) read the stored patient before the write transaction, so a
    message about a BSN waits while another ingestion holds that patient: it then sees what the other wrote."""
    first = service.ingest("hap", episode_message("overlap-1", episode_id="overlap-ep-1"), cli_identity())
    assert first.record.status == "accepted"
    finished, results = threading.Event(), []

    def other_birth_date() -> None:
        results.append(service.ingest("hap", episode_message("overlap-2", birth="19800101",
                                                              episode_id="overlap-ep-2"), cli_identity()))
        finished.set()

    with message_locks(service.services.store.engine, ["a message of this test"], [f"ingest|{PATIENT}"]):
        thread = threading.Thread(target=other_birth_date)
        thread.start()
        assert not finished.wait(1.0), "the second message did not wait for the patient"
    thread.join(60)
    (second,) = results
    assert second.record.status == "accepted" and second.record.flags == ["bsn-demographics-conflict"]
    assert not any(x.startswith("Patient/") for x in second.record.resources)  # the stored patient is kept


def test_message_locks_take_shared_keys_in_one_order(tmp_path: Path) -> None:
    """Two ingestions holding different own keys and the same two patients, given in opposite orders, both
    finish (the patients are locked in one global order, whatever order the caller names them in)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'order.db'}")
    done = []

    def ingestion(own: str, patients: list[str]) -> None:
        for _ in range(200):
            with message_locks(engine, [own], patients):
                pass
        done.append(own)

    threads = [threading.Thread(target=ingestion, args=("a", ["ingest|Patient/1", "ingest|Patient/2"]), daemon=True),
               threading.Thread(target=ingestion, args=("b", ["ingest|Patient/2", "ingest|Patient/1"]), daemon=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(done) == ["a", "b"]


def _try_slot(path: str, slot: int, answer: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import fcntl
    import os

    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
        answer.put("free")
    except OSError:
        answer.put("held")
    finally:
        os.close(descriptor)


def test_the_message_lock_holds_across_processes_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    path = lock_file(engine)
    assert path == tmp_path / "lock.db-ingest-lock"
    context = multiprocessing.get_context("spawn")
    slot = lock_key("ingest|hap|abc") % SLOTS

    def probe() -> str:
        answer = context.Queue()
        child = context.Process(target=_try_slot, args=(str(path), slot, answer))
        child.start()
        child.join(60)
        return str(answer.get(timeout=5))

    with message_lock(engine, "ingest|hap|abc"):
        assert probe() == "held"
    assert probe() == "free"
    assert lock_file(create_engine("sqlite://")) is None  # in memory: the in-process lock alone


def test_worker_processes_freeze_what_start_up_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker keeps its packages and validator for its whole life: like a serving process, it freezes them and
    collects its young generation in large batches (gateway.gc_tuning)."""
    import gc

    from gateway.gc_tuning import YOUNG_THRESHOLD
    from gateway.ingest.parallel import IngestWorkers

    monkeypatch.setenv("ZCC_PACKAGE_PATH", ":".join(str(p) for p in default_package_paths()))
    with IngestWorkers(1, f"sqlite:///{tmp_path / 'gc.db'}") as workers:
        workers.wait_ready()
        threshold = workers._pool.submit(gc.get_threshold).result(timeout=120)
        frozen = workers._pool.submit(gc.get_freeze_count).result(timeout=120)
    assert threshold[0] == YOUNG_THRESHOLD
    assert frozen > 100_000  # the loaded definitions, not scanned again
