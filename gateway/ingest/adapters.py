"""Which adapter translates which source kind. An adapter is a function (raw bytes, submitter) -> translation
(see gateway.adapters.hap.HapTranslation) that raises TranslationError when it cannot translate at all.

`submitter` is the URA of the organisation the submitting client acts for. Identifiers that are only unique
at their sender (STU3 logical ids) are namespaced by it, so two nursing homes that both send `Observation/1`
never write the same resource. HL7v3 (OID-rooted ids) and HL7v2 (MSH-4 sending facility) carry their own
namespace in the message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.adapters.ggz import translate_ggz
from gateway.adapters.hap import translate_hap
from gateway.adapters.rav import translate_rav
from gateway.adapters.vvt import translate_vvt

SOURCES = ("hap", "rav", "vvt", "ggz")
Adapter = Callable[[bytes, str], Any]

ADAPTERS: dict[str, Adapter] = {
    "hap": lambda raw, _submitter: translate_hap(raw),
    "rav": lambda raw, _submitter: translate_rav(raw),
    "vvt": translate_vvt,
    "ggz": translate_ggz,
}
