"""One Provenance per ingestion: every resource written is a target, the sending organisation the agent,
the message the source entity, the time received the recorded time."""

from __future__ import annotations

import re
from typing import Any

_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
PROVENANCE_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def ingestion_provenance(targets: list[str], received_at: str, sender: dict[str, Any] | None,
                         sender_name: str | None, message_id: str | None, record_url: str) -> dict[str, Any]:
    """`targets` are `Type/id` references; `sender` an Identifier (URA/AGB) or a reference dict."""
    who: dict[str, Any] = {"type": "Organization"}
    if sender and "reference" in sender:
        who = dict(sender)
    elif sender:
        who["identifier"] = sender
    if sender_name:
        who["display"] = sender_name
    if len(who) == 1:
        who["display"] = "unknown sender"
    what: dict[str, Any] = {"display": f"ingested message {record_url}"}
    if message_id:
        root, _, extension = message_id.partition("|")
        system = f"urn:oid:{root}" if _OID.fullmatch(root) else root  # HL7v3 roots are OIDs, others URIs
        what["identifier"] = {"system": system, "value": extension} if extension else {
            "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}"}
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target} for target in targets],
        "recorded": received_at,
        "agent": [{
            "type": {"coding": [{"system": PROVENANCE_AGENT_TYPE, "code": "author", "display": "Author"}]},
            "who": who,
        }],
        "entity": [{"role": "source", "what": what}],
    }
