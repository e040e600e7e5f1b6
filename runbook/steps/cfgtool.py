"""Step 4: the chapter's `corosync-cfgtool -r` line in /etc/rc.local, where it does something.

On 1.x and 2.x it resets the redundant ring state at boot. Corosync 3 has no `-r` (it prints its usage
and exits 0), and knet brings failed links back by itself, so there the line would silently do nothing:
the step skips it and says why.
"""

from __future__ import annotations

from runbook.conf.edits import CFGTOOL_LINE, has_cfgtool_line, with_cfgtool_line
from runbook.engine import operations
from runbook.engine.facts import RC_LOCAL_PATH, NodeFacts
from runbook.engine.plan import NodePlan, StepPlan
from runbook.model.types import Cluster
from runbook.report.outcome import StepReport, unified_diff
from runbook.ssh.hosts import Hosts
from runbook.steps._common import apply, gather_facts, generation_of

STEP = "04-cfgtool"
TITLE = "The cfgtool line in rc.local"
SECTIONS = ("corosync_version", "corosync_candidate", f"file:{RC_LOCAL_PATH}")
SKIP_ON_3 = (
    "Corosync 3 has no `corosync-cfgtool -r` (it prints usage and exits 0) and knet recovers links on its own: "
    "the line would do nothing, so it is not added"
)
# What an operator types: the line just before rc.local's `exit 0` (GNU sed), or a new rc.local.
BY_HAND_INSERT = f"sed -i 's|^exit 0|{CFGTOOL_LINE}\\nexit 0|' {RC_LOCAL_PATH}"
BY_HAND_NEW = (f"printf '#!/bin/sh -e\\n{CFGTOOL_LINE}\\nexit 0\\n' > {RC_LOCAL_PATH}",)


def plan_node(cluster: Cluster, f: NodeFacts, check: bool) -> NodePlan:
    """Pure: the line before `exit 0` (rc.local made if missing, made executable) on 1.x/2.x only."""
    plan = NodePlan(f.node)
    current = f.file(RC_LOCAL_PATH)
    if generation_of(cluster, f, STEP, check) == 3:
        plan.quiet = "skipped"
        if current is not None and has_cfgtool_line(current.text):
            plan.summary = f"Corosync 3: {RC_LOCAL_PATH} still runs `{CFGTOOL_LINE}`, which does nothing on 3.x (left as it is)"
        else:
            plan.summary = "Corosync 3: not needed (see note)"
        return plan
    old = current.text if current else None
    new, how = with_cfgtool_line(old)
    executable = current is not None and current.mode & 0o111 == 0o111
    if new == old and executable:
        plan.summary = f"{RC_LOCAL_PATH} already runs `{CFGTOOL_LINE}` before exit 0"
        return plan
    mode = (current.mode | 0o755) if current else 0o755
    hand: tuple[str, ...] = ()
    if new == old:
        how = f"made {RC_LOCAL_PATH} executable ({current.mode:o} -> {mode:o})" if current else how
    else:
        hand = BY_HAND_NEW if current is None else (BY_HAND_INSERT,)
        if current is not None and not executable:
            how += f"; made it executable ({current.mode:o} -> {mode:o})"
    hand += (f"chmod {mode:o} {RC_LOCAL_PATH}",) if (current is None or not executable) else ()
    owner, group = (current.owner, current.group) if current else ("root", "root")
    reason = "no rc.local yet" if current is None else "the line is missing" if new != old else "rc.local is not executable"
    plan.operations.append(operations.write_file(RC_LOCAL_PATH, new.encode(), reason, mode=mode, owner=owner, group=group, by_hand=hand))
    plan.files = {RC_LOCAL_PATH: new}
    plan.diff = unified_diff(old or "", new, RC_LOCAL_PATH)
    plan.would, plan.change = "would have " + how, how
    return plan


def plan(cluster: Cluster, facts: dict[str, NodeFacts], check: bool = False) -> StepPlan:
    nodes = {n.name: plan_node(cluster, facts[n.name], check) for n in cluster.nodes}
    notes = [SKIP_ON_3] if any(generation_of(cluster, f, STEP, check) == 3 for f in facts.values()) else []
    return StepPlan(STEP, TITLE, nodes, notes=notes)


def cfgtool_line(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    return apply(plan(cluster, gather_facts(STEP, cluster, hosts, SECTIONS), check), cluster, hosts, check=check)
