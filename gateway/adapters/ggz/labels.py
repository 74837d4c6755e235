"""The security labels of ggz data (docs/privacy.md: `ggz-filtered`): confidentiality R (restricted) and
sensitivity PSY (psychiatry disorder information), added to `meta.security` of every resource."""

from __future__ import annotations

from typing import Any

GGZ_LABELS = (
    {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R", "display": "restricted"},
    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY",
     "display": "psychiatry disorder information sensitivity"},
)


def label_ggz(resource: dict[str, Any]) -> None:
    """Add the ggz labels (once) to the resource and to its contained resources; other labels stay."""
    for item in [resource, *resource.get("contained", [])]:
        security = item.setdefault("meta", {}).setdefault("security", [])
        present = {(label.get("system"), label.get("code")) for label in security}
        security += [dict(label) for label in GGZ_LABELS if (label["system"], label["code"]) not in present]
