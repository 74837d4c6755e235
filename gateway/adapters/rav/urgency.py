"""Ambulance urgency (A0/A1/A2/B) and NTS urgency (U0-U5), read from the gateway's own CodeSystems in
profiles/nictiz/urgency (the data, not a copy of it): a code -> the urgency Coding plus its v3-ActPriority and
request-priority equivalents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

URGENCY_DIR = Path(__file__).resolve().parents[3] / "profiles" / "nictiz" / "urgency"
AMBULANCE_URGENCY = "ambulance-urgency"
NTS_URGENCY = "nts-urgency"
ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"


@dataclass(frozen=True)
class Urgency:
    coding: dict[str, Any]
    act_priority: str  # v3-ActPriority code (Encounter.priority)
    request_priority: str  # request-priority code (ServiceRequest.priority)

    def encounter_priority(self) -> dict[str, Any]:
        return {"coding": [self.coding, {"system": ACT_PRIORITY, "code": self.act_priority}]}


@cache
def code_system(name: str) -> dict[str, Any]:
    return json.loads((URGENCY_DIR / f"CodeSystem-{name}.json").read_text(encoding="utf-8"))


def urgency(name: str, code: str) -> Urgency | None:
    """The urgency for `code` in CodeSystem `name`, None when the code is not in it."""
    system = code_system(name)
    for concept in system["concept"]:
        if concept["code"] == code.strip().upper():
            properties = {p["code"]: p["valueCode"] for p in concept.get("property", [])}
            coding = {"system": system["url"], "code": concept["code"], "display": concept["display"]}
            return Urgency(coding, properties["actPriority"], properties["requestPriority"])
    return None
