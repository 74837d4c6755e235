"""`$validate` (http://hl7.org/fhir/OperationDefinition/Resource-validate) as a pipeline Operation:

    POST [base]/$validate                 the body is the resource, or Parameters with `resource`
    POST [base]/[type]/$validate          the resource must be of that type
    POST [base]/[type]/[id]/$validate     mode=update (the body's id must match) or mode=delete (no body needed)

`profile` and `mode` come from the query or from the Parameters. The answer is always an OperationOutcome (200 when
the request itself made sense, whatever the verdict); nothing is written. The operation runs through the pipeline
like every interaction, so the scope, consent and audit stages see the request and its answer."""

from __future__ import annotations

from typing import Any

from gateway.fhir.context import RequestScope
from gateway.fhir.errors import FhirError
from gateway.fhir.interaction import Interaction, Result
from gateway.fhir.pipeline import Operation
from gateway.fhir.profile_validation import ProfileValidation
from gateway.fhir.write_checks import ID_PATTERN, check_id

NAME = "validate"
DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
MODES = ("create", "update", "delete", "profile")  # http://hl7.org/fhir/ValueSet/resource-validation-mode


def validate_operation(validation: ProfileValidation) -> Operation:
    def handler(scope: RequestScope, it: Interaction) -> Result:
        if it.method != "POST":
            raise FhirError(405, "not-supported", "$validate is invoked with POST (the resource in the body)")
        resource, mode, profiles = _arguments(it)
        if it.id is not None:
            check_id(it.id)
        if mode == "delete":
            return Result(200, resource=_delete_outcome(scope, it))
        if resource is None:
            raise FhirError(400, "required", "$validate needs a resource: the body, or the Parameters 'resource'")
        issues = _request_issues(it, resource, mode) + _unknown_profile_issues(validation, profiles)
        known = [url for url in profiles if validation.knows_profile(url)]
        outcome = validation.outcome(resource, known)
        if issues:
            outcome["issue"] = issues + [i for i in outcome["issue"] if i.get("details", {}).get("text") != "All OK"]
        return Result(200, resource=outcome)

    return Operation(
        name=NAME,
        handler=handler,
        definition=DEFINITION,
        levels=frozenset({"system", "type", "instance"}),
        documentation="Validate a resource against the base specification, the profiles in its meta.profile and "
        "the `profile` parameter; returns an OperationOutcome and writes nothing.",
    )


def _arguments(it: Interaction) -> tuple[dict[str, Any] | None, str | None, list[str]]:
    """(resource, mode, profiles) from the body (resource or Parameters) and the query."""
    body = it.body
    mode = _last([value for key, value in it.params if key == "mode"])
    profiles = [value for key, value in it.params if key == "profile" and value]
    resource = body
    if body is not None and body.get("resourceType") == "Parameters" and _is_operation_parameters(it, body):
        resource = None
        for parameter in body.get("parameter") or []:
            if not isinstance(parameter, dict):
                continue
            name = parameter.get("name")
            if name == "resource" and isinstance(parameter.get("resource"), dict):
                resource = parameter["resource"]
            elif name == "mode":
                mode = parameter.get("valueCode") or parameter.get("valueString") or mode
            elif name == "profile":
                value = parameter.get("valueUri") or parameter.get("valueCanonical") or parameter.get("valueString")
                if isinstance(value, str) and value:
                    profiles.append(value)
    if mode is not None and mode not in MODES:
        raise FhirError(400, "invalid", f"mode '{mode}' is not one of {', '.join(MODES)}")
    if mode in ("update", "delete") and it.id is None:
        raise FhirError(400, "invalid", f"mode={mode} is invoked on an instance: POST [base]/[type]/[id]/$validate")
    return resource, mode, profiles


def _is_operation_parameters(it: Interaction, body: dict[str, Any]) -> bool:
    """A Parameters body carries the operation's arguments — unless a Parameters resource itself is validated
    (`Parameters/$validate` without a `resource` parameter)."""
    names = {p.get("name") for p in body.get("parameter") or [] if isinstance(p, dict)}
    return it.resource_type != "Parameters" or "resource" in names


def _request_issues(it: Interaction, resource: dict[str, Any], mode: str | None) -> list[dict[str, Any]]:
    """The REST rules a create or update of this resource would meet (type of the URL, ids)."""
    issues = []
    resource_type = resource.get("resourceType")
    if it.resource_type and resource_type != it.resource_type:
        issues.append(_issue("error", "invalid", f"the resource is a {resource_type} but the URL is for "
                             f"{it.resource_type}", "resourceType"))
    body_id = resource.get("id")
    if mode == "update":
        if body_id is None:
            issues.append(_issue("error", "required", "an update must carry the id of the URL in the body",
                                 f"{resource_type}.id"))
        elif body_id != it.id:
            issues.append(_issue("error", "invalid", f"the body id '{body_id}' does not match the URL id '{it.id}'",
                                 f"{resource_type}.id"))
    if isinstance(body_id, str) and not ID_PATTERN.match(body_id):
        issues.append(_issue("error", "invalid", f"'{body_id}' is not a valid FHIR id ([A-Za-z0-9-.], 1-64 "
                             "characters)", f"{resource_type}.id"))
    return issues


def _unknown_profile_issues(validation: ProfileValidation, profiles: list[str]) -> list[dict[str, Any]]:
    """A profile asked for by name that the gateway has not loaded cannot be checked: that is an error here
    (a 'valid' verdict would be misleading), unlike a profile merely claimed in meta.profile."""
    return [
        _issue("error", "not-supported", f"the profile {url} is not loaded on this server, so the resource could "
               "not be validated against it", None)
        for url in profiles
        if not validation.knows_profile(url)
    ]


def _delete_outcome(scope: RequestScope, it: Interaction) -> dict[str, Any]:
    assert it.resource_type and it.id
    with scope.reading(snapshot=False) as connection:
        stored = scope.services.store.get(connection, it.resource_type, it.id)
    if stored is None or stored.deleted:
        raise FhirError(404, "not-found", f"{it.resource_type}/{it.id} is not known")
    text = f"{it.resource_type}/{it.id} can be deleted: no rule of this server prevents it"
    return {"resourceType": "OperationOutcome", "issue": [_issue("information", "informational", text, None)]}


def _issue(severity: str, code: str, text: str, expression: str | None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "details": {"text": text}}
    if expression:
        issue["expression"] = [expression]
    return issue


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None
