"""lowBoundary(), highBoundary() and precision() (FHIRPath 2.0 / R5 additions used by R4 invariants).

A value stands for the interval of everything it could mean at its precision: `1.587` is [1.5865, 1.5875),
`@2014` is 2014-01-01 .. 2014-12-31. The boundary is that interval's end, written at the requested precision.
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from fhirpathpy.engine import nodes, util

_MAX_DECIMAL_PRECISION = 28
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_TIME = re.compile(r"(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?")
_DATE_DIGITS = {4: 1, 6: 2, 8: 3}  # precision digits -> number of date parts kept
_TIME_DIGITS = {2: 1, 4: 2, 6: 3, 9: 4}
_DATETIME_TIME_DIGITS = {10: 1, 12: 2, 14: 3, 17: 4}


def precision_of(item: Any) -> int | None:
    data = util.get_data(item)
    if isinstance(data, bool):
        return None
    if isinstance(data, int):
        return 0
    if isinstance(data, Decimal):
        exponent = data.as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else None
    if isinstance(data, nodes.FP_Time):
        return _time_precision(_TIME.fullmatch(str(data.asStr).lstrip("T")))
    if isinstance(data, nodes.FP_DateTime):
        text = data.asStr
        date_text, _, time_text = text.partition("T")
        digits = {1: 4, 2: 6, 3: 8}[len([p for p in _DATE.fullmatch(date_text).groups() if p])]
        if time_text:
            match = _TIME.match(time_text)
            digits = 8 + (_time_precision(match) or 0)
        return digits
    return None


def _time_precision(match: re.Match[str] | None) -> int | None:
    if match is None:
        return None
    hour, minute, second, fraction = match.groups()
    if fraction:
        return 9
    return 6 if second else 4 if minute else 2


def boundary(item: Any, precision: Any, low: bool) -> Any:
    data = util.get_data(item)
    if isinstance(item, nodes.ResourceNode) and isinstance(data, str):
        if item.path in ("dateTime", "instant"):  # a FHIR dateTime, whatever precision it was written with
            return _datetime_boundary(nodes.FP_DateTime(data), 17 if precision is None else precision, low)
        if item.path == "date":
            return _datetime_boundary(nodes.FP_DateTime(data), 8 if precision is None else precision, low)
        if item.path == "time":
            return _time_boundary(nodes.FP_Time(data), precision, low)
    if isinstance(data, bool):
        return None
    if isinstance(data, nodes.FP_Quantity):
        value = _decimal_boundary(Decimal(str(data.value)), precision, low)
        return None if value is None else nodes.FP_Quantity(value, data.unit)
    if isinstance(data, int | Decimal | float):
        return _decimal_boundary(Decimal(str(data)), precision, low)
    if isinstance(data, nodes.FP_Time):
        return _time_boundary(data, precision, low)
    if isinstance(data, nodes.FP_DateTime):
        return _datetime_boundary(data, precision, low)
    return None


def _decimal_boundary(value: Decimal, precision: Any, low: bool) -> Decimal | None:
    digits = 8 if precision is None else precision
    if not isinstance(digits, int) or digits < 0 or digits > _MAX_DECIMAL_PRECISION:
        return None
    exponent = value.as_tuple().exponent
    scale = max(0, -exponent) if isinstance(exponent, int) else 0
    half = Decimal(5).scaleb(-(scale + 1))
    edge = value - half if low else value + half
    quantum = Decimal(1).scaleb(-digits)
    if abs(edge) < quantum:  # below the requested precision: zero, negative only as the low end of a negative
        return Decimal("-0").quantize(quantum) if low and value < 0 else Decimal(0).quantize(quantum)
    return edge.quantize(quantum, rounding=ROUND_FLOOR if low else ROUND_CEILING)


def _time_boundary(data: nodes.FP_Time, precision: Any, low: bool) -> Any:
    digits = 9 if precision is None else precision
    if digits not in _TIME_DIGITS:
        return None
    match = _TIME.fullmatch(str(data.asStr).lstrip("T"))
    if match is None:
        return None
    text = _time_text(match.groups(), _TIME_DIGITS[digits], low)
    return nodes.FP_Time(text)


def _time_text(parts: tuple[str | None, ...], keep: int, low: bool) -> str:
    hour, minute, second, fraction = parts
    minute = minute or ("00" if low else "59")
    second = second or ("00" if low else "59")
    fraction = (fraction or ("000" if low else "999")).ljust(3, "0" if low else "9")[:3]
    pieces = [hour, minute, second]
    text = ":".join(pieces[: min(keep, 3)])
    if keep == 4:
        text += "." + fraction
    return text


def _datetime_boundary(data: nodes.FP_DateTime, precision: Any, low: bool) -> Any:
    digits = 17 if precision is None else precision
    text = data.asStr
    date_text, _, rest = text.partition("T")
    match = _DATE.fullmatch(date_text)
    if match is None:
        return None
    year, month, day = match.groups()
    month = month or ("01" if low else "12")
    day = day or ("01" if low else f"{calendar.monthrange(int(year), int(month))[1]:02d}")
    if digits in _DATE_DIGITS:
        return nodes.FP_DateTime("-".join([year, month, day][: _DATE_DIGITS[digits]]))
    if digits not in _DATETIME_TIME_DIGITS:
        return None
    zone_match = re.search(r"(Z|[+-]\d{2}:\d{2})$", rest)
    zone = zone_match.group(1) if zone_match else ("+14:00" if low else "-12:00")
    time_text = rest[: zone_match.start()] if zone_match else rest
    time_match = _TIME.fullmatch(time_text) if time_text else None
    time_parts = time_match.groups() if time_match else (("00" if low else "23"), None, None, None)
    clock = _time_text(time_parts, _DATETIME_TIME_DIGITS[digits], low)
    return nodes.FP_DateTime(f"{year}-{month}-{day}T{clock}{zone}")


def with_offset_of(result: nodes.FP_DateTime, original: nodes.FP_DateTime) -> nodes.FP_DateTime:
    """`result` (in UTC) written in the offset `original` was written in, with the same precision."""
    zone = re.search(r"(Z|[+-]\d{2}:\d{2})$", original.asStr or "")
    if zone is None or zone.group(1) in ("Z", "+00:00"):
        return result
    try:
        moment = datetime.fromisoformat(result.asStr.replace("Z", "+00:00"))
        local = moment.astimezone(datetime.fromisoformat("2000-01-01T00:00:00" + zone.group(1)).tzinfo)
    except ValueError:
        return result
    text = local.isoformat(timespec="milliseconds") if "." in original.asStr else local.isoformat()
    return nodes.FP_DateTime(text)
