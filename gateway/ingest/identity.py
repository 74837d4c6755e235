"""Patient identity: BSN 11-proof, stable ids derived from source identifiers, and the matching rules
(match on a valid BSN only; otherwise the source system's own identifier; never on demographics)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.hl7v3.oids import BSN_SYSTEM
from gateway.fhir.errors import Issue

_STABLE_NS = uuid.UUID("0b7f8a52-8f0e-4a5c-9e0f-2b5f8d7c6a41")


def stable_id(key: str) -> str:
    """The resource id for a source identity (same key -> same id, on every gateway)."""
    return str(uuid.uuid5(_STABLE_NS, key))


def bsn_valid(value: str) -> bool:
    """The 11-proof: 9 digits (8 are left-padded), sum(d_i * (9 - i)) for i < 8 minus d_8 divisible by 11."""
    digits = value.strip()
    if len(digits) == 8:
        digits = "0" + digits
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * (9 - i) for i, d in enumerate(digits[:8])) - int(digits[8])
    return total % 11 == 0


@dataclass
class PatientDecision:
    id: str | None
    issues: list[Issue] = field(default_factory=list)
    bsn: str | None = None


def decide_patient(patient: dict[str, Any], where: str, strict: bool) -> PatientDecision:
    """The stored id of a translated Patient. A BSN that fails the 11-proof is an error in strict mode; in
    lenient mode it is dropped (kept in the raw message) and the patient is identified by the source id."""
    identifiers = [i for i in patient.get("identifier", []) if i.get("value")]
    issues: list[Issue] = []
    bsns = [i for i in identifiers if i.get("system") == BSN_SYSTEM]
    valid = [i for i in bsns if bsn_valid(i["value"])]
    for invalid in (i for i in bsns if not bsn_valid(i["value"])):
        issues.append(Issue("error" if strict else "warning", "value",
                            f"BSN '{invalid['value']}' fails the 11-proof", [where]))
        patient["identifier"] = [i for i in patient["identifier"] if i is not invalid]
    if len({i["value"] for i in valid}) > 1:
        issues.append(Issue("error", "business-rule", "the patient carries more than one BSN", [where]))
        return PatientDecision(None, issues)
    if valid:
        bsn = valid[0]["value"].zfill(9)
        return PatientDecision(stable_id(f"Patient|{BSN_SYSTEM}|{bsn}"), issues, bsn)
    others = [i for i in identifiers if i.get("system") != BSN_SYSTEM]
    if others:
        first = others[0]
        return PatientDecision(stable_id(f"Patient|{first['system']}|{first['value']}"), issues)
    issues.append(Issue("error", "required", "the message identifies no patient (no BSN, no source identifier)",
                        [where]))
    return PatientDecision(None, issues)


def conflicting_demographics(existing: dict[str, Any] | None, incoming: dict[str, Any]) -> str | None:
    """A reason when a stored patient with this BSN has other demographics (birth date) than the message."""
    if existing is None:
        return None
    old, new = existing.get("birthDate"), incoming.get("birthDate")
    if old and new and old != new:
        return f"the stored patient with this BSN was born {old}, the message says {new}"
    return None
