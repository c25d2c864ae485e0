"""File names as text the case can store and a terminal can print, whatever bytes they hold.

POSIX file names are bytes. Python gives a name that is not valid UTF-8 (e.g. b"\\xff.jpg")
as a str with lone surrogates (os.fsdecode, PEP 383), which SQLite cannot store
(UnicodeEncodeError) and a UTF-8 terminal cannot print. `storable` writes each such byte
as a backslash escape (b"\\xff" -> the four characters ``\\xff``), as Python's own
"backslashreplace" does; every other text is returned unchanged, so ordinary names are
stored exactly as before. The case uses it for every path it stores or looks up, so a
resumed scan finds such a file again.

The mapping is not one-to-one in theory: a file whose name literally holds the characters
``\\xff`` is stored like one holding the byte 0xff. Both in one folder would share a record.
"""

from __future__ import annotations

# Control characters shown as escapes in one-line messages (a newline in a name must not split a line).
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def storable(text: str) -> str:
    """`text` with lone surrogates written as backslash escapes of the bytes they stand for; else unchanged."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:  # surrogates from undecodable bytes (PEP 383): escape the original bytes
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # other lone surrogates: escape the code points
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def printable(text: str) -> str:
    """`storable(text)` with control characters (newline, tab, ...) as escapes: fit for one line of output."""
    return storable(text).translate(_CONTROL)
