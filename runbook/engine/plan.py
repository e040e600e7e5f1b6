"""Plans: what a step will do on each node, decided from facts alone, before anything changes.

A StepPlan holds, per node, the ordered Operations (runbook.operations) and the sentence that
describes the node when it needs none. Step modules make plans with pure functions of the cluster
and the facts, so every branch is testable without hosts; runbook.engine.executor applies them, and check
mode records the very same plan unapplied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from runbook.engine.operations import Operation

Quiet = Literal["unchanged", "skipped", "ok"]


@dataclass
class NodePlan:
    """One node's part of a step: its operations in order, and how to describe it.

    `change` describes the node when the operations run ("wrote ...", past tense as the report says
    it afterwards); `would` the same in check mode; `quiet` + `summary` when there is nothing to do.
    `files` are whole files to show on the page for this node (path -> text, never a key), whether
    or not they change; `diff` the change of a written file.
    """

    node: str
    operations: list[Operation] = field(default_factory=list)
    summary: str = ""
    change: str = ""
    would: str = ""
    quiet: Quiet = "unchanged"
    files: dict[str, str] = field(default_factory=dict)
    diff: str = ""
    failed: str | None = None  # the plan itself refuses this node (nothing runs anywhere)

    @property
    def changes(self) -> bool:
        return bool(self.operations)


@dataclass
class StepPlan:
    """Every node's plan for one step, in cluster order, with the order nodes run in (`waves`)."""

    step: str
    title: str
    nodes: dict[str, NodePlan]
    waves: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.waves:
            self.waves = [list(self.nodes)]

    def operations(self) -> dict[str, list[tuple[str, str]]]:
        """node -> (kind, command) of each operation: what plan and run are compared by."""
        return {name: [op.key() for op in plan.operations] for name, plan in self.nodes.items()}

    def by_hand(self) -> list[str]:
        """The commands an operator would type to do this step by hand, node by node."""
        lines: list[str] = []
        for name, plan in self.nodes.items():
            if not plan.operations:
                continue
            lines.append(f"# on {name}")
            for op in plan.operations:
                lines += list(op.by_hand)
        return lines


# --- what a dry run has planned so far -------------------------------------------------------------
# A dry run changes nothing, so a later step's facts do not show what an earlier step would have
# written; without help, `plan` would say "not restarted" where `run` restarts Corosync on the file
# step 02 just wrote. So check mode remembers, per node, the files its plans would change (the steps
# of one run share a kernel, so this module's state lives from step to step), and step 06 plans on
# them. Cleared by preflight and by any real run.

_pending: dict[str, dict[str, str]] = {}


def note_pending(plan: StepPlan) -> None:
    """Check mode: remember what this plan would change (path -> SHA-256 of the new bytes, or "new")."""
    for name, node in plan.nodes.items():
        for op in node.operations:
            if op.path and op.kind in ("write", "copy-key", "keygen"):
                if op.data is not None:
                    digest = hashlib.sha256(op.data).hexdigest()
                else:  # a key copy: the primary's digest if the facts know it; a new key: unknown
                    digest = op.copy_sha256 or f"new:{op.kind}"
                _pending.setdefault(name, {})[op.path] = digest


def pending(node: str) -> dict[str, str]:
    """The files a dry run so far would have changed on `node` (path -> new digest)."""
    return dict(_pending.get(node, {}))


def forget_pending() -> None:
    _pending.clear()
