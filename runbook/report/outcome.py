"""How a step's outcome shows: a rich table in a notebook, a plain table in a terminal, JSON in a run record.

Text that comes from nodes (diffs, command output) is cleaned of terminal escape sequences, control
characters, bidi controls and zero-width characters, and cut to MAX_LINE characters a line, before it
is shown, and HTML-escaped in notebooks: a hostile file on a node must not be able to restyle the
guide or the operator's terminal, make text read other than it is, or flood the screen.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from runbook.report.matrix import Matrix
from runbook.text import clean

Status = Literal["ok", "changed", "unchanged", "skipped", "would change", "failed"]


_BADGE = {
    "ok": ("#1f7a1f", "ok"),
    "changed": ("#1f7a1f", "changed"),
    "unchanged": ("#555", "unchanged"),
    "skipped": ("#8a6d00", "skipped"),
    "would change": ("#0b5cad", "would change"),
    "failed": ("#b00020", "FAILED"),
}


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff of a file's current and wanted text ('' when they are the same)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"{path} (current)", tofile=f"{path} (runbook)"
    )
    return clean("".join(line if line.endswith("\n") else line + "\n" for line in lines))


OpStatus = Literal["planned", "done", "failed", "not run"]


@dataclass
class OperationResult:
    """One operation of a node's plan as the report shows it: the command, why, and what came of it.

    `planned` in check mode (nothing ran); `done`/`failed` with the real exit status and the (trimmed)
    output; `not run` when an earlier operation failed.
    """

    kind: str
    command: str
    reason: str
    status: OpStatus
    exit_status: int | None = None
    output: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "command": clean(self.command),
            "reason": clean(self.reason),
            "status": self.status,
            "exit_status": self.exit_status,
            "output": clean(self.output),
        }

    def line(self) -> str:
        """`$ command   # reason  [exit 0]`: the form the terminal, the page and `by hand` share."""
        return f"$ {clean(self.command)}   # {clean(self.reason)} [{ran_label(self.status, self.exit_status)}]"


def ran_label(status: str, exit_status: int | None) -> str:
    """What came of an operation, as the report and the run's terminal lines both say it."""
    return {"planned": "would run", "done": f"exit {exit_status}", "failed": f"FAILED, exit {exit_status}"}.get(status, status)


@dataclass
class NodeOutcome:
    """What one step did (or would do) on one node, with the operations that did it."""

    node: str
    status: Status
    summary: str
    diff: str = ""
    detail: str = ""
    operations: list[OperationResult] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # whole files to show (path -> text), never a key

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": self.status,
            "summary": clean(self.summary),
            "operations": [o.to_dict() for o in self.operations],
        }


