"""Normalisations shared by indexing and querying, so both sides of a comparison agree.

- strings: FHIR string search is case- and accent-insensitive, so both the index and the query value are
  lower-cased and stripped of combining marks (`Chalmérs` -> `chalmers`);
- numbers: a decimal's precision implies a range (`1.50` -> [1.495, 1.505]) used by `eq` and `ne`.
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal, InvalidOperation
from functools import lru_cache


@lru_cache(maxsize=65536)
def normalize_text(value: str) -> str:
    """Lower case without accents: the form `idx_string.value` and `idx_token.text` are stored in.

    Cached: names, cities and code displays repeat across resources, and indexing calls this for each."""
    if value.isascii():
        return " ".join(value.lower().split())
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())


def parse_decimal(value: object) -> Decimal | None:
    """A FHIR decimal/integer from JSON (Decimal, int) or from a query string; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() and value.strip() else None
    return None


def precision_range(value: Decimal) -> tuple[float, float]:
    """[low, high] implied by the number of significant digits: half a unit in the last place either side."""
    exponent = value.as_tuple().exponent
    half = Decimal(5).scaleb(int(exponent) - 1)
    return float(value - half), float(value + half)
