"""Care capacity: the zcc capacity model as FHIR HealthcareService/Schedule/Slot, feeds, aggregates,
`$find-capacity` and live updates. `gateway.capacity.routes.register(app, services)` wires it."""
