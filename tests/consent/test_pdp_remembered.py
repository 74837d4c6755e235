"""`decide_shape`, the decision remembered across requests, is `decide`: for any facts, request context, resource
shape and moments around every instant in the facts, it gives the decision a fresh `decide` gives at that moment."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.consent.conditions import CLOCK_SKEW, RequestTarget, instants
from gateway.consent.model import Contact, DisclosedResource, Effect, PatientFacts, Referral
from gateway.consent.pdp import decide, decide_request, decide_shape
from gateway.consent.policy import Policy
from tests.consent.builders import NOW, PATIENT, btg_request, consent, contact, facts, request, resource
from tests.consent.test_properties import SETTINGS, consent_records, requests, resources

MICROSECOND = timedelta(microseconds=1)
moments = st.integers(min_value=-80 * 60, max_value=80 * 60).map(lambda minutes: NOW + timedelta(minutes=minutes))

contacts = st.builds(
    lambda start, minutes, status, reference: Contact(
        reference, PATIENT, status, start, None if minutes is None else start + timedelta(minutes=minutes)
    ),
    moments,
    st.none() | st.integers(min_value=0, max_value=600),
    st.sampled_from(["in-progress", "finished", "cancelled", "planned"]),
    st.sampled_from(["Encounter/e1", "Encounter/other", "EpisodeOfCare/c1", "Task/t1"]),
)
consents_in_time = st.builds(
    lambda record, start, end: replace(record, start=start, end=end),
    consent_records | st.sampled_from([consent("permit"), consent("deny", "objection"), consent("deny", "mitz")]),
    st.none() | moments,
    st.none() | moments,
)
patient_facts = st.builds(
    lambda contacts, consents, error: PatientFacts(
        PATIENT, tuple(contacts), (Referral("Task/t", PATIENT, "requested", frozenset({"00001111"})),),
        tuple(consents), error,
    ),
    st.lists(contacts, max_size=3),
    st.lists(consents_in_time, max_size=3),
    st.sampled_from([None, None, "timeout"]),
)
requests_in_time = st.builds(
    lambda req, started: replace(req, btg_started_at=started) if started is not None else req,
    requests | st.just(btg_request()),
    st.none() | moments,
)


def _around(policy: Policy, record: PatientFacts, req: object) -> list[datetime]:
    """Moments on and next to every time the facts and the request name, shifted by every duration of the policy:
    found independently of `instants`, so an instant missing there shows as a different decision here."""
    times = [c.start for c in record.contacts] + [c.end for c in record.contacts]
    times += [r.start for r in record.consents] + [r.end for r in record.consents]
    times.append(getattr(req, "btg_started_at", None))
    params = policy.parameters
    shifts = [timedelta(0), CLOCK_SKEW, -CLOCK_SKEW, timedelta(hours=params.zcc_contact_window_hours),
              timedelta(hours=params.btg_time_box_hours)]
    return [t + shift + tick for t in times if t is not None for shift in shifts
            for tick in (-MICROSECOND, timedelta(0), MICROSECOND)]


@SETTINGS
@given(requests_in_time, resources, patient_facts, st.lists(moments, max_size=12))
def test_a_remembered_decision_is_the_decision_made_afresh(policy, req, res, record, later) -> None:  # type: ignore[no-untyped-def]
    known = {PATIENT: record}
    for now in [NOW, *later, *_around(policy, record, req)]:
        assert decide_shape(policy, req, res.shape, known, now) == decide(policy, req, res, known, now), now


def test_the_instants_are_where_a_contact_and_a_consent_start_and_end(policy: Policy) -> None:
    window = timedelta(hours=policy.parameters.zcc_contact_window_hours)
    seen = contact(hours_ago=2)
    given_consent = consent(start=NOW - timedelta(days=1), end=NOW + timedelta(days=1))
    assert instants(facts(contacts=[seen], consents=[given_consent]), request(), policy.parameters) == (
        NOW - timedelta(days=1), seen.start - CLOCK_SKEW, seen.start + window, NOW + timedelta(days=1)  # type: ignore[operator]
    )
    far = replace(seen, start=datetime.max.replace(tzinfo=NOW.tzinfo), end=None)
    assert instants(facts(contacts=[far]), request(), policy.parameters) == (far.start - CLOCK_SKEW,)  # type: ignore[operator]


def test_a_contact_window_ending_is_a_new_decision_for_the_same_request_and_facts(policy: Policy) -> None:
    window = timedelta(hours=policy.parameters.zcc_contact_window_hours)
    record = facts(contacts=[contact(hours_ago=1)])
    req, shape = request(), resource().shape
    assert decide_shape(policy, req, shape, {PATIENT: record}, NOW).effect is Effect.PERMIT
    assert decide_shape(policy, req, shape, {PATIENT: record}, NOW) is decide_shape(
        policy, req, shape, {PATIENT: record}, NOW + timedelta(minutes=5)
    )  # one decision, shared
    ended = NOW - timedelta(hours=1) + window + MICROSECOND
    assert decide_shape(policy, req, shape, {PATIENT: record}, ended).effect is Effect.DENY


def test_a_patient_without_fetched_facts_is_decided_afresh(policy: Policy) -> None:
    shape = resource().shape
    first = decide_shape(policy, request(), shape, {}, NOW)
    assert first == decide(policy, request(), DisclosedResource.from_shape(shape, None), {}, NOW)
    assert first.effect is Effect.DENY and first.patient == PATIENT


targets = st.builds(
    RequestTarget, st.sampled_from([None, "Patient", "Observation", "Consent", "AuditEvent"]), st.booleans(),
    st.booleans(), st.just(NOW),
)


@SETTINGS
@given(requests_in_time, targets, st.lists(moments, max_size=12))
def test_a_remembered_request_decision_is_the_one_made_afresh(policy, req, target, later) -> None:  # type: ignore[no-untyped-def]
    from gateway.consent.pdp import _decide_request

    for now in [NOW, *later, *_around(policy, facts(), req)]:
        at = replace(target, now=now)
        assert decide_request(policy, req, at) == _decide_request(policy, req, at), now
