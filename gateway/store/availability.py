"""Which database failures mean "the database is unavailable right now" (server down or restarting, network
gone, SQLite locked by another process past the busy timeout, disk full) rather than a bug.

Those are answered `503 Service Unavailable` with `Retry-After` and an OperationOutcome that says what is
wrong, fast; the connection pool reconnects by itself once the database is back (pre-ping). Anything else
stays a 500."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

RETRY_AFTER_SECONDS = 5

_REASONS = {
    "lock timeout": "a database lock was not granted within the configured timeout (ZCC_DB_TIMEOUT)",
    "could not extend file": "the database disk is full",
    "no space left on device": "the database disk is full",
    "database is locked": "the database is locked by another process",
    "database or disk is full": "the database disk is full",
    "disk i/o error": "the database disk failed (I/O error)",
    "unable to open database": "the database file cannot be opened",
}


def unavailable_reason(error: BaseException) -> str | None:
    """A human reason when `error` means the database cannot be used now; None for any other error."""
    if isinstance(error, PoolTimeout):
        return "all database connections are busy"
    if not isinstance(error, DBAPIError):
        return None
    message = str(error.orig).lower() if error.orig is not None else str(error).lower()
    for fragment, reason in _REASONS.items():
        if fragment in message:
            return reason
    if error.connection_invalidated or isinstance(error, OperationalError):
        return "the database server cannot be reached"
    return None
