"""`runbook status`: does the running cluster agree with its cluster file? Read only, per node.

Six questions per node (seven with a quorum device), each answered from what the node says, never from what a run last did:

- `file`: is /etc/corosync/corosync.conf the file the runbook renders from the cluster file?
- `running`: does the running Corosync run that file? Its map (`corosync-cmapctl`) is compared with
  the file on disk key by key, as step 06 does (runbook.steps.change); 1.x has no map to compare,
  so there the daemon must be newer than its files.
- `authkey`: the same key as the primary's (by SHA-256 digest; the bytes never leave the node), root:root 0400.
- `membership`: every node a member, quorate, as this node sees it.
- `links`: every link connects this node to every other node.
- `boot`: Corosync starts at boot (what step 05 would change, if anything).
- `qdevice` (only with a quorum device in the cluster file): this node counts the device's vote.

Exit 0 when every answer is yes, 1 when something drifted (each drift names what to run), and the
same facts as JSON with `--json`, for monitoring. A node that cannot be reached is a drift too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from runbook.conf.change_kind import Kind
from runbook.conf.membership import View, links_line
from runbook.conf.render import render
from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH, NodeFacts, gather
from runbook.model.types import Cluster
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Host, Hosts
from runbook.steps import boot, change
from runbook.steps.config import same
from runbook.steps.members import NodeLinks, read_links, read_view
from runbook.steps.restart import STATE_SCRIPT, parse_state, restart_reason
from runbook.steps.start import authkey_changed

# What the checks read, with what step 05's plan reads for the boot check
SECTIONS = tuple(dict.fromkeys(("corosync_version", "corosync_pids", "authkey", f"file:{CONF_PATH}", *boot.SECTIONS)))


@dataclass(frozen=True)
class Check:
    """One answer: yes or no, in words, and (for a no) what to run."""

    ok: bool
    detail: str
    fix: str = ""


@dataclass
class NodeStatus:
    node: str
    checks: dict[str, Check] = field(default_factory=dict)
    unreachable: str = ""

    @property
    def ok(self) -> bool:
        return not self.unreachable and all(c.ok for c in self.checks.values())


@dataclass(frozen=True)
class NodeReading:
    """What one node said: its facts, its view of the membership and its links (None: not running)."""

    facts: NodeFacts
    view: View
    links: NodeLinks | None


def read_node(host: Host) -> NodeReading:
    """Read only: the facts, the running map and state, the membership, the links."""
    facts = gather(host, SECTIONS, extra={"state": STATE_SCRIPT, change.SECTION: change.SCRIPT})
    generation = facts.generation or 3
    view = read_view(host, generation)
    return NodeReading(facts, view, read_links(host, generation) if view.running else None)


def assess(cluster: Cluster, readings: Mapping[str, NodeReading | Exception]) -> list[NodeStatus]:
    """Pure: every node's answers (six, seven with a quorum device) from what the nodes said."""
    file_cmd = f"runbook run {cluster.source or 'FILE'}"
    reached = {n: r for n, r in readings.items() if isinstance(r, NodeReading)}
    generation = cluster.generation or next((r.facts.generation for r in reached.values() if r.facts.generation), 3)
    running = {n: change.parse_running(n, r.facts.extra.get(change.SECTION, "")) for n, r in reached.items()}
    on_disk = {n: r.facts.file(CONF_PATH) for n, r in reached.items()}
    version = change.lowest_version(r.facts.corosync_version for r in reached.values())
    decided = (change.decision(running, {n: f.text for n, f in on_disk.items() if f is not None}, generation, version, cluster.name)
               if all(on_disk.values()) else None)
    primary_key = reached[cluster.primary.name].facts.authkey if cluster.primary.name in reached else None
    expected = len(cluster.nodes)
    result = []
    for node in cluster.nodes:
        status = NodeStatus(node.name)
        reading = readings.get(node.name)
        if not isinstance(reading, NodeReading):
            status.unreachable = str(reading).removeprefix(f"{node.name}: ")
            result.append(status)
            continue
        f = reading.facts
        wanted = render(cluster, node.name, f.generation or generation)
        current = on_disk[node.name]
        status.checks["file"] = (Check(True, f"{CONF_PATH} is the rendered file") if current is not None and same(current.text, wanted)
                                 else Check(False, f"{CONF_PATH} {'is missing' if current is None else 'differs from the cluster file'}", file_cmd))
        status.checks["running"] = _running(node.name, reading, running, decided, cluster, generation, file_cmd)
        key = f.authkey
        if key is None:
            status.checks["authkey"] = Check(False, f"no {AUTHKEY_PATH}", file_cmd)
        elif primary_key is not None and key.sha256 != primary_key.sha256:
            status.checks["authkey"] = Check(False, f"a different key from the primary's ({cluster.primary.name})", file_cmd)
        elif (key.mode, key.owner, key.group) != (0o400, "root", "root"):
            status.checks["authkey"] = Check(False, f"mode {key.mode:o} {key.owner}:{key.group}, not 0400 root:root", file_cmd)
        else:
            status.checks["authkey"] = Check(True, f"the cluster's key (sha256 {key.sha256[:12]}…), 0400 root:root")
        view = reading.view
        status.checks["membership"] = Check(view.complete(expected), view.describe(expected), "" if view.complete(expected) else f"runbook membership {cluster.source or 'FILE'}")
        if reading.links is None:
            status.checks["links"] = Check(False, "Corosync is not running", file_cmd)
        else:
            ok = reading.links.complete(cluster.link_count, expected - 1)
            status.checks["links"] = Check(ok, links_line(reading.links.links), "" if ok else "check the network between the nodes (runbook membership FILE)")
        if cluster.quorum.device is not None:
            status.checks["qdevice"] = qdevice_check(view, cluster.source or "FILE")
        boot_plan = boot.plan_node(f)
        status.checks["boot"] = (Check(True, boot_plan.summary or "enabled at boot") if not boot_plan.changes
                                 else Check(False, boot_plan.would or "not enabled at boot", file_cmd))
        result.append(status)
    return result


