"""Request limits that keep one client (or one hostile request) from exhausting a gateway instance:
per-client rate limiting (429 + Retry-After), a deadline for reading request bodies (slow-body clients), and
size limits on the resources written. Each limit is configured in `gateway.settings.Settings`."""
