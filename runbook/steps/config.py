"""Step 2: write each node's corosync.conf, rendered for the generation that node runs.

The rendered file is compared with the node's current one; only a difference is written. Every node's
new file is staged first (beside the real one, checked, backed up), and on Corosync 3 each staged
file is tested with `corosync -t -c` on its own node; nothing is put in place anywhere unless every
node staged and accepted its file (runbook.engine.executor).
"""

from __future__ import annotations

import re

from runbook.conf.parse import equivalent
from runbook.conf.render import HEADER_MARK, render
from runbook.engine import operations
from runbook.engine.facts import CONF_PATH, NodeFacts
from runbook.engine.plan import NodePlan, StepPlan
from runbook.errors import RunbookError
from runbook.model.types import Cluster, Node
from runbook.report.outcome import StepReport, unified_diff
from runbook.ssh.hosts import Hosts
from runbook.steps._common import apply, gather_facts, generation_of
from runbook.steps.qdevice_plan import stop_command

STEP = "02-corosync-conf"
TITLE = "Write corosync.conf"
SECTIONS = ("corosync_version", "corosync_candidate", "init", f"file:{CONF_PATH}")
QDEVICE = {"qdevice_pids": "pidof corosync-qdevice 2>/dev/null || true"}

MISSING_KEY = "Could not open /etc/corosync/authkey"
# Corosync 3's own check of the staged file ("$f"), on the node it is meant for. corosync reads the
# authkey only after the whole config has passed validation, so "cannot open authkey" (step 03 makes
# it later) means the file itself is accepted.
VALIDATE = (
    'if ! out=$(corosync -t -c "$f" 2>&1); then '
    f"bad=$(printf '%s\\n' \"$out\" | grep -i error | grep -v -e '{MISSING_KEY}' -e 'exiting with status' || true); "
    "if [ -n \"$bad\" ] || ! printf '%s\\n' \"$out\" | grep -qi error; then "
    'echo "corosync -t rejected the rendered file:"; printf "%s\\n" "${bad:-$out}" | tail -n 5; exit 8; fi; fi'
)


def same(current: str | None, wanted: str) -> bool:
    """Pure: same settings in the same order; comments (the generated header names its source) don't count."""
    if current is None:
        return False
    try:
        return current == wanted or equivalent(current, wanted)
    except RunbookError:
        return False  # the node's file does not even parse: it gets replaced (with a backup)


def plan_node(cluster: Cluster, node: Node, facts: NodeFacts, check: bool) -> NodePlan:
    """Pure: write the node's file when its settings differ from the rendered ones."""
    generation = generation_of(cluster, facts, STEP, check)
    wanted = render(cluster, node.name, generation)
    current_fact = facts.file(CONF_PATH)
    current = current_fact.text if current_fact else None
    plan = NodePlan(node.name, files={CONF_PATH: wanted})
    if same(current, wanted):
        plan.summary = f"{CONF_PATH} is already the Corosync {generation}.x file"
        return plan
    reason = "no file yet" if current is None else "its settings differ from the cluster file's"
    validate = VALIDATE if generation == 3 else None
    device = cluster.quorum.device
    if device is None and facts.extra.get("qdevice_pids", "").strip():
        # The new file has no quorum device, but corosync-qdevice runs: stopped before the file changes (as pcs does). Stopped after
        # the reload, it leaves without unregistering, and votequorum keeps listing a dead `Qdevice (votes 0)` (seen in the lab).
        stop = stop_command(facts.init_system, "corosync-qdevice")
        plan.operations.append(operations.run("remove", stop, "the new file has no quorum device: its daemon stops before the file "
                                              "changes, so that it unregisters its vote", by_hand=(stop,)))
    plan.operations.append(operations.write_file(CONF_PATH, wanted.encode(), reason, mode=0o644, validate=validate, validate_shown="corosync -t -c <new file>"))
    plan.diff = unified_diff(current or "", wanted, CONF_PATH)
    plan.would = f"{'would create' if current is None else 'would replace'} {CONF_PATH} (Corosync {generation}.x)"
    tested = ", accepted by corosync -t" if validate else ""
    plan.change = f"wrote {CONF_PATH} (Corosync {generation}.x{tested})"
    if len(plan.operations) > 1:
        plan.change += "; stopped corosync-qdevice first (the file has no quorum device)"
        plan.would += "; would stop corosync-qdevice first (the file has no quorum device)"
    return plan


def edited_elsewhere(cluster: Cluster, facts: dict[str, NodeFacts], plans: dict[str, NodePlan]) -> list[str]:
    """Pure: warnings for files someone else changed (by hand, pcs or crmsh), which this run replaces.

    A file for this cluster without the runbook's header was written by someone else (a package's
    default file names another cluster, and is not warned about). A file that differs while
    other nodes already have the cluster file's version was changed on that node, since a change of
    the cluster file changes every node's file."""
    notes = []
    same_elsewhere = [n for n, p in plans.items() if not p.changes and facts[n].file(CONF_PATH) is not None]
    for name, node_plan in plans.items():
        current = facts[name].file(CONF_PATH)
        if not node_plan.changes or current is None:
            continue
        named = re.search(r"^\s*cluster_name:\s*(\S+)", current.text, re.MULTILINE)
        if HEADER_MARK not in current.text and named and named.group(1) == cluster.name:  # not a package's default file
            why = f"a file for cluster {cluster.name} that the runbook did not write (no header of the runbook's)"
        elif same_elsewhere:
            why = f"it was changed on the node ({', '.join(same_elsewhere)} already {'has' if len(same_elsewhere) == 1 else 'have'} the cluster file's version)"
        else:
            continue
        notes.append(f"WARNING: {name}'s {CONF_PATH}: {why}: a hand edit, pcs or crmsh? This run replaces it (the old file kept "
                     "as a backup); make the change in the cluster file instead, or let only one tool own the file")
    return notes


def plan(cluster: Cluster, facts: dict[str, NodeFacts], check: bool = False) -> StepPlan:
    plans = {n.name: plan_node(cluster, n, facts[n.name], check) for n in cluster.nodes}
    return StepPlan(STEP, TITLE, plans, notes=edited_elsewhere(cluster, facts, plans))


def write_config(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    return apply(plan(cluster, gather_facts(STEP, cluster, hosts, SECTIONS, QDEVICE), check), cluster, hosts, check=check)


__all__ = ["write_config"]
