"""The versioned policy file: parameters plus two first-match rule lists (request rules, disclosure rules).

A bad policy raises PolicyError at load time (unknown condition, unknown effect or obligation, missing
reason text) so that a typo can never turn into a silent permit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from gateway.consent.model import OBLIGATIONS, Effect, Flow

DEFAULT_POLICY = Path(__file__).with_name("policy.json")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    id: str
    effect: Effect
    when: Mapping[str, bool]  # every condition must have this value
    when_any: Mapping[str, bool]  # and (if given) at least one of these must have its value
    obligations: tuple[str, ...]
    reason_nl: str
    reason_en: str
    legal_basis: str = ""

    @cached_property
    def conditions(self) -> tuple[tuple[str, bool], ...]:
        """`when` as (condition, value) pairs, in order (the PDP walks these for every decision)."""
        return tuple(self.when.items())

    @cached_property
    def alternatives(self) -> tuple[tuple[str, bool], ...]:
        """`when_any` as (condition, value) pairs, in order."""
        return tuple(self.when_any.items())


@dataclass(frozen=True)
class Parameters:
    allowed_purposes: frozenset[str]
    default_flow: Flow
    zcc_contact_window_hours: float
    require_named_contact: bool
    btg_time_box_hours: float
    adhoc_max_hours: float
    admin_scopes: frozenset[str]
    admin_roles: frozenset[str]
    btg_roles: frozenset[str]
    ggz_organization_types: frozenset[str]
    ggz_roles: frozenset[str]
    ggz_labels: frozenset[str]
    never_disclosed_labels: frozenset[str]
    btg_excluded_labels: frozenset[str]
    protected_write_types: frozenset[str]
    immutable_types: frozenset[str]
    always_patient_data_types: frozenset[str]
    extra_compartment_paths: Mapping[str, tuple[str, ...]]
    contact_types: Mapping[str, frozenset[str]]
    referral_types: Mapping[str, frozenset[str]]
    data_categories: Mapping[str, str]
    consent_scope_categories: Mapping[str, str]
    emergency_dataset: Mapping[str, frozenset[str]]  # data category -> allowed statuses (empty: any)
    # Composition type ("system|code") -> data category, e.g. a generated patient summary (an index of entries
    # that are each judged on their own) is not a clinical report
    document_categories: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    id: str
    version: str
    parameters: Parameters
    request_rules: tuple[Rule, ...]
    disclosure_rules: tuple[Rule, ...]
    default_rule_id: str
    default_reason_nl: str
    default_reason_en: str
    condition_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.id}|{self.version}"


def load_policy(path: str | Path = DEFAULT_POLICY) -> Policy:
    return policy_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def policy_from_dict(raw: Mapping[str, Any]) -> Policy:
    from gateway.consent.conditions import DISCLOSURE_CONDITIONS, REQUEST_CONDITIONS

    try:
        parameters = _parameters(raw["parameters"])
        request_rules = tuple(_rule(item, REQUEST_CONDITIONS) for item in raw["request_rules"])
        disclosure_rules = tuple(_rule(item, DISCLOSURE_CONDITIONS) for item in raw["disclosure_rules"])
        default = raw["default"]
        policy = Policy(
            id=str(raw["id"]),
            version=str(raw["version"]),
            parameters=parameters,
            request_rules=request_rules,
            disclosure_rules=disclosure_rules,
            default_rule_id=str(default["id"]),
            default_reason_nl=str(default["reason"]["nl"]),
            default_reason_en=str(default["reason"]["en"]),
            condition_labels=dict(raw.get("condition_labels", {})),
        )
    except (KeyError, TypeError) as problem:
        raise PolicyError(f"policy is incomplete: {problem!r}") from None
    ids = [rule.id for rule in (*request_rules, *disclosure_rules)]
    duplicates = {rule_id for rule_id in ids if ids.count(rule_id) > 1}
    if duplicates:
        raise PolicyError(f"duplicate rule ids: {sorted(duplicates)}")
    return policy


def _rule(raw: Mapping[str, Any], known: Mapping[str, Any]) -> Rule:
    rule_id = str(raw["id"])
    when = dict(raw.get("when", {}))
    when_any = dict(raw.get("when_any", {}))
    for name, value in {**when, **when_any}.items():
        if name not in known:
            raise PolicyError(f"rule {rule_id}: unknown condition {name!r}")
        if not isinstance(value, bool):
            raise PolicyError(f"rule {rule_id}: condition {name!r} must be true or false")
    try:
        effect = Effect(raw["effect"])
    except ValueError:
        raise PolicyError(f"rule {rule_id}: unknown effect {raw['effect']!r}") from None
    obligations = tuple(raw.get("obligations", ()))
    unknown = [code for code in obligations if code not in OBLIGATIONS]
    if unknown:
        raise PolicyError(f"rule {rule_id}: unknown obligations {unknown}")
    reason = raw["reason"]
    if not reason.get("nl") or not reason.get("en"):
        raise PolicyError(f"rule {rule_id}: needs a reason in nl and en")
    return Rule(rule_id, effect, when, when_any, obligations, reason["nl"], reason["en"], raw.get("legal_basis", ""))


def _parameters(raw: Mapping[str, Any]) -> Parameters:
    def codes(name: str) -> frozenset[str]:
        return frozenset(str(item) for item in raw[name])

    def status_map(name: str) -> dict[str, frozenset[str]]:
        return {key: frozenset(values) for key, values in raw[name].items()}

    return Parameters(
        allowed_purposes=codes("allowed_purposes"),
        default_flow=Flow(raw["default_flow"]),
        zcc_contact_window_hours=float(raw["zcc_contact_window_hours"]),
        require_named_contact=bool(raw["require_named_contact"]),
        btg_time_box_hours=float(raw["btg_time_box_hours"]),
        adhoc_max_hours=float(raw["adhoc_max_hours"]),
        admin_scopes=codes("admin_scopes"),
        admin_roles=codes("admin_roles"),
        btg_roles=codes("btg_roles"),
        ggz_organization_types=codes("ggz_organization_types"),
        ggz_roles=codes("ggz_roles"),
        ggz_labels=codes("ggz_labels"),
        never_disclosed_labels=codes("never_disclosed_labels"),
        btg_excluded_labels=codes("btg_excluded_labels"),
        protected_write_types=codes("protected_write_types"),
        immutable_types=codes("immutable_types"),
        always_patient_data_types=codes("always_patient_data_types"),
        extra_compartment_paths={k: tuple(v) for k, v in raw["extra_compartment_paths"].items()},
        contact_types=status_map("contact_types"),
        referral_types=status_map("referral_types"),
        data_categories=dict(raw["data_categories"]),
        consent_scope_categories=dict(raw["consent_scope_categories"]),
        emergency_dataset=status_map("emergency_dataset"),
        document_categories=dict(raw.get("document_categories", {})),
    )
