"""minValue[x]/maxValue[x]: plain values compare directly; a Duration bound on a date/dateTime/instant is
relative to now (`minValueDuration` 100 a: not more than 100 years ago; `maxValueDuration` 10 a: not more
than 10 years ahead)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

Report = Callable[[str, str], None]  # code, message (always an error)
_SECONDS = {"wk": 604800, "d": 86400, "h": 3600, "min": 60, "s": 1, "ms": Decimal("0.001")}


def _shift(now: datetime, duration: dict[str, Any], sign: int) -> datetime | None:
    value = duration.get("value")
    unit = duration.get("code") or duration.get("unit")
    if not isinstance(value, int | Decimal) or not isinstance(unit, str):
        return None
    if unit in ("a", "mo"):
        months = int(value * (12 if unit == "a" else 1)) * sign
        year, month = divmod(now.month - 1 + months, 12)
        try:
            return now.replace(year=now.year + year, month=month + 1)
        except ValueError:  # 29 February or the 31st of a shorter month
            return now.replace(year=now.year + year, month=month + 1, day=28)
    if unit in _SECONDS:
        return now + timedelta(seconds=float(Decimal(str(value)) * Decimal(str(_SECONDS[unit]))) * sign)
    return None


def _moment(text: str) -> datetime | None:
    try:
        if len(text) == 4:
            return datetime(int(text), 1, 1, tzinfo=UTC)
        if len(text) == 7:
            return datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        return None


def check_range(value: Any, minimum: Any, maximum: Any, report: Report, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for bound, is_min in ((minimum, True), (maximum, False)):
        if bound is None:
            continue
        if isinstance(bound, dict) and isinstance(value, dict):
            _quantity(value, bound, is_min, report)
            continue
        if isinstance(bound, dict):
            if not isinstance(value, str) or (moment := _moment(value)) is None:
                continue
            edge = _shift(now, bound, -1 if is_min else 1)
            if edge is None:
                continue
            if (moment < edge) if is_min else (moment > edge):
                report("value", f"The value '{value}' is {'earlier' if is_min else 'later'} than the permitted "
                       f"{'minimum' if is_min else 'maximum'} ({bound.get('value')} {bound.get('unit', '')} "
                       f"{'ago' if is_min else 'from now'})")
            continue
        try:
            outside = value < bound if is_min else value > bound
        except TypeError:
            continue
        if outside:
            report("value", f"value is {'less' if is_min else 'greater'} than permitted "
                   f"{'minimum' if is_min else 'maximum'} value of {bound}")


def _quantity(value: dict[str, Any], bound: dict[str, Any], is_min: bool, report: Report) -> None:
    """A Quantity against a Quantity bound, when both use the same unit (no unit conversion here)."""
    amount, limit = value.get("value"), bound.get("value")
    if not isinstance(amount, int | Decimal) or not isinstance(limit, int | Decimal):
        return
    if (value.get("system"), value.get("code")) != (bound.get("system"), bound.get("code")):
        return
    if (amount < limit) if is_min else (amount > limit):
        report("value", f"The value in the instance ({amount}) is {'less' if is_min else 'greater'} than the "
               f"specified {'minimum' if is_min else 'maximum'} value ({limit})")