@dataclass
class StepReport:
    """A step's outcome on every node, plus notes and problems that concern the whole cluster.

    `problems` are what stops the step that no single node has (e.g. nodes on different Corosync
    generations); they stay apart from the per-node outcomes, so no node name can collide with them.
    """

    step: str
    title: str
    check: bool
    outcomes: list[NodeOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_html: str = ""
    problems: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)  # the commands an operator would type, from the same plan
    planned: bool = False  # made by the executor from a plan: every node's commands are shown, even none
    matrices: list[Matrix] = field(default_factory=list)  # node x node tables (the link check's, one per link)

    @property
    def changed(self) -> bool:
        return any(o.status in ("changed", "would change") for o in self.outcomes)

    @property
    def failed(self) -> list[NodeOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def outcome(self, node: str) -> NodeOutcome:
        return next(o for o in self.outcomes if o.node == node)

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "title": self.title,
            "check": self.check,
            "changed": self.changed,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "notes": [clean(n) for n in self.notes],
            "problems": [clean(p) for p in self.problems],
            "by_hand": [clean(line) for line in self.by_hand],
            "files": {o.node: {path: clean(text) for path, text in o.files.items()} for o in self.outcomes if o.files},
            "matrices": [m.to_dict() for m in self.matrices],
        }

    def operations(self) -> dict[str, list[tuple[str, str]]]:
        """node -> (kind, command) of each operation planned or applied: how plan and run compare."""
        return {o.node: [(op.kind, op.command) for op in o.operations] for o in self.outcomes}

    def __str__(self) -> str:
        mode = " (check: nothing changed)" if self.check else ""
        width = max([4] + [len(o.node) for o in self.outcomes])
        lines = [f"{self.title}{mode}"]
        for o in self.outcomes:
            lines.append(f"  {o.node:<{width}}  {o.status:<12}  {clean(o.summary)}")
            lines += ["    " + op.line() for op in o.operations]
            if o.diff:
                lines += ["    " + line for line in clean(o.diff).rstrip("\n").splitlines()]
        lines += ["  " + line for m in self.matrices for line in m.text().splitlines()]
        lines += [f"  cluster problem: {clean(p)}" for p in self.problems]
        lines += [f"  note: {clean(n)}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        mode = ' <span style="color:#0b5cad">(check mode: nothing was changed)</span>' if self.check else ""
        rows = []
        for o in self.outcomes:
            color, label = _BADGE[o.status]
            body = esc(clean(o.summary))
            for title, text in (("diff", o.diff), ("output", o.detail)):
                if text:
                    body += (
                        f"<details><summary>{title}</summary><pre style=\"font-size:85%\">{esc(clean(text))}</pre></details>"
                    )
            rows.append(
                f"<tr><td><code>{esc(o.node)}</code></td>"
                f'<td><strong style="color:{color}">{label}</strong></td><td style="text-align:left">{body}</td></tr>'
            )
        notes = "".join(f"<li>{esc(clean(n))}</li>" for n in self.notes)
        commands = "".join(_commands_html(o) for o in self.outcomes if o.operations or self.planned)
        files = "".join(_file_html(o.node, path, text) for o in self.outcomes for path, text in o.files.items())
        by_hand = (
            '<div class="runbook-by-hand"><p><strong>By hand</strong>: the same changes typed at a shell on each node</p>'
            f"<pre><code>{esc(clean(chr(10).join(self.by_hand)))}</code></pre></div>"
            if self.by_hand
            else ""
        )
        color, label = _BADGE["failed"]
        problems = "".join(
            f'<p class="runbook-problem"><strong style="color:{color}">{label}</strong> (whole cluster): {esc(clean(p))}</p>'
            for p in self.problems
        )
        return (
            f'<div class="runbook-report" data-step="{esc(self.step)}">'
            f"<p><strong>{esc(self.title)}</strong>{mode}</p>"
            '<table><thead><tr><th>node</th><th>result</th><th style="text-align:left">what</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>"
            + problems
            + "".join(m.html() for m in self.matrices)
            + (f"<ul>{notes}</ul>" if notes else "")
            + commands
            + files
            + by_hand
            + self.extra_html
            + "</div>"
        )


def _commands_html(outcome: NodeOutcome) -> str:
    """The commands one node ran (or would run), each with its reason, exit status and output."""
    esc = html.escape
    items = []
    if not outcome.operations:
        items.append(f'<li data-status="none">no command needed: {esc(clean(outcome.summary))}</li>')
    for op in outcome.operations:
        output = f'<pre class="runbook-output">{esc(clean(op.output))}</pre>' if op.output.strip() else ""
        items.append(
            f'<li data-status="{esc(op.status)}"><code class="runbook-command">$ {esc(clean(op.command))}</code>'
            f" <em>{esc(clean(op.reason))}</em> [{esc(ran_label(op.status, op.exit_status))}]{output}</li>"
        )
    return (
        f'<div class="runbook-commands" data-node="{esc(outcome.node)}"><p><strong>Commands on <code>{esc(outcome.node)}</code></strong></p>'
        f"<ol>{''.join(items)}</ol></div>"
    )


_CONF_SECTION = re.compile(r"^(\s*)([A-Za-z_][\w.-]*)(\s*\{)\s*$")
_CONF_KEY = re.compile(r"^(\s*)([A-Za-z_][\w.-]*)(\s*:\s*)(.*)$")


def highlight_conf(text: str) -> str:
    """corosync.conf (and key: value files) as HTML: section names, keys, values and comments told apart."""
    esc = html.escape
    out = []
    for line in clean(text).splitlines():
        if line.lstrip().startswith("#"):
            out.append(f'<span class="c">{esc(line)}</span>')
        elif (m := _CONF_SECTION.match(line)) is not None:
            out.append(f'{esc(m.group(1))}<span class="nt">{esc(m.group(2))}</span>{esc(m.group(3))}')
        elif (m := _CONF_KEY.match(line)) is not None:
            out.append(f'{esc(m.group(1))}<span class="k">{esc(m.group(2))}</span>{esc(m.group(3))}<span class="s">{esc(m.group(4))}</span>')
        else:
            out.append(esc(line))
    return "\n".join(out)


def _file_html(node: str, path: str, text: str) -> str:
    esc = html.escape
    return (
        f'<details class="runbook-file" data-node="{esc(node)}" data-path="{esc(path)}" open>'
        f"<summary><code>{esc(path)}</code> on <code>{esc(node)}</code> (whole file)</summary>"
        f'<div class="highlight"><pre><code>{highlight_conf(text)}</code></pre></div></details>'
    )
