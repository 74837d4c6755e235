"""Audit trail: BALP AuditEvents with NEN 7513 fields, an RFC 8785 / SHA-256 hash chain, signed checkpoints.

Public API: `AuditLog` (append/verify/checkpoint/review queue/patient log), `AuditStage` (pipeline stage),
`audit_metadata` (tables to migrate), `canonicalize` (JCS), `render_report` (patient access overview).
Also: `access.AuditEventAccess` (AuditEvents through the FHIR API), `retention.purge_before` (retention with a signed
anchor), `keys.load_checkpoint_key` (the checkpoint key), `cli.audit_app` (`zcc-gateway audit ...`),
`wiring.build_audit` (what gateway.app assembles).
"""

from gateway.audit.jcs import canonicalize
from gateway.audit.log import AuditLog, AuditWriteError
from gateway.audit.report import render_report
from gateway.audit.schema import audit_metadata

__all__ = ["AuditLog", "AuditWriteError", "audit_metadata", "canonicalize", "render_report"]
