"""nullFlavor -> the FHIR data-absent-reason extension."""

from __future__ import annotations

from typing import Any

DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

NULL_FLAVOR_REASONS: dict[str, str] = {
    "NI": "unknown",
    "UNK": "unknown",
    "ASKU": "asked-unknown",
    "NAV": "temp-unknown",
    "NASK": "not-asked",
    "MSK": "masked",
    "NA": "not-applicable",
    "OTH": "unsupported",
    "NINF": "negative-infinity",
    "PINF": "positive-infinity",
    "NP": "not-performed",
    "INV": "error",
    "DER": "unsupported",
    "TRC": "unsupported",
    "QS": "unsupported",
}


def data_absent_reason(null_flavor: str) -> dict[str, Any]:
    """The extension for a nullFlavor; unknown flavours count as `unknown`."""
    return {"url": DATA_ABSENT_REASON, "valueCode": NULL_FLAVOR_REASONS.get(null_flavor, "unknown")}
