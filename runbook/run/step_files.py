"""The step notebooks of a run: `NN-name.ipynb` files, found, ordered and chosen by `--only`.

Where they are: $RUNBOOK_NOTEBOOKS, else notebooks/ next to the runbook package. A step is known by
its number (2, 02), its name (corosync-conf) or its file stem (02-corosync-conf).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import runbook
from runbook.errors import UsageError

NOTEBOOKS_ENV = "RUNBOOK_NOTEBOOKS"

_STEP_FILE = re.compile(r"^(?P<number>\d+)-(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.ipynb$")


@dataclass(frozen=True)
class Step:
    """One step notebook: `02-corosync-conf.ipynb` is number 2, name `corosync-conf`."""

    number: int
    name: str
    path: Path

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def notebook(self) -> str:
        return self.path.name


def repo_root() -> Path:
    return Path(runbook.__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    """$RUNBOOK_NOTEBOOKS, else notebooks/ next to the runbook package."""
    override = os.environ.get(NOTEBOOKS_ENV)
    return Path(override).expanduser() if override else repo_root() / "notebooks"


def discover_steps(directory: Path) -> list[Step]:
    """The step notebooks (`NN-name.ipynb`) in `directory`, in step order."""
    if not directory.is_dir():
        hint = f" (set by {NOTEBOOKS_ENV})" if os.environ.get(NOTEBOOKS_ENV) else f"; set {NOTEBOOKS_ENV} to the notebooks directory"
        raise UsageError(f"no step notebooks: {directory} is not a directory{hint}")
    steps = []
    for path in directory.iterdir():
        match = _STEP_FILE.match(path.name)
        if match and path.is_file():
            steps.append(Step(int(match["number"]), match["name"], path))
    if not steps:
        raise UsageError(f"no step notebooks (NN-name.ipynb) in {directory}")
    steps.sort(key=lambda s: (s.number, s.name))
    numbers = [s.number for s in steps]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        names = ", ".join(s.notebook for s in steps if s.number in duplicates)
        raise UsageError(f"two step notebooks share a number in {directory}: {names}")
    return steps


def describe_steps(steps: Sequence[Step]) -> str:
    return ", ".join(f"{s.number:02d} {s.name}" for s in steps)


def select_steps(steps: Sequence[Step], only: Iterable[str] | None) -> list[Step]:
    """The steps named by `--only` (number `2`/`02`, name `corosync-conf`, stem `02-corosync-conf`), in step order.

    Each `--only` may also hold several, comma-separated. No `--only` means every step.
    """
    tokens = [t.strip() for item in (only or ()) for t in str(item).split(",")]
    tokens = [t for t in tokens if t]
    if not only:
        return list(steps)
    if not tokens:
        raise UsageError(f"--only needs a step; valid steps: {describe_steps(steps)}")
    chosen: set[Step] = set()
    unknown = []
    for token in tokens:
        found = _match_step(steps, token)
        if found is None:
            unknown.append(token)
        else:
            chosen.add(found)
    if unknown:
        names = ", ".join(repr(t) for t in unknown)
        raise UsageError(f"unknown step {names} for --only; valid steps: {describe_steps(steps)}")
    return [s for s in steps if s in chosen]


def _match_step(steps: Sequence[Step], token: str) -> Step | None:
    text = token.lower().removesuffix(".ipynb")
    if text.isdigit():
        number = int(text)
        return next((s for s in steps if s.number == number), None)
    return next((s for s in steps if text in (s.name.lower(), s.stem.lower())), None)
