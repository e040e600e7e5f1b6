"""The one executor: applies a StepPlan to the nodes, or (check mode) records it unapplied.

How a step's operations reach a node, in as few SSH round trips as the plan allows:

1. **Stage** (only for nodes that get a file): one script per node, in parallel, puts every new file
   beside its target under a name unique to this run, checks its size, sets owner and mode, syncs,
   runs the file's own check (`corosync -t -c` on 3.x), and keeps a verified backup of the file it
   will replace. If staging fails on ANY node, the staged files and fresh backups are removed on
   every node, and no node is changed: the report says so.
2. **Commit**: one script per node, in parallel, runs the operations in order; a staged file is put
   in place by a rename. The first operation that fails stops that node's script; other nodes
   finish theirs (stopping them half-way would leave more half-done).

Nodes run in the plan's `waves` (the authkey step: the primary makes the key before the others copy
it). Each operation's exit status and output come back between markers, so the report shows, per
node, each command with its real exit status and (trimmed) output.

Scripts travel on SSH stdin to `sh -s`, file bytes inside them as base64 here-documents: nothing of
a file, and never the authkey, is in a command line, in `ps` on the node, in an error or in a report.
"""

from __future__ import annotations

import re
import secrets
import shlex
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass

from runbook.engine.backup_script import backup_lines, backup_stamp, run_id
from runbook.engine.operations import Operation
from runbook.engine.plan import NodePlan, StepPlan, forget_pending, note_pending
from runbook.errors import HostError, StepFailed
from runbook.model.backups import DEFAULT_KEEP
from runbook.report.outcome import NodeOutcome, OperationResult, StepReport
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts
from runbook.text import clean

START = "@@runbook-op-start"
END = "@@runbook-op-end"
OUTPUT_LINES = 40  # lines of an operation's output kept in the report (the last ones)
SYMLINK_STATUS = 7
_END_LINE = re.compile(rf"{END} (\d+) (\d+)$")


# --- scripts (pure) -------------------------------------------------------------------------------


def staged_path(path: str, tag: str, index: int) -> str:
    """Where operation `index` stages its file: beside the target, unique to this run."""
    directory, _, name = path.rpartition("/")
    return f"{directory or '.'}/.{name}.runbook-{tag}-{index}"


def _wrap_op(index: int, body: str) -> list[str]:
    """Run one operation in a subshell under `set -e`, its output and exit status between markers.

    stdin is /dev/null: the script itself is read from stdin, and a command that read it would eat
    the rest of the script. The first failure ends the script (later operations are not run).
    """
    return [
        f"echo '{START} {index}'",
        "( set -e",
        body,
        ") </dev/null 2>&1",
        "rc=$?",
        f"echo \"{END} {index} $rc\"",
        '[ "$rc" -eq 0 ] || exit 0',
    ]


def stage_body(op: Operation, data: bytes, tag: str, index: int, keep: int, stamp: str) -> str:
    """Shell that stages one file (see the module docstring); the temp file goes if anything fails."""
    assert op.path is not None
    p, t = shlex.quote(op.path), shlex.quote(staged_path(op.path, tag, index))
    encoded = b64encode(data).decode()
    lines = [
        "export LC_ALL=C",
        f"p={p}; t={t}",
        f'if [ -L "$p" ]; then echo "$p is a symbolic link to $(readlink -- "$p"); refusing to replace it (the file was left as it was)"; exit {SYMLINK_STATUS}; fi',
        'mkdir -p -- "$(dirname -- "$p")"',
        "umask 077",
        '( set -C; : > "$t" )',
        "trap 'rm -f -- \"$t\"' EXIT",
        "base64 -d > \"$t\" <<'@@RUNBOOK-DATA@@'",
        *[encoded[i : i + 76] for i in range(0, len(encoded), 76)],
        "@@RUNBOOK-DATA@@",
        f'got=$(wc -c < "$t"); [ "$got" -eq {len(data)} ] || {{ echo "incomplete: $got of {len(data)} bytes written (is the disk full?); the file was left as it was"; exit 5; }}',
        f'chown {shlex.quote(op.owner)}:{shlex.quote(op.group)} "$t"',
        f'chmod {op.mode:o} "$t"',
        'sync -- "$t" 2>/dev/null || sync',
    ]
    if op.validate:
        lines += ['f="$t"', op.validate]
    lines += backup_lines(op.path, stamp, run_id(), keep)
    lines.append("trap - EXIT")
    return "\n".join(lines)


def commit_body(op: Operation, tag: str, index: int) -> str:
    """Shell for one operation in the commit script: a staged file is renamed into place."""
    if not op.stages:
        return op.script
    assert op.path is not None
    p, t = shlex.quote(op.path), shlex.quote(staged_path(op.path, tag, index))
    return "\n".join(
        [
            f'[ -f {t} ] || {{ echo "the staged file {staged_path(op.path, tag, index)} is gone; {op.path} was left as it was"; exit 9; }}',
            f"mv -f -- {t} {p}",
            f'sync -- "$(dirname -- {p})" 2>/dev/null || sync',
        ]
    )


