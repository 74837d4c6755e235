"""Index rows per data type (R4 search rules) and the implicit ranges of dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gateway.search.dates import MAX_DATE, MIN_DATE, date_range
from gateway.search.definitions import SearchParameterRegistry
from gateway.search.extract import extract_index_rows, parse_reference

# the URL exactly as the core SearchParameter `mothersMaidenName` expression names it
MAIDEN_NAME_URL = "http://hl7.org/fhir/StructureDefinition/patient-extensions-Patient-mothersMaidenName"


def rows_for(registry: SearchParameterRegistry, resource: dict, kind: str, param: str) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k not in {"param", "source_type"}}
        for row in extract_index_rows(resource, registry)[kind]
        if row["param"] == param
    ]


def test_human_name_and_address_index_every_part(registry: SearchParameterRegistry) -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Müller", "given": ["Ánna", "B"], "text": "Ánna Müller"}],
        "address": [{"line": ["Dorpsstraat 1"], "city": "’s-Hertogenbosch", "postalCode": "5211 AA"}],
    }
    names = rows_for(registry, patient, "string", "name")
    assert {"value": "muller", "exact": "Müller"} in names
    assert {"value": "anna", "exact": "Ánna"} in names
    assert {"value": "anna muller", "exact": "Ánna Müller"} in names
    assert len(names) == 4
    assert {row["value"] for row in rows_for(registry, patient, "string", "address")} == {
        "dorpsstraat 1",
        "’s-hertogenbosch",
        "5211 aa",
    }
    assert rows_for(registry, patient, "string", "family") == [{"value": "muller", "exact": "Müller"}]


def test_tokens_from_codeable_concept_identifier_contact_point_and_primitives(
    registry: SearchParameterRegistry,
) -> None:
    patient = {
        "resourceType": "Patient",
        "gender": "female",
        "active": True,
        "identifier": [
            {
                "system": "http://fhir.nl/fhir/NamingSystem/bsn",
                "value": "999911120",
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}],
                    "text": "BSN",
                },
            }
        ],
        "telecom": [{"system": "email", "value": "a@example.org"}, {"use": "home"}],
        "maritalStatus": {
            "coding": [{"system": "http://s", "code": "M", "display": "Married"}],
            "text": "Getrouwd",
        },
    }
    assert rows_for(registry, patient, "token", "gender") == [
        {"system": None, "code": "female", "text": None}
    ]
    assert rows_for(registry, patient, "token", "active") == [{"system": None, "code": "true", "text": None}]
    assert rows_for(registry, patient, "token", "identifier") == [
        {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "code": "999911120", "text": "bsn"}
    ]
    assert rows_for(registry, patient, "token", "identifier:of-type") == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI|999911120", "text": None}
    ]
    assert rows_for(registry, patient, "token", "email") == [
        {"system": "email", "code": "a@example.org", "text": None}
    ]
    assert rows_for(registry, patient, "token", "telecom") == [
        {"system": "email", "code": "a@example.org", "text": None}
    ]  # the use-only ContactPoint gives nothing
    assert rows_for(registry, patient, "token", "deceased") == [
        {"system": None, "code": "false", "text": None}
    ]
    observation = {"resourceType": "Observation", "code": patient["maritalStatus"]}
    assert rows_for(registry, observation, "token", "code") == [
        {"system": "http://s", "code": "M", "text": "married"},
        {"system": None, "code": None, "text": "getrouwd"},
    ]


def test_references_relative_absolute_canonical_and_identifier(registry: SearchParameterRegistry) -> None:
    observation = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/p1/_history/3"},
        "performer": [
            {"reference": "https://other.example/fhir/Practitioner/9"},
            {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "value": "123"}},
            {"reference": "#contained"},
        ],
    }
    assert rows_for(registry, observation, "reference", "subject") == [
        {"target_type": "Patient", "target_id": "p1", "url": None}
    ]
    assert rows_for(registry, observation, "reference", "patient") == [
        {"target_type": "Patient", "target_id": "p1", "url": None}
    ]
    assert rows_for(registry, observation, "reference", "performer") == [
        {"target_type": None, "target_id": None, "url": "https://other.example/fhir/Practitioner/9"}
    ]
    assert rows_for(registry, observation, "token", "performer:identifier") == [
        {"system": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers", "code": "123", "text": None}
    ]
    questionnaire_response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": "http://example.org/Questionnaire/q|2.0",
    }
    assert rows_for(registry, questionnaire_response, "reference", "questionnaire") == [
        {"target_type": None, "target_id": None, "url": "http://example.org/Questionnaire/q"}
    ]
    # every reference row names the referencing type (the consent facts query seeks contacts and Consents by it)
    assert {row["source_type"] for row in extract_index_rows(observation, registry)["reference"]} == {"Observation"}
    assert "source_type" not in extract_index_rows(observation, registry)["token"][0]
    assert parse_reference("Patient/x") == ("Patient", "x")
    assert parse_reference("urn:uuid:1234") is None
    assert parse_reference("Patient") is None


def test_dates_periods_and_timing(registry: SearchParameterRegistry) -> None:
    encounter = {"resourceType": "Encounter", "period": {"start": "2020-03-01T10:00:00+01:00"}}
    assert rows_for(registry, encounter, "date", "date") == [
        {"low": "2020-03-01T09:00:00.000000", "high": MAX_DATE}
    ]
    encounter["period"] = {"end": "2020-03"}
    assert rows_for(registry, encounter, "date", "date") == [
        {"low": MIN_DATE, "high": "2020-03-31T23:59:59.999999"}
    ]
    request = {
        "resourceType": "MedicationRequest",
        "dosageInstruction": [{"timing": {"event": ["2021-01-01", "2021-01-02T08:00:00Z"]}}],
    }
    assert rows_for(registry, {"resourceType": "Patient", "birthDate": "1980"}, "date", "birthdate") == [
        {"low": "1980-01-01T00:00:00.000000", "high": "1980-12-31T23:59:59.999999"}
    ]
    observation = {
        "resourceType": "Observation",
        "effectiveTiming": request["dosageInstruction"][0]["timing"],
    }
    assert rows_for(registry, observation, "date", "date") == [
        {"low": "2021-01-01T00:00:00.000000", "high": "2021-01-01T23:59:59.999999"},
        {"low": "2021-01-02T08:00:00.000000", "high": "2021-01-02T08:00:00.999999"},
    ]


def test_numbers_and_quantities_carry_their_precision(registry: SearchParameterRegistry, packages) -> None:
    from conformance import fhirjson

    observation = fhirjson.loads(
        b'{"resourceType": "Observation", "valueQuantity": {"value": 1.50, '
        b'"system": "http://unitsofmeasure.org", "code": "mmol/L", "unit": "mmol/l"}}'
    )
    (row,) = rows_for(registry, observation, "quantity", "value-quantity")
    assert row == {
        "value": 1.5,
        "low": 1.495,
        "high": 1.505,
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
        "unit": "mmol/l",
    }
    assessment = fhirjson.loads(
        b'{"resourceType": "RiskAssessment", "prediction": [{"probabilityDecimal": 0.02}]}'
    )
    assert rows_for(registry, assessment, "number", "probability") == [
        {"value": 0.02, "low": 0.015, "high": 0.025}
    ]


def test_extension_values_and_uris(registry: SearchParameterRegistry) -> None:
    patient = {
        "resourceType": "Patient",
        "meta": {
            "profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"],
            "tag": [{"system": "http://t", "code": "x"}],
            "source": "#hap",
        },
        "extension": [{"url": MAIDEN_NAME_URL, "valueString": "Jansen"}],
    }
    assert rows_for(registry, patient, "uri", "_profile") == [
        {"value": "http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"}
    ]
    assert rows_for(registry, patient, "token", "_tag") == [{"system": "http://t", "code": "x", "text": None}]
    assert rows_for(registry, patient, "uri", "_source") == [{"value": "#hap"}]
    assert rows_for(registry, patient, "string", "mothersMaidenName") == [
        {"value": "jansen", "exact": "Jansen"}
    ]


def test_all_core_examples_index_without_errors(registry: SearchParameterRegistry, packages) -> None:
    total = 0
    for _, resource in packages.examples():
        tables = extract_index_rows(resource, registry)
        total += sum(len(rows) for rows in tables.values())
        for row in tables["date"]:
            assert len(row["low"]) == len(row["high"]) == 26 and row["low"] <= row["high"]
    assert total > 5000


# -- hypothesis: implicit date ranges -----

_instants = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2100, 12, 31))
_zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)


@given(_instants, st.sampled_from(["year", "month", "day", "minute", "second", "milli", "micro"]), _zones)
def test_a_date_lies_inside_its_range_of_exactly_its_precision(
    moment: datetime, precision: str, zone
) -> None:
    formats = {
        "year": "%Y",
        "month": "%Y-%m",
        "day": "%Y-%m-%d",
        "minute": "%Y-%m-%dT%H:%M",
        "second": "%Y-%m-%dT%H:%M:%S",
        "milli": "%Y-%m-%dT%H:%M:%S.%f",
        "micro": "%Y-%m-%dT%H:%M:%S.%f",
    }
    text = moment.strftime(formats[precision])
    if precision == "milli":
        text = text[:-3]
    with_time = precision in {"minute", "second", "milli", "micro"}
    if with_time and zone is not None:
        text += (
            "Z"
            if zone is UTC
            else moment.replace(tzinfo=zone).strftime("%z")[:3]
            + ":"
            + moment.replace(tzinfo=zone).strftime("%z")[3:]
        )
    found = date_range(text)
    assert found is not None, text
    low, high = found
    assert len(low) == len(high) == 26 and low <= high
    parsed_low = datetime.fromisoformat(low)
    parsed_high = datetime.fromisoformat(high)
    # the instant written (in UTC) is inside the range
    written = moment.replace(tzinfo=zone or UTC) if with_time else moment.replace(tzinfo=UTC)
    utc = written.astimezone(UTC).replace(tzinfo=None)
    if precision in {"year", "month", "day"}:
        assert parsed_low <= moment <= parsed_high
    else:
        truncated = {
            "minute": utc.replace(second=0, microsecond=0),
            "second": utc.replace(microsecond=0),
            "milli": utc.replace(microsecond=utc.microsecond // 1000 * 1000),
            "micro": utc,
        }[precision]
        assert parsed_low == truncated
    width = parsed_high - parsed_low + timedelta(microseconds=1)
    expected = {
        "minute": timedelta(minutes=1),
        "second": timedelta(seconds=1),
        "milli": timedelta(milliseconds=1),
        "micro": timedelta(microseconds=1),
        "day": timedelta(days=1),
    }
    if precision in expected:
        assert width == expected[precision]
    elif precision == "year":
        assert (low[:10], high[5:]) == (f"{moment.year:04d}-01-01", "12-31T23:59:59.999999")
    else:
        assert low[8:10] == "01" and (parsed_high + timedelta(microseconds=1)).day == 1


@given(st.text(max_size=12))
def test_date_range_never_raises(text: str) -> None:
    found = date_range(text)
    assert found is None or found[0] <= found[1]
