"""The STU3 -> R4 mapping tables (data files in `maps/`), loaded once."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any


@cache
def _table(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("maps", name).read_text(encoding="utf-8"))


def profile_map() -> dict[str, str | None]:
    return _table("profiles.json")["profiles"]


def profile_defaults() -> dict[str, dict[str, Any]]:
    return _table("profiles.json")["defaults"]


def restructure_rules() -> dict[str, dict[str, Any]]:
    """R4 profile -> the zib2017 -> zib2020 restructurings of `zib.py` and their data."""
    return _table("profiles.json")["restructure"]


@lru_cache(maxsize=256)  # keyed by what senders claim: bounded
def profile_element_rules(claimed: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Element rules that hold only for resources claiming one of these STU3 profiles (zib2017 put a zib
    concept on an element that R4 removed or gave another meaning), over the general element rules."""
    rules = dict(element_rules())
    for profile in claimed:
        rules.update(_table("elements.json")["by_profile"].get(profile, {}))
    return rules


def extension_rules() -> dict[str, dict[str, Any]]:
    return _table("extensions.json")["extensions"]


def element_rules() -> dict[str, dict[str, Any]]:
    return _table("elements.json")["elements"]


def r4_code_system(uri: str) -> str:
    """The R4 URI of a STU3 code system URI (unchanged when it did not move)."""
    systems = _table("systems.json")
    if uri in systems["exact"]:
        return systems["exact"][uri]
    for old, new in systems["prefixes"].items():
        if uri.startswith(old):
            return new + uri[len(old):]
    return uri


def datatype_defaults() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _table("elements.json")["datatypes"].items() if not k.startswith("_")}


def recoded(system: str, code: str) -> tuple[str, str] | None:
    """The (system, code) a miscoded STU3 coding belongs to in R4, if it is a known one."""
    target = _table("systems.json")["recode"].get(f"{system}|{code}")
    if target is None:
        return None
    new_system, _, new_code = target.rpartition("|")
    return new_system, new_code
