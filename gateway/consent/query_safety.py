"""Search shapes that cannot be checked resource by resource are refused for patient-data types.

- `_has` (reverse chaining): the condition inspects other resources, possibly of other patients;
- chained parameters, except one hop through the resource's own patient link into Patient
  (`Observation?subject:Patient.identifier=...`), because results are then filtered per patient anyway;
- system-wide search whose types include patient data;
- unknown parameters (which `Prefer: handling=lenient` would otherwise silently drop);
- `_summary=count`, whose answer is a bare number that cannot be filtered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_page",
        "_offset",
        "_type",
    }
)


@dataclass(frozen=True)
class Refusal:
    status: int  # 400 for a parameter the server does not know, 403 for a shape refused on privacy grounds
    code: str
    message: str


OWN_PATIENT_PARAMS = frozenset({"patient", "subject"})  # the links from a resource to the patient it is about


def unsafe_search(
    resource_type: str | None,
    params: Iterable[tuple[str, str]],
    is_patient_type: Callable[[str | None], bool],
    is_known_param: Callable[[str | None, str], bool],
) -> Refusal | None:
    """Why this search is refused, or None when it is safe."""
    params = list(params)
    if resource_type is None:
        types = [t.strip() for name, value in params if name == "_type" for t in value.split(",") if t.strip()]
        if not types or any(is_patient_type(t) for t in types):
            return _forbidden("system-wide search over patient data is not allowed; search one resource type")
        return None
    if not is_patient_type(resource_type):
        return None
    for name, value in params:
        head = name.split(".", 1)[0]
        code, _, modifier = head.partition(":")
        if code == "_has":
            return _forbidden("_has (reverse chaining) is not allowed on patient data")
        if code == "_summary" and value == "count":
            return _forbidden("_summary=count is not allowed on patient data")
        if code in RESULT_PARAMS:
            continue
        if not is_known_param(resource_type, code):
            return Refusal(400, "not-supported", f"unknown search parameter {code!r} is not allowed on patient data")
        if "." in name:
            tail = name.split(".", 1)[1]
            if code not in OWN_PATIENT_PARAMS or modifier not in {"", "Patient"} or "." in tail:
                return _forbidden(f"chained search {name!r} reaches beyond this resource's own patient")
    return None


def _forbidden(message: str) -> Refusal:
    return Refusal(403, "forbidden", message)
