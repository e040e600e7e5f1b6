"""Preflight's all-pairs link check: every node to every other, on every link and every port Corosync
will use, both ways, with a small datagram and one as large as the path MTU allows.

Most clusters that will not form fail here: a firewall dropping UDP 5405, a link that works one way
only, an MTU that drops big packets. Found before any node is changed, each such pair is named with
its link, port and direction, instead of a membership that never completes 90 s into step 06.

How each cell is found, and said in the matrix's caption:
- both ends free: probed (runbook.engine.udp_probe), on Corosync's own ports;
- the receiving node runs Corosync (its port is held): never probed, so nothing disturbs the running
  cluster; on knet the receiver's own link state (`corosync-cfgtool -n`) answers where it knows the
  sender, else the cell says it was not checked.
The judging (`specs`, `judge`) is pure, so tests need no SSH.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from runbook.engine.facts import NodeFacts, is_hostname
from runbook.engine.udp_probe import ProbeResult, ProbeSpec, parse_probe, probe_script
from runbook.errors import ClusterFileError
from runbook.model.effective import resolve
from runbook.model.types import Cluster, Node
from runbook.report.matrix import Cell, Matrix
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts
from runbook.steps.members import NodeLinks, read_links

DEFAULT_PORT = 5405


@dataclass(frozen=True)
class Plan:
    """What the check probes: each link's ports, each node's address on it, who runs Corosync."""

    generation: int
    transport: str
    ports: dict[int, tuple[int, ...]]  # link -> destination ports
    address: dict[tuple[str, int], str]  # (node, link) -> IP address
    running: frozenset[str]
    nodes: tuple[str, ...]


def link_ports(cluster: Cluster, transport: str) -> dict[int, tuple[int, ...]]:
    """Pure: the UDP ports each link receives on. knet: the link's port (5405 + link number unless set);
    udp/udpu (1.x, 2.x): mcastport and mcastport - 1, both of which Corosync uses."""
    ports: dict[int, tuple[int, ...]] = {}
    for number in range(cluster.link_count):
        link = cluster.link(number)
        if transport == "knet":
            ports[number] = ((link.mcastport if link and link.mcastport else DEFAULT_PORT + number),)
        else:
            port = link.mcastport if link and link.mcastport else DEFAULT_PORT
            ports[number] = (port, port - 1)
    return ports


def plan_for(cluster: Cluster, generation: int, facts: Mapping[str, NodeFacts],
             resolved: Mapping[str, Mapping[str, tuple[str, ...]]]) -> Plan | None:
    """Pure: the check's plan, or None when the file does not hold on this generation (later steps say why)."""
    try:
        transport = resolve(cluster, generation).transport
    except ClusterFileError:
        return None
    address: dict[tuple[str, int], str] = {}
    for node in cluster.nodes:
        for number, value in enumerate(node.addresses):
            address[(node.name, number)] = _ip(node, value, resolved)
    running = frozenset(n.name for n in cluster.nodes if facts[n.name].corosync_running)
    return Plan(generation, transport, link_ports(cluster, transport), address, running, tuple(n.name for n in cluster.nodes))


def _ip(node: Node, value: str, resolved: Mapping[str, Mapping[str, tuple[str, ...]]]) -> str:
    if not is_hostname(value):
        return value
    found = resolved.get(node.name, {}).get(value, ())
    return found[0] if found else value


def specs(plan: Plan, run: str) -> dict[str, ProbeSpec]:
    """Pure: what each node binds, sends and expects. A node that runs Corosync binds nothing and is
    sent nothing; it still sends (from a port of its own) to the nodes that do not."""
    out: dict[str, ProbeSpec] = {}
    for me in plan.nodes:
        listen, send, expect = [], [], []
        for link, ports in plan.ports.items():
            mine = plan.address.get((me, link))
            if mine is None:
                continue
            for port in ports:
                if me not in plan.running:
                    listen.append((link, mine, port))
                for peer in plan.nodes:
                    theirs = plan.address.get((peer, link))
                    if peer == me or theirs is None:
                        continue
                    if peer not in plan.running:
                        send.append((link, peer, mine, port, theirs, port))
                    if me not in plan.running:
                        expect.append((link, peer, port))
        out[me] = ProbeSpec(me, run, tuple(listen), tuple(send), tuple(expect))
    return out


def _probed_cell(plan: Plan, sender: str, receiver: str, link: int, got: ProbeResult, sent: ProbeResult) -> Cell:
    """One direction on one link, from what the receiver got (every port of the link)."""
    if not sent.python or not got.python:
        lacking = sender if not sent.python else receiver
        return Cell("unknown", f"not checked: no Python 3 on {lacking}")
    for result in (got, sent):
        if result.unreadable:
            return Cell("unknown", f"not checked: the probe on {result.node} said: {result.unreadable[:120]}")
    words = []
    status = "ok"
    for port in plan.ports[link]:
        if got.is_held(link, port):
            return Cell("failed", f"UDP {port} on {receiver} is in use by a program other than a running Corosync")
        if not got.got(link, sender, port, "small"):
            return Cell("failed", f"nothing arrived on UDP {port}")
        if not got.got(link, sender, port, "big"):
            size = sent.big_size(link, receiver, port)
            words.append(f"UDP {port}: small datagrams arrive, {size}-byte ones do not (MTU)")
            status = "warning" if plan.transport == "knet" else "failed"
    return Cell(status, "; ".join(words) if words else "ok")


