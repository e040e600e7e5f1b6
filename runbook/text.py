"""Text shown to a person, made safe and short: terminal escapes and control characters out, long
lines cut, values clipped and quoted. A leaf: it imports nothing of the project, so errors can use it.
"""

from __future__ import annotations

import re
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# Invisible characters that change how text reads: bidi embeddings, overrides and isolates (a node
# could make `ok` display as `ko`, or hide part of a line), zero-width spaces and joiners, the BOM.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


MAX_LINE = 2000  # characters of one line shown; the rest is cut, with a marker saying how much


def clean(text: str, max_line: int = MAX_LINE) -> str:
    """Text from a node made safe to show: no terminal escape sequences, control characters, bidi
    controls or zero-width characters (newlines and tabs stay), and no line longer than `max_line`."""
    return cut_long_lines(_INVISIBLE.sub("", _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n")))), max_line)


def cut_long_lines(text: str, limit: int = MAX_LINE) -> str:
    """Each line of at most `limit` characters; a longer one ends in `… [N more characters cut]`."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    return "\n".join(line if len(line) <= limit else f"{line[:limit]}… [{len(line) - limit:,} more characters cut]" for line in lines)


def clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def show(value: Any) -> str:
    """A short, safe rendering of any value for a message (huge ints and deep nesting included)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} too large to show>"
    return clip(text)
