"""Parsing search requests: values per type, modifiers, chains, result parameters and errors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.search.definitions import SearchParameterRegistry
from gateway.search.query import (
    MAX_COUNT,
    DateValue,
    Include,
    MissingValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    SearchQuery,
    StringValue,
    TokenValue,
    parse_search,
    split_unescaped,
    unescape,
)


def parse(
    registry: SearchParameterRegistry, resource_type: str | None, *params: tuple[str, str]
) -> SearchQuery:
    return parse_search(resource_type, list(params), registry)


def ok(registry: SearchParameterRegistry, resource_type: str | None, *params: tuple[str, str]) -> SearchQuery:
    query = parse(registry, resource_type, *params)
    assert query.errors == []
    return query


def test_token_forms(registry: SearchParameterRegistry) -> None:
    query = ok(registry, "Patient", ("identifier", "http://s|1,|2,http://s|,3"))
    assert [v.value for v in query.filters[0].values] == [
        TokenValue("http://s", "1", True),
        TokenValue(None, "2", True),
        TokenValue("http://s", None, True),
        TokenValue(None, "3", False),
    ]
    text = ok(registry, "Observation", ("code:text", "Bloed Druk")).filters[0]
    assert text.values[0].value == TokenValue(None, None, text="bloed druk")
    of_type = ok(registry, "Patient", ("identifier:of-type", "http://t|MR|123")).filters[0]
    assert of_type.index_param == "identifier:of-type"
    assert of_type.values[0].value == TokenValue("http://t", "MR|123", True)


def test_escaping_of_comma_pipe_and_dollar(registry: SearchParameterRegistry) -> None:
    query = ok(registry, "Patient", ("name", r"a\,b,c\$d"), ("identifier", r"http://s|x\|y"))
    assert [v.value.text for v in query.filters[0].values] == ["a,b", "c$d"]
    assert query.filters[1].values[0].value == TokenValue("http://s", "x|y", True)


def test_prefixes_for_ordered_types_only(registry: SearchParameterRegistry) -> None:
    query = ok(registry, "Patient", ("birthdate", "ge1980"), ("birthdate", "lt1990-06"), ("name", "ge"))
    assert [(v.prefix, v.value) for f in query.filters[:2] for v in f.values] == [
        ("ge", DateValue("1980-01-01T00:00:00.000000", "1980-12-31T23:59:59.999999")),
        ("lt", DateValue("1990-06-01T00:00:00.000000", "1990-06-30T23:59:59.999999")),
    ]
    assert query.filters[2].values[0] == query.filters[2].values[0].__class__("eq", StringValue("ge", "ge"))
    quantity = ok(registry, "Observation", ("value-quantity", "ap5.4|http://unitsofmeasure.org|mg")).filters[
        0
    ]
    assert quantity.values[0].prefix == "ap"
    assert quantity.values[0].value == QuantityValue(
        NumberValue(5.4, 5.35, 5.45), "http://unitsofmeasure.org", "mg"
    )
    number = ok(registry, "RiskAssessment", ("probability", "-0.5")).filters[0]
    assert number.values[0].prefix == "eq" and number.values[0].value.value == -0.5


def test_date_with_unencoded_plus_zone(registry: SearchParameterRegistry) -> None:
    query = ok(registry, "Observation", ("date", "2020-01-01T10:00:00 01:00"))
    assert query.filters[0].values[0].value == DateValue(
        "2020-01-01T09:00:00.000000", "2020-01-01T09:00:00.999999"
    )


def test_references_and_modifiers(registry: SearchParameterRegistry) -> None:
    query = ok(
        registry,
        "Observation",
        ("subject", "Patient/1"),
        ("subject:Patient", "2"),
        ("subject", "3"),
        ("subject", "http://x.org/fhir/Patient/4"),
        ("subject:identifier", "http://bsn|999"),
        ("subject:missing", "true"),
    )
    values = [f.values[0].value for f in query.filters]
    assert values[:4] == [
        ReferenceValue("Patient", "1", None),
        ReferenceValue("Patient", "2", None),
        ReferenceValue(None, "3", None),
        ReferenceValue(None, None, "http://x.org/fhir/Patient/4"),
    ]
    assert values[4] == TokenValue("http://bsn", "999", True)
    assert query.filters[4].index_param == "subject:identifier"
    assert values[5] == MissingValue(True)
    canonical = ok(registry, "QuestionnaireResponse", ("questionnaire", "http://q.org/Questionnaire/a|1.0"))
    assert canonical.filters[0].values[0].value == ReferenceValue(None, None, "http://q.org/Questionnaire/a")


def test_chained_parameters(registry: SearchParameterRegistry) -> None:
    query = ok(registry, "Observation", ("subject:Patient.name", "peter"))
    (chain,) = query.filters[0].chain
    assert chain[0] == "Patient" and chain[1].param.code == "name"
    assert chain[1].values[0].value == StringValue("peter", "peter")
    any_target = ok(registry, "Observation", ("subject.identifier", "http://s|1")).filters[0]
    assert {target for target, _ in any_target.chain} == {"Patient", "Group", "Device", "Location"}
    schedule = ok(registry, "Slot", ("schedule.actor", "Location/x")).filters[0]
    assert schedule.chain[0][1].values[0].value == ReferenceValue("Location", "x", None)
    (two_levels,) = ok(registry, "Observation", ("subject:Patient.organization.name", "x")).filters[0].chain
    assert two_levels[0] == "Patient" and two_levels[1].chain[0][0] == "Organization"
    assert two_levels[1].chain[0][1].param.code == "name"
    too_deep = parse(registry, "Observation", ("subject:Patient.organization.partof.partof.name", "x"))
    assert too_deep.errors[0].param == "subject:Patient.organization.partof.partof.name"
    assert too_deep.errors[0].ignorable


def test_result_parameters(registry: SearchParameterRegistry) -> None:
    query = ok(
        registry,
        "Observation",
        ("_count", "5000"),
        ("_sort", "-date,code,_id"),
        ("_summary", "count"),
        ("_elements", "id,code"),
        ("_total", "accurate"),
        ("_offset", "20"),
        ("_format", "json"),
        ("_pretty", "true"),
        ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_revinclude", "Provenance:target"),
    )
    assert query.count == MAX_COUNT and query.offset == 20
    assert [(k.param.code, k.descending) for k in query.sort] == [
        ("date", True),
        ("code", False),
        ("_id", False),
    ]
    assert (query.summary, query.elements, query.total) == ("count", ["id", "code"], "accurate")
    assert query.includes == [
        Include("Observation", "subject", "Patient", False),
        Include("Patient", "general-practitioner", None, True),
    ]
    assert query.revincludes == [Include("Provenance", "target", None, False)]
    assert query.filters == []
    assert ok(registry, "Patient").count is None and ok(registry, "Patient").page_size == 50


def test_errors_name_the_parameter(registry: SearchParameterRegistry) -> None:
    query = parse(
        registry,
        "Patient",
        ("birthdate", "notadate"),
        ("_count", "abc"),
        ("foo", "1"),
        ("name:exactly", "x"),
        ("gender:missing", "maybe"),
        ("_summary", "all"),
        ("_include", "Patient:name"),
        ("_sort", "nope"),
        ("birthdate", "ge"),
    )
    by_param = {error.param: error for error in query.errors}
    assert set(by_param) == {
        "birthdate",
        "_count",
        "foo",
        "name:exactly",
        "gender:missing",
        "_summary",
        "_include",
        "_sort",
    }
    assert not by_param["_count"].ignorable and by_param["_count"].code == "invalid"
    assert "notadate" in query.errors[0].message and query.errors[0].param == "birthdate"
    assert by_param["foo"].ignorable and by_param["foo"].code == "not-supported"
    assert by_param["name:exactly"].ignorable
    assert not by_param["gender:missing"].ignorable
    assert len(query.errors) == 9


def test_unsupported_types_and_unknown_resource_type(registry: SearchParameterRegistry) -> None:
    composite = parse(registry, "Observation", ("code-value-quantity", "http://loinc.org|1$gt5"))
    assert composite.errors[0].code == "not-supported" and composite.errors[0].ignorable
    assert parse(registry, "Nonsense").errors[0].code == "not-found"
    system = ok(registry, None, ("_lastUpdated", "gt2020"), ("_type", "Patient,Observation"))
    assert system.types == ["Patient", "Observation"]
    assert parse(registry, None, ("name", "x")).errors[0].param == "name"


@given(st.lists(st.text(alphabet="ab,|$\\", max_size=6), min_size=1, max_size=4))
def test_escaped_values_round_trip(parts: list[str]) -> None:
    escaped = ",".join(
        part.replace("\\", "\\\\").replace(",", "\\,").replace("$", "\\$").replace("|", "\\|")
        for part in parts
    )
    assert [unescape(piece) for piece in split_unescaped(escaped, ",")] == parts