def qdevice_check(view: View, source: str) -> Check:
    """Pure: with a quorum device in the cluster file, does this node count its vote (Alive and Voting)?"""
    if not view.running:
        return Check(False, "Corosync is not running", f"runbook run {source}")
    if view.qdevice_counts:
        return Check(True, f"the quorum device's vote counts: {view.total_votes} of {view.expected_votes} votes")
    return Check(False, f"the quorum device's vote does not count (device {view.qdevice_flags or 'not listed'})",
                 f"corosync-qdevice-tool -sv on the node; runbook run {source}")


def _running(name: str, reading: NodeReading, running: Mapping[str, change.Running | None], decided, cluster: Cluster,  # type: ignore[no-untyped-def]
             generation: int, file_cmd: str) -> Check:
    if not reading.facts.corosync_running:
        return Check(False, "Corosync is not running", file_cmd)
    state = parse_state(reading.facts.extra.get("state", ""))
    old_key = f"another authkey than {AUTHKEY_PATH} (the key changed after it started)" if authkey_changed(state) else ""
    also = f"; and {old_key}" if old_key else ""
    if decided is not None and running.get(name) is not None:
        d = decided.node(name)
        if d.kind == Kind.NOTHING:
            return Check(not old_key, "Corosync runs the file on disk (its running map, key by key)" + also, file_cmd if old_key else "")
        return Check(False, f"Corosync runs another file: {change.forcing_keys(d)}; a run would {d.kind.words}" + also, file_cmd)
    if old_key:
        return Check(False, f"Corosync runs {old_key}", file_cmd)
    reason = restart_reason(state, cluster.name, generation)
    if reason is None:
        return Check(True, "Corosync was started after its files last changed")
    return Check(False, f"Corosync may run an older file: {reason}", file_cmd)


def to_json(cluster: Cluster, statuses: list[NodeStatus]) -> dict[str, object]:
    """Pure: the --json form: per node, each check's ok, detail and fix."""
    return {
        "cluster": cluster.name,
        "ok": all(s.ok for s in statuses),
        "nodes": {s.node: {"ok": s.ok, "unreachable": s.unreachable or None, "checks": {k: asdict(c) for k, c in s.checks.items()}}
                  for s in statuses},
    }


def lines(cluster: Cluster, statuses: list[NodeStatus]) -> list[str]:
    """Pure: what `runbook status` prints: a line per node and check, drifts first named, then the verdict."""
    out = []
    for s in statuses:
        if s.unreachable:
            out.append(f"{s.node}: unreachable: {s.unreachable}")
            continue
        out.append(f"{s.node}: {'ok' if s.ok else 'DRIFT'}")
        for name, check in s.checks.items():
            out.append(f"  {'ok   ' if check.ok else 'DRIFT'} {name:<10} {check.detail}" + (f"  -> {check.fix}" if check.fix else ""))
    drifted = [s.node for s in statuses if not s.ok]
    out.append(f"cluster '{cluster.name}': " + ("every node agrees with the cluster file" if not drifted else f"drift on {', '.join(drifted)}"))
    return out


def status(cluster: Cluster, hosts: Hosts) -> list[NodeStatus]:
    """Read every node (in parallel) and assess."""
    results = each([n.name for n in cluster.nodes], lambda name: read_node(hosts[name]))
    return assess(cluster, {name: results.value_or_error(name) for name in results})
