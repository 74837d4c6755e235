"""A small, realistic demo data set for `make run`: two HAP/RAV organisations, patients with valid BSNs,
a GP, acute encounters and vital signs — loaded as one transaction through the normal pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

_PATIENTS = [
    ("p-jansen", "999911120", "Jansen", ["Johanna"], "female", "1948-03-12", "Utrecht"),
    ("p-devries", "999911132", "de Vries", ["Pieter", "Jan"], "male", "1952-11-02", "Amersfoort"),
    ("p-bakker", "999911144", "Bakker", ["Fatima"], "female", "1987-06-23", "Zeist"),
]


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    url = f"{resource['resourceType']}/{resource['id']}"
    return {"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}}


def _recent(hours_ago: float) -> str:
    """Demo contacts are recent, so that a triagist's zcc contact window (24 h) covers them."""
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(timespec="seconds")


def demo_bundle() -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {
            "resourceType": "Organization",
            "id": "hap-utrecht",
            "identifier": [{"system": URA, "value": "90000001"}],
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://nictiz.nl/fhir/NamingSystem/organization-type",
                            "code": "N6",
                            "display": "Huisartsenpost (t.b.v. dienstwaarneming)",
                        }
                    ]
                }
            ],
            "name": "Huisartsenpost Utrecht Stad",
        },
        {
            "resourceType": "Organization",
            "id": "rav-utrecht",
            "identifier": [{"system": URA, "value": "90000002"}],
            "type": [
                {
                    "coding": [
                        {
                            "system": "http://nictiz.nl/fhir/NamingSystem/organization-type",
                            "code": "AMB",
                            "display": "Regionale ambulancevoorzieningen",
                        }
                    ]
                }
            ],
            "name": "RAV Regio Utrecht",
        },
        {
            "resourceType": "Practitioner",
            "id": "gp-smit",
            "identifier": [{"system": AGB, "value": "01012345"}],
            "name": [{"family": "Smit", "given": ["Anna"], "prefix": ["dr."]}],
        },
    ]
    for pid, bsn, family, given, gender, birth, city in _PATIENTS:
        resources.append(
            {
                "resourceType": "Patient",
                "id": pid,
                "identifier": [{"system": BSN, "value": bsn}],
                "name": [{"use": "official", "family": family, "given": given}],
                "gender": gender,
                "birthDate": birth,
                "address": [{"city": city, "country": "NL"}],
                "generalPractitioner": [{"reference": "Practitioner/gp-smit"}],
            }
        )
        resources.append(
            {
                "resourceType": "Encounter",
                "id": f"enc-{pid}",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
                "subject": {"reference": f"Patient/{pid}"},
                "serviceProvider": {"reference": "Organization/hap-utrecht"},
                "period": {"start": _recent(1.5), "end": _recent(1)},
            }
        )
        for code, display, value, unit in (
            ("8867-4", "Heart rate", 88, "/min"),
            ("8310-5", "Body temperature", 37.8, "Cel"),
        ):
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": f"obs-{pid}-{code}",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "encounter": {"reference": f"Encounter/enc-{pid}"},
                    "effectiveDateTime": _recent(1.25),
                    "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
                }
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": [_entry(r) for r in resources]}
