"""The run record on disk: `<run dir>/<step>.json` per step and `<run dir>/summary.json`, typed.

One reader and writer for everyone who uses the record (the runner, the notebooks' `record`, the
docs build, the benchmarks), so its shape is defined once. Every file carries `version`: this
runbook writes RECORD_VERSION (2) and reads 1 (the files before the field existed) and 2.

A step record's node outcomes may carry `operations` (what ran on the node: kind, command, reason,
status, exit status, output), and the step may carry `by_hand` (the commands an operator would type)
and `files` ({node: {path: text}}). Keys this module does not know are kept in `extra`, and written
back as they were, so a newer writer's keys are never lost by an older reader. A file that cannot be
read, is not JSON, has a field of the wrong type or an unknown version is a RunRecordError naming it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from runbook.errors import RunbookError, RunRecordError
from runbook.local import write_json_atomic
from runbook.run import lock

RECORD_VERSION = 2
READABLE_VERSIONS = (1, 2)
SUMMARY = "summary.json"
RECORD_SUFFIX = ".json"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
CHECK_SUFFIX = "-check"

CHANGED_STATUSES = ("changed", "would change")

T = TypeVar("T")


class _Bad(Exception):
    """A field of the wrong type, found while parsing; becomes a RunRecordError naming the file."""


def _get(data: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...], default: Any, where: str) -> Any:
    value = data.get(key, default)
    if value is default or value is None and default is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        raise _Bad(f"{where}{key}: {value!r} is not {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "text", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "a mapping"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _strings(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    items = _get(data, key, list, [], where)
    if not all(isinstance(item, str) for item in items):
        raise _Bad(f"{where}{key}: not a list of text")
    return list(items)


def _extra(data: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _version(data: Mapping[str, Any]) -> int:
    version = data.get("version", 1)  # the files written before the field existed are version 1
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise _Bad(f"version {version!r}: this runbook reads record versions {', '.join(map(str, READABLE_VERSIONS))}")
    return int(version)


# --- a step's record: <step>.json -------------------------------------------------------------------


@dataclass
class OperationRecord:
    """One operation of a node's plan as it ran (or would run): the shell command it amounts to."""

    kind: str
    command: str
    reason: str = ""
    status: str = ""
    exit_status: int | None = None
    output: str = ""

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> OperationRecord:
        if not isinstance(data, Mapping):
            raise _Bad(f"{where}: {data!r} is not a mapping")
        where += "."
        return cls(
            kind=_get(data, "kind", str, "", where),
            command=_get(data, "command", str, "", where),
            reason=_get(data, "reason", str, "", where),
            status=_get(data, "status", str, "", where),
            exit_status=_get(data, "exit_status", int, None, where),
            output=_get(data, "output", str, "", where),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "command": self.command, "reason": self.reason,
            "status": self.status, "exit_status": self.exit_status, "output": self.output,
        }


