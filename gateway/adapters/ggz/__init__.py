"""The ggz adapter: Basisgegevens GGZ 2.x (FHIR STU3) from mental health care -> R4 nl-core, every resource
labelled restricted / psychiatry so that the consent stage withholds it from readers outside the ggz."""

from gateway.adapters.ggz.adapter import translate_ggz
from gateway.adapters.ggz.labels import GGZ_LABELS, label_ggz

__all__ = ["GGZ_LABELS", "label_ggz", "translate_ggz"]
