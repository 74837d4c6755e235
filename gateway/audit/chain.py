"""The hash chain: each event's hash covers its predecessor's hash and its own canonical JSON (RFC 8785),
so changing, removing or reordering any stored event breaks every later link. Verification recomputes the
chain and reports the first broken link."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.audit.jcs import CanonicalizationError, canonicalize

GENESIS = "0" * 64


def link_hash(prev_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


@dataclass(frozen=True)
class ChainRow:
    seq: int
    event_id: str
    body: bytes
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class BrokenLink:
    seq: int | None
    event_id: str | None
    problem: str


@dataclass(frozen=True)
class Verification:
    count: int
    last_hash: str
    broken: BrokenLink | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(
    rows: Iterable[ChainRow], head: tuple[int, str] | None = None, start: tuple[int, str] = (0, GENESIS)
) -> Verification:
    """`rows` in seq order; `head` = (count, last hash) as recorded by the writer, to detect a cut-off tail;
    `start` = (events before the first row, hash they end with): a signed purge anchor, or the genesis."""
    count, expected = start
    last_seq = None
    for row in rows:
        count += 1
        if row.prev_hash != expected:
            return Verification(count, expected, BrokenLink(row.seq, row.event_id, "predecessor link does not match"))
        try:
            canonical = canonicalize(json.loads(row.body))
        except (ValueError, CanonicalizationError):
            return Verification(count, expected, BrokenLink(row.seq, row.event_id, "stored event is not valid JSON"))
        if canonical != row.body:
            return Verification(count, expected, BrokenLink(row.seq, row.event_id, "stored event is not canonical"))
        if link_hash(row.prev_hash, row.body) != row.hash:
            return Verification(count, expected, BrokenLink(row.seq, row.event_id, "event hash does not match content"))
        expected, last_seq = row.hash, row.seq
    if head is not None and (head[0] != count or head[1] != expected):
        problem = (
            f"chain head records {head[0]} events, found {count}: events after seq {last_seq} are missing or extra"
        )
        return Verification(count, expected, BrokenLink(last_seq, None, problem))
    return Verification(count, expected, None)
