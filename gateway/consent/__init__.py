"""Policy decision point: may this resource leave the gateway, to this client, now? (pure, data-driven).

Public API:
- `load_policy()` / `Policy`: the versioned rules (`policy.json`);
- `decide_request`, `decide`, `decide_for_patient`: first-match, default-deny decisions;
- `Decision`, `Effect`, `RequestContext`, `DisclosedResource`, `PatientFacts`: the vocabulary;
- `parse_consent`, `verdict`: FHIR Consent handling (Mitz semantics, precedence);
- `ConsentEngine`, `ConsentStage`, `explain_access_operation`: the FHIR-layer adapters (imported lazily by
  gateway.app, so the pure parts stay importable without the web stack).
"""

from gateway.consent.consents import parse_consent, verdict
from gateway.consent.model import Decision, DisclosedResource, Effect, Flow, PatientFacts, RequestContext
from gateway.consent.pdp import decide, decide_for_patient, decide_request
from gateway.consent.policy import Policy, PolicyError, load_policy

__all__ = [
    "Decision",
    "DisclosedResource",
    "Effect",
    "Flow",
    "PatientFacts",
    "Policy",
    "PolicyError",
    "RequestContext",
    "decide",
    "decide_for_patient",
    "decide_request",
    "load_policy",
    "parse_consent",
    "verdict",
]
