"""The controller's own side: running commands here (the lab is built with `ip`, `unshare`, ...)
and writing the run's record files.

Kept apart from `hosts.py` on purpose: nothing here ever crosses the network.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runbook.errors import LabError

# The run's id, set by the runner in its own environment (the kernel inherits it) and read by the
# executor's backup names on the nodes: one run, one id, across the process boundary papermill draws.
RUN_ID_ENV = "RUNBOOK_RUN_ID"


def run_local(argv: Sequence[str], *, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run argv on this machine; with check, a failure raises LabError naming the command and stderr."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except FileNotFoundError as exc:
        raise LabError(f"{argv[0]}: command not found on this machine") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout:g}s: {shlex.join(argv)}") from exc
    if check and result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise LabError(f"`{shlex.join(argv)}` exited {result.returncode}: {tail}")
    return result


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file, rename), so a reader never sees half a file.

    The mode follows the umask, like the executed notebooks next to it (mkstemp alone makes 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask
