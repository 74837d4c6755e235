"""The registry reads the core SearchParameters and answers per resource type."""

from __future__ import annotations

from gateway.search.definitions import SearchParameterRegistry


def test_patient_parameters_come_from_the_package(registry: SearchParameterRegistry) -> None:
    params = registry.params_for("Patient")
    assert params["name"].type == "string"
    assert params["name"].url == "http://hl7.org/fhir/SearchParameter/Patient-name"
    assert params["birthdate"].type == "date"
    assert params["general-practitioner"].type == "reference"
    assert params["general-practitioner"].targets == {"Organization", "Practitioner", "PractitionerRole"}
    assert params["identifier"].modifiers >= {"not", "text", "missing", "of-type"}
    assert all(
        param.supported
        for param in params.values()
        if param.type in {"token", "string", "date"} and param.expression
    )
    assert not params["_content"].supported  # a string parameter without expression (full text)


def test_common_parameters(registry: SearchParameterRegistry) -> None:
    params = registry.params_for("Observation")
    assert params["_id"].column == "id" and params["_id"].extractor is None
    assert params["_lastUpdated"].column == "last_updated" and params["_lastUpdated"].type == "date"
    assert (params["_profile"].type, params["_tag"].type, params["_security"].type) == (
        "uri",
        "token",
        "token",
    )
    assert params["_source"].type == "uri" and params["_source"].indexed
    assert "_text" in params and not params["_text"].supported  # special
    system = registry.params_for(None)
    assert {"_id", "_lastUpdated", "_tag", "_profile"} <= set(system)
    assert "name" not in system
    assert "_text" not in registry.params_for("Bundle")  # DomainResource parameters skip Bundle


def test_composite_and_special_are_reported_unsupported(registry: SearchParameterRegistry) -> None:
    unsupported = registry.unsupported_params("Observation")
    assert "code-value-quantity" in unsupported
    assert "near" in registry.unsupported_params("Location")
    names = {entry["name"] for entry in registry.capability_params("Observation")}
    assert "code-value-quantity" not in names and "code" in names and "_lastUpdated" in names


def test_capability_entries_carry_definition_and_documentation(registry: SearchParameterRegistry) -> None:
    entries = {entry["name"]: entry for entry in registry.capability_params("Patient")}
    assert entries["gender"]["definition"] == "http://hl7.org/fhir/SearchParameter/individual-gender"
    assert entries["gender"]["type"] == "token"
    assert "gender" in entries["gender"]["documentation"].lower()
    assert [e["name"] for e in registry.capability_params(None)] == sorted(
        e["name"] for e in registry.capability_params(None)
    )


def test_include_and_revinclude_names(registry: SearchParameterRegistry) -> None:
    assert "Observation:subject" in registry.include_names("Observation")
    assert "Observation:code" not in registry.include_names("Observation")
    revincludes = registry.revinclude_names("Patient")
    assert {"Observation:subject", "Provenance:target", "Encounter:patient"} <= set(revincludes)
    assert "Observation:subject" not in registry.revinclude_names("Medication")


def test_every_resource_type_compiles(registry: SearchParameterRegistry) -> None:
    for resource_type in registry.resource_types:
        for param in registry.indexed_params(resource_type):
            assert param.extractor is not None and param.extractor.hand_compiled, (resource_type, param.code)
