"""The shape every step shares: read facts on all nodes, plan from them, apply the plan.

Facts are read on *every* node before anything changes on *any* node: if one node cannot be reached,
the step stops with nothing done. The plan is a pure function of the facts (each step's `plan`), and
runbook.engine.executor applies it, or records it unapplied in check mode.
"""

from __future__ import annotations

from collections.abc import Mapping

from runbook.engine.executor import execute
from runbook.engine.facts import ALL, NodeFacts, gather
from runbook.engine.plan import StepPlan
from runbook.errors import StepFailed
from runbook.model.types import Cluster
from runbook.report.outcome import StepReport
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts


def gather_facts(
    step: str, cluster: Cluster, hosts: Hosts, sections: tuple[str, ...] = ALL, extra: Mapping[str, str] | None = None
) -> dict[str, NodeFacts]:
    """Facts of every node (only `sections`, plus a step's `extra` ones), or StepFailed naming each
    node that could not be read (nothing changed)."""
    results = each([n.name for n in cluster.nodes], lambda name: gather(hosts[name], sections, extra))
    if results.failed:
        raise StepFailed(step, {name: why + " (nothing was changed on any node)" for name, why in results.reasons().items()})
    return results.ok


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

