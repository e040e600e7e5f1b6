"""A run's record as a whole: the state of each step, the summary written to `run.json`, and reading
it back (also for a run that was stopped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import runbook
from runbook.errors import RunRecordError
from runbook.run.record import RunSummary, StepEntry, StepRecord, read_step_record, step_record_path
from runbook.run.step_files import Step


@dataclass
class StepResult:
    """One step as the run goes: its status, time, error and the record its notebook saved."""

    step: Step
    status: str = "not run"  # ok | failed | interrupted | not run
    seconds: float | None = None
    error: str | None = None
    record: StepRecord | None = None

    def entry(self) -> StepEntry:
        return StepEntry(
            step=self.step.stem,
            notebook=self.step.notebook,
            status=self.status,
            seconds=self.seconds,
            error=self.error,
            changed=self.record.changed_nodes if self.record is not None else [],
        )

    def to_dict(self) -> dict[str, Any]:
        return self.entry().to_dict()


@dataclass
class RunState:
    cluster_name: str
    cluster_file: str
    check: bool
    run_dir: Path
    started: datetime
    results: list[StepResult] = field(default_factory=list)
    finished: datetime | None = None
    status: str = "running"  # running | ok | failed | interrupted
    run_id: str = ""
    runner: dict[str, Any] = field(default_factory=dict)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def run_summary(state: RunState) -> RunSummary:
    """The run as summary.json records it."""
    return RunSummary(
        cluster=state.cluster_name,
        cluster_file=state.cluster_file,
        started=_iso(state.started),
        finished=_iso(state.finished),
        check=state.check,
        status=state.status,
        steps=[r.entry() for r in state.results],
        runbook_version=runbook.__version__,
        run_id=state.run_id,
        runner=dict(state.runner),
    )


def build_summary(state: RunState) -> dict[str, Any]:
    """The content of summary.json."""
    return run_summary(state).to_dict()


def read_record(run_dir: Path, step: Step) -> StepRecord | None:
    """The step's report as the notebook saved it (`<run dir>/<step>.json`), None if it saved none.

    A record that is there but cannot be read is a RunRecordError naming the file.
    """
    path = step_record_path(run_dir, step.stem)
    if not path.exists():
        return None
    return read_step_record(path)


def record_of_stopped_step(run_dir: Path, step: Step) -> StepRecord | None:
    """The record of a step that failed or was stopped: an unreadable one must not hide why it stopped."""
    try:
        return read_record(run_dir, step)
    except RunRecordError:
        return None
