"""The shape every step shares: read facts on all nodes, then decide and act per node, in parallel.

Facts are read on *every* node before anything changes on *any* node: if one node cannot be reached,
the step stops with nothing done. A node's failure during the act phase is recorded in the report and
raised as StepFailed once every other node has finished (stopping threads half-way would leave more
half-done than letting them finish).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from runbook.cluster import Cluster, Node
from runbook.errors import RunbookError
from runbook.facts import NodeFacts, gather
from runbook.hosts import Host, Hosts
from runbook.report import NodeOutcome, StepReport

T = TypeVar("T")


class StepFailed(RunbookError):
    """A step failed on one or more nodes; names each node and why, and carries the report.

    `failures` is by node name only; what concerns the whole cluster is in `problems` (a node may be
    called anything, "cluster" included).
    """

    def __init__(self, step: str, failures: dict[str, str], report: StepReport | None = None, problems: Sequence[str] = ()) -> None:
        self.step = step
        self.failures = failures
        self.problems = list(problems)
        self.node = next(iter(failures), None)
        self.report = report
        lines = [f"{node}: {why}" for node, why in failures.items()]
        if len(lines) == 1 and not self.problems:
            message = f"step {step} failed on {lines[0]}"
        elif len(self.problems) == 1 and not lines:
            message = f"step {step} failed: {self.problems[0]}"
        else:
            nodes = f"{len(lines)} node{'s' if len(lines) != 1 else ''}" if lines else ""
            where = " and ".join(part for part in ("the cluster" if self.problems else "", nodes) if part)
            lines = self.problems + lines
            message = f"step {step} failed on {where}:\n" + "\n".join(f"  - {line}" for line in lines)
        super().__init__(message)


def parallel(items: Sequence[T], func: Callable[[T], object]) -> list[object]:
    """func(item) for every item at once; each result is the return value or the exception raised."""

    def safe(item: T) -> object:
        try:
            return func(item)
        except RunbookError as exc:
            return exc

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(32, len(items))) as pool:
        return list(pool.map(safe, items))


def gather_facts(step: str, cluster: Cluster, hosts: Hosts) -> dict[str, NodeFacts]:
    """Facts of every node, or StepFailed naming each node that could not be read (nothing changed)."""
    results = parallel([hosts[n.name] for n in cluster.nodes], gather)
    failures = {n.name: str(r).removeprefix(f"{n.name}: ") for n, r in zip(cluster.nodes, results) if isinstance(r, Exception)}
    if failures:
        raise StepFailed(step, {k: v + " (nothing was changed on any node)" for k, v in failures.items()})
    return {n.name: r for n, r in zip(cluster.nodes, results)}  # type: ignore[misc]


NodeAction = Callable[[Node, Host, NodeFacts], NodeOutcome]


def run_per_node(
    step: str,
    title: str,
    cluster: Cluster,
    hosts: Hosts,
    facts: dict[str, NodeFacts],
    action: NodeAction,
    *,
    check: bool,
    notes: Sequence[str] = (),
) -> StepReport:
    """Run `action` on every node in parallel and collect a report; raise StepFailed if any failed."""
    results = parallel(list(cluster.nodes), lambda node: action(node, hosts[node.name], facts[node.name]))
    report = StepReport(step=step, title=title, check=check, notes=list(notes))
    for node, result in zip(cluster.nodes, results):
        if isinstance(result, Exception):
            report.outcomes.append(NodeOutcome(node.name, "failed", str(result).removeprefix(f"{node.name}: ")))
        else:
            report.outcomes.append(result)  # type: ignore[arg-type]
    raise_if_failed(report)
    return report


def raise_if_failed(report: StepReport) -> None:
    if report.failed or report.problems:
        raise StepFailed(report.step, {o.node: o.summary for o in report.failed}, report, report.problems)


def generation_of(cluster: Cluster, facts: NodeFacts, step: str, check: bool = False) -> int:
    """The Corosync generation to act for on this node: the cluster file's, else the installed one.

    In check mode, before step 01 has run, the package manager's candidate version stands in for it.
    """
    if cluster.generation is not None:
        return cluster.generation
    if facts.generation is None and check and facts.candidate_generation in (1, 2, 3):
        return facts.candidate_generation  # type: ignore[return-value]
    if facts.generation is None:
        raise StepFailed(step, {facts.node: "Corosync is not installed, so its generation is unknown; run step 01-install first (or set generation in the cluster file)"})
    if facts.generation not in (1, 2, 3):
        raise StepFailed(step, {facts.node: f"Corosync {facts.corosync_version} is not a generation this runbook knows (1, 2, 3)"})
    return facts.generation
