"""Patient summaries for zcc applications: the `$summary` operation (a `document` Bundle in the NL-PS direction),
assembled from the store under consent. Entry point: `gateway.summary.operation.summary_operation`."""
