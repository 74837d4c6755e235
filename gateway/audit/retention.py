"""Retention: AuditEvents older than the retention period (default 5 years, ZCC_AUDIT_RETENTION_DAYS) are removed
by `zcc-gateway audit purge`, without making the rest of the chain unverifiable.

Before removing anything the whole chain is verified (a purge must not erase the evidence of tampering). Then a
checkpoint is signed for the last removed event — its hash is the link the first kept event points to, and its
count says how many events came before — and the old events go, in the same transaction. `AuditLog.verify`
starts from that signed anchor instead of the genesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, func, select

from gateway.audit.checkpoints import Checkpoint, SignatureCheck, Signer, make_checkpoint
from gateway.audit.log import AuditLog, locked_head, store_checkpoint
from gateway.audit.schema import audit_event, audit_event_patient

DEFAULT_RETENTION = timedelta(days=5 * 365 + 1)


class PurgeRefused(RuntimeError):
    """The chain does not verify; nothing was removed."""


@dataclass(frozen=True)
class PurgeResult:
    removed: int
    anchor: Checkpoint | None


def purge_before(
    connection: Connection,
    log: AuditLog,
    cutoff: datetime,
    sign: Signer,
    key_id: str,
    check: SignatureCheck,
    recorded: str,
) -> PurgeResult:
    """Remove the events recorded before `cutoff` (a prefix of the chain) on `connection` (a write transaction)."""
    locked_head(connection)  # no appends while we cut
    verification = log.verify(connection, check)
    if not verification.ok:
        broken = verification.broken
        raise PurgeRefused(f"the audit chain does not verify ({broken.problem if broken else ''}); nothing removed")
    last = _last_expired_seq(connection, cutoff.isoformat(timespec="microseconds"))
    if last is None:
        return PurgeResult(0, None)
    kept_before = verification.count - connection.execute(
        select(func.count()).select_from(audit_event)
    ).scalar_one()
    removed = connection.execute(
        select(func.count()).select_from(audit_event).where(audit_event.c.seq <= last)
    ).scalar_one()
    last_hash = connection.execute(select(audit_event.c.hash).where(audit_event.c.seq == last)).scalar_one()
    anchor = make_checkpoint(last, kept_before + removed, last_hash, recorded, key_id, sign)
    store_checkpoint(connection, anchor)
    connection.execute(delete(audit_event_patient).where(audit_event_patient.c.seq <= last))
    connection.execute(delete(audit_event).where(audit_event.c.seq <= last))
    return PurgeResult(int(removed), anchor)


def _last_expired_seq(connection: Connection, cutoff: str) -> int | None:
    """The end of the expired prefix: every event up to it was recorded before the cutoff (clocks of several
    instances may disagree slightly, so an older event after a newer one waits for the next purge)."""
    first_kept = connection.execute(  # in chain order from its start: only the expired prefix is read (no index)
        select(audit_event.c.seq).where(audit_event.c.recorded >= cutoff).order_by(audit_event.c.seq).limit(1)
    ).scalar()
    query = select(func.max(audit_event.c.seq))
    if first_kept is not None:
        query = query.where(audit_event.c.seq < first_kept)
    return connection.execute(query).scalar_one()
