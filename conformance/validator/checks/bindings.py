"""Terminology bindings: required -> error, extensible -> warning, preferred/example -> not checked.

Codes are checked against ValueSets expanded locally (`conformance.terminology`). When a code's system is not
available here (SNOMED CT, LOINC, ...) the binding cannot be decided: that is reported as information, never
as an error. A code that does not exist in a complete local CodeSystem is an error whatever the binding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.terminology import Terminology
from conformance.validator.model import Binding

Report = Callable[[str, str, str], None]  # severity, code, message
_CODED = frozenset({"code", "Coding", "CodeableConcept", "Quantity", "string", "uri"})
_SEVERITY = {"required": "error", "extensible": "warning"}


def check_binding(value: Any, type_code: str, binding: Binding, terminology: Terminology, report: Report) -> None:
    if binding.value_set is None or type_code not in _CODED or binding.strength not in _SEVERITY:
        return
    value_set = binding.value_set
    severity = _SEVERITY[binding.strength]
    if terminology.expand(value_set) is None:
        report("information" if severity != "error" else "warning", "not-found",
               f"The value set {value_set} is not available, so the {binding.strength} binding cannot be checked")
        return
    name = _vs_name(terminology, value_set)
    if type_code in ("code", "string", "uri"):
        if not isinstance(value, str):
            return
        verdict = terminology.validate_code(None, value, value_set)
        if verdict is False:
            report(severity, "code-invalid",
                   f"The value provided ('{value}') was not found in the value set {name}, and a code is "
                   f"{'required' if severity == 'error' else 'recommended'} from this value set")
        return
    if type_code == "Coding":
        _check_codings([value], value_set, name, severity, terminology, report, single=True)
        return
    if type_code == "Quantity":
        if isinstance(value, dict) and "code" in value:
            coding = {"system": value.get("system"), "code": value.get("code")}
            _check_codings([coding], value_set, name, severity, terminology, report, single=True)
        return
    if isinstance(value, dict):
        codings = [c for c in value.get("coding", ()) if isinstance(c, dict) and "code" in c]
        if not codings:
            if severity == "error" and "text" not in value:
                report("error", "code-invalid",
                       f"No code provided, and a code is required from the value set {name}")
            return
        _check_codings(codings, value_set, name, severity, terminology, report, single=False)


def _check_codings(codings: list[Any], value_set: str, name: str, severity: str, terminology: Terminology,
                   report: Report, single: bool) -> None:
    verdicts = []
    for coding in codings:
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            continue
        verdicts.append((coding, terminology.validate_code(coding.get("system"), coding["code"], value_set)))
    if not verdicts or any(v is True for _, v in verdicts):
        return
    if any(v is None for _, v in verdicts):
        unknown = next(c for c, v in verdicts if v is None)
        report("information", "informational",
               f"The code {unknown.get('system')}#{unknown.get('code')} cannot be checked against the value set "
               f"{name} here (its code system is not available locally)")
        return
    coding = verdicts[0][0]
    if single:
        report(severity, "code-invalid",
               f"The code provided ({coding.get('system')}#{coding.get('code')}) was not found in the value set "
               f"{name}, and a code {'is required' if severity == 'error' else 'should come'} from this value set")
    else:
        report(severity, "code-invalid",
               f"None of the codings provided are in the value set {name}, and a coding "
               f"{'is required' if severity == 'error' else 'should come'} from this value set "
               f"(codes = {', '.join(str(c.get('system')) + '#' + str(c.get('code')) for c, _ in verdicts)})")


def check_coding_known(coding: dict[str, Any], terminology: Terminology, report: Report,
                       display_severity: str = "warning") -> None:
    """A code must exist in its CodeSystem when that CodeSystem is available and complete here; its display, when
    given, must be one of the code's designations (reported with `display_severity`)."""
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not isinstance(code, str):
        return
    if terminology.code_known(system, code) is False:
        report("error", "code-invalid", f"Unknown code '{code}' in the CodeSystem '{system}'")
        return
    display = coding.get("display")
    expected = terminology.display_of(system, code)
    known = {d.strip().lower() for d in terminology.displays_of(system, code)}
    if isinstance(display, str) and expected and display.strip().lower() not in known:
        report(display_severity, "invalid",
               f"Wrong Display Name '{display}' for {system}#{code}. Valid display is '{expected}'")


def _vs_name(terminology: Terminology, url: str) -> str:
    resource = terminology.value_set(url)
    title = (resource or {}).get("title") or (resource or {}).get("name")
    return f"'{title}' ({url})" if title else f"'{url}'"
