"""The VVT adapter: eOverdracht 4.x (FHIR STU3, zib2017) from nursing homes and home care -> R4 nl-core.
Single resources, Bundles and the Task + Composition set go through the shared STU3 converter."""

from gateway.adapters.vvt.adapter import translate_vvt

__all__ = ["translate_vvt"]
