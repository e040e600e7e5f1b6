"""Step 4: the chapter's `corosync-cfgtool -r` line in /etc/rc.local, where it does something.

On 1.x and 2.x it resets the redundant ring state at boot. Corosync 3 has no `-r` (it prints its usage
and exits 0), and knet brings failed links back by itself, so there the line would silently do nothing:
the step skips it and says why.
"""

from __future__ import annotations

from runbook.cluster import Cluster, Node
from runbook.edits import CFGTOOL_LINE, has_cfgtool_line, with_cfgtool_line
from runbook.facts import RC_LOCAL_PATH, NodeFacts
from runbook.hosts import Host, Hosts
from runbook.report import NodeOutcome, StepReport, unified_diff
from runbook.steps._common import gather_facts, generation_of, run_per_node

STEP = "04-cfgtool"
TITLE = "The cfgtool line in rc.local"
SKIP_ON_3 = (
    "Corosync 3 has no `corosync-cfgtool -r` (it prints usage and exits 0) and knet recovers links on its own: "
    "the line would do nothing, so it is not added"
)


def cfgtool_line(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        current = f.file(RC_LOCAL_PATH)
        if generation_of(cluster, f, STEP, check) == 3:
            if current is not None and has_cfgtool_line(current.text):
                return NodeOutcome(node.name, "skipped", f"Corosync 3: {RC_LOCAL_PATH} still runs `{CFGTOOL_LINE}`, which does nothing on 3.x (left as it is)")
            return NodeOutcome(node.name, "skipped", "Corosync 3: not needed (see note)")
        old = current.text if current else None
        new, how = with_cfgtool_line(old)
        executable = current is not None and current.mode & 0o111 == 0o111
        if new == old and executable:
            return NodeOutcome(node.name, "unchanged", f"{RC_LOCAL_PATH} already runs `{CFGTOOL_LINE}` before exit 0")
        mode = (current.mode | 0o755) if current else 0o755
        if new == old:
            how = f"made {RC_LOCAL_PATH} executable ({current.mode:o} -> {mode:o})" if current else how
        elif current is not None and not executable:
            how += f"; made it executable ({current.mode:o} -> {mode:o})"
        diff = unified_diff(old or "", new, RC_LOCAL_PATH)
        if check:
            return NodeOutcome(node.name, "would change", "would have " + how, diff=diff)
        owner, group = (current.owner, current.group) if current else ("root", "root")
        result = host.write_file(RC_LOCAL_PATH, new.encode(), mode=mode, owner=owner, group=group)
        kept = f"; previous file kept as {result.backup}" if result.backup else ""
        return NodeOutcome(node.name, "changed", how + kept, diff=diff)

    notes = []
    if any(generation_of(cluster, f, STEP, check) == 3 for f in facts.values()):
        notes.append(SKIP_ON_3)
    return run_per_node(STEP, TITLE, cluster, hosts, facts, act, check=check, notes=notes)
