"""The RAV adapter: messages of ambulance services (regionale ambulancevoorzieningen) -> R4 nl-core resources.
HL7 v2.5 ADT^A04/A08 (ride registration) and ORU^R01 (vital signs), and the Acute Zorg FHIR R4 referral message
(ambulance -> huisartsenpost, event 145). Entry point: `translate_rav(raw)`."""

from gateway.adapters.rav.adapter import translate_rav
from gateway.adapters.rav.translation import RavTranslation

__all__ = ["RavTranslation", "translate_rav"]
