"""The HAP adapter: HL7v3 messages of GP systems and huisartsenposten (professionele samenvatting, Ketenzorg)
-> R4 nl-core resources. Entry point: `translate_hap(raw)`."""

from gateway.adapters.hap.adapter import SUPPORTED_INTERACTIONS, translate_hap
from gateway.adapters.hap.model import HapTranslation, MappedResource, TranslationError

__all__ = ["SUPPORTED_INTERACTIONS", "HapTranslation", "MappedResource", "TranslationError", "translate_hap"]
