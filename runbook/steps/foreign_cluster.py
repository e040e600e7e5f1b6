"""A node that is already a member of another running cluster: seen at preflight, refused unless told.

A cluster file that names nodes of a running cluster under another cluster_name would move them out
of it: the nodes left behind lose them, and may lose quorum (seen: `lab3` converged on three nodes, a
file `lab3b` naming two of them, exit 0, and the third node inquorate). So preflight asks each node's
running Corosync which cluster it is in and who its members are, and refuses a node that is in a
cluster of another name with other members, naming that cluster and its members, unless the run
was given `--take-over`.

A file that names every member of a running cluster under a new cluster_name renames that cluster:
nobody is left behind, but every node must restart together (runbook.steps.change), so it takes
`--restart-all` instead.

Not refused: a node whose Corosync runs alone (one member: the package's own default config, as
Debian's `apt-get install corosync` starts it, or a node set up by itself), and a node of the same
cluster_name (the cluster this file describes, being changed). Corosync 1.x has no cluster_name;
there nothing is refused.

Pure: `parse_running` reads the node's whole running map, as step 06 reads it (runbook.steps.change
SCRIPT: preflight prints it once for both); tests feed it captured output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runbook.conf.members import Member, parse_members
from runbook.conf.running import parse_cmapctl
from runbook.errors import HostError
from runbook.model.types import Cluster, Node


@dataclass(frozen=True)
class RunningCluster:
    """The cluster a node's running Corosync is in: its name and its joined members."""

    name: str
    members: tuple[Member, ...]

    def describe(self) -> str:
        addresses = ", ".join(m.addresses[0] for m in self.members)
        return f"'{self.name}' ({len(self.members)} members: {addresses})"


def parse_running(text: str) -> RunningCluster | None:
    """Pure: `corosync-cmapctl` output -> the running cluster, or None (Corosync not running, no cmap, no name).

    Members: `runtime.members` on 3.x, `runtime.totem.pg.mrp.srp.members` on 2.x (parse_members reads both)."""
    try:
        name = parse_cmapctl(text).get("totem.cluster_name", "")
    except HostError:
        return None
    return RunningCluster(name, parse_members(text)) if name else None


def foreign_problem(cluster: Cluster, node: Node, running: RunningCluster | None, take_over: bool,
                    restart_all: bool = False, resolved: Mapping[str, tuple[str, ...]] | None = None) -> str | None:
    """Pure: why this node may not join `cluster` (None when it may): it is in another running cluster.

    `resolved`: how the node resolves the file's hostnames, so that nodes named by hostname are
    matched with the members' addresses (Corosync lists members by address)."""
    if running is None or running.name == cluster.name or len(running.members) <= 1 or take_over:
        return None
    ours = {a for n in cluster.nodes for a in n.addresses}
    ours |= {address for name in ours & set(resolved or {}) for address in (resolved or {})[name]}
    left = [m.addresses[0] for m in running.members if not set(m.addresses) & ours]
    if not left:  # every member is in the file: a rename of the running cluster
        if restart_all:
            return None
        return (
            f"{node.name} is a member of the running cluster {running.describe()}; this file names every member under "
            f"the new cluster_name '{cluster.name}', which renames the cluster: every node restarts together and the "
            f"cluster stops until they are back. Nothing was changed. Run again with --restart-all to do it, or keep "
            f"cluster_name: {running.name}"
        )
    behind = (
        f"; its members {', '.join(left)} are not in this cluster file and would lose {node.name} (and may lose quorum)"
        if left else ""
    )
    return (
        f"{node.name} is a member of the running cluster {running.describe()}, not '{cluster.name}'{behind}. "
        f"Nothing was changed. If {node.name} is to leave '{running.name}' for '{cluster.name}', run again with "
        f"--take-over --restart-all (the nodes that move restart together, out of the running cluster); if the "
        f"cluster file names the wrong node or cluster_name, fix it"
    )


def take_over_note(cluster: Cluster, running: dict[str, RunningCluster | None]) -> str | None:
    """Pure: the note that says which nodes --take-over moves, from which cluster (None: none)."""
    moved = {name: r for name, r in running.items() if r is not None and r.name != cluster.name and len(r.members) > 1}
    if not moved:
        return None
    return "--take-over: " + "; ".join(f"{name} leaves the running cluster {r.describe()}" for name, r in moved.items())