def _knet_cell(plan: Plan, sender: str, receiver: str, link: int, views: Mapping[str, NodeLinks | Exception],
               ids: Mapping[str, int | None]) -> Cell:
    """knet's view answers only where both ends run Corosync: a node that is stopped is 'disconnected' to its peers
    whatever the network does. Even then a disconnect is a warning, not a stop: a different key or corosync.conf
    (which this run may be about to put right) disconnects a healthy network too."""
    view = views.get(receiver)
    port = plan.ports[link][0]
    if sender not in plan.running:
        return Cell("unknown", f"not probed: Corosync runs on {receiver} and holds UDP {port}; {sender} does not run it, "
                               "so knet has no view of this direction yet (step 06 checks the membership)")
    if plan.transport == "knet" and isinstance(view, NodeLinks) and ids.get(sender) is not None:
        state = next((l for l in view.links if l.number == link), None)
        peer = dict(state.peers).get(ids[sender]) if state else None  # type: ignore[index]
        if peer is not None:
            return (Cell("ok", "knet: connected") if peer else
                    Cell("warning", f"knet on {receiver} reports {sender} disconnected (UDP {port}): the network, "
                                    "a different authkey or a different corosync.conf each cause this"))
    return Cell("unknown", f"not probed: Corosync runs on {receiver} and holds UDP {port}")


def judge(plan: Plan, results: Mapping[str, ProbeResult], views: Mapping[str, NodeLinks | Exception] | None = None,
          ids: Mapping[str, int | None] | None = None) -> list[Matrix]:
    """Pure: one matrix per link, row sends, column receives."""
    matrices = []
    for link, ports in plan.ports.items():
        shown = " and ".join(f"UDP {p}" for p in ports)
        matrix = Matrix(f"Link {link} ({shown})", plan.nodes, caption=_caption(plan))
        for sender in plan.nodes:
            for receiver in plan.nodes:
                if sender == receiver or (sender, link) not in plan.address or (receiver, link) not in plan.address:
                    continue
                if receiver in plan.running:
                    cell = _knet_cell(plan, sender, receiver, link, views or {}, ids or {})
                else:
                    cell = _probed_cell(plan, sender, receiver, link, results[receiver], results[sender])
                matrix.cells[(sender, receiver)] = cell
        matrices.append(matrix)
    return matrices


def _caption(plan: Plan) -> str:
    if plan.running == frozenset(plan.nodes):
        return ("every node runs Corosync, so no port was probed: each cell is the column node's own view of the link "
                + ("(knet, corosync-cfgtool -n)" if plan.transport == "knet" else "(not known before 3.x)"))
    how = "each cell: the row node sent a 64-byte and a path-MTU-sized datagram to the column node's port, which the column node received"
    if plan.running:
        how += (f"; {', '.join(sorted(plan.running))} run{'s' if len(plan.running) == 1 else ''} Corosync, so their ports "
                "were not probed" + (" (knet's own link state instead)" if plan.transport == "knet" else ""))
    return how


def failures(plan: Plan, matrices: list[Matrix]) -> list[tuple[str, str]]:
    """Pure: (receiver, line) per failed direction; the line names both nodes, the link, the port and the direction."""
    out = []
    for link, matrix in zip(plan.ports, matrices):
        for sender, receiver in matrix.failed:
            back = matrix.cell(receiver, sender)
            other = {"ok": "works", "failed": "is blocked too"}.get(back.status, "was not checked")
            out.append((receiver, f"link {link}: {sender} ({plan.address[(sender, link)]}) -> {receiver} ({plan.address[(receiver, link)]}): "
                                  f"{matrix.cell(sender, receiver).text}; the other way, {receiver} -> {sender}, {other}"))
    return out


def problems(plan: Plan, matrices: list[Matrix], hint: Mapping[str, str] | None = None) -> list[str]:
    """Pure: each failed direction's line, with what the receiving node's firewall suggests."""
    return [line + (f". {(hint or {})[receiver]}" if receiver in (hint or {}) else "") for receiver, line in failures(plan, matrices)]


def warnings(matrices: list[Matrix]) -> list[str]:
    return [f"{m.title}: {s} -> {r}: {m.cell(s, r).text}" for m in matrices for s, r in sorted(m.cells) if m.cell(s, r).status == "warning"]


def run_check(cluster: Cluster, hosts: Hosts, plan: Plan, node_ids: Mapping[str, int | None]) -> list[Matrix]:
    """Probe every pair at once (one SSH command per node), read knet's view where Corosync runs."""
    run = secrets.token_hex(8)
    probing = specs(plan, run)
    active = [name for name in plan.nodes if probing[name].listen or probing[name].send]
    found = each(active, lambda name: parse_probe(name, hosts[name].run(
        probe_script(probing[name]), check=False, timeout=30, display="link check (python3 UDP probe)").text))
    results = {name: found.ok.get(name) or ProbeResult(name, unreadable=found.why(name) if name in found.failed else "")
               for name in plan.nodes}
    views = each(sorted(plan.running), lambda name: read_links(hosts[name], plan.generation))
    return judge(plan, results, {name: views.value_or_error(name) for name in views}, node_ids)
