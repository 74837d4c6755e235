"""ConsentEngine.context: a request context is made from the identity and the consent headers once and then
remembered, but never handed to another identity or to a request whose consent headers say something else."""

from __future__ import annotations

from gateway.consent.engine import ConsentEngine
from gateway.consent.model import Flow
from gateway.consent.request import request_context
from tests.consent.fakes import triagist


def test_the_same_identity_and_headers_get_the_remembered_context(engine: ConsentEngine) -> None:
    identity = triagist()
    headers = {"x-zcc-contact": "Encounter/e1"}
    first = engine.context({}, identity, headers, "read")
    assert engine.context({}, identity, dict(headers), "read") is first
    assert first == request_context(identity, headers, "read", engine.policy.parameters)


def test_each_consent_header_and_the_interaction_kind_make_a_context_of_their_own(engine: ConsentEngine) -> None:
    identity = triagist()
    plain = engine.context({}, identity, {}, "read")
    assert engine.context({}, identity, {"x-zcc-contact": "Encounter/e9"}, "read").contact_reference == "Encounter/e9"
    assert engine.context({}, identity, {"x-zcc-flow": "holder"}, "read").flow is Flow.HOLDER
    emergency = engine.context({}, identity, {"x-zcc-emergency": "true", "x-zcc-emergency-reason": "collapse"},
                               "read")
    assert (emergency.emergency, emergency.emergency_reason) == (True, "collapse")
    assert engine.context({}, identity, {"x-zcc-patient-unable-to-consent": "true"},
                          "read").patient_unable_to_consent
    assert engine.context({}, identity, {}, "search-type").interaction == "search-type"
    assert engine.context({}, identity, {}, "read") is plain
    assert engine.context({}, identity, {"accept": "application/fhir+json"}, "read") is plain  # not a consent header


def test_another_identity_never_gets_a_remembered_context(engine: ConsentEngine) -> None:
    first = engine.context({}, triagist(user_id="u1"), {}, "read")
    assert first.user_id == "u1"
    for n in range(50):  # new identity objects, some of which may reuse a freed object's id
        other = triagist(user_id=f"u{n + 2}")
        assert engine.context({}, other, {}, "read").user_id == f"u{n + 2}"
