"""`runbook migrate --from-nodes`: the nodes of a multicast cluster, read from its running members over
SSH (a multicast file does not list them), combined into the cluster file's nodes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from runbook.conf.members import MEMBERS_SCRIPT, Member, Reading, parse_reading
from runbook.errors import MembershipUnavailable, UsageError
from runbook.migrate.options import NodeOption
from runbook.model.types import Node, SshSettings
from runbook.ssh.endpoint import resolve_endpoint
from runbook.ssh.hosts import Host


def parse_from_nodes(values: Sequence[str]) -> list[str]:
    """`--from-nodes a,b --from-nodes c` -> ["a", "b", "c"]; a host named twice is a usage error."""
    hosts = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not hosts:
        raise UsageError("--from-nodes: name at least one host of the running cluster (HOST[,HOST...])")
    for host in hosts:
        if any(c.isspace() or c in "'\"`$;&|<>" for c in host) or host.startswith("-"):
            raise UsageError(f"--from-nodes: {host!r} is not a host name or address")
    twice = sorted({h for h in hosts if hosts.count(h) > 1})
    if twice:
        raise UsageError(f"--from-nodes: {', '.join(twice)} named twice; name each host once")
    return hosts


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def combine(readings: Sequence[Reading]) -> list[NodeOption]:
    """Pure: the members every host agrees on, as --node options (with their node ids).

    Names: a host logged in to is called as the operator named it (an address: by its own hostname);
    another member by the name Corosync shows for it (quorumtool -l: the nodelist's name or its address
    resolved), else by its first address.
    """
    first = readings[0]
    for reading in readings[1:]:
        if reading.members != first.members:
            raise MembershipUnavailable(
                reading.host,
                f"sees members {_describe(reading.members)} but {first.host} sees {_describe(first.members)}: "
                "the cluster is split or still forming; read it again when every node is in, or give the nodes with --node",
            )
    own: dict[int, Reading] = {}
    for reading in readings:
        if reading.local_nodeid is None:
            continue
        if reading.local_nodeid in own:
            raise UsageError(f"--from-nodes: {own[reading.local_nodeid].host} and {reading.host} are the same member "
                             f"(node id {reading.local_nodeid}); name each host once")
        own[reading.local_nodeid] = reading
    shown = dict(pair for reading in readings for pair in reading.names)
    nodes = []
    for member in first.members:
        if member.nodeid in own:
            reading = own[member.nodeid]
            name = reading.hostname if _is_address(reading.host) else reading.host
        elif shown.get(member.nodeid) and shown[member.nodeid] not in member.addresses:
            name = shown[member.nodeid]
        else:
            name = member.addresses[0]  # the migration notes it: a hostname is better
        nodes.append(NodeOption(name, member.addresses, member.nodeid))
    return nodes


def _describe(members: Sequence[Member]) -> str:
    return ", ".join(f"{m.nodeid} ({'/'.join(m.addresses)})" for m in members) or "none"


def source_line(readings: Sequence[Reading]) -> str:
    """Where the nodes came from, for the cluster file's header."""
    first = readings[0]
    version = f"{first.version}; " if first.version else ""
    what = "runtime members" if first.tool == "corosync-cmapctl" else "runtime.totem.pg.mrp.srp.members"
    return (f"from the running cluster's membership, read over SSH on {', '.join(r.host for r in readings)} "
            f"({version}{first.tool} {what})")


def read_members(hosts: Sequence[str], settings: SshSettings) -> tuple[list[NodeOption], str]:
    """Log in to each host (in order, read-only), read the membership, and agree on it.

    Returns the nodes and the header line saying where they came from.
    """

    readings = []
    for name in hosts:
        host = Host(resolve_endpoint(Node(name=name, address=name, nodeid=None), settings))
        try:
            output = host.run(MEMBERS_SCRIPT, timeout=30, display="read the Corosync membership (read-only)").text
        finally:
            host.close()
        readings.append(parse_reading(name, output))
    return combine(readings), source_line(readings)