def node_script(bodies: Sequence[tuple[int, str]]) -> str:
    lines = ["export LC_ALL=C"]
    for index, body in bodies:
        lines += _wrap_op(index, body)
    return "\n".join(lines) + "\n"


def abort_script(paths: Sequence[str]) -> str:
    """Remove what staging made on a node (staged files, fresh backups) when another node failed."""
    return "rm -f -- " + " ".join(shlex.quote(p) for p in paths) + "\n" if paths else "true\n"


def parse_marks(output: str) -> dict[int, tuple[int, str]]:
    """Pure: {operation index: (exit status, its output)} for each operation that finished."""
    found: dict[int, tuple[int, str]] = {}
    current: int | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(START + " "):
            current, lines = int(line.split()[1]), []
            continue
        match = _END_LINE.search(line)
        if match and current is not None and int(match.group(1)) == current:
            # an output's last line without a newline (an init script's "Starting ...: corosync-qnetd")
            # carries the end mark after it
            head = line[: match.start()]
            found[current] = (int(match.group(2)), "\n".join(lines + [head] if head else lines))
            current = None
            continue
        if current is not None:
            lines.append(line)
    return found


def backups_in(output: str) -> list[str]:
    return [line[len("backup "):].strip() for line in output.splitlines() if line.startswith("backup ")]


def tail(text: str, lines: int = OUTPUT_LINES) -> str:
    kept = clean(text).rstrip("\n").splitlines()
    if len(kept) <= lines:
        return "\n".join(kept)
    return f"[{len(kept) - lines} earlier lines cut]\n" + "\n".join(kept[-lines:])


def raise_if_failed(report: StepReport) -> None:
    if report.failed or report.problems:
        raise StepFailed(report.step, {o.node: o.summary for o in report.failed}, report, report.problems)


# --- applying a plan ------------------------------------------------------------------------------


@dataclass
class _NodeRun:
    """One node's operations as they went: results by index, backups made, staged paths."""

    plan: NodePlan
    results: dict[int, OperationResult]
    staged: list[str]
    backups: dict[int, str]
    error: str | None = None


def _result(op: Operation, status: str, exit_status: int | None = None, output: str = "") -> OperationResult:
    return OperationResult(op.kind, op.command, op.reason, status, exit_status, tail(output))


def _failure_line(op: Operation, status: int, output: str) -> str:
    lines = [line.strip() for line in clean(output).splitlines() if line.strip() and not line.startswith("backup ")]
    said = "\n    ".join(lines if len(lines) <= 6 else lines[-5:])
    return said or f"`{op.command}` exited {status}"


def execute(plan: StepPlan, hosts: Hosts, *, check: bool, keep: int = DEFAULT_KEEP) -> StepReport:
    """Apply `plan` (or, with `check`, record it unapplied); StepFailed names every node that failed."""
    report = StepReport(step=plan.step, title=plan.title, check=check, notes=list(plan.notes), problems=list(plan.problems), planned=True)
    refused = {name: p.failed for name, p in plan.nodes.items() if p.failed}
    if refused or plan.problems:
        for name, p in plan.nodes.items():
            status = "failed" if p.failed else p.quiet if not p.changes else "unchanged"
            summary = p.failed or (p.summary if not p.changes else "nothing was changed (another node cannot go on)")
            report.outcomes.append(NodeOutcome(name, status, summary, files=dict(p.files)))  # type: ignore[arg-type]
        raise_if_failed(report)
    if check:
        note_pending(plan)
        for name, p in plan.nodes.items():
            ops = [_result(op, "planned") for op in p.operations]
            if p.changes:
                report.outcomes.append(NodeOutcome(name, "would change", p.would, diff=p.diff, operations=ops, files=dict(p.files)))
            else:
                report.outcomes.append(NodeOutcome(name, p.quiet, p.summary, files=dict(p.files)))
        report.by_hand = plan.by_hand()
        return report

    forget_pending()
    tag = f"{run_id()}{secrets.token_hex(3)}"
    stamp = backup_stamp()
    runs = {name: _NodeRun(p, {}, [], {}) for name, p in plan.nodes.items()}
    stopped: str | None = None
    for wave in plan.waves:
        active = [name for name in wave if plan.nodes[name].changes]
        if stopped:
            for name in active:
                runs[name].error = f"not run: {stopped}"
            continue
        failure = _stage(active, runs, hosts, tag, keep, stamp)
        if failure:
            stopped = failure
            continue
        _commit(active, runs, hosts, tag)
        if any(runs[n].error for n in active):
            stopped = "an earlier node failed"
    report.by_hand = plan.by_hand()
    for name, run in runs.items():
        report.outcomes.append(_outcome(run))
    raise_if_failed(report)
    return report


