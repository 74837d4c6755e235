"""FHIRPath for the validator: fhirpathpy's parser and evaluator, compiled once per expression and cached,
with the FHIR-specific functions and variables it lacks (see `functions`) and its primitive handling fixed
(see `engine`).

    expression = compile_expression("name.given.exists()")
    expression.evaluate(patient, Environment(resource=patient))  -> [True]
"""

from conformance.fhirpath.engine import CompiledExpression, Environment, FhirPathError, compile_expression, evaluate

__all__ = ["CompiledExpression", "Environment", "FhirPathError", "compile_expression", "evaluate"]
