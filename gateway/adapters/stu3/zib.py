"""zib2017 -> zib2020 restructurings that depend on the R4 nl-core profile a resource ends up claiming, run by
the converter after the profile claims are rewritten (`restructure`), with their data in `maps/profiles.json`
(`restructure`). Each one follows how zib2020 models the concept; whatever it cannot carry is reported as
unmapped by `lost(path, value, why)`, never dropped silently.

- `packYears` (nl-core-TobaccoUse): zib2017 PackYears is a Quantity (`{PackYears}`), zib2020 an integer
  (`Observation.component:packYears.valueInteger`): a whole number of pack years becomes the integer, a
  fraction cannot be carried and the component is listed as unmapped.
- `payer` (zib-Payer -> nl-core-Payer.InsuranceCompany / nl-core-Payer.PayerPerson): zib2020 splits Payer in
  two Coverage profiles, both with `payor` 1..1 and the bank information (`ext-Payer.BankInformation`, 0..*)
  on the Coverage, not on the payor. The same payer repeated with another bank account becomes one payor with
  both bank accounts; another payer than the first is listed as unmapped. A payer that is a person (Patient,
  RelatedPerson) or has bank information, without an insurance type, is a PayerPerson (type
  coverage-selfpay#pay, set as the profile's default).
- `slices` (e.g. nl-core-HealthcareProvider-Organization): repeating elements whose value slices allow one
  item each (`type:departmentSpecialty` 0..1, `type:organizationType` 0..1): the first item of each slice is
  kept, the others are listed as unmapped."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.adapters.stu3.references import split_reference
from gateway.adapters.stu3.tables import restructure_rules

Lost = Callable[[str, Any, str], None]


def restructure(resource: dict[str, Any], profile: str, where: str, lost: Lost) -> str:
    """Apply the restructurings of `profile` to the converted resource; returns the profile it claims (a payer
    may turn out to be a PayerPerson rather than an InsuranceCompany)."""
    rules = restructure_rules().get(profile, {})
    for rule in rules.get("integer_components", []):
        _integer_components(resource, rule, profile, where, lost)
    if "payer" in rules:
        profile = _payer(resource, rules["payer"], profile, where, lost)
    for element, slices in rules.get("slices", {}).items():
        _one_per_slice(resource, element, slices, profile, where, lost)
    return profile


def _codings(concept: Any) -> list[dict[str, Any]]:
    return [c for c in (concept or {}).get("coding", []) if isinstance(c, dict)] if isinstance(concept, dict) else []


def _has_code(concept: Any, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(concept))


def _integer_components(resource: dict[str, Any], rule: dict[str, Any], profile: str, where: str,
                        lost: Lost) -> None:
    """`component` with this code: a Quantity in one of the accepted units (or without unit) -> valueInteger."""
    components = resource.get("component", [])
    kept = []
    units = {u.lower() for u in rule["units"]}
    for index, component in enumerate(components):
        quantity = component.get("valueQuantity") if isinstance(component, dict) else None
        if quantity is None or not _has_code(component.get("code"), rule["system"], rule["code"]):
            kept.append(component)
            continue
        here = f"{where}.component[{index}]"
        unit = {str(quantity[k]).lower() for k in ("code", "unit") if k in quantity}
        if unit - units:
            lost(here, component, f"{profile} takes {rule['name']} as a number of {rule['units'][0]}; "
                 f"unit {quantity.get('code') or quantity.get('unit')} is not convertible")
            continue
        try:
            number = Decimal(str(quantity.get("value")))
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite() or number != number.to_integral_value():
            lost(here, component, f"{profile} takes {rule['name']} as an integer; {quantity.get('value')} is not one")
            continue
        rest = {k: v for k, v in quantity.items() if k not in ("value", "comparator")}
        if "comparator" in quantity:
            lost(f"{here}.valueQuantity.comparator", quantity["comparator"], "an integer has no comparator")
        if rest:
            lost(f"{here}.valueQuantity", rest, f"the unit of {rule['name']} is implied by {profile} (integer)")
        converted = {k: v for k, v in component.items() if k != "valueQuantity"}
        converted["valueInteger"] = int(number)
        kept.append(converted)
    if components:
        resource["component"] = kept
        if not kept:
            resource.pop("component")


def _payer(resource: dict[str, Any], rule: dict[str, Any], profile: str, where: str, lost: Lost) -> str:
    bank_url = rule["bank_extension"]
    first: dict[str, Any] | None = None
    bank: list[dict[str, Any]] = []
    for index, payor in enumerate(resource.get("payor", [])):
        extensions = payor.get("extension", [])
        own_bank = [e for e in extensions if e.get("url") == bank_url]
        rest = {k: v for k, v in payor.items() if k != "extension"}
        others = [e for e in extensions if e.get("url") != bank_url]
        if others:
            rest["extension"] = others
        if first is None:
            first, bank = rest, own_bank
        elif rest == first:  # the same payer with another bank account: one payor, both accounts
            bank += own_bank
        else:
            lost(f"{where}.payor[{index}]", payor, f"{profile} allows one payor")
    if first is not None:
        resource["payor"] = [first]
    if bank:
        resource.setdefault("extension", []).extend(bank)
    target = split_reference(str((first or {}).get("reference", "")))
    person = (target is not None and target[0] in rule["person_types"]) or bool(bank)
    concept = resource.get("type")
    self_pay = concept is None or _has_code(concept, rule["self_pay_system"], rule["self_pay_code"])
    return rule["person_profile"] if person and self_pay else profile


def _one_per_slice(resource: dict[str, Any], element: str, slices: dict[str, list[str]], profile: str,
                   where: str, lost: Lost) -> None:
    items = resource.get(element)
    if not isinstance(items, list):
        return
    taken: set[str] = set()
    kept = []
    for index, item in enumerate(items):
        systems = {c.get("system") for c in _codings(item)}
        slice_name = next((name for name, in_slice in slices.items() if systems & set(in_slice)), None)
        if slice_name is None or slice_name not in taken:
            if slice_name is not None:
                taken.add(slice_name)
            kept.append(item)
            continue
        lost(f"{where}.{element}[{index}]", item, f"{profile} allows one {element}:{slice_name}")
    resource[element] = kept