def _stage(names: list[str], runs: dict[str, _NodeRun], hosts: Hosts, tag: str, keep: int, stamp: str) -> str | None:
    """Stage every file of this wave on every node; on any failure undo all staging and say why."""
    staging = [n for n in names if any(op.stages for op in runs[n].plan.operations)]
    if not staging:
        return None
    sources: dict[tuple[str, str], bytes] = {}
    try:
        for name in staging:
            for op in runs[name].plan.operations:
                source = op.copy_source
                if op.copy_from and source not in sources:
                    data = hosts[op.copy_from].read_file(source[1])
                    if not data:
                        raise HostError(op.copy_from, f"{source[1]} is missing or empty")
                    sources[source] = data

        def stage(name: str) -> dict[int, tuple[int, str]]:
            bodies = []
            for index, op in enumerate(runs[name].plan.operations):
                if op.stages:
                    data = op.data if op.data is not None else sources[op.copy_source]
                    bodies.append((index, stage_body(op, data, tag, index, keep, stamp)))
                    runs[name].staged.append(staged_path(op.path or "", tag, index))
            result = hosts[name].run("sh -s", input=node_script(bodies).encode(), display="stage the new files (sh -s)", timeout=120)
            return parse_marks(result.text)

        results = each(staging, stage)
    finally:
        sources.clear()
    failed: dict[str, str] = {}
    for name in staging:
        run = runs[name]
        if name in results.failed:
            failed[name] = results.why(name)
            continue
        result = results.ok[name]
        for index, op in enumerate(run.plan.operations):
            if not op.stages:
                continue
            status, output = result.get(index, (-1, "(no result: the script ended early)"))
            if status != 0:
                run.results[index] = _result(op, "failed", status, output)
                failed[name] = _failure_line(op, status, output)
                break
            made = backups_in(output)
            if made:
                run.backups[index] = made[-1]
    if not failed:
        return None
    cleanup = {n: runs[n].staged + list(runs[n].backups.values()) for n in staging}
    each([n for n in staging if cleanup[n]], lambda n: hosts[n].run(abort_script(cleanup[n]), check=False, display="remove the staged files"))
    for name in names:
        run = runs[name]
        run.backups.clear()
        run.error = (failed[name] if name in failed else "staging failed on " + ", ".join(failed)) + " (nothing was changed on any node)"
    return "staging failed on " + ", ".join(failed)


def _commit(names: list[str], runs: dict[str, _NodeRun], hosts: Hosts, tag: str) -> None:
    """Run every node's operations in order, in one script per node, in parallel."""

    def commit(name: str) -> dict[int, tuple[int, str]]:
        ops = runs[name].plan.operations
        bodies = [(i, commit_body(op, tag, i)) for i, op in enumerate(ops)]
        timeout = min(3600.0, sum(op.timeout for op in ops) + 30)
        shown = "; ".join(op.command for op in ops)
        result = hosts[name].run("sh -s", input=node_script(bodies).encode(), display=shown if len(shown) < 200 else f"{len(ops)} operations (sh -s)", timeout=timeout)
        return parse_marks(result.text)

    results = each(names, commit)
    for name in names:
        run = runs[name]
        if name in results.failed:
            run.error = results.why(name)
            continue
        result = results.ok[name]
        for index, op in enumerate(run.plan.operations):
            if index not in result:  # no earlier operation failed, so the script stopped without saying why
                for later in range(index, len(run.plan.operations)):
                    run.results[later] = _result(run.plan.operations[later], "not run")
                run.error = f"the node's script ended before this operation reported its end (nothing after it ran)\n  command: {op.command}"
                break
            status, output = result[index]
            run.results[index] = _result(op, "done" if status == 0 else "failed", status, output)
            if status != 0:
                said = _failure_line(op, status, output)
                run.error = f"{op.fails_as + ': ' if op.fails_as else ''}{said}\n  command: {op.command}"
                if op.diagnose:
                    run.error += "\n" + _diagnose(hosts, name, op)
                break


def _diagnose(hosts: Hosts, name: str, op: Operation) -> str:
    """What the node says about a failed operation (e.g. Corosync's log after a failed start)."""
    try:
        said = clean(hosts[name].run(op.diagnose or "true", check=False, timeout=30, display="read the log").text.strip())
    except HostError as exc:
        said = f"(cannot read it: {exc})"
    return f"  {op.diagnose_label}:\n" + "\n".join(f"    {line}" for line in said.splitlines())


def _outcome(run: _NodeRun) -> NodeOutcome:
    p = run.plan
    ops = [run.results.get(i) or _result(op, "not run") for i, op in enumerate(p.operations)]
    if not p.changes:
        return NodeOutcome(p.node, p.quiet, p.summary, files=dict(p.files))
    if run.error:
        return NodeOutcome(p.node, "failed", run.error, diff=p.diff, operations=ops, files=dict(p.files))
    kept = "".join(
        f"; {'its old key' if p.operations[i].kind == 'copy-key' else 'previous file'} kept as {path}" for i, path in sorted(run.backups.items())
    )
    return NodeOutcome(p.node, "changed", p.change + kept, diff=p.diff, operations=ops, files=dict(p.files))


__all__ = ["StepFailed", "execute"]
