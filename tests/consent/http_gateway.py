"""A real gateway (consent ON, audit ON) driven over HTTP in-process, with real SMART backend-services tokens
for clients of several organisations and roles, and a small patient population:

- pa: active zcc contact (Encounter/ea); oa1 (plain), oa2 (ggz label R), oab (about pa *and* pb), ca (problem)
- pb: no contact; ob1.   pb2: its own active contact (Encounter/eb2); ob2.
- pc: active contact and a recorded refusal (objection covering every purpose); cc.
- pd: an ad-hoc consent that expired; od1 (held by a HAP).   pe: a valid ad-hoc consent; oe1 (held by a HAP).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.app import build_services, create_app
from gateway.audit.schema import audit_event
from gateway.auth.clients import ClientRegistration, ClientRegistry
from gateway.auth.demo import ClientKey, fetch_token
from gateway.settings import Settings

BASE = "http://testserver/fhir"
BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
ORG_TYPE = "http://nictiz.nl/fhir/NamingSystem/organization-type"
CONSENT_KIND = "http://zcc-gateway.nl/fhir/CodeSystem/consent-kind"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
BSN_A = "999911120"


@dataclass(frozen=True)
class Caller:
    client_id: str
    ura: str
    organization_type: str
    roles: tuple[str, ...]


TRIAGE = Caller("zcc-triage", "00001111", "N6", ("triagist",))
AMBULANCE = Caller("rav-ambulance", "00003333", "AMB", ("ambulance-nurse",))
ADMIN = Caller("zcc-admin", "00009999", "Z33", ("admin",))
PRIVACY = Caller("privacy-office", "00008888", "Z33", ("privacy-officer",))
CALLERS = (TRIAGE, AMBULANCE, ADMIN, PRIVACY)


def instant(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat(timespec="seconds")


def observation(rid: str, patient: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": f"Patient/{patient}"},
        **extra,
    }


def encounter(rid: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": rid,
        "status": "in-progress",
        "class": {"code": "EMER"},
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": instant(-1)},
    }


def privacy_consent(rid: str, patient: str, provision: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "id": rid,
        "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": provision,
        **extra,
    }


def adhoc_consent(rid: str, patient: str, start: str, end: str) -> dict[str, Any]:
    actors = [
        {"role": {"coding": [{"system": PARTICIPATION, "code": "CST"}]},
         "reference": {"identifier": {"system": ORG_TYPE, "value": "N6"}}},
        {"role": {"coding": [{"system": PARTICIPATION, "code": "IRCP"}]},
         "reference": {"identifier": {"system": ORG_TYPE, "value": "AMB"}}},
    ]
    consent = privacy_consent(rid, patient, {"type": "permit", "actor": actors, "period": {"start": start, "end": end}},
                              verification=[{"verified": True, "verifiedWith": {"reference": "Practitioner/v1"}}])
    consent["category"].append({"coding": [{"system": CONSENT_KIND, "code": "adhoc"}]})
    return consent


HELD_BY_HAP = {"tag": [{"system": ORG_TYPE, "code": "N6"}]}


def population() -> list[dict[str, Any]]:
    ggz = {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]}
    return [
        {"resourceType": "Patient", "id": "pa", "identifier": [{"system": BSN, "value": BSN_A}]},
        {"resourceType": "Patient", "id": "pb"},
        {"resourceType": "Patient", "id": "pb2"},
        {"resourceType": "Patient", "id": "pc"},
        {"resourceType": "Patient", "id": "pd"},
        {"resourceType": "Patient", "id": "pe"},
        encounter("ea", "pa"),
        encounter("eb2", "pb2"),
        encounter("ec", "pc"),
        observation("oa1", "pa", "pulse-of-a"),
        observation("oa2", "pa", "ggz-note-of-a", meta=ggz),
        observation("oab", "pa", "shared-a-b", performer=[{"reference": "Patient/pb"}]),
        observation("ob1", "pb", "secret-of-b"),
        observation("ob2", "pb2", "secret-of-b2"),
        observation("od1", "pd", "held-for-d", meta=HELD_BY_HAP),
        observation("oe1", "pe", "held-for-e", meta=HELD_BY_HAP),
        {"resourceType": "Condition", "id": "ca", "subject": {"reference": "Patient/pa"},
         "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "asthma"}},
        {"resourceType": "Condition", "id": "cc", "subject": {"reference": "Patient/pc"},
         "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "copd"}},
        privacy_consent("refusal-c", "pc", {"type": "deny"}),
        adhoc_consent("adhoc-d", "pd", instant(-80), instant(-10)),
        adhoc_consent("adhoc-e", "pe", instant(-2), instant(46)),
    ]


class Gateway:
    """The app, its services and a token per (caller, role, purpose)."""

    def __init__(self, client: TestClient, services: Any, keys: dict[str, ClientKey]) -> None:
        self.client, self.services, self.keys = client, services, keys
        self._tokens: dict[tuple[str, str, str], str] = {}

    def headers(self, caller: Caller, purpose: str = "TREAT", role: str | None = None, **extra: str) -> dict[str, str]:
        role = role or caller.roles[0]
        key = (caller.client_id, role, purpose)
        if key not in self._tokens:
            token_url = self.client.get("/.well-known/smart-configuration").json()["token_endpoint"]
            claims = {"subject_role": role, "purpose_of_use": purpose}
            response = fetch_token(token_url, caller.client_id, self.keys[caller.client_id], "system/*.cruds",
                                   claims=claims, client=self.client)
            self._tokens[key] = response["access_token"]
        headers = {"Authorization": f"Bearer {self._tokens[key]}", "Accept": "application/fhir+json"}
        return {**headers, **extra}

    def get(self, path: str, caller: Caller = TRIAGE, purpose: str = "TREAT", **extra: str) -> Any:
        return self.client.get(f"/fhir/{path}", headers=self.headers(caller, purpose, **extra))

    def events(self, decision_id: str) -> list[dict[str, Any]]:
        """The AuditEvents recorded under one decision id (the response's X-Zcc-Decision-Id)."""
        with self.services.store.read() as connection:
            bodies = [json.loads(row.body) for row in connection.execute(select(audit_event.c.body))]
        return [event for event in bodies if decision_id in json.dumps(event)]


def build_gateway(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    keys_dir = tmp_path_factory.mktemp("keys")
    monkeypatch.setenv("ZCC_AUTH_KEY_DIR", str(keys_dir))
    monkeypatch.setenv("ZCC_AUDIT_KEY_DIR", str(keys_dir))
    database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
    services = build_services(Settings(database_url=database, base_url=BASE, consent=True, audit=True))
    with services.store.write() as connection:
        for body in population():
            services.store.save(connection, body, body["id"])
    registry = ClientRegistry(services.store.engine)
    keys = {}
    for caller in CALLERS:
        keys[caller.client_id] = key = ClientKey.generate("EC")
        registry.add(
            ClientRegistration(caller.client_id, caller.ura, caller.organization_type, "system/*.cruds",
                               caller.roles, ("TREAT", "BTG"), jwks=key.public_jwks()),
            actor="tests",
        )
    app = create_app(services=services)
    with TestClient(app) as client:
        yield Gateway(client, services, keys)


def detail(event: dict[str, Any], name: str) -> list[str]:
    return [d["valueString"] for e in event.get("entity", []) for d in e.get("detail", []) if d.get("type") == name]


def decisions(events: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(patient reference, rule, effect) of every AuthZconsent event."""
    found = set()
    for event in events:
        if "AuthZconsent" not in str(event.get("meta", {}).get("profile")):
            continue
        patient = next((e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == "1"), "")
        found.add((patient, detail(event, "rule")[0], detail(event, "effect")[0]))
    return found


def interaction(events: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = [e for e in events if "AuthZconsent" not in str(e.get("meta", {}).get("profile"))]
    return found
