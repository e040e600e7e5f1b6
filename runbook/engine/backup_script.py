"""Backups of the files the runbook replaces on a node, as shell lines run under `set -e` there.

Names are unique and never reused (UTC to the microsecond, the run's id, created with O_EXCL), each
copy is checked against the file before the file is replaced, and the very first pre-runbook file
is kept forever as PATH.orig-runbook. Pure: used by the executor's staging and by the executor's staging.
"""

from __future__ import annotations

import os
import shlex

from runbook.local import RUN_ID_ENV

ORIGINAL_SUFFIX = ".orig-runbook"
SYMLINK_STATUS = 7
BACKUP_FAILED_STATUS = 6
_PROCESS_RUN_ID = os.urandom(4).hex()


def backup_stamp() -> str:
    """UTC with microseconds, from the controller's clock: `20261126T071502.123456Z`."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def run_id() -> str:
    """The run's id (`runbook run` sets $RUNBOOK_RUN_ID), else one per process; [0-9a-z] only."""
    given = "".join(c for c in os.environ.get(RUN_ID_ENV, "") if c.isascii() and c.isalnum())[:16]
    return given or _PROCESS_RUN_ID


def backup_lines(path: str, stamp: str, run: str, keep: int) -> list[str]:
    """Shell lines that keep what is at `path` (if anything) before it is replaced; run under `set -e`.

    - `PATH.orig-runbook`: the file as it was before the runbook first replaced it (or, where an
      older runbook left `PATH.runbook-YYYYmmddTHHMMSS` backups, the oldest of those). Made once,
      never replaced, never pruned.
    - `PATH.runbook-<UTC stamp>-<run id>.bak`: a copy per replacement. Created with O_EXCL (`set -C`):
      an existing name is never reused, a clash takes the next `-2`, `-3`, ... Only the newest `keep`
      of these are kept.

    Each copy is checked against the file (size, SHA-256) and synced; a copy that cannot be made
    whole (disk full) is removed and the write stops with exit 6, before the file is touched, so
    there is never a short or empty newest backup.
    """
    q = shlex.quote(path)
    base = shlex.quote(f"{path}.runbook-{stamp}-{run}")
    old_format = shlex.quote(f"{path}.runbook-") + "[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]"
    fail = (
        f'{{ echo "cannot keep a whole backup of {path} as $bak (is the disk full?); the file was left as it was" >&2;'
        f" exit {BACKUP_FAILED_STATUS}; }}"
    )
    return [
        f"if [ -e {q} ]; then",
        "export LC_ALL=C",
        # copy $1 to a new file $2: 3 when $2 exists, 1 when the copy is not whole (then removed)
        "rb_copy() {",
        '  ( set -C; : > "$2" ) 2>/dev/null || return 3',
        '  if cp -p -- "$1" "$2" 2>/dev/null && [ "$(wc -c < "$1")" -eq "$(wc -c < "$2")" ] \\',
        '     && [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ] && { sync -- "$2" 2>/dev/null || sync; }; then return 0; fi',
        '  rm -f -- "$2"; return 1',
        "}",
        f"orig={shlex.quote(path + ORIGINAL_SUFFIX)}; src={q}",
        f"for f in {old_format}; do [ -f \"$f\" ] && src=$f; break; done",
        'if [ ! -e "$orig" ] && [ ! -L "$orig" ]; then',
        '  if rb_copy "$src" "$orig"; then :; else rc=$?; bak=$orig; [ $rc -eq 3 ] || ' + fail + "; fi",
        "fi",
        f"bak={base}.bak; i=1",
        f'while :; do if rb_copy {q} "$bak"; then break; else rc=$?; fi; i=$((i + 1)); [ $rc -eq 3 ] && [ $i -le 100 ] || {fail}; bak={base}-$i.bak; done',
        f"set -- {shlex.quote(path + '.runbook-')}*.bak",
        f'n=$(($# - {int(keep)})); while [ "$n" -gt 0 ]; do rm -f -- "$1"; shift; n=$((n - 1)); done',
        'echo "backup $bak"',
        "fi",
    ]


def parse_backup(output: str) -> str | None:
    """The backup's path from the write script's output (`backup PATH`), or None when none was made."""
    for line in output.splitlines():
        if line.startswith("backup "):
            return line[len("backup "):].strip()
    return None
