"""The shared STU3 -> R4 converter (zib2017 -> zib2020 / nl-core), used by the VVT and ggz adapters.
Entry points: `translate_stu3(raw, source)` for whole messages, `Stu3ToR4` for one resource."""

from gateway.adapters.stu3.convert import Conversion, Stu3ToR4, UnknownResourceType
from gateway.adapters.stu3.model import Stu3Translation, Unmapped
from gateway.adapters.stu3.translate import translate_stu3

__all__ = ["Conversion", "Stu3ToR4", "Stu3Translation", "UnknownResourceType", "Unmapped", "translate_stu3"]
