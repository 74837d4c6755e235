"""TS / IVL_TS -> FHIR date, dateTime and Period, keeping the precision and the time zone.

Date precisions (YYYY, YYYYMM, YYYYMMDD) map one to one. FHIR requires seconds and a zone once a time is
given: hour and minute precision are padded with zeros, and a time without zone is Dutch local time
(Europe/Amsterdam, the LSP convention), so the offset that applied on that date is added. A zone given in
the message is kept as is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from gateway.adapters.hl7v3.nullflavor import data_absent_reason
from gateway.adapters.hl7v3.xml import Element, child

LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
_TS = re.compile(
    r"(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?(?P<second>\d{2})?"
    r"(?P<fraction>\.\d+)?(?P<zone>[+-]\d{4})?"
)
PRECISIONS = ("year", "month", "day", "hour", "minute", "second")


@dataclass(frozen=True)
class Timestamp:
    year: int
    month: int | None
    day: int | None
    hour: int | None
    minute: int | None
    second: int | None
    fraction: str  # ".123" or ""
    zone: str | None  # "+0100" or None

    @property
    def precision(self) -> str:
        parts = (self.year, self.month, self.day, self.hour, self.minute, self.second)
        return PRECISIONS[max(i for i, part in enumerate(parts) if part is not None)]


class InvalidTimestamp(ValueError):
    pass


@lru_cache(maxsize=8192)
def parse_ts(value: str) -> Timestamp:
    """Cached: a message repeats its timestamps, and a Timestamp is immutable (an invalid one is not cached, it
    raises each time)."""
    match = _TS.fullmatch(value.strip())
    if match is None or (match["fraction"] and not match["second"]):
        raise InvalidTimestamp(f"'{value}' is not an HL7v3 TS")
    parts = {k: (int(v) if v is not None else None) for k, v in match.groupdict().items()
             if k not in {"fraction", "zone"}}
    stamp = Timestamp(fraction=match["fraction"] or "", zone=match["zone"], **parts)  # type: ignore[arg-type]
    try:  # check the calendar (e.g. no 31 February) at the precision given
        datetime(stamp.year, stamp.month or 1, stamp.day or 1, stamp.hour or 0, stamp.minute or 0,
                 min(stamp.second or 0, 59))
    except ValueError as error:
        raise InvalidTimestamp(f"'{value}' is not a valid date/time: {error}") from None
    return stamp


@lru_cache(maxsize=8192)
def fhir_date(value: str | None) -> str | None:
    """A FHIR `date` (birthDate): the date part at the precision given."""
    if not value:
        return None
    stamp = parse_ts(value)
    text = f"{stamp.year:04d}"
    if stamp.month is not None:
        text += f"-{stamp.month:02d}"
        if stamp.day is not None:
            text += f"-{stamp.day:02d}"
    return text


@lru_cache(maxsize=8192)
def fhir_datetime(value: str | None) -> str | None:
    if not value:
        return None
    stamp = parse_ts(value)
    if stamp.hour is None:
        return fhir_date(value)
    assert stamp.month is not None and stamp.day is not None
    clock = f"{stamp.hour:02d}:{stamp.minute or 0:02d}:{stamp.second or 0:02d}{stamp.fraction}"
    if stamp.zone:
        offset = f"{stamp.zone[:3]}:{stamp.zone[3:]}"
    else:
        local = datetime(stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute or 0, tzinfo=LOCAL_ZONE)
        # whole minutes: before 1940 Amsterdam time was +00:19:32, which FHIR cannot express
        minutes = round(local.utcoffset().total_seconds() / 60)  # type: ignore[union-attr]
        sign = "-" if minutes < 0 else "+"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{clock}{offset}"


def ts_value(element: Element | None) -> str | None:
    """The dateTime of a TS element (None when absent or null)."""
    if element is None or element.get("nullFlavor"):
        return None
    return fhir_datetime(element.get("value"))


def period(element: Element | None) -> dict[str, Any] | None:
    """IVL_TS -> Period (a point `value` becomes start = end); a null bound gets a data-absent-reason."""
    if element is None:
        return None
    if element.get("value"):
        point = fhir_datetime(element.get("value"))
        return {"start": point, "end": point}
    result: dict[str, Any] = {}
    for part, key in (("low", "start"), ("high", "end")):
        bound = child(element, part)
        if bound is None:
            continue
        if bound.get("nullFlavor"):
            result[f"_{key}"] = {"extension": [data_absent_reason(bound.get("nullFlavor", ""))]}
        elif bound.get("value"):
            result[key] = fhir_datetime(bound.get("value"))
    center = child(element, "center")
    if not result and center is not None and center.get("value"):
        point = fhir_datetime(center.get("value"))
        result = {"start": point, "end": point}
    return result or None


def effective(element: Element | None) -> tuple[str, Any] | None:
    """('effectiveDateTime', value) for a point in time, ('effectivePeriod', period) for an interval."""
    if element is None:
        return None
    if element.get("value"):
        return "effectiveDateTime", fhir_datetime(element.get("value"))
    found = period(element)
    if found is None:
        return None
    if set(found) == {"start"}:
        return "effectiveDateTime", found["start"]
    return "effectivePeriod", found
