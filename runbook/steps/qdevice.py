"""Step 7: the quorum device: corosync-qnetd on its own host, corosync-qdevice on every node, and proof
that the device's vote counts (`corosync-quorumtool -s` on every node shows it Alive and Voting).

Facts are read on every node and on the qnetd host before anything changes; the decisions are
runbook.steps.qdevice_plan's, pure. A cluster file without a device makes this step stop a
corosync-qdevice that an earlier run left behind, and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from runbook.conf.membership import View, parse_quorumtool
from runbook.engine.executor import execute
from runbook.engine.plan import StepPlan
from runbook.errors import StepFailed
from runbook.model.types import Cluster
from runbook.report.outcome import NodeOutcome, StepReport
from runbook.ssh.endpoint import resolve_endpoint
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Host, Hosts
from runbook.steps._common import gather_facts, generation_of
from runbook.steps.qdevice_plan import (
    FACTS_SCRIPT,
    QNETD_PORT,
    STEP,
    TITLE,
    QFacts,
    parse_facts,
    plan_phases,
    plan_removal,
    qnetd_node,
)

VOTE_WAIT = 60.0  # seconds for every node's corosync-qdevice to connect and its vote to count
QUORUMTOOL = "corosync-quorumtool -s 2>/dev/null"


def read_facts(names: list[str], hosts: Mapping[str, Host]) -> dict[str, QFacts]:
    """Every named host's QFacts, or StepFailed naming each host that could not be read (nothing changed)."""
    results = each(names, lambda name: parse_facts(name, hosts[name].run(FACTS_SCRIPT, timeout=60).text))
    if results.failed:
        raise StepFailed(STEP, {name: why + " (nothing was changed on any host)" for name, why in results.reasons().items()})
    return results.ok


def merge(reports: list[StepReport], order: list[str], quiet: Mapping[str, str], check: bool) -> StepReport:
    """One report for the step: per host, the operations of every phase that touched it, in order."""
    merged = StepReport(step=STEP, title=TITLE, check=check, planned=True)
    for name in order:
        parts = [o for r in reports for o in r.outcomes if o.node == name]
        changed = [o for o in parts if o.status in ("changed", "would change", "failed")]
        if not changed:
            merged.outcomes.append(NodeOutcome(name, "unchanged", quiet[name]))
            continue
        status = "failed" if any(o.status == "failed" for o in changed) else changed[0].status
        merged.outcomes.append(NodeOutcome(name, status, "; ".join(o.summary for o in changed if o.summary),  # type: ignore[arg-type]
                                           operations=[op for o in changed for op in o.operations]))
    for r in reports:
        merged.by_hand += r.by_hand
        merged.notes += [n for n in r.notes if n not in merged.notes]
    return merged


def setup_quorum_device(cluster: Cluster, hosts: Hosts, *, check: bool = False, wait: float = VOTE_WAIT) -> StepReport:
    device = cluster.quorum.device
    names = [n.name for n in cluster.nodes]
    if device is None or device.net is None:
        facts = read_facts(names, hosts)
        report = execute(plan_removal(cluster, facts), hosts, check=check, keep=cluster.backups.keep)
        report.notes.append("The cluster file has no quorum.device: nothing to set up. Step 06 wrote two_node for a two-node cluster.")
        return report
    qnode = qnetd_node(device.net)  # not a cluster node: the cluster file's rules refuse that (model.rules)
    # One round trip per node: the generation and this step's own facts in one facts script.
    node_facts = gather_facts(STEP, cluster, hosts, ("corosync_version", "corosync_candidate"), extra={"qdevice": FACTS_SCRIPT})
    for f in node_facts.values():
        if generation_of(cluster, f, STEP, check) == 1:
            raise StepFailed(STEP, {f.node: "Corosync 1.x has no quorum device (votequorum and corosync-qdevice came with 2.x); "
                                    "remove quorum.device from the cluster file or upgrade (nothing was changed)"})
    qhost = Host(resolve_endpoint(qnode, cluster.ssh))
    try:
        every = Hosts([*(hosts[n] for n in names), qhost])
        qnetd = read_facts([qnode.name], every)[qnode.name]
        phases = plan_phases(cluster, {n: parse_facts(n, f.extra.get("qdevice", "")) for n, f in node_facts.items()}, qnetd)
        reports = _apply(phases, every, cluster, check)
        quiet = {qnode.name: f"corosync-qnetd runs (TCP {device.net.port or QNETD_PORT}), its CA made",
                 **{n: "corosync-qdevice runs with the cluster's certificate" for n in names}}
        report = merge(reports, [qnode.name, *names], quiet, check)
        report.notes.append(
            f"The qnetd host {qnode.name} ({qnode.address}) is not a cluster member: it only casts the tie-breaking vote "
            f"({device.net.algorithm or 'its default algorithm'}). The cluster's private key travels only inside the runbook's own copy "
            "and is never shown; each node keeps it in its certificate database.")
        if not check:
            _verify_votes(report, cluster, hosts, qnode.name, device.net.port or QNETD_PORT, wait)
        return report
    finally:
        qhost.close()


def _apply(phases: list[StepPlan], every: Hosts, cluster: Cluster, check: bool) -> list[StepReport]:
    reports: list[StepReport] = []
    for phase in phases:
        try:
            reports.append(execute(phase, every, check=check, keep=cluster.backups.keep))
        except StepFailed as exc:
            if reports and isinstance(exc.report, StepReport):
                done = ", ".join(o.node for r in reports for o in r.outcomes if o.status == "changed")
                exc.report.notes.append(f"Earlier phases of this step were done ({done or 'nothing changed'}); a new run goes on from here.")
            raise
    return reports


def _verify_votes(report: StepReport, cluster: Cluster, hosts: Hosts, qnetd: str, port: int, wait: float) -> None:
    """Wait until every node counts the device's vote; else fail naming the nodes and where to look."""
    deadline = time.monotonic() + wait
    views: dict[str, View] = {}
    while True:
        results = each([n.name for n in cluster.nodes], lambda name: parse_quorumtool(name, hosts[name].run(QUORUMTOOL, check=False, timeout=20).text))
        views = results.ok
        if len(views) == len(cluster.nodes) and all(v.qdevice_counts for v in views.values()):
            break
        if time.monotonic() > deadline:
            bad = {n: _describe(views.get(n)) + f"; is TCP {port} open on {qnetd}, and does `corosync-qdevice-tool -sv` on the node say why?"
                   for n in (m.name for m in cluster.nodes) if n not in views or not views[n].qdevice_counts}
            raise StepFailed(STEP, bad, report)
        time.sleep(1)
    for outcome in report.outcomes:
        view = views.get(outcome.node)
        if view is not None:
            outcome.summary = (outcome.summary + "; " if outcome.status == "changed" else "") + _describe(view)
            outcome.detail = view.raw.strip()


def _describe(view: View | None) -> str:
    if view is None or not view.running:
        return "corosync is not running"
    counted = "the quorum device's vote counts" if view.qdevice_counts else f"the quorum device's vote does not count (flags {view.flags or '?'}, device {view.qdevice_flags or 'not listed'})"
    return f"{counted}: {view.total_votes} of {view.expected_votes} votes, {'quorate' if view.quorate else 'NOT quorate'}"
