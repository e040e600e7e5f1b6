"""The cluster file's `backups` section: how many runbook backups of a replaced file each node keeps.

    backups:
      keep: 5      # newest PATH.runbook-<UTC>-<run>.bak copies kept per file (1..1000); default 5

The file as it was before the runbook first replaced it (`PATH.orig-runbook`) is kept apart from
these and never pruned. Parsed here, on its own, so the rest of the cluster file's validation does
not need to know about it; `runbook.model.load` calls `parse_backups` and keeps the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from runbook.text import show

DEFAULT_KEEP = 5
MAX_KEEP = 1000
KEYS = ("keep",)


@dataclass(frozen=True)
class Backups:
    keep: int = DEFAULT_KEEP

    def to_parameters(self) -> dict[str, int]:
        return {"keep": self.keep}


def parse_backups(value: Any) -> tuple[Backups | None, list[str]]:
    """(the section, []) or (None, problems), each problem naming its field: `backups.keep: ...`."""

    if value is None:
        return Backups(), []
    if not isinstance(value, Mapping):
        return None, [f"backups: {show(value)} is not a mapping (expected keys: {', '.join(KEYS)})"]
    problems = [
        f"backups.{key if isinstance(key, str) else show(key)}: unknown key; known keys: {', '.join(KEYS)}"
        for key in value
        if key not in KEYS
    ]
    keep = value.get("keep", DEFAULT_KEEP)
    if keep is None:
        keep = DEFAULT_KEEP
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP:
        problems.append(
            f"backups.keep: {show(keep)} must be a whole number of backups from 1 to {MAX_KEEP} "
            "(the original file, PATH.orig-runbook, is kept besides)"
        )
    return (None, problems) if problems else (Backups(keep=keep), [])
