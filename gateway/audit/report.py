"""The patient access overview (Wabvpz 15d/15e): who looked at the patient's data, from which organisation,
when and why — readable for the patient, built from the patient's AuditEvents (never from the data itself)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.audit.codes import URA_SYSTEM


@dataclass(frozen=True)
class AccessLine:
    when: str
    who: str
    organisation: str
    action: str
    why: str
    outcome: str


_ACTIONS = {"R": "read", "E": "searched / consulted", "C": "added", "U": "changed", "D": "deleted"}


def access_lines(events: Iterable[dict[str, Any]]) -> list[AccessLine]:
    lines = []
    for event in events:
        if "AuthZconsent" in str(event.get("meta", {}).get("profile", "")):
            continue  # the decision belongs to the access line it accompanies
        user = next((a for a in event.get("agent", []) if a.get("requestor")), {})
        organisation = next(
            (
                a["who"]["identifier"]["value"]
                for a in event.get("agent", [])
                if a.get("who", {}).get("identifier", {}).get("system") == URA_SYSTEM
            ),
            "unknown",
        )
        purpose = ", ".join(c["code"] for p in event.get("purposeOfEvent", []) for c in p.get("coding", []))
        lines.append(
            AccessLine(
                when=str(event.get("recorded", "")),
                who=str(user.get("who", {}).get("identifier", {}).get("value", "unknown")),
                organisation=f"URA {organisation}",
                action=_ACTIONS.get(str(event.get("action")), str(event.get("action"))),
                why=purpose or "unknown",
                outcome="allowed" if event.get("outcome") == "0" else "refused",
            )
        )
    return lines


def render_report(patient_label: str, events: Iterable[dict[str, Any]]) -> str:
    lines = access_lines(events)
    out = [f"Access overview for {patient_label}", ""]
    if not lines:
        out.append("No recorded access.")
    for line in lines:
        out.append(
            f"{line.when}  {line.organisation:<14} {line.who:<24} {line.action:<22} "
            f"purpose {line.why:<7} {line.outcome}"
        )
    return "\n".join(out)


def decoded_query(event: dict[str, Any]) -> str | None:
    """The raw query of a PatientQuery event (for the privacy officer)."""
    for entity in event.get("entity", []):
        if entity.get("role", {}).get("code") == "24" and entity.get("query"):
            return base64.b64decode(entity["query"]).decode("utf-8")
    return None
