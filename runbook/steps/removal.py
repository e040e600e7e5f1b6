"""Nodes taken out of the cluster: deleted from the cluster file, found in the running nodelist.

Removing a node is deleting it from the cluster file and running again. The file then no longer says
where the node is, but the nodes that stay do: their running nodelist (their map, `corosync-cmapctl`)
still lists it with its name and address. Step 06 first stops Corosync on it (Pacemaker first: a
clean leave; a node the others' reload dropped while it ran would be a lost node, and fenced),
disables it at boot and moves its corosync.conf and authkey aside as backups, so that a reboot does
not bring it back; then it reloads the nodes that stay (they drop it from their nodelist). A removed node that
cannot be reached (the usual reason to remove one: it died) is reported and left as it is.

Preflight refuses, before any node changes, a membership change that would leave the nodes running
now without quorum (with the old votes once the removed nodes stopped, with the new file's after
the reload; it gives the numbers), and the removal of a node that the run
reaches other nodes through (a ProxyJump host). Pure, except `host_for`, which makes a connection
object (nothing is sent until it is used).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from runbook.conf.change_kind import match_nodes
from runbook.conf.running import file_keys, node_entries
from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH
from runbook.model.types import Cluster, Node
from runbook.ssh.endpoint import Endpoint, resolve_endpoint
from runbook.ssh.hosts import Host, Hosts
from runbook.steps.change import Running

REMOVED_SUFFIX = ".removed"  # backups of a removed node's files: PATH.runbook-<UTC>-<run>.removed (never pruned)


@dataclass(frozen=True)
class Removed:
    """A node the running nodelist has and the cluster file has not."""

    name: str  # its nodelist name, else its address
    address: str  # ring0_addr, where the runbook reaches it (with the cluster file's ssh settings)
    nodeid: str | None
    known_by: tuple[str, ...]  # the staying nodes whose nodelist lists it

    def __str__(self) -> str:
        return f"{self.name} ({self.address}" + (f", nodeid {self.nodeid})" if self.nodeid else ")")


def ours(running: Mapping[str, Running | None], cluster_name: str) -> dict[str, Running]:
    """Pure: the file's nodes whose Corosync runs this cluster now."""
    return {n: r for n, r in running.items() if r is not None and r.keys.get("totem.cluster_name") == cluster_name}


def removed_nodes(running: Mapping[str, Running | None], cluster: Cluster, file_text: str, generation: int,
                  staying: Iterable[str] = ()) -> list[Removed]:
    """Pure: the nodes the running nodelists of this cluster list and the new file (`file_text`) does not.

    Entries are paired with the file's nodes as step 06's decision pairs them (change_kind.match_nodes:
    by name, else address, else nodeid), so a node whose address changes is that node, not a removed
    one. An entry at an address or name in `staying` (the nodes' own addresses, the hosts the run logs
    in to) is never taken for removed, whatever the pairing says: stopping it would stop a node that stays.
    """
    wanted = node_entries(file_keys(file_text, generation))
    keep = {v.lower() for v in staying} | {n.address.lower() for n in cluster.nodes} | {n.name.lower() for n in cluster.nodes}
    found: dict[tuple[str, str], list[str]] = {}
    entries: dict[tuple[str, str], dict[str, str]] = {}
    for node, r in ours(running, cluster.name).items():
        have = node_entries(r.keys)
        for i, j in match_nodes(wanted, have):
            if i is not None or j is None:
                continue
            entry = have[j]
            address = entry.get("ring0_addr", "")
            if address.lower() in keep or entry.get("name", "").lower() in keep:
                continue
            key = (entry.get("name") or address, address)
            found.setdefault(key, []).append(node)
            entries[key] = entry
    return [Removed(name, address, entries[(name, address)].get("nodeid"), tuple(by)) for (name, address), by in found.items()]


def login_hostnames(hosts: Hosts) -> list[str]:
    """The hosts the run logs in to: never taken for a removed node, whatever a nodelist says."""
    return [h.endpoint.hostname for h in hosts.values()]


