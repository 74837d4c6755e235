"""Which adapter translates which source kind. An adapter is a function raw bytes -> translation (see
gateway.adapters.hap.HapTranslation) that raises TranslationError when it cannot translate at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.adapters.ggz import translate_ggz
from gateway.adapters.hap import translate_hap
from gateway.adapters.rav import translate_rav
from gateway.adapters.vvt import translate_vvt

SOURCES = ("hap", "rav", "vvt", "ggz")
Adapter = Callable[[bytes], Any]

ADAPTERS: dict[str, Adapter] = {"hap": translate_hap}
ADAPTERS["rav"] = translate_rav
ADAPTERS["vvt"] = translate_vvt
ADAPTERS["ggz"] = translate_ggz
