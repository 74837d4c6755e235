"""SMART App Launch v2 scopes for backend services: parsing, granting and checking.

Grammar accepted (anything else is rejected, never "best-effort" interpreted, because a scope that is
read loosely is a scope that grants more than the client was given):

    system/<ResourceType | *>.<permissions>[?<param>=<value>(&<param>=<value>)*]

where <permissions> is a non-empty subsequence of ``c r u d s`` in exactly that order (``rs``, ``cud``,
``cruds``; not ``sr``, ``rr`` or ``x``). SMART v1 forms (``.read``, ``.write``, ``.*``) and the ``patient/``
and ``user/`` contexts are rejected: backend services act for a system, not for a user or a launch.

A set of scopes is a union (SMART v2): access is allowed when any one scope covers it. A scope with a query
restriction covers only the resources matching that query; `access_for` reports those restrictions so that
the REST layer can enforce them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

PERMISSIONS = "cruds"
CONTEXT = "system"
WILDCARD = "*"

_SCOPE = re.compile(r"system/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<perms>[a-z]{1,5})(?:\?(?P<query>.+))?")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.:]*$")


class ScopeError(ValueError):
    """A scope string does not follow the SMART v2 backend-services grammar."""


@dataclass(frozen=True, order=True)
class Scope:
    """One SMART v2 scope. `query` holds the restriction as sorted (name, value) pairs (AND-ed)."""

    resource_type: str
    permissions: str
    query: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        text = f"{CONTEXT}/{self.resource_type}.{self.permissions}"
        if self.query:
            text += "?" + urlencode(list(self.query), safe="|:/,")
        return text

    def covers(self, resource_type: str, interaction: str) -> bool:
        """True when this scope (ignoring its query restriction) covers the interaction on the type."""
        return self.resource_type in (WILDCARD, resource_type) and interaction in self.permissions

    @property
    def restricted(self) -> bool:
        return bool(self.query)


def parse_scope(text: str) -> Scope:
    """Parse one scope string; raises ScopeError with a reason a client can act on."""
    match = _SCOPE.fullmatch(text)
    if match is None:
        raise ScopeError(f"scope {text!r} is not of the form system/<Type|*>.<cruds>[?query]")
    permissions = match.group("perms")
    if not _is_ordered_subsequence(permissions):
        raise ScopeError(f"scope {text!r}: permissions must be letters from 'cruds', each once, in that order")
    return Scope(match.group("type"), permissions, _parse_query(text, match.group("query")))


def parse_scopes(text: str) -> list[Scope]:
    """Parse a space-separated scope parameter (RFC 6749 §3.3). Duplicates collapse; order is kept."""
    if text != text.strip() or not text:
        raise ScopeError("the scope parameter must be a non-empty list separated by single spaces")
    parts = text.split(" ")
    if any(not part for part in parts):
        raise ScopeError("the scope parameter must be separated by single spaces")
    return _unique(parse_scope(part) for part in parts)


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(scope) for scope in scopes)


def grant(requested: Sequence[Scope], registered: Sequence[Scope]) -> list[Scope]:
    """What a client gets: the intersection of what it asked for and what its registration allows.

    Each requested scope is intersected with each registered scope; non-empty intersections are granted.
    The registration is a ceiling: asking for `system/*.cruds` when registered for `system/Patient.rs`
    yields `system/Patient.rs`, never more."""
    granted: list[Scope] = []
    for asked in requested:
        for allowed in registered:
            common = _intersect(asked, allowed)
            if common is not None:
                granted.append(common)
    return _unique(granted)


@dataclass(frozen=True)
class Access:
    """The outcome of checking scopes for one resource type and interaction.

    `allowed` False: no scope covers it. `restrictions` empty with `allowed` True: unrestricted access.
    Otherwise each restriction is one alternative query (OR between them, AND inside one) that a
    resource must match to be covered."""

    allowed: bool
    restrictions: tuple[tuple[tuple[str, str], ...], ...] = ()

    @property
    def unrestricted(self) -> bool:
        return self.allowed and not self.restrictions


def access_for(scopes: Iterable[Scope], resource_type: str, interaction: str) -> Access:
    """Combine the scopes covering `interaction` ('c', 'r', 'u', 'd' or 's') on `resource_type`."""
    if interaction not in PERMISSIONS or len(interaction) != 1:
        raise ValueError(f"interaction must be one of c, r, u, d, s, not {interaction!r}")
    covering = [scope for scope in scopes if scope.covers(resource_type, interaction)]
    if not covering:
        return Access(False)
    if any(not scope.restricted for scope in covering):
        return Access(True)
    return Access(True, tuple(sorted({scope.query for scope in covering})))


def allows(scopes: Iterable[Scope], resource_type: str, interaction: str) -> bool:
    """True when at least one scope covers the interaction (possibly with a query restriction)."""
    return access_for(scopes, resource_type, interaction).allowed


def _is_ordered_subsequence(permissions: str) -> bool:
    position = 0
    for letter in permissions:
        found = PERMISSIONS.find(letter, position)
        if found < 0:
            return False
        position = found + 1
    return True


def _parse_query(text: str, query: str | None) -> tuple[tuple[str, str], ...]:
    if query is None:
        return ()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError as error:
        raise ScopeError(f"scope {text!r}: malformed query restriction") from error
    names = [name for name, _ in pairs]
    for name, value in pairs:
        if not _PARAM_NAME.fullmatch(name) or not value:
            raise ScopeError(f"scope {text!r}: query restriction needs name=value pairs")
    if len(set(names)) != len(names):
        raise ScopeError(f"scope {text!r}: a query restriction names each parameter once")
    return tuple(sorted(pairs))


def _intersect(asked: Scope, allowed: Scope) -> Scope | None:
    if asked.resource_type == WILDCARD:
        resource_type = allowed.resource_type
    elif allowed.resource_type in (WILDCARD, asked.resource_type):
        resource_type = asked.resource_type
    else:
        return None
    permissions = "".join(p for p in PERMISSIONS if p in asked.permissions and p in allowed.permissions)
    if not permissions:
        return None
    query = dict(allowed.query)
    for name, value in asked.query:
        if query.get(name, value) != value:
            return None  # both restrict the same parameter differently: nothing satisfies both for sure
        query[name] = value
    return Scope(resource_type, permissions, tuple(sorted(query.items())))


def _unique(scopes: Iterable[Scope]) -> list[Scope]:
    seen: dict[Scope, None] = {}
    for scope in scopes:
        seen.setdefault(scope, None)
    return list(seen)
