"""A parsed HL7v2 message in one regular shape: segment -> fields (1-based, as the standard numbers them) ->
repetitions -> components -> sub-components, every leaf already unescaped. Mappers `take` the fields they
use, so that every other non-empty field can be listed as unmapped."""

from __future__ import annotations

from dataclasses import dataclass, field

Repetition = tuple[tuple[str, ...], ...]  # components -> sub-components
Field = tuple[Repetition, ...]  # repetitions
MAX_VALUE = 200


@dataclass(frozen=True)
class Separators:
    field: str
    component: str
    repetition: str
    escape: str
    subcomponent: str

    @property
    def encoding_characters(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent


@dataclass
class Segment:
    id: str
    position: int  # 1-based position in the message
    fields: list[Field]  # fields[0] is the segment id, fields[n] is field n
    raw_fields: list[str]  # the fields as received (escaped), for the unmapped listing
    used: set[int] = field(default_factory=set)

    def take(self, number: int) -> Field:
        """Field `number` (marked as used); an empty tuple when absent or empty."""
        self.used.add(number)
        return self.peek(number)

    def peek(self, number: int) -> Field:
        if number >= len(self.fields):
            return ()
        return tuple(rep for rep in self.fields[number] if any(any(sub for sub in comp) for comp in rep))

    def value(self, number: int, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
        """One leaf of field `number` (marked as used), '' when absent."""
        return leaf(self.take(number), component, subcomponent, repetition)

    def unused(self) -> list[tuple[str, str]]:
        """(location, value as received) of every non-empty field no mapper took."""
        return [(f"{self.id}[{self.position}]-{number}", self.raw_fields[number][:MAX_VALUE])
                for number in range(1, len(self.fields)) if number not in self.used and self.peek(number)]


def leaf(value: Field, component: int = 1, subcomponent: int = 1, repetition: int = 1) -> str:
    if len(value) < repetition:
        return ""
    rep = value[repetition - 1]
    if len(rep) < component or len(rep[component - 1]) < subcomponent:
        return ""
    return rep[component - 1][subcomponent - 1]


def component(rep: Repetition, number: int, subcomponent: int = 1) -> str:
    if len(rep) < number or len(rep[number - 1]) < subcomponent:
        return ""
    return rep[number - 1][subcomponent - 1]


@dataclass
class Hl7v2Message:
    separators: Separators
    segments: list[Segment]
    charset: str

    @property
    def header(self) -> Segment:
        return self.segments[0]

    @property
    def message_type(self) -> tuple[str, str, str]:
        """(message code, trigger event, structure) of MSH-9, e.g. ('ADT', 'A04', 'ADT_A01')."""
        value = self.header.take(9)
        return leaf(value, 1), leaf(value, 2), leaf(value, 3)

    @property
    def control_id(self) -> str:
        return self.header.value(10)

    @property
    def version(self) -> str:
        return self.header.value(12)

    def all(self, segment_id: str) -> list[Segment]:
        return [s for s in self.segments if s.id == segment_id]

    def first(self, segment_id: str) -> Segment | None:
        return next((s for s in self.segments if s.id == segment_id), None)

    def unmapped(self) -> list[tuple[str, str]]:
        return [item for segment in self.segments for item in segment.unused()]
