"""Profile validation of FHIR R4 resources (see `Validator`)."""

from conformance.validator.issues import Issue, operation_outcome
from conformance.validator.validator import Validator

__all__ = ["Issue", "Validator", "operation_outcome"]