def host_for(removed: Removed, cluster: Cluster) -> Host:
    """A connection to a removed node, at its nodelist address, with the cluster file's ssh settings."""
    return Host(resolve_endpoint(Node(removed.name, removed.address, None), cluster.ssh))


def quorum_of(keys: Mapping[str, str]) -> tuple[int, int, bool] | None:
    """Pure: a file's (expected votes, votes needed for quorum, two_node), or None with a quorum device
    (its votes are the device's to give, not known here)."""
    if any(k.startswith("quorum.device.") for k in keys):
        return None
    votes = sum(int(e.get("quorum_votes", "1") or 1) for e in node_entries(keys))
    expected = int(keys.get("quorum.expected_votes") or votes)
    two_node = keys.get("quorum.two_node") in ("1", "yes", "on") and expected == 2
    return expected, (1 if two_node else expected // 2 + 1), two_node


def quorum_refusal(running: Mapping[str, Running | None], cluster: Cluster, file_text: str, generation: int,
                   removed: Sequence[Removed]) -> str | None:
    """Pure: why the new nodelist would leave the nodes running now without quorum, or None.

    Asked only when the nodelist changes (nodes added or removed): the nodes of the file that run
    this cluster now are the votes there will be once the nodes that stay reload, before any new node
    has joined and after every removed node has stopped.
    """
    keys = file_keys(file_text, generation)
    now = ours(running, cluster.name)
    wanted = node_entries(keys)
    have = node_entries(next(iter(now.values())).keys) if now else []
    # paired as removed_nodes and step 06's decision pair them; a node is called by its name, else its address
    added = [wanted[i].get("name") or wanted[i].get("ring0_addr", "") for i, j in match_nodes(wanted, have) if i is not None and j is None]
    if not now or (not removed and not added):
        return None
    quorum = quorum_of(keys)
    if quorum is None:
        return None
    expected, needed, two_node = quorum
    votes = {n.name: n.quorum_votes if n.quorum_votes is not None else 1 for n in cluster.nodes}
    have = sum(votes[name] for name in now)
    before = quorum_of(next(iter(now.values())).keys) if removed else None
    counts = "the new file counts"
    if before is not None and have < before[1]:  # removed nodes stop first, while the others still count the old votes
        expected, needed, two_node = before
        counts = f"while {', '.join(r.name for r in removed)} stop{'s' if len(removed) == 1 else ''} (first), the running cluster still counts"
    elif have >= needed:
        return None
    down = [n.name for n in cluster.nodes if n.name not in now and n.name not in added]
    change = "; ".join(part for part in (
        f"removes {', '.join(str(r) for r in removed)}" if removed else "",
        f"adds {', '.join(added)}" if added else "") if part)
    rule = "two_node: one of two votes" if two_node else f"a majority of {expected}"
    waiting = f"; {', '.join(down)} {'is' if len(down) == 1 else 'are'} not running it" if down else ""
    return (
        f"this change {change}: {counts} {expected} votes and quorum needs {needed} ({rule}), but the nodes "
        f"running the cluster now ({', '.join(now)}) have {have}{waiting}. They would be without quorum"
        f"{' until ' + ', '.join(added) + ' joined' if added else ''}. Nothing was changed. Start the nodes that are down first, "
        "or change fewer nodes at a time"
    )


def jump_refusal(removed: Sequence[Removed], endpoints: Mapping[str, Endpoint]) -> str | None:
    """Pure: a removed node that the run reaches other nodes through (ProxyJump), or None."""
    for r in removed:
        users = [node for node, ep in endpoints.items()
                 if any(hop.hostname in (r.address, r.name) or hop.hop in (r.address, r.name) for hop in ep.route[:-1])]
        if users:
            return (f"{r} is removed from the cluster file, but the run reaches {', '.join(users)} through it (ProxyJump). "
                    "Stopping it there is fine, but once it is gone so is the way in. Nothing was changed. Point ProxyJump "
                    "for those nodes at another host first, then remove it")
    return None


STATE_SCRIPT = "echo \"pid=$(pidof corosync 2>/dev/null | cut -d' ' -f1)\"; echo \"init=$(cat /proc/1/comm 2>/dev/null)\"; " + \
    "pidof corosync >/dev/null 2>&1 && echo \"cluster=$(corosync-cmapctl -g totem.cluster_name 2>/dev/null | sed 's/.*= //')\"; " + \
    "; ".join(f"[ -e {p} ] && echo 'file={p}'" for p in (CONF_PATH, AUTHKEY_PATH)) + "; true"


class RemovedState(NamedTuple):
    """What STATE_SCRIPT found on a removed node."""

    pid: str | None  # its Corosync's, None when none runs
    init: str  # PID 1's name
    files: tuple[str, ...]  # which of corosync.conf and authkey are there
    cluster: str | None  # the cluster its running Corosync is in now


def parse_state(text: str) -> RemovedState:
    """Pure: STATE_SCRIPT's output, as a RemovedState."""
    values = [line.partition("=") for line in text.splitlines()]
    pid = next((v for k, _, v in values if k == "pid" and v.strip()), None)
    init = next((v for k, _, v in values if k == "init"), "")
    cluster = next((v.strip() for k, _, v in values if k == "cluster"), None)
    return RemovedState(pid, init, tuple(v for k, _, v in values if k == "file"), cluster)


def remove_script(stamp: str, run: str, by_pid: str) -> str:
    """Stop Corosync on a removed node, disable it at boot, move its files aside (PATH.runbook-STAMP-RUN.removed).

    `by_pid` is step 06's shell functions that stop a corosync the init system did not (rb_stop_by_pid).
    """
    moves = "\n".join(
        f"if [ -e {p} ]; then mv -n {p} {shlex.quote(p + f'.runbook-{stamp}-{run}{REMOVED_SUFFIX}')}; "
        f"echo 'kept {p} as {p}.runbook-{stamp}-{run}{REMOVED_SUFFIX}'; fi"
        for p in (CONF_PATH, AUTHKEY_PATH))
    return f"""set -e{by_pid}
if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then
  systemctl disable --now pacemaker >/dev/null 2>&1 || true  # it would start Corosync again at boot
  systemctl disable --now corosync >/dev/null 2>&1 || true
elif [ -x /etc/init.d/corosync ]; then
  [ ! -x /etc/init.d/pacemaker ] || /etc/init.d/pacemaker stop >/dev/null 2>&1 || true
  /etc/init.d/corosync stop >/dev/null 2>&1 || true
  if command -v update-rc.d >/dev/null; then update-rc.d corosync disable >/dev/null 2>&1 || true; fi
  if command -v chkconfig >/dev/null; then chkconfig corosync off >/dev/null 2>&1 || true; fi
fi
rb_stop_by_pid "it still ran after the init system's stop"
[ -z "$(rb_corosync)" ] || {{ echo "corosync still runs" >&2; exit 3; }}
{moves}
rm -f /var/lib/corosync-runbook/corosync.started
echo "Corosync stopped and disabled at boot"
"""


def shown(init: str) -> tuple[str, tuple[str, ...]]:
    """Pure: the removal as the report shows it and as an operator types it, for PID 1 `init`."""
    stop = ("systemctl disable --now corosync" if init == "systemd"
            else "/etc/init.d/corosync stop && update-rc.d corosync disable")
    keep = f"mv {CONF_PATH} {CONF_PATH}{REMOVED_SUFFIX}; mv {AUTHKEY_PATH} {AUTHKEY_PATH}{REMOVED_SUFFIX}"
    return f"{stop}; mv corosync.conf and authkey aside (*{REMOVED_SUFFIX})", (stop, keep)


__all__ = ["REMOVED_SUFFIX", "Removed", "RemovedState", "STATE_SCRIPT", "host_for", "jump_refusal", "login_hostnames", "ours", "parse_state", "quorum_of",
           "quorum_refusal", "remove_script", "removed_nodes", "shown"]
