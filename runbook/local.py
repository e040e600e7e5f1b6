"""Running commands on the controller itself (the lab is built with `ip`, `unshare`, `ssh-keygen`).

Kept apart from `hosts.py` on purpose: nothing here ever crosses the network.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence

from runbook.errors import LabError


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
