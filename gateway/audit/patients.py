"""Find the patients a BSN belongs to, through the search index (for the access report)."""

from __future__ import annotations

from sqlalchemy import Connection

from gateway.store.lookups import patient_ids_with_identifier

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"


def patients_with_bsn(connection: Connection, bsn: str) -> list[str]:
    return patient_ids_with_identifier(connection, BSN_SYSTEM, bsn)


def valid_bsn(bsn: str) -> bool:
    """Nine digits passing the BSN eleven test (weights 9..2 and -1)."""
    if len(bsn) != 9 or not bsn.isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(bsn[:8], range(9, 1, -1), strict=True))
    return (total - int(bsn[8])) % 11 == 0
