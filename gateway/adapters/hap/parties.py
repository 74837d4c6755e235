"""Patient, health professionals and organisations: nl-core-Patient, nl-core-HealthProfessional-Practitioner
/-PractitionerRole, nl-core-HealthcareProvider-Organization. Each is keyed on its strongest identifier so that
the same person or organisation mentioned twice becomes one resource."""

from __future__ import annotations

from typing import Any

from gateway.adapters.hap import profiles
from gateway.adapters.hap.context import MappingContext, identifiers
from gateway.adapters.hl7v3.addresses import address
from gateway.adapters.hl7v3.codes import codeable_concept
from gateway.adapters.hl7v3.names import human_names
from gateway.adapters.hl7v3.oids import AGB_SYSTEM, BIG_SYSTEM, URA_SYSTEM, UZI_PERSON_SYSTEM
from gateway.adapters.hl7v3.telecom import contact_point
from gateway.adapters.hl7v3.times import fhir_date
from gateway.adapters.hl7v3.xml import Element, child, children, text_of

GENDERS = {"M": "male", "F": "female", "UN": "other", "UNK": "unknown"}
CODE_SPECIFICATION = "http://nictiz.nl/fhir/StructureDefinition/ext-CodeSpecification"
PERSON_PREFERENCE = (UZI_PERSON_SYSTEM, BIG_SYSTEM, AGB_SYSTEM)
ORGANIZATION_PREFERENCE = (URA_SYSTEM, AGB_SYSTEM)


def _key(resource_type: str, idents: list[dict[str, Any]], preference: tuple[str, ...]) -> str | None:
    for system in preference:
        for ident in idents:
            if ident.get("system") == system:
                return f"{resource_type}|{system}|{ident['value']}"
    if idents:
        return f"{resource_type}|{idents[0]['system']}|{idents[0]['value']}"
    return None


def _contact(ctx: MappingContext, element: Element, resource: dict[str, Any]) -> None:
    telecoms = [t for t in (contact_point(ctx.take(e)) for e in children(element, "telecom")) if t]
    if telecoms:
        resource["telecom"] = telecoms
    addresses = [a for a in (address(ctx.take(e)) for e in children(element, "addr")) if a]
    if addresses:
        resource["address"] = addresses


def patient(ctx: MappingContext, role: Element, person: Element | None, key: str) -> dict[str, Any]:
    """`role` is patientRole/Patient (ids, addr, telecom), `person` the patient/Person (name, gender, birth)."""
    ctx.visit(role)
    ctx.visit(person)
    resource: dict[str, Any] = {"resourceType": "Patient", "meta": profiles.meta(profiles.PATIENT)}
    idents = identifiers([ctx.take(e) for e in children(role, "id")])  # type: ignore[misc]
    if idents:
        resource["identifier"] = idents
    names = [n for e in children(person, "name") for n in human_names(ctx.take(e))]
    if names:
        resource["name"] = names
    _contact(ctx, role, resource)
    gender = ctx.take(child(person, "administrativeGenderCode"))
    if gender is not None and gender.get("code") in GENDERS:
        resource["gender"] = GENDERS[gender.get("code", "")]
        specification = {"url": CODE_SPECIFICATION, "valueCodeableConcept": codeable_concept(gender)}
        resource["_gender"] = {"extension": [specification]}
    birth = ctx.take(child(person, "birthTime"))
    if birth is not None and birth.get("value"):
        resource["birthDate"] = fhir_date(birth.get("value"))
    deceased = ctx.take(child(person, "deceasedInd"))
    if deceased is not None and deceased.get("value") in {"true", "false"}:
        resource["deceasedBoolean"] = deceased.get("value") == "true"
    deceased_time = ctx.take(child(person, "deceasedTime"))
    if deceased_time is not None and deceased_time.get("value"):
        resource["deceasedDateTime"] = fhir_date(deceased_time.get("value"))
    status = ctx.take(child(role, "statusCode"))
    if status is not None and status.get("code") in {"active", "nullified", "terminated"}:
        resource["active"] = status.get("code") == "active"
    ctx.patient_key = key
    ctx.patient_display = names[0].get("text") if names else None
    return ctx.add(key, resource)