@dataclass
class NodeRecord:
    """One node's outcome of a step: status (changed, unchanged, would change, failed, ...) and one line."""

    node: str
    status: str
    summary: str = ""
    operations: list[OperationRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    KNOWN = {"node", "status", "summary", "operations"}

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> NodeRecord:
        if not isinstance(data, Mapping):
            raise _Bad(f"{where}: {data!r} is not a mapping")
        prefix = where + "."
        operations = _get(data, "operations", list, [], prefix)
        return cls(
            node=_get(data, "node", str, "?", prefix),
            status=_get(data, "status", str, "?", prefix),
            summary=_get(data, "summary", str, "", prefix),
            operations=[OperationRecord.from_dict(op, f"{prefix}operations[{i}]") for i, op in enumerate(operations)],
            extra=_extra(data, cls.KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"node": self.node, "status": self.status, "summary": self.summary}
        if self.operations:
            data["operations"] = [op.to_dict() for op in self.operations]
        return {**data, **self.extra}

    @property
    def changed(self) -> bool:
        return self.status in CHANGED_STATUSES


@dataclass
class StepRecord:
    """A step's report as its notebook saved it (`<run dir>/<step>.json`)."""

    step: str
    title: str = ""
    check: bool = False
    changed: bool = False
    outcomes: list[NodeRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    KNOWN = {"version", "step", "title", "check", "changed", "outcomes", "notes", "problems", "by_hand", "files"}

    @classmethod
    def from_dict(cls, data: Any) -> StepRecord:
        if not isinstance(data, Mapping):
            raise _Bad(f"not a step record (a {type(data).__name__}, not a mapping)")
        outcomes = _get(data, "outcomes", list, [], "")
        files = _get(data, "files", dict, {}, "")
        for node, paths in files.items():
            if not isinstance(paths, Mapping) or not all(isinstance(p, str) and isinstance(t, str) for p, t in paths.items()):
                raise _Bad(f"files.{node}: not a mapping of path to text")
        return cls(
            version=_version(data),
            step=_get(data, "step", str, "", ""),
            title=_get(data, "title", str, "", ""),
            check=_get(data, "check", bool, False, ""),
            changed=_get(data, "changed", bool, False, ""),
            outcomes=[NodeRecord.from_dict(o, f"outcomes[{i}]") for i, o in enumerate(outcomes)],
            notes=_strings(data, "notes", ""),
            problems=_strings(data, "problems", ""),
            by_hand=_strings(data, "by_hand", ""),
            files={node: dict(paths) for node, paths in files.items()},
            extra=_extra(data, cls.KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": RECORD_VERSION,
            "step": self.step,
            "title": self.title,
            "check": self.check,
            "changed": self.changed,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "notes": list(self.notes),
            "problems": list(self.problems),
        }
        if self.by_hand:
            data["by_hand"] = list(self.by_hand)
        if self.files:
            data["files"] = {node: dict(paths) for node, paths in self.files.items()}
        return {**data, **self.extra}

    @property
    def changed_nodes(self) -> list[str]:
        return [o.node for o in self.outcomes if o.changed]

    @property
    def failed_nodes(self) -> list[str]:
        return [o.node for o in self.outcomes if o.status == "failed"]


def step_record_path(run_dir: Path, stem: str) -> Path:
    return Path(run_dir) / f"{Path(stem).name}{RECORD_SUFFIX}"


def read_step_record(path: Path) -> StepRecord:
    """The step record in `path`; RunRecordError when it is missing, unreadable or not a record."""
    return _parse(path, StepRecord.from_dict)


def write_step_record(path: Path, record: StepRecord | Mapping[str, Any]) -> None:
    """Write a step record atomically, as version RECORD_VERSION.

    A mapping (a report's `to_dict()`) is written with every key it has, plus `version`: the writer
    never drops what a step chose to record.
    """
    data = record.to_dict() if isinstance(record, StepRecord) else {**dict(record), "version": RECORD_VERSION}
    data = {"version": data.pop("version"), **data}
    write_json_atomic(path, data)


# --- the run's summary: summary.json ----------------------------------------------------------------


@dataclass
class StepEntry:
    """One step's line in summary.json."""

    step: str
    notebook: str
    status: str = "not run"  # ok | failed | interrupted | not run
    seconds: float | None = None
    error: str | None = None
    changed: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    KNOWN = {"step", "notebook", "status", "seconds", "error", "changed"}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StepEntry:
        if not isinstance(data, Mapping):
            raise _Bad(f"{where}: {data!r} is not a mapping")
        prefix = where + "."
        return cls(
            step=_get(data, "step", str, "", prefix),
            notebook=_get(data, "notebook", str, "", prefix),
            status=_get(data, "status", str, "not run", prefix),
            seconds=_get(data, "seconds", float, None, prefix),
            error=_get(data, "error", str, None, prefix),
            changed=_strings(data, "changed", prefix),
            extra=_extra(data, cls.KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "notebook": self.notebook, "status": self.status,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "error": self.error, "changed": list(self.changed), **self.extra,
        }


@dataclass
class RunSummary:
    """summary.json: the run as a whole. `runner` is who ran it (host, pid, pid_start), to tell a dead run."""

    cluster: str
    cluster_file: str = ""
    started: str | None = None
    finished: str | None = None
    check: bool = False
    status: str = "running"  # running | ok | failed | interrupted
    steps: list[StepEntry] = field(default_factory=list)
    runbook_version: str = ""
    run_id: str = ""
    runner: dict[str, Any] = field(default_factory=dict)
    ended: str | None = None  # why a run left "running" was marked interrupted by a later one
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    KNOWN = {"version", "cluster", "cluster_file", "started", "finished", "check", "status", "steps",
             "runbook_version", "run_id", "runner", "ended"}

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        if not isinstance(data, Mapping):
            raise _Bad(f"not a run summary (a {type(data).__name__}, not a mapping)")
        steps = _get(data, "steps", list, [], "")
        return cls(
            version=_version(data),
            cluster=_get(data, "cluster", str, "", ""),
            cluster_file=_get(data, "cluster_file", str, "", ""),
            started=_get(data, "started", str, None, ""),
            finished=_get(data, "finished", str, None, ""),
            check=_get(data, "check", bool, False, ""),
            status=_get(data, "status", str, "", ""),
            steps=[StepEntry.from_dict(s, f"steps[{i}]") for i, s in enumerate(steps)],
            runbook_version=_get(data, "runbook_version", str, "", ""),
            run_id=_get(data, "run_id", str, "", ""),
            runner=dict(_get(data, "runner", dict, {}, "")),
            ended=_get(data, "ended", str, None, ""),
            extra=_extra(data, cls.KNOWN),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": RECORD_VERSION,
            "cluster": self.cluster,
            "cluster_file": self.cluster_file,
            "started": self.started,
            "finished": self.finished,
            "check": self.check,
            "status": self.status,
            "steps": [s.to_dict() for s in self.steps],
            "runbook_version": self.runbook_version,
            "run_id": self.run_id,
            "runner": dict(self.runner),
        }
        if self.ended is not None:
            data["ended"] = self.ended
        return {**data, **self.extra}

    @property
    def step_seconds(self) -> float:
        """The steps' own time, added up (what the runner spent around them is the rest)."""
        return sum(s.seconds or 0.0 for s in self.steps)


def summary_path(run_dir: Path) -> Path:
    return Path(run_dir) / SUMMARY


def read_summary(run_dir_or_file: Path) -> RunSummary:
    """The summary of a run (its directory, or the summary.json itself); RunRecordError when unusable."""
    path = Path(run_dir_or_file)
    return _parse(path if path.name == SUMMARY and not path.is_dir() else summary_path(path), RunSummary.from_dict)


def write_summary(run_dir: Path, summary: RunSummary) -> None:
    write_json_atomic(summary_path(run_dir), summary.to_dict())


def _parse(path: Path, parse: Any) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunRecordError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunRecordError(path, f"cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunRecordError(path, f"not JSON ({exc})") from None
    try:
        return parse(data)
    except _Bad as exc:
        raise RunRecordError(path, str(exc)) from None


# --- run directories ---------------------------------------------------------------------------------


def run_dir_name(started: datetime, check: bool) -> str:
    """`20250101T120000Z` (UTC), with `-check` for a dry run."""
    stamp = started.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)
    return stamp + (CHECK_SUFFIX if check else "")


def make_run_dir(out: Path, cluster_name: str, started: datetime, check: bool) -> Path:
    """Create `<out>/<cluster>/<stamp>[-check]/`; a second run in the same second gets `-2`, `-3`, ..."""
    parent = out / cluster_name
    parent.mkdir(parents=True, exist_ok=True)
    base = run_dir_name(started, check)
    for attempt in range(1, 1000):
        path = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise RunbookError(f"cannot make a run directory under {parent}: too many runs named {base}")


def mark_dead_runs(cluster_dir: Path) -> list[Path]:
    """Records left "running" by a runner that is gone (SIGKILL, power loss): mark them interrupted.

    A runner is known by host, pid and the pid's start time (a reused pid has another start time).
    Records from another host, without a runner, or unreadable are left alone. Called with the
    cluster's lock held, so no live run of this cluster writes them.
    """

    marked = []
    for path in sorted(cluster_dir.glob(f"*/{SUMMARY}")):
        try:
            summary = read_summary(path)
        except RunRecordError:
            continue
        runner = summary.runner
        if summary.status != "running" or not isinstance(runner.get("pid"), int) or isinstance(runner.get("pid"), bool):
            continue
        if lock.is_alive(str(runner.get("host")), runner["pid"], runner.get("pid_start")) is not False:
            continue
        summary.status = "interrupted"
        summary.ended = (
            f"the runner (pid {runner['pid']} on {runner.get('host')}) was gone when the next run started; "
            "marked by that run"
        )
        for step in summary.steps:  # the step that was going: the first not finished whose notebook was begun
            if step.status == "not run":
                if (path.parent / step.notebook).exists():
                    step.status = "interrupted"
                break
        write_json_atomic(path, summary.to_dict())
        marked.append(path.parent)
    return marked
