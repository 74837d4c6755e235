"""MLLP framing (HL7 v2 minimal lower layer protocol): <VT> message <FS><CR>. Accepted over HTTP bodies too."""

from __future__ import annotations

START, END = b"\x0b", b"\x1c\x0d"


def frame(message: bytes) -> bytes:
    return START + message + END


def unframe(raw: bytes) -> bytes:
    """The message inside one MLLP frame, or the bytes as they are when they are not framed. A frame that is
    opened but not closed (or closed but not opened) is returned as is: the parser then rejects it."""
    stripped = raw.strip(b" \t\r\n")
    if stripped.startswith(START) and (stripped.endswith(END) or stripped.endswith(b"\x1c")):
        return stripped[1:].removesuffix(b"\x0d").removesuffix(b"\x1c")
    return raw
