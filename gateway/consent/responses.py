"""Apply per-resource decisions to every response shape: a single resource, searchset (matches and includes),
history, batch/transaction responses, document/collection Bundles and Parameters (operation outputs).

A Bundle *inside* a response (a stored document, a message) is one unit: it is released only when every
resource in it is permitted. Withheld resources are removed; `Bundle.total` is recomputed when the page holds
all matches and omitted otherwise; a searchset gets an OperationOutcome entry with code `suppressed` when
something was withheld from a patient the client may see (never for deny-as-404, which must not reveal
that anything exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.consent.model import DENY_AS_404, Decision, Effect

Judge = Callable[[dict[str, Any]], Decision]
RESPONSE_BUNDLES = frozenset({"searchset", "history", "batch-response", "transaction-response"})
PART_BUNDLES = frozenset({"document", "collection", "message"})
CONTAINERS = ("Bundle", "Parameters")  # resources made of resources: judged by their parts


@dataclass
class FilterReport:
    released: list[tuple[dict[str, Any], Decision]] = field(default_factory=list)
    withheld: list[tuple[dict[str, Any] | None, Decision | None]] = field(default_factory=list)
    patient_data_seen: bool = False

    @property
    def suppressed_visible(self) -> list[Decision]:
        """Withholdings the client may learn about (not deny-as-404)."""
        return [d for _, d in self.withheld if d is not None and not d.has(DENY_AS_404)]

    @property
    def decisions(self) -> list[Decision]:
        return [d for _, d in self.released] + [d for _, d in self.withheld if d is not None]


def iter_resources(node: Any) -> Iterator[dict[str, Any]]:
    """Every resource in a response body that the PDP judges (Bundles and Parameters are containers)."""
    yield from resources_in(node)


def resources_in(node: Any) -> list[dict[str, Any]]:
    """`iter_resources` as a list, collected without a generator per level (a page has hundreds of entries)."""
    found: list[dict[str, Any]] = []
    _collect(node, found)
    return found


def _collect(node: Any, found: list[dict[str, Any]]) -> None:
    if not isinstance(node, dict):
        return
    kind = node.get("resourceType")
    if not isinstance(kind, str):
        return
    if kind == "Bundle":
        for entry in node.get("entry") or ():
            if not isinstance(entry, dict):
                continue
            resource = entry.get("resource")
            if type(resource) is dict and type(resource.get("resourceType")) is str and (
                resource["resourceType"] not in CONTAINERS
            ):
                found.append(resource)  # the common entry, without a call per level
            else:
                _collect(resource, found)
            response = entry.get("response")
            if isinstance(response, dict):
                _collect(response.get("outcome"), found)
    elif kind == "Parameters":
        for parameter in _parameters(node):
            _collect(parameter.get("resource"), found)
    else:
        found.append(node)


_ORDER = {Effect.PERMIT: 0, Effect.PERMIT_FILTERED: 1, Effect.DENY: 2}


def judge_unit(resource: dict[str, Any], judge: Judge) -> Decision:
    """The decision for a resource as a whole; a Bundle or Parameters takes its most restrictive part."""
    if not isinstance(resource, dict) or resource.get("resourceType") not in CONTAINERS:
        return judge(resource)  # a plain resource is its only part
    decisions = [judge(part) for part in resources_in(resource)]
    if not decisions:
        return judge(resource)
    return max(decisions, key=lambda decision: _ORDER[decision.effect])


def filter_bundle(
    bundle: dict[str, Any], judge: Judge, is_patient_type: Callable[[str], bool], hint: str | None
) -> FilterReport:
    """Filter a response Bundle in place."""
    report = FilterReport()
    released, withheld = report.released, report.withheld
    kind = bundle.get("type")
    responses = kind in {"batch-response", "transaction-response"}
    kept = []
    patient_data_seen = False
    for entry in bundle.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict):
            decision = judge_unit(resource, judge)
            if decision.effect is Effect.PERMIT:
                patient_data_seen = patient_data_seen or decision.patient is not None
                released.append((resource, decision))
                kept.append(entry)
            else:
                patient_data_seen = True
                withheld.append((resource, decision))
                if responses:
                    kept.append(_withheld_response_entry(entry, decision))
            continue
        if kind == "history" and _history_type(entry) and is_patient_type(_history_type(entry)):
            withheld.append((None, None))  # a deletion of patient data: unverifiable, so not shown
            patient_data_seen = True
            continue
        kept.append(entry)
    report.patient_data_seen = patient_data_seen
    _set_entries(bundle, kept)
    _fix_total(bundle, report)
    if kind == "searchset" and report.suppressed_visible:
        bundle.setdefault("entry", []).append(
            {"resource": suppressed_outcome(len(report.suppressed_visible), hint), "search": {"mode": "outcome"}}
        )
    return report


def filter_parameters(parameters: dict[str, Any], judge: Judge) -> FilterReport:
    report = FilterReport()

    def keep(parameter: dict[str, Any]) -> bool:
        resource = parameter.get("resource")
        if isinstance(resource, dict):
            decision = judge_unit(resource, judge)
            if decision.effect is not Effect.PERMIT:
                report.withheld.append((resource, decision))
                return False
            report.released.append((resource, decision))
        if isinstance(parameter.get("part"), list):
            parameter["part"] = [part for part in parameter["part"] if isinstance(part, dict) and keep(part)]
        return True

    if isinstance(parameters.get("parameter"), list):
        parameters["parameter"] = [p for p in parameters["parameter"] if isinstance(p, dict) and keep(p)]
    return report


def filter_part_bundle(bundle: dict[str, Any], judge: Judge) -> FilterReport:
    """A document/collection/message produced by an operation: withheld entries are removed."""
    report = FilterReport()
    kept = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            kept.append(entry)
            continue
        decision = judge_unit(resource, judge)
        if decision.effect is Effect.PERMIT:
            report.released.append((resource, decision))
            kept.append(entry)
        else:
            report.withheld.append((resource, decision))
    _set_entries(bundle, kept)
    return report


def suppressed_outcome(count: int, hint: str | None) -> dict[str, Any]:
    text = (
        f"{count} resource(s) withheld on privacy grounds / "
        f"{count} gegeven(s) achtergehouden op grond van privacyregels"
    )
    issues = [{"severity": "information", "code": "suppressed", "diagnostics": text}]
    if hint:
        issues.append({"severity": "information", "code": "informational", "diagnostics": hint})
    return {"resourceType": "OperationOutcome", "issue": issues}


def _withheld_response_entry(entry: dict[str, Any], decision: Decision) -> dict[str, Any]:
    response = dict(entry.get("response") or {})
    if decision.has(DENY_AS_404) and str(response.get("status", "")).startswith("200"):
        response = {"status": "404 Not Found"}
        response["outcome"] = {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "not-found", "diagnostics": "the resource is not known"}],
        }
        return {"response": response}
    response["outcome"] = suppressed_outcome(1, None)
    return {"response": response}


def _history_type(entry: dict[str, Any]) -> str:
    url = (entry.get("request") or {}).get("url") or ""
    return str(url).split("/")[0].split("?")[0]


def _set_entries(bundle: dict[str, Any], entries: list[Any]) -> None:
    if entries:
        bundle["entry"] = entries
    else:
        bundle.pop("entry", None)


def _fix_total(bundle: dict[str, Any], report: FilterReport) -> None:
    if "total" not in bundle or not (report.withheld or report.patient_data_seen):
        return
    paged = any(link.get("relation") in {"next", "previous", "prev"} for link in bundle.get("link") or ())
    if paged:
        del bundle["total"]  # other pages may hold withheld resources: an exact total would leak
        return
    if not report.withheld:
        return  # every match is on this page and was released: the total stands
    modes = [((e.get("search") or {}).get("mode")) for e in bundle.get("entry") or ()]
    if bundle.get("type") == "searchset":
        bundle["total"] = sum(1 for mode in modes if mode in {None, "match"})
    else:
        bundle["total"] = len(modes)


def _parameters(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for parameter in node.get("parameter") or ():
        if isinstance(parameter, dict):
            yield parameter
            yield from _parameters({"parameter": parameter.get("part") or ()})
