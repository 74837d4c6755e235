"""The Nictiz qualification fixtures (eOverdracht 4.0, BgGGZ 2.0) as a sending system would send them.

The fixtures are TestScript templates: dates are Nictiz "T-dates" (`${DATE, T, Y, -40}`: the test date minus
40 years; `${CURRENTDATE}`) and the Task id is a variable (`${task-id}`). The Nictiz test tool fills them in
before sending; `instantiate` does the same, against a fixed test date so that the tests are repeatable."""

from __future__ import annotations

import calendar
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fhir.resources.STU3 import get_fhir_model_class
from lxml import etree

from tests.reference import REFERENCE_DIR

VVT = REFERENCE_DIR / "vvt-eoverdracht-stu3"
GGZ = REFERENCE_DIR / "ggz-bgggz-stu3"
TEST_DATE = date(2025, 6, 2)
_T_DATE = re.compile(rb"\$\{DATE,\s*T,\s*(?P<unit>[YyMDdh]),\s*(?P<offset>[+-]?\d+)\}")
_PLACEHOLDER = re.compile(rb"\$\{[^}]*\}")


def instantiate(raw: bytes, task_id: str = "task-1") -> bytes:
    def shifted(match: re.Match[bytes]) -> bytes:
        return shift(TEST_DATE, match["unit"].decode(), int(match["offset"])).isoformat().encode()
    raw = _T_DATE.sub(shifted, raw)
    raw = raw.replace(b"${CURRENTDATE}", TEST_DATE.isoformat().encode()).replace(b"${task-id}", task_id.encode())
    assert not _PLACEHOLDER.search(raw), _PLACEHOLDER.search(raw)
    return raw


def vvt_fixtures() -> list[Path]:
    return sorted(VVT.glob("*/*.xml"))


def ggz_fixtures() -> list[Path]:
    return sorted(GGZ.glob("*.xml"))


def shift(day: date, unit: str, offset: int) -> date:
    """`day` moved by `offset` years (Y/y), months (M) or days (D/d); the 31st becomes the month's last day."""
    if unit in "Dd":
        return day + timedelta(days=offset)
    months = day.year * 12 + day.month - 1 + offset * (12 if unit in "Yy" else 1)
    year, month = divmod(months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def stu3_json(raw_xml: bytes) -> dict[str, Any]:
    """A fixture as STU3 JSON (what a JSON-speaking sender would send), read with the STU3 models."""
    root = etree.fromstring(raw_xml)
    model = get_fhir_model_class(etree.QName(root).localname).model_validate_xml(raw_xml)
    return json.loads(model.model_dump_json(exclude_none=True))


def stu3_bundle(fixtures: list[bytes], bundle_type: str = "collection") -> dict[str, Any]:
    """The fixtures as one STU3 Bundle; fullUrls are the RESTful `Type/id` the fixtures refer to each other by."""
    entries = []
    for raw in fixtures:
        resource = stu3_json(raw)
        entries.append({"fullUrl": f"http://vendor.example/fhir/{resource['resourceType']}/{resource['id']}",
                        "resource": resource})
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def nl_core_package_paths() -> list[Path]:
    """The gateway's default packages plus the Nictiz zib2020 / nl-core definitions (the profiles the
    STU3 adapters' output claims), so that write validation checks it against nl-core."""
    from conformance.packages import default_package_paths

    nictiz = REFERENCE_DIR / "nictiz-r4-zib2020" / "resources"
    return [*default_package_paths(), nictiz / "zib", nictiz / "nl-core"]