def _without_home_use(ctx: MappingContext, resource: dict[str, Any]) -> None:
    """An organization's telecom and address can never be of use 'home' (invariants org-3, org-2): drop the use."""
    for field in ("telecom", "address"):
        for item in resource.get(field, []):
            if item.get("use") == "home":
                del item["use"]
                ctx.warn(f"Organization.{field} use 'home' (HP/H) dropped: an organization has no home "
                         f"{field} (org-{3 if field == 'telecom' else 2})", "business-rule")


def organization(ctx: MappingContext, element: Element | None) -> dict[str, Any] | None:
    """Organization / representedOrganization / scopingEntity -> a reference (None if it has no id/name)."""
    if element is None:
        return None
    ctx.visit(element)
    idents = identifiers([ctx.take(e) for e in children(element, "id")])  # type: ignore[misc]
    name = text_of(ctx.take(child(element, "name"))) or text_of(ctx.take(child(element, "desc")))
    key = _key("Organization", idents, ORGANIZATION_PREFERENCE)
    if key is None:
        if name is None:
            return None
        key = f"Organization|name|{name}"
    resource: dict[str, Any] = {"resourceType": "Organization", "meta": profiles.meta(profiles.ORGANIZATION)}
    if idents:
        resource["identifier"] = idents
    if name:
        resource["name"] = name
    _contact(ctx, element, resource)
    _without_home_use(ctx, resource)
    ctx.add(key, resource)
    return ctx.reference(key, name)


def health_professional(ctx: MappingContext, assigned: Element | None) -> dict[str, Any] | None:
    """AssignedEntity / AssignedPerson / assignedAuthor / participantRole -> a PractitionerRole reference
    (with its Practitioner and Organization), or a Practitioner reference when there is no role to state."""
    if assigned is None:
        return None
    # the same professional is usually repeated on every statement of a message: mapped once, replayed after
    return ctx.remembered("health_professional", assigned, lambda: _health_professional(ctx, assigned))


def _health_professional(ctx: MappingContext, assigned: Element) -> dict[str, Any] | None:
    ctx.visit(assigned)
    idents = identifiers([ctx.take(e) for e in children(assigned, "id")])  # type: ignore[misc]
    person = None
    for name in ("assignedPerson", "playingEntity", "assignedPrincipalPerson"):
        person = person if person is not None else child(assigned, name)
    assignee = child(child(assigned, "assignee"), "assigneePerson")
    ctx.visit(child(assigned, "assignee"))
    person = person if person is not None else assignee
    ctx.visit(person)
    names = [n for e in children(person, "name") for n in human_names(ctx.take(e))]
    key = _key("Practitioner", idents, PERSON_PREFERENCE)
    display = names[0].get("text") if names else None
    if key is None:
        if not names:
            return None
        key = f"Practitioner|name|{display}"
    practitioner: dict[str, Any] = {"resourceType": "Practitioner", "meta": profiles.meta(profiles.PRACTITIONER)}
    if idents:
        practitioner["identifier"] = idents
    if names:
        practitioner["name"] = names
    role_contact: dict[str, Any] = {}
    _contact(ctx, assigned, role_contact)
    if role_contact.get("address"):  # PractitionerRole has no address: it is the professional's (work) address
        practitioner["address"] = role_contact["address"]
    ctx.add(key, practitioner)
    specialty = codeable_concept(ctx.take(child(assigned, "code")))
    org = None
    for name in ("Organization", "representedOrganization", "scopingEntity"):
        org = org or organization(ctx, child(assigned, name))
    if specialty is None and org is None and not role_contact.get("telecom"):
        return ctx.reference(key, display)
    role_key = f"PractitionerRole|{key}|{(org or {}).get('reference', '')}"
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole", "meta": profiles.meta(profiles.PRACTITIONER_ROLE),
        "practitioner": ctx.reference(key, display),
    }
    if org:
        role["organization"] = org
    if specialty:
        role["specialty"] = [specialty]
    if role_contact.get("telecom"):
        role["telecom"] = role_contact["telecom"]
    ctx.add(role_key, role)
    return ctx.reference(role_key, display)
