"""AD -> Address in the nl-core-AddressInformation shape: street name, house number and its additions as
ADXP extensions on `line`, the HL7 address use as both FHIR use/type and the AddressType extension."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.xml import V3, Element, local_name

ADXP = "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-"
ADDRESS_TYPE = "http://nictiz.nl/fhir/StructureDefinition/ext-AddressInformation.AddressType"
ADDRESS_USE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-AddressUse"
LINE_PARTS = ("streetName", "houseNumber", "buildingNumberSuffix", "additionalLocator", "unitID", "unitType",
              "deliveryAddressLine", "postBox", "careOf")
# HL7 address use -> (FHIR use, FHIR type, display)
USES: dict[str, tuple[str | None, str | None, str]] = {
    "HP": ("home", "both", "Primary Home"),
    "H": ("home", None, "Home"),
    "PHYS": (None, "physical", "Visit address"),
    "PST": (None, "postal", "Postal address"),
    "WP": ("work", None, "Work place"),
    "TMP": ("temp", None, "Temporary address"),
    "BAD": ("old", None, "Bad address"),
}


def address(element: Element | None) -> dict[str, Any] | None:
    if element is None:
        return None
    if element.get("nullFlavor"):
        return {"extension": [data_absent_reason(element.get("nullFlavor", ""))]}
    values: dict[str, list[str]] = {}
    for item in element:
        if isinstance(item.tag, str) and item.tag.startswith(V3) and (item.text or "").strip():
            values.setdefault(local_name(item), []).append(" ".join(item.text.split()))
    result: dict[str, Any] = {}
    uses = (element.get("use") or "").split()
    for code in uses:
        if code in USES:
            use, kind, display = USES[code]
            result.setdefault("extension", []).append({
                "url": ADDRESS_TYPE,
                "valueCodeableConcept": {"coding": [{"system": ADDRESS_USE_SYSTEM, "code": code, "display": display}]},
            })
            if use and "use" not in result:
                result["use"] = use
            if kind and "type" not in result:
                result["type"] = kind
    line_extensions = [
        {"url": ADXP + part, "valueString": value}
        for part in LINE_PARTS for value in values.get(part, [])
    ]
    line_text = " ".join(values.get("streetAddressLine", []))
    if not line_text:
        street = " ".join(values.get("streetName", []))
        number = "".join(values.get("houseNumber", []) + values.get("buildingNumberSuffix", []))
        extra = " ".join(values.get("additionalLocator", []) + values.get("unitID", []))
        line_text = " ".join(x for x in (street, number, extra) if x)
    if line_text or line_extensions:
        result["line"] = [line_text or " ".join(e["valueString"] for e in line_extensions)]
        if line_extensions:
            result["_line"] = [{"extension": line_extensions}]
    for part, key in (("city", "city"), ("county", "district"), ("municipality", "district"),
                      ("state", "state"), ("postalCode", "postalCode"), ("country", "country")):
        if values.get(part) and key not in result:
            result[key] = " ".join(values[part])
    if not any(k in result for k in ("line", "city", "postalCode", "country", "district")):
        text = " ".join("".join(element.itertext()).split())
        if text:
            result["text"] = text
    return result or None
