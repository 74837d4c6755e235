"""HL7v2 datatypes -> FHIR: DTM/TS (via the HL7v3 TS rules: same syntax), CX -> Identifier, XPN -> HumanName
(nl-core-NameInformation), XAD -> Address (nl-core-AddressInformation), XTN -> ContactPoint, HD -> Identifier."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hl7v2.errors import Hl7v2Error
from gateway.adapters.hl7v2.message import Repetition, component
from gateway.adapters.hl7v3.addresses import ADDRESS_TYPE, ADDRESS_USE_SYSTEM, ADXP
from gateway.adapters.hl7v3.names import (
    ASSEMBLY_ORDER,
    EN_QUALIFIER,
    OWN_NAME,
    OWN_PREFIX,
    PARTNER_NAME,
    PARTNER_PREFIX,
)
from gateway.adapters.hl7v3.oids import AGB_SYSTEM, BSN_OID, BSN_SYSTEM, URA_SYSTEM, identifier_system
from gateway.adapters.hl7v3.times import InvalidTimestamp, fhir_date, fhir_datetime

BSN_AUTHORITY = "NLMINBIZA"  # the Dutch ministry of the interior: assigning authority of the BSN in CX.4
LOCAL_SYSTEM_BASE = "https://zcc-gateway.nl/fhir/NamingSystem/local/"  # + sender (URA or name) + namespace
HD_TYPES = {"URA": URA_SYSTEM, "AGB": AGB_SYSTEM}
SEX = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
NAME_USES = {"L": "official", "D": "usual", "N": "nickname", "M": "maiden", "A": "nickname", "T": "temp"}
# XAD-7 address type (HL7 table 0190) -> (FHIR use, v3 AddressUse code of the nl-core AddressType extension)
ADDRESS_USES = {"H": ("home", "HP"), "L": ("home", "PHYS"), "B": ("work", "WP"), "O": ("work", "WP"),
                "C": ("temp", "TMP"), "V": ("temp", "HV"), "BA": ("old", None), "M": (None, "PST")}
PHONE_USES = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "EMR": "home", "ASN": "work"}
PHONE_EQUIPMENT = {"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "Internet": "email", "X.400": "email"}


def date_time(value: str, location: str) -> str | None:
    """DTM/TS -> FHIR dateTime; a time without zone is Dutch local time."""
    try:
        return fhir_datetime(value.strip()) if value.strip() else None
    except InvalidTimestamp as error:
        raise Hl7v2Error(f"{location}: {error}", "value", location) from None


def date(value: str, location: str) -> str | None:
    try:
        return fhir_date(value.strip()) if value.strip() else None
    except InvalidTimestamp as error:
        raise Hl7v2Error(f"{location}: {error}", "value", location) from None


def hd_identifier(rep: Repetition) -> dict[str, Any] | None:
    """HD (namespace^universal id^type) as an organisation Identifier when it carries a URA/AGB/OID."""
    universal, kind = component(rep, 2), component(rep, 3).upper()
    if not universal:
        return None
    if kind in HD_TYPES:
        return {"system": HD_TYPES[kind], "value": universal}
    if kind == "ISO":
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{universal}"}
    return None


def cx_identifier(rep: Repetition, facility: str) -> dict[str, Any] | None:
    """CX: id^check digit^scheme^assigning authority (namespace&universal id&type)^type code. The BSN is
    recognised by NLMINBIZA or its OID; an OID authority gives its URI; a namespace only is local to the
    sending facility (its own NamingSystem under the gateway's base)."""
    value = component(rep, 1).strip()
    if not value:
        return None
    namespace, universal, universal_type = component(rep, 4, 1), component(rep, 4, 2), component(rep, 4, 3)
    if namespace.upper() == BSN_AUTHORITY or universal == BSN_OID:
        return {"system": BSN_SYSTEM, "value": value}
    if universal and universal_type.upper() in ("ISO", ""):
        return {"system": identifier_system(universal), "value": value}
    local = namespace or component(rep, 5) or "id"
    return {"system": f"{LOCAL_SYSTEM_BASE}{facility}/{local}", "value": value}


def human_name(rep: Repetition) -> dict[str, Any] | None:
    """XPN with the Dutch family name parts of FN: 1 surname (as rendered), 2 own prefix, 3 own surname,
    4 partner prefix, 5 partner surname; 2 given name, 3 further given names/initials, 5 title, 7 name type."""
    rendered, own_prefix, own_name = component(rep, 1, 1), component(rep, 1, 2), component(rep, 1, 3)
    partner_prefix, partner_name = component(rep, 1, 4), component(rep, 1, 5)
    if not own_name and not partner_name and rendered:
        own_name = rendered.removeprefix(f"{own_prefix} ") if own_prefix else rendered
    given = [(g, "IN" if g.endswith(".") else "BR")
             for g in [component(rep, 2), *component(rep, 3).split()] if g]
    family = rendered or " ".join(x for x in (own_prefix, own_name) if x)
    if not family and not given:
        return None
    name: dict[str, Any] = {"use": NAME_USES.get(component(rep, 7), "official")}
    extensions: list[dict[str, Any]] = []
    for url, value in ((OWN_PREFIX, own_prefix), (OWN_NAME, own_name), (PARTNER_PREFIX, partner_prefix),
                       (PARTNER_NAME, partner_name)):
        if value:
            extensions.append({"url": url, "valueString": value})
    order = _assembly_order(family, own_name, partner_prefix, partner_name)
    if order:
        name["extension"] = [{"url": ASSEMBLY_ORDER, "valueCode": order}]
    title = component(rep, 5)
    name["text"] = " ".join(x for x in (title, " ".join(g for g, _ in given), family) if x)
    if family:
        name["family"] = family
        if extensions:
            name["_family"] = {"extension": extensions}
    if given:
        name["given"] = [g for g, _ in given]
        name["_given"] = [{"extension": [{"url": EN_QUALIFIER, "valueCode": q}]} for _, q in given]
    if title:
        name["prefix"] = [title]
    return name


def _assembly_order(family: str, own_name: str, partner_prefix: str, partner_name: str) -> str | None:
    if own_name and partner_name:
        partner = f"{partner_prefix} {partner_name}".strip()
        return "NL3" if family.startswith(partner) else "NL4"
    if partner_name:
        return "NL2"
    return "NL1" if own_name else None


def address(rep: Repetition) -> dict[str, Any] | None:
    """XAD: street address (SAD: line&street name&house number)^other designation (house number addition)^
    city^state^postal code^country^address type."""
    line, street, number = component(rep, 1, 1), component(rep, 1, 2), component(rep, 1, 3)
    addition = component(rep, 2)
    result: dict[str, Any] = {}
    kind = component(rep, 7)
    if kind in ADDRESS_USES:
        use, v3_code = ADDRESS_USES[kind]
        if v3_code:
            result["extension"] = [{"url": ADDRESS_TYPE, "valueCodeableConcept": {
                "coding": [{"system": ADDRESS_USE_SYSTEM, "code": v3_code}]}}]
        if use:
            result["use"] = use
        else:
            result["type"] = "postal"
    parts = [(ADXP + "streetName", street), (ADXP + "houseNumber", number),
             (ADXP + "buildingNumberSuffix", addition)]
    line_extensions = [{"url": url, "valueString": value} for url, value in parts if value]
    text = line or " ".join(x for x in (street, f"{number}{addition}".strip()) if x)
    if text:
        result["line"] = [text]
        if line_extensions:
            result["_line"] = [{"extension": line_extensions}]
    for number_, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
        if component(rep, number_):
            result[key] = component(rep, number_)
    return result if any(k in result for k in ("line", "city", "postalCode", "country")) else None


def contact_point(rep: Repetition) -> dict[str, Any] | None:
    """XTN: 2 use code, 3 equipment type, 4 email, 12 unformatted number (or the deprecated component 1)."""
    equipment = component(rep, 3)
    system = PHONE_EQUIPMENT.get(equipment, "phone")
    value = component(rep, 4) if system == "email" else (component(rep, 12) or component(rep, 1))
    if not value:
        return None
    result: dict[str, Any] = {"system": system, "value": value}
    use = "mobile" if equipment == "CP" else PHONE_USES.get(component(rep, 2))
    if use:
        result["use"] = use
    return result


def gender(code: str) -> str | None:
    return SEX.get(code.strip().upper()) if code.strip() else None
