"""Preflight, with a quorum device in the cluster file: can every node reach the qnetd host's TCP port?

Checked before anything changes, as the UDP links are. Before step 07's first run nothing listens
there yet, so a refused connection is as good as an open one: the host answered. Only silence (a
firewall dropping the SYN) or no route fails preflight, naming the node, the qnetd host and the port.
The probe is a few lines of Python 3, which Debian and RHEL nodes have; a node without it is noted,
not failed.
"""

from __future__ import annotations

import shlex

from runbook.model.types import Cluster
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts

WAIT = 3  # seconds for the TCP handshake
_PROBE = (
    "import socket, sys\n"
    "try:\n"
    f"    socket.create_connection((sys.argv[1], int(sys.argv[2])), {WAIT}).close(); print('open')\n"
    "except ConnectionRefusedError:\n"
    "    print('refused')\n"
    "except socket.timeout:\n"
    "    print('timeout')\n"
    "except OSError as e:\n"
    "    print('unreachable', e.strerror)\n"
)


def probe_command(host: str, port: int) -> str:
    """Pure: the node's command: `open`, `refused`, `timeout`, `unreachable WHY`, or `nopython`."""
    return (f"command -v python3 >/dev/null 2>&1 || {{ echo nopython; exit 0; }}; "
            f"python3 -c {shlex.quote(_PROBE)} {shlex.quote(host)} {port}")


def verdict(node: str, answer: str, host: str, name: str, port: int) -> tuple[str | None, str | None]:
    """Pure: (a problem that fails preflight, or a note) from one node's answer."""
    where = f"{node} -> {name} ({host}) TCP {port}" if name != host else f"{node} -> {host} TCP {port}"
    word, _, why = answer.strip().partition(" ")
    if word == "open":
        return None, None
    if word == "refused":
        return None, f"{where}: the host answers, nothing listens yet (step 07 starts corosync-qnetd there)"
    if word == "nopython":
        return None, f"{where}: not checked ({node} has no python3); step 07 finds out"
    if word == "timeout":
        return (f"{where}: no answer within {WAIT}s: a firewall drops it, on {name} or between; open TCP {port} on "
                f"{name} to the cluster's nodes (corosync-qdevice connects from each node)"), None
    return f"{where}: {why or answer.strip() or 'no answer'}: check the route from {node} to {host}", None


def check(cluster: Cluster, hosts: Hosts) -> tuple[list[str], list[str]]:
    """(problems, notes) from every node's probe of the qnetd port; none without a quorum device."""
    device = cluster.quorum.device
    if device is None or device.net is None:
        return [], []
    net = device.net
    port = net.port or 5403
    command = probe_command(net.host, port)
    results = each([n.name for n in cluster.nodes],
                   lambda node: hosts[node].run(command, check=False, timeout=WAIT + 15, display=f"probe {net.host} TCP {port}").text)
    problems, notes = [], []
    for node in cluster.nodes:
        if node.name not in results.ok:
            problems.append(f"{node.name}: could not probe {net.host} TCP {port}: {results.why(node.name)}")
            continue
        problem, note = verdict(node.name, results.ok[node.name], net.host, net.name or net.host, port)
        problems += [problem] if problem else []
        notes += [note] if note else []
    return problems, notes
