"""HL7v2 escape sequences (v2.5 chapter 2.7): strict, so that nothing is dropped or guessed silently.

Separators (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\) become the characters they stand for, \\Xhh..\\ the bytes it spells in
the message's character set, formatted-text line breaks (\\.br\\, \\.sp n\\) a newline; highlighting (\\H\\,
\\N\\) and the other formatting commands carry no content and are dropped; a locally defined \\Z..\\ sequence is
kept as received. Anything else (an unknown or unterminated sequence, bad hex) is an error."""

from __future__ import annotations

import re

from gateway.adapters.hl7v2.errors import Hl7v2Error
from gateway.adapters.hl7v2.message import Separators

_FORMATTING = re.compile(r"\.(in|ti|sk|ce|fi|nf)[+-]?\d*")
_SPACE = re.compile(r"\.sp[+]?(\d*)")
_HEX = re.compile(r"X((?:[0-9A-Fa-f]{2})+)")


def unescape(text: str, separators: Separators, charset: str) -> str:
    escape = separators.escape
    if escape not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        start = text.find(escape, position)
        if start < 0:
            out.append(text[position:])
            break
        out.append(text[position:start])
        end = text.find(escape, start + 1)
        if end < 0:
            raise Hl7v2Error(f"unterminated escape sequence at '{text[start:start + 20]}'")
        out.append(_sequence(text[start + 1:end], separators, charset))
        position = end + 1
    return "".join(out)


def _sequence(sequence: str, separators: Separators, charset: str) -> str:
    simple = {"F": separators.field, "S": separators.component, "T": separators.subcomponent,
              "R": separators.repetition, "E": separators.escape, "H": "", "N": "", ".br": "\n"}
    if sequence in simple:
        return simple[sequence]
    hex_match = _HEX.fullmatch(sequence)
    if hex_match:
        try:
            return bytes.fromhex(hex_match.group(1)).decode(charset)
        except UnicodeDecodeError:
            raise Hl7v2Error(f"escape \\{sequence}\\ is not valid {charset}") from None
    space = _SPACE.fullmatch(sequence)
    if space:
        return "\n" * int(space.group(1) or 1)
    if _FORMATTING.fullmatch(sequence):
        return ""
    if sequence.startswith("Z"):
        return f"{separators.escape}{sequence}{separators.escape}"
    raise Hl7v2Error(f"unknown escape sequence \\{sequence}\\")


def escape(text: str, separators: Separators) -> str:
    """The inverse for the separators (used to write ACKs and test messages)."""
    table = {separators.escape: "E", separators.field: "F", separators.component: "S",
             separators.subcomponent: "T", separators.repetition: "R"}
    out = []
    for char in text:
        if char in table:
            out.append(f"{separators.escape}{table[char]}{separators.escape}")
        elif char == "\n":
            out.append(f"{separators.escape}.br{separators.escape}")
        elif char == "\r":
            out.append(f"{separators.escape}X0D{separators.escape}")
        else:
            out.append(char)
    return "".join(out)
