"""The simple bed-status feed for systems that cannot speak FHIR: CSV or JSON rows of
(ura, location, category, total, free, timestamp) — parsed and checked row by row, so one bad row is
reported with its reason and the good rows still count."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from gateway.capacity.model import UnitKey, instant, parse_instant
from gateway.capacity.terms import CapacityTerms

REQUIRED = ("ura", "location", "category", "total", "free", "timestamp")
OPTIONAL = ("region", "location_name", "organization_name")
_URA = re.compile(r"^\d{8}$")
_LOCATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,63}$")
MAX_UNITS = 10_000


class FeedFormatError(ValueError):
    """The body is not CSV/JSON rows at all (as opposed to a bad row)."""


@dataclass(frozen=True)
class CapacityRow:
    key: UnitKey
    total: int
    free: int
    timestamp: str  # normalised UTC instant
    region: str | None = None
    location_name: str | None = None
    organization_name: str | None = None


@dataclass(frozen=True)
class RowError:
    index: int  # 0-based row number (data rows; the CSV header is not counted)
    field: str | None
    message: str


def parse_feed(raw: bytes, content_type: str | None) -> list[dict[str, Any]]:
    """Raw rows (dicts of strings/numbers) from a CSV or JSON body."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise FeedFormatError(f"the feed is not UTF-8: {error}") from None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind.endswith("json") or (not kind and text.lstrip().startswith(("[", "{"))):
        return _json_rows(text)
    return _csv_rows(text)


def _json_rows(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise FeedFormatError(f"invalid JSON: {error}") from None
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list):
        raise FeedFormatError("a JSON feed is an array of rows, or an object with a `rows` array")
    return [row if isinstance(row, dict) else {"__invalid__": row} for row in data]


def _csv_rows(text: str) -> list[dict[str, Any]]:
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [name.strip().lower() for name in (reader.fieldnames or [])]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise FeedFormatError(f"the CSV header lacks {', '.join(missing)} (needs {', '.join(REQUIRED)})")
    reader.fieldnames = header
    return [{k: (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in reader]


def check_row(index: int, raw: dict[str, Any], terms: CapacityTerms) -> CapacityRow | RowError:
    if "__invalid__" in raw:
        return RowError(index, None, "a row must be an object")
    for name in REQUIRED:
        if raw.get(name) in (None, ""):
            return RowError(index, name, f"'{name}' is required")
    ura, location, category = str(raw["ura"]), str(raw["location"]), str(raw["category"])
    if not _URA.match(ura):
        return RowError(index, "ura", f"'{ura}' is not a URA (8 digits)")
    if not _LOCATION.match(location):
        return RowError(index, "location", f"'{location}' is not a location code (letters, digits, ' ._/-', max 64)")
    if category not in terms.categories:
        hint = " (a group; report one of its categories)" if category in terms.groups else ""
        return RowError(index, "category", f"'{category}' is not a capacity category{hint}")
    counts: dict[str, int] = {}
    for name in ("total", "free"):
        value = raw[name]
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            return RowError(index, name, f"'{name}' must be a whole number ≥ 0, not {value!r}")
        counts[name] = int(value)
        if counts[name] > MAX_UNITS:
            return RowError(index, name, f"'{name}' is more than {MAX_UNITS}")
    if counts["free"] > counts["total"]:
        return RowError(index, "free", f"free ({counts['free']}) is more than total ({counts['total']})")
    try:
        timestamp = instant(parse_instant(str(raw["timestamp"])).astimezone(UTC))
    except ValueError as error:
        return RowError(index, "timestamp", f"'{raw['timestamp']}' is not a timestamp with a zone: {error}")
    region = raw.get("region") or None
    if region is not None and region not in terms.regions:
        return RowError(index, "region", f"'{region}' is not a ROAZ region code")
    return CapacityRow(UnitKey(ura, location, category), counts["total"], counts["free"], timestamp, region,
                       _text(raw.get("location_name")), _text(raw.get("organization_name")))


def _text(value: Any) -> str | None:
    return str(value)[:200] if value not in (None, "") else None

