"""`GET [base]/Patient/{id}/$explain-access` as a pipeline Operation (registered in gateway.app)."""

from __future__ import annotations

from gateway.consent.engine import DECISION_HEADER, STATE_RECORDS, ConsentEngine
from gateway.consent.explain import EXPLAIN_OPERATION, explain_access
from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation
from gateway.fhir.write_checks import check_id

DEFINITION = "http://zcc-gateway.nl/fhir/OperationDefinition/explain-access"


def explain_access_operation(engine: ConsentEngine) -> Operation:
    def handler(scope: RequestScope, it: Interaction) -> Result:
        if it.method != "GET" or not it.id:
            raise FhirError(405, "not-supported", "$explain-access is GET [base]/Patient/{id}/$explain-access")
        check_id(it.id)
        ctx = engine.context(scope.state, scope.identity, it.headers, it.kind)
        with scope.reading() as connection:
            facts = engine.facts(scope.state, connection, [it.id])
        decision, parameters = explain_access(engine.policy, ctx, it.id, facts[it.id], engine.clock())
        record = scope.state.get(STATE_RECORDS, {}).get(id(it))
        if record is not None:
            record.decisions.append((f"Patient/{it.id}", decision))
        return Result(200, resource=parameters, headers={DECISION_HEADER: engine.decision_id(scope.state)})

    return Operation(
        name=EXPLAIN_OPERATION,
        handler=handler,
        definition=DEFINITION,
        levels=frozenset({"instance"}),
        resource_types=frozenset({"Patient"}),
        documentation="Which consent rule decides for this client and patient, and why (nl/en).",
    )
