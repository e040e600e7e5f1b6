"""The shape every step shares: read facts on all nodes, then decide and act per node, in parallel.

Facts are read on *every* node before anything changes on *any* node: if one node cannot be reached,
the step stops with nothing done. A node's failure during the act phase is recorded in the report and
raised as StepFailed once every other node has finished (stopping threads half-way would leave more
half-done than letting them finish).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from runbook.cluster import Cluster, Node
from runbook.errors import StepFailed
from runbook.executor import execute, raise_if_failed
from runbook.facts import ALL, NodeFacts, gather
from runbook.fanout import parallel
from runbook.hosts import Host, Hosts
from runbook.plan import StepPlan
from runbook.report import NodeOutcome, StepReport


def gather_facts(
    step: str, cluster: Cluster, hosts: Hosts, sections: tuple[str, ...] = ALL, extra: Mapping[str, str] | None = None
) -> dict[str, NodeFacts]:
    """Facts of every node (only `sections`, plus a step's `extra` ones), or StepFailed naming each
    node that could not be read (nothing changed)."""
    results = parallel([hosts[n.name] for n in cluster.nodes], lambda host: gather(host, sections, extra))
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


def apply(plan: StepPlan, cluster: Cluster, hosts: Hosts, *, check: bool) -> StepReport:
    """Apply a step's plan with the one executor (or record it, in check mode)."""
    return execute(plan, hosts, check=check, keep=cluster.backups.keep)


__all__ = ["StepFailed", "apply", "gather_facts", "generation_of", "parallel", "raise_if_failed", "run_per_node"]
