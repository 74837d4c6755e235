"""The ingestion pipeline every adapter shares: raw message kept first, translated, validated, written in one
transaction Bundle through the FHIR pipeline (so auth, consent and audit apply), with one Provenance, and a
record that says what happened (`accepted`, `rejected` with an OperationOutcome, or `duplicate`)."""
