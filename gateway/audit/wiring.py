"""The audit pieces a gateway process runs with, built from its settings: the chain (with a signed checkpoint
every `audit_checkpoint_every` events), the audit stage, and the AuditEvent API stage."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.audit.access import AuditEventAccess
from gateway.audit.keys import load_checkpoint_key
from gateway.audit.log import AuditLog, CheckpointRule
from gateway.audit.stage import AuditStage
from gateway.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditComponents:
    log: AuditLog
    stage: AuditStage
    access: AuditEventAccess


def build_audit(settings: Settings, btg_time_box: timedelta, admin_roles: Iterable[str]) -> AuditComponents:
    rule = None
    if settings.audit_checkpoint_every > 0:
        key = load_checkpoint_key()
        rule = CheckpointRule(key.sign, key.key_id, settings.audit_checkpoint_every)
    log = AuditLog(rule)
    stage = AuditStage(log, settings.base_url, utc_now, btg_time_box)
    access = AuditEventAccess(
        log, settings.audit_reader_roles, admin_roles, utc_now, settings.default_count, settings.max_count
    )
    return AuditComponents(log, stage, access)
