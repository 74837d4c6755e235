"""The hash chain on a real database: append, verify, tamper detection, signed checkpoints, review queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, create_engine, delete, update

from gateway.audit.chain import GENESIS
from gateway.audit.checkpoints import ec_signature_check, ec_signer
from gateway.audit.jcs import canonicalize
from gateway.audit.log import AuditLog, AuditWriteError, ReviewItem
from gateway.audit.schema import audit_chain_head, audit_event, audit_metadata


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    db = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    audit_metadata.create_all(db)
    yield db
    db.dispose()


def event(n: int, patient: str = "p1") -> dict:  # type: ignore[type-arg]
    return {
        "resourceType": "AuditEvent",
        "id": f"e{n}",
        "recorded": f"2025-06-01T12:00:{n:02d}+00:00",
        "outcome": "0",
        "entity": [{"what": {"reference": f"Patient/{patient}"}}],
        "n": n / 10,
    }


def fill(db: Engine, count: int = 5) -> AuditLog:
    log = AuditLog()
    for n in range(count):
        with db.begin() as connection:
            log.append(connection, event(n, "p1" if n % 2 else "p2"), "PatientRead", ["p1" if n % 2 else "p2"], "app")
    return log


def test_intact_chain_verifies(engine: Engine) -> None:
    log = fill(engine)
    with engine.connect() as connection:
        result = log.verify(connection)
        rows = list(log.rows(connection))
    assert result.ok and result.count == 5
    assert rows[0].prev_hash == GENESIS and rows[1].prev_hash == rows[0].hash
    assert rows[2].body == canonicalize(event(2, "p2"))


def test_changed_event_is_the_first_broken_link(engine: Engine) -> None:
    log = fill(engine)
    with engine.begin() as connection:
        tampered = canonicalize({**event(2, "p2"), "outcome": "4"})
        connection.execute(update(audit_event).where(audit_event.c.event_id == "e2").values(body=tampered))
    with engine.connect() as connection:
        result = log.verify(connection)
    assert not result.ok and result.broken is not None
    assert (result.broken.event_id, result.broken.problem) == ("e2", "event hash does not match content")


def test_rehashed_event_breaks_the_next_link(engine: Engine) -> None:
    log = fill(engine)
    with engine.begin() as connection:
        connection.execute(update(audit_event).where(audit_event.c.event_id == "e2").values(hash="f" * 64))
    with engine.connect() as connection:
        result = log.verify(connection)
    assert result.broken is not None and result.broken.event_id in {"e2", "e3"}


def test_deleted_event_is_detected(engine: Engine) -> None:
    log = fill(engine)
    with engine.begin() as connection:
        connection.execute(delete(audit_event).where(audit_event.c.event_id == "e1"))
    with engine.connect() as connection:
        result = log.verify(connection)
    assert result.broken is not None and result.broken.event_id == "e2"
    assert result.broken.problem == "predecessor link does not match"


def test_truncated_tail_is_detected_by_the_head(engine: Engine) -> None:
    log = fill(engine)
    with engine.begin() as connection:
        connection.execute(delete(audit_event).where(audit_event.c.event_id == "e4"))
    with engine.connect() as connection:
        result = log.verify(connection)
    assert result.broken is not None and "missing" in result.broken.problem


def test_non_canonical_body_is_detected(engine: Engine) -> None:
    log = fill(engine)
    with engine.begin() as connection:
        row = connection.execute(audit_event.select().where(audit_event.c.event_id == "e0")).first()
        assert row is not None
        connection.execute(
            update(audit_event).where(audit_event.c.event_id == "e0").values(body=b" " + bytes(row.body))
        )
    with engine.connect() as connection:
        assert log.verify(connection).broken.problem == "stored event is not canonical"  # type: ignore[union-attr]


def test_signed_checkpoints(engine: Engine) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    log = fill(engine, 3)
    with engine.begin() as connection:
        checkpoint = log.checkpoint(connection, ec_signer(key), "gateway-key-1", "2025-06-01T13:00:00+00:00")
    assert checkpoint is not None and checkpoint.count == 3
    check = ec_signature_check(key.public_key())
    with engine.connect() as connection:
        assert log.verify(connection, check).ok
    other = ec.generate_private_key(ec.SECP256R1())
    with engine.connect() as connection:
        forged = log.verify(connection, ec_signature_check(other.public_key()))
    assert forged.broken is not None and forged.broken.problem == "checkpoint signature is not valid"


def test_rewritten_chain_contradicts_the_checkpoint(engine: Engine) -> None:
    """Someone who rewrites event 1 and recomputes every later hash still cannot match the signed head."""
    key = ec.generate_private_key(ec.SECP256R1())
    log = fill(engine, 3)
    with engine.begin() as connection:
        log.checkpoint(connection, ec_signer(key), "k", "2025-06-01T13:00:00+00:00")
    from gateway.audit.chain import link_hash

    with engine.begin() as connection:
        rows = list(log.rows(connection))
        prev = rows[0].hash
        for row in rows[1:]:
            body = canonicalize({**event(int(row.event_id[1:])), "outcome": "8"})
            digest = link_hash(prev, body)
            connection.execute(
                update(audit_event).where(audit_event.c.seq == row.seq).values(body=body, prev_hash=prev, hash=digest)
            )
            prev = digest
        connection.execute(update(audit_chain_head).values(last_hash=prev))
    with engine.connect() as connection:
        assert log.verify(connection).ok  # the chain alone is consistent again ...
        result = log.verify(connection, ec_signature_check(key.public_key()))
    assert result.broken is not None and "differs from the signed checkpoint" in result.broken.problem


def test_patient_access_log(engine: Engine) -> None:
    log = fill(engine)
    with engine.connect() as connection:
        events = log.events_for_patient(connection, "p1")
    assert [e["id"] for e in events] == ["e1", "e3"]


def test_append_failure_is_an_audit_write_error(engine: Engine) -> None:
    log = fill(engine, 1)
    with pytest.raises(AuditWriteError), engine.begin() as connection:
        log.append(connection, event(0), "PatientRead")  # duplicate event id


def test_review_queue(engine: Engine) -> None:
    log = AuditLog()
    with engine.begin() as connection:
        log.open_review(connection, ReviewItem("e9", "p1", "app", "uzi-1", "unconscious", "t0", "t4"))
    with engine.connect() as connection:
        [item] = log.open_reviews(connection)
    assert (item["patient"], item["reason"], item["status"]) == ("p1", "unconscious", "open")


def test_access_report_is_readable() -> None:
    from gateway.audit.events import Access, Actor, interaction_event
    from gateway.audit.report import decoded_query, render_report

    actor = Actor(client_id="app", user_id="uzi-9", ura="00001111", purpose_of_use="TREAT", token_jti="j")
    access = Access("search-type", "GET", "Observation", "patient=p1", 200, patients=["p1"])
    event = interaction_event(access, actor, "2025-06-01T12:00:00+00:00", "e1", "http://gw/fhir")
    text = render_report("BSN 999999011", [event])
    assert "URA 00001111" in text and "uzi-9" in text and "TREAT" in text and "allowed" in text
    assert decoded_query(event) == "Observation?patient=p1"
