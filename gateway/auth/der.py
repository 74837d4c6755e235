"""A deliberately tiny, strict DER reader for the two SAN otherName values the UZI register uses.

`cryptography` hands otherName values over as raw DER; pulling in a full ASN.1 library for an IA5String and a
two-field SEQUENCE is not worth a dependency. Only definite lengths and low tag numbers are accepted, and
trailing bytes are an error: a malformed certificate must fail, not be half-read."""

from __future__ import annotations

IA5_STRING = 0x16
UTF8_STRING = 0x0C
OBJECT_IDENTIFIER = 0x06
SEQUENCE = 0x30


class DerError(ValueError):
    pass


def read_tlv(data: bytes) -> tuple[int, bytes, bytes]:
    """(tag, content, remaining bytes) of the first element of `data`."""
    if len(data) < 2:
        raise DerError("truncated element")
    tag, first = data[0], data[1]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not expected here")
    if first < 0x80:
        length, offset = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise DerError("unsupported or truncated length")
        length = int.from_bytes(data[2 : 2 + count], "big")
        if length < 0x80 or data[2] == 0:
            raise DerError("length not in minimal (DER) form")
        offset = 2 + count
    if len(data) < offset + length:
        raise DerError("element longer than its data")
    return tag, data[offset : offset + length], data[offset + length :]


def read_single(data: bytes, expected_tag: int) -> bytes:
    """The content of `data`, which must be exactly one element with `expected_tag`."""
    tag, content, rest = read_tlv(data)
    if tag != expected_tag or rest:
        raise DerError(f"expected exactly one element with tag 0x{expected_tag:02x}")
    return content


def read_sequence(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs inside a DER SEQUENCE that makes up all of `data`."""
    content = read_single(data, SEQUENCE)
    elements = []
    while content:
        tag, value, content = read_tlv(content)
        elements.append((tag, value))
    return elements


def decode_ia5(content: bytes) -> str:
    if any(byte > 0x7F for byte in content):
        raise DerError("IA5String holds a non-ASCII byte")
    return content.decode("ascii")


def decode_oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise DerError("truncated OBJECT IDENTIFIER")
    arcs: list[int] = []
    value, arc_start = 0, True
    for byte in content:
        if arc_start and byte == 0x80:
            raise DerError("OBJECT IDENTIFIER arc not in minimal form")
        value = (value << 7) | (byte & 0x7F)
        arc_start = not byte & 0x80
        if arc_start:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])
