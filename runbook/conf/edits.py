"""Pure text edits of the small files the chapter changes by hand: rc.local and /etc/default/corosync.

Pure functions so the tests need no SSH; each returns the new text and a sentence saying what it did.
"""

from __future__ import annotations

import re

CFGTOOL_LINE = "/usr/sbin/corosync-cfgtool -r"
NEW_RC_LOCAL = f"#!/bin/sh -e\n#\n# rc.local: run at the end of each multiuser runlevel.\n\n{CFGTOOL_LINE}\n\nexit 0\n"

_EXIT_0 = re.compile(r"^\s*exit\s+0\s*(#.*)?$")
_START = re.compile(r"^(\s*)START\s*=\s*(\S*)\s*$")


def has_cfgtool_line(text: str) -> bool:
    """True when an uncommented `corosync-cfgtool -r` runs before the script's `exit 0`."""
    for line in text.splitlines():
        if _EXIT_0.match(line):
            return False
        stripped = line.strip()
        if not stripped.startswith("#") and re.search(r"(^|/)corosync-cfgtool\s+-r\b", stripped):
            return True
    return False


def with_cfgtool_line(text: str | None) -> tuple[str, str]:
    """rc.local with the chapter's line just before the last top-level `exit 0` (created if missing)."""
    if text is None:
        return NEW_RC_LOCAL, "created /etc/rc.local with the line before exit 0"
    if has_cfgtool_line(text):
        return text, "the line is already there"
    lines = text.splitlines()
    exits = [i for i, line in enumerate(lines) if _EXIT_0.match(line) and not line.startswith((" ", "\t"))]
    if exits:
        at = exits[-1]
        lines.insert(at, CFGTOOL_LINE)
        how = f"added the line before `exit 0` (line {at + 1})"
    else:
        lines.append(CFGTOOL_LINE)
        how = "rc.local has no `exit 0`; added the line at the end"
    return "\n".join(lines) + "\n", how


def start_setting(text: str | None) -> str | None:
    """The value of the last START= line, or None when the file has no such line (e.g. Debian 12)."""
    value = None
    for line in (text or "").splitlines():
        match = _START.match(line)
        if match:
            value = match.group(2).strip("\"'")
    return value


def with_start_yes(text: str) -> tuple[str, str]:
    """Turn every START=... line into START=yes, keeping everything else as it is."""
    if start_setting(text) == "yes" and all(
        _START.match(line).group(2).strip("\"'") == "yes" for line in text.splitlines() if _START.match(line)
    ):
        return text, "START=yes is already set"
    out = []
    for line in text.splitlines():
        match = _START.match(line)
        out.append(f"{match.group(1)}START=yes" if match else line)
    return "\n".join(out) + "\n", f"START={start_setting(text) or ''} -> START=yes"
