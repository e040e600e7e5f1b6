"""Small readers of parsed corosync.conf entries: a section merged, its last value, yes/no and numbers.
"""

from __future__ import annotations

from typing import Any

from runbook.conf.parse import Entry

_TRUE = ("yes", "on", "true", "1")


_FALSE = ("no", "off", "false", "0")


def merged_section(entries: list[Entry], name: str) -> list[Entry]:
    """Corosync merges repeated top-level sections (two `totem {}` blocks act as one)."""
    return [pair for key, value in entries if key == name and isinstance(value, list) for pair in value]


def last_value(entries: list[Entry], key: str) -> str | None:
    values = [v for k, v in entries if k == key and isinstance(v, str)]
    return values[-1] if values else None


def sections_named(entries: list[Entry], key: str) -> list[list[Entry]]:
    return [v for k, v in entries if k == key and isinstance(v, list)]


def yes_no(text: str | None) -> Any:
    """A Corosync yes/no word as a bool; anything else is returned as is, for validation to name."""
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return text


def as_int(text: str | None) -> Any:
    if text is None:
        return None
    stripped = text.strip()
    return int(stripped) if stripped.isascii() and stripped.isdigit() and len(stripped) < 20 else text
