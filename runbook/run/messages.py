"""What a run says on the terminal (and in run.log): per-node lines, why a step failed, the verdict.

Everything here may carry text from a node, so it is made terminal-safe first (no escape sequences,
no control characters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbook.report.matrix import Matrix
from runbook.report.outcome import ran_label
from runbook.run.kernel import KERNEL_NAME
from runbook.run.record import OperationRecord, StepRecord
from runbook.run.step_files import Step
from runbook.text import clean as clean_text

if TYPE_CHECKING:
    from runbook.run.summary import RunState


def clean(text: str) -> str:
    """Terminal-safe text: no escape sequences or control characters (it may come from a node)."""
    return clean_text(str(text))


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(part.strip() for part in clean(text).splitlines() if part.strip())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def changed_nodes(record: StepRecord | None) -> list[str]:
    return record.changed_nodes if record is not None else []


def failed_nodes(record: StepRecord | None) -> list[str]:
    return record.failed_nodes if record is not None else []


def outcome_lines(record: StepRecord | None, indent: str = "      ") -> list[str]:
    """Per-node lines (and notes) of a step's record, for the terminal."""
    if record is None:
        return []
    outcomes = record.outcomes
    width = max([4] + [len(clean(o.node)) for o in outcomes])
    lines = []
    for o in outcomes:
        lines.append(f"{indent}{clean(o.node):<{width}}  {clean(o.status):<12}  {one_line(o.summary, 200)}")
        lines += [f"{indent}{'':<{width}}  {operation_line(op)}" for op in o.operations]
    for data in record.extra.get("matrices", []) if isinstance(record.extra.get("matrices"), list) else []:
        matrix = Matrix.from_dict(data)
        lines += [f"{indent}{line}" for line in matrix.text().splitlines()] if matrix else []
    lines += [f"{indent}note: {one_line(n, 200)}" for n in record.notes]
    return lines


def operation_line(op: OperationRecord) -> str:
    """`$ command   # reason [would run | exit 0 | FAILED, exit 3 | not run]`: one operation of a node's plan."""
    return f"$ {one_line(op.command, 400)}   # {one_line(op.reason, 200)} [{ran_label(op.status, op.exit_status)}]"


def verdict(state: RunState) -> str:
    """The last line of a run."""
    ran = [r for r in state.results if r.status == "ok"]
    total = len(state.results)
    where = f"cluster '{state.cluster_name}'"
    if state.status == "ok":
        changed = [f"{r.step.stem} ({', '.join(changed_nodes(r.record))})" for r in ran if changed_nodes(r.record)]
        if state.check:
            if changed:
                return f"PLAN: {where}: would change: {'; '.join(changed)}. Nothing was changed."
            return f"PLAN: {where}: nothing to change in {total} step{'s' if total != 1 else ''}. Nothing was changed."
        if changed:
            return f"OK: {where}: {total} step{'s' if total != 1 else ''} done; changed: {'; '.join(changed)}."
        return f"OK: {where}: {total} step{'s' if total != 1 else ''} done; everything was already in place."
    stopped = next((r for r in state.results if r.status in ("failed", "interrupted")), None)
    rest = sum(1 for r in state.results if r.status == "not run")
    label = "FAILED" if state.status == "failed" else "INTERRUPTED"
    at = f" at step {stopped.step.stem}" if stopped else ""
    tail = f"; {rest} later step{'s' if rest != 1 else ''} did not run" if rest else ""
    return f"{label}: {where}: stopped{at} after {len(ran)} of {total} steps{tail}."


def failure_message(
    step: Step, exc: BaseException, record: StepRecord | None, timeout: float | None = None
) -> tuple[str, str]:
    """(the terminal message, the one-line error for summary.json) for a failed step."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, TimeoutError) and "timed out" in str(exc):  # nbclient's CellTimeoutError
        limit = f" than {timeout:g} s" if timeout else ""
        text = f"a cell of the notebook ran longer{limit} (--timeout) and was stopped"
        return f"step {step.stem} timed out: {text}", f"{type(exc).__name__}: {text}"
    if isinstance(exc, PapermillExecutionError):
        ename, evalue = clean(exc.ename), clean(exc.evalue).strip()
    else:
        ename, evalue = type(exc).__name__, clean(str(exc)).strip()
    if ename == "ModuleNotFoundError" and "runbook" in evalue:
        evalue += (
            f"\n  (the {KERNEL_NAME!r} Jupyter kernel runs a Python without the runbook package; "
            "see `jupyter kernelspec list`, or install runbook into that Python)"
        )
    nodes = failed_nodes(record)
    first = evalue.splitlines()[0] if evalue else ""
    if step.stem in first:  # StepFailed already says "step X failed on NODE: why"
        message = evalue
    else:
        on = f" on {', '.join(nodes)}" if nodes else ""
        message = f"step {step.stem} failed{on}: {ename}: {evalue}" if evalue else f"step {step.stem} failed{on}: {ename}"
    return message, one_line(f"{ename}: {evalue}" if evalue else ename)
