"""Step 2: write each node's corosync.conf, rendered for the generation that node runs.

The rendered file is compared with the node's current one; only a difference is written (atomically,
with a backup), and `check` shows the diff instead. On Corosync 3 every candidate is first tested with
`corosync -t -c` on its node, and nothing is written anywhere unless every node accepts its file.
"""

from __future__ import annotations


from runbook.cluster import Cluster, Node
from runbook.corosync_conf import equivalent, render
from runbook.errors import CommandFailed, RunbookError
from runbook.facts import CONF_PATH, NodeFacts
from runbook.hosts import Host, Hosts
from runbook.report import NodeOutcome, StepReport, unified_diff
from runbook.steps._common import StepFailed, gather_facts, generation_of, parallel, run_per_node

STEP = "02-corosync-conf"
TITLE = "Write corosync.conf"

TEST_SCRIPT = 'set -e; t=$(mktemp); trap \'rm -f "$t"\' EXIT; cat > "$t"; corosync -t -c "$t" 2>&1'


MISSING_KEY = "Could not open /etc/corosync/authkey"


def _test_config(host: Host, text: str) -> str:
    """Corosync 3's own check of a candidate file, run on the node it is meant for.

    corosync reads the authkey only after the whole config has passed validation, so "cannot open
    authkey" (step 03 makes it later) means the file itself is accepted.
    """
    try:
        host.run(TEST_SCRIPT, input=text.encode(), display=f"corosync -t -c <candidate {CONF_PATH}>")
        return "accepted by corosync -t"
    except CommandFailed as exc:
        output = exc.stdout + exc.stderr
        errors = [line for line in output.splitlines() if "error" in line.lower()]
        if errors and all(MISSING_KEY in line or "exiting with status" in line for line in errors):
            return "accepted by corosync -t (up to the authkey, which step 03 makes)"
        shown = errors or output.splitlines()[-3:]
        raise CommandFailed(host.name, exc.command or "corosync -t", exc.exit_status, "\n".join(shown)) from None


def _same(current: str | None, wanted: str) -> bool:
    """Same settings in the same order; comments (the generated header names its source) don't count."""
    if current is None:
        return False
    try:
        return current == wanted or equivalent(current, wanted)
    except RunbookError:
        return False  # the node's file does not even parse: it gets replaced (with a backup)


def write_config(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)
    wanted = {n.name: render(cluster, n.name, generation_of(cluster, facts[n.name], STEP, check)) for n in cluster.nodes}
    current = {n: (f.file(CONF_PATH).text if f.file(CONF_PATH) else None) for n, f in facts.items()}
    differs = [n for n in cluster.nodes if not _same(current[n.name], wanted[n.name])]

    to_test = [n for n in differs if generation_of(cluster, facts[n.name], STEP, check) == 3 and not check]
    results = parallel(to_test, lambda n: _test_config(hosts[n.name], wanted[n.name]))
    rejected = {n.name: f"corosync -t rejected the rendered file: {r}" for n, r in zip(to_test, results) if isinstance(r, Exception)}
    verdicts = {n.name: r for n, r in zip(to_test, results) if isinstance(r, str)}
    if rejected:
        raise StepFailed(STEP, {k: v + " (nothing was written on any node)" for k, v in rejected.items()})

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        old, new = current[node.name], wanted[node.name]
        generation = generation_of(cluster, f, STEP, check)
        if _same(old, new):
            return NodeOutcome(node.name, "unchanged", f"{CONF_PATH} is already the Corosync {generation}.x file")
        diff = unified_diff(old or "", new, CONF_PATH)
        if check:
            what = "would create" if old is None else "would replace"
            return NodeOutcome(node.name, "would change", f"{what} {CONF_PATH} (Corosync {generation}.x)", diff=diff)
        result = host.write_file(CONF_PATH, new.encode(), mode=0o644, keep=cluster.backups.keep)
        kept = f"; previous file kept as {result.backup}" if result.backup else ""
        tested = f", {verdicts[node.name]}" if node.name in verdicts else ""
        return NodeOutcome(node.name, "changed", f"wrote {CONF_PATH} (Corosync {generation}.x{tested}){kept}", diff=diff)

    return run_per_node(STEP, TITLE, cluster, hosts, facts, act, check=check)


__all__ = ["write_config"]
