"""Shared HL7v3 building blocks: hardened XML reading, the datatype mappers (II, CD, PQ, TS, PN, AD, TEL,
nullFlavor) and the OID -> URI tables. Every HL7v3 adapter maps datatypes through these, never on its own."""
