"""What the guide's page tools share (tools/qdevice_page.py, tools/pacemaker_page.py): run the runbook and
commands on lab hosts, wait for a state, cut a step's lines out of a run's output, and a main() that
makes the page from a real run, removes the lab whatever happens, and writes (or prints) the page.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = [sys.executable, "-m", "runbook"]


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`runbook ARGS`, from the repository, its output captured."""
    return subprocess.run([*RUNBOOK, *args], capture_output=True, text=True, cwd=ROOT, check=check, timeout=900)


def on(lab: str, host: str, command: str) -> str:
    """A command's stdout on a lab host (its failure is not an error: the callers look at what it said)."""
    return sh("lab", "ssh", "--lab", lab, host, "--", command, check=False).stdout


def wait(predicate: Callable[[], bool], seconds: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def step_lines(output: str, step: str) -> str:
    """One step's lines of a run as printed, without this machine's temporary paths."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if f"{step} ..." in line), None)
    if start is None:
        return output[-2000:]
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^\[\d+/\d+\]|^record:|^runbook", lines[i])), len(lines))
    return re.sub(r"/tmp/\S+", "FILE", "\n".join(lines[start:end]))


def main(doc: str, page_path: Path, lab: str, collect: Callable[[Path], dict[str, str]], page: Callable[[dict[str, str]], str]) -> int:
    """The tool's command line: collect from a real run in a temporary directory, always take the lab down, write the page."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--print", action="store_true", help=f"print the page instead of writing {page_path.relative_to(ROOT)}")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"runbook-{lab}-") as tmp:
        try:
            seen = collect(Path(tmp))
        finally:
            sh("lab", "down", "--lab", lab, check=False)
    text = page(seen)
    if args.print:
        print(text)
    else:
        page_path.write_text(text)
        print(f"wrote {page_path.relative_to(ROOT)}", file=sys.stderr)
    return 0
