"""Files an interrupted run staged beside their targets and never put in place: found and removed.

The executor stages each new file as `.NAME.runbook-TAG-INDEX` beside its target, and an atomic
write as `.NAME.runbook-XXXXXX` (runbook.engine.executor.staged_path, the executor's staging); both are removed
when the run ends, also on failure. A controller killed mid-write (SIGKILL, a lost power supply)
leaves them, and they would stay through every later run. Preflight lists them on every node; a
run removes them (it holds every node's lock, so no other run is staging there now) and says so;
a plan says it would.

Only names of exactly that form, regular files, in the directories of the files the runbook writes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH, DEFAULTS_PATH, RC_LOCAL_PATH

SECTION = "staged_leftovers"
TARGETS = (CONF_PATH, AUTHKEY_PATH, RC_LOCAL_PATH, DEFAULTS_PATH)


def _staged_glob(path: str) -> str:
    directory, _, name = path.rpartition("/")
    return f"{directory}/.{name}.runbook-*"


SCRIPT = (
    "for f in " + " ".join(_staged_glob(p) for p in TARGETS) + "; do "
    '[ -f "$f" ] && [ ! -L "$f" ] && printf "%s\\n" "$f"; done; true'
)

_STAGED = re.compile(
    "^(?:" + "|".join(re.escape(_staged_glob(p).removesuffix("*")) for p in TARGETS) + r")[A-Za-z0-9]+(?:-[0-9]+)?$"
)


def parse_leftovers(text: str) -> tuple[str, ...]:
    """Pure: the staged files SCRIPT listed, only those of the runbook's own form."""
    return tuple(line for line in (l.strip() for l in text.splitlines()) if _STAGED.match(line))


def remove_script(paths: Sequence[str]) -> str:
    """Pure: remove exactly these files (never a pattern), and list what is still there."""
    quoted = " ".join(shlex.quote(p) for p in paths)
    return f"rm -f -- {quoted}; for f in {quoted}; do [ -e \"$f\" ] && echo \"$f\"; done; true"


def note(found: dict[str, tuple[str, ...]], check: bool) -> str | None:
    """Pure: the report's line for what was (or would be) removed; None when there was nothing."""
    found = {node: paths for node, paths in found.items() if paths}
    if not found:
        return None
    listed = "; ".join(f"{node}: {', '.join(paths)}" for node, paths in found.items())
    verb = "would remove" if check else "removed"
    return f"{verb} {sum(map(len, found.values()))} file(s) an interrupted run had staged and never put in place ({listed})"
