"""Membership and links as the running nodes see them: read each node's view, wait until every node
sees every other (and every link is up), and show it as HTML. Used by step 06 and the CLI.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass

from runbook.conf.membership import LinkState, View, parse_cfgtool_nodes, parse_cfgtool_status, parse_objctl, parse_quorumtool
from runbook.errors import HostError
from runbook.model.types import Cluster
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Host, Hosts
from runbook.text import clean

JOURNAL_TAIL = "journalctl -u corosync -n 20 --no-pager 2>&1"


LOG_TAIL = (
    "{ tail -n 15 /var/log/corosync/corosync.log 2>/dev/null; "
    "journalctl -u corosync -n 15 --no-pager 2>/dev/null; "
    "corosync -t 2>&1 | tail -n 5; } | tail -n 20"
)


def log_tail(host: Host, init_system: str | None = None) -> str:
    """The lines that say why Corosync failed: systemd's journal for the unit, else the log file."""
    command = JOURNAL_TAIL if init_system == "systemd" else LOG_TAIL
    try:
        return clean(host.run(command, check=False, timeout=30).text.strip())
    except HostError as exc:
        return f"(cannot read the log: {exc})"


def read_view(host: Host, generation: int) -> View:
    if generation == 1:
        text = host.run("corosync-objctl runtime.totem.pg.mrp.srp 2>/dev/null", check=False, timeout=20).text
        return parse_objctl(host.name, text)
    return parse_quorumtool(host.name, host.run("corosync-quorumtool -s 2>/dev/null", check=False, timeout=20).text)


LINKS_SCRIPT = "corosync-cfgtool -s 2>&1; echo @@runbook-cfgtool-n; corosync-cfgtool -n 2>&1; true"


LINKS_WAIT = 30  # seconds, after membership, for every link to connect (knet brings links up one by one)


@dataclass(frozen=True)
class NodeLinks:
    """What one node says about every link: the parsed states and the commands' own output."""

    node: str
    links: tuple[LinkState, ...]
    raw: str

    def complete(self, link_count: int, peers: int) -> bool:
        """Every link is there and connects this node to every other node (2.x: no ring FAULTY).

        Output the runbook cannot read at all (no link in it) fails nothing: it is shown as it is."""
        if not self.links:
            return True
        if len(self.links) < link_count:
            return False
        return all(
            (len(l.peers) >= peers and all(ok for _, ok in l.peers)) if l.peers else l.faulty is False for l in self.links
        )


def parse_links(node: str, text: str, generation: int) -> NodeLinks:
    """Pure: `-s` gives each link's state on every generation; on 3.x, `-n` fills in links `-s` left bare."""
    status, _, nodes = text.partition("@@runbook-cfgtool-n")
    links = parse_cfgtool_status(status)
    if generation >= 3:
        by_node = {l.number: l for l in parse_cfgtool_nodes(nodes)}
        links = tuple(l if l.peers or l.number not in by_node else by_node[l.number] for l in links) or tuple(by_node.values())
    shown = status.strip() + (f"\n\n$ corosync-cfgtool -n\n{nodes.strip()}" if generation >= 3 else "")
    return NodeLinks(node, links, shown)


def read_links(host: Host, generation: int) -> NodeLinks:
    """This node's view of every link (read only)."""
    script = LINKS_SCRIPT if generation >= 3 else "corosync-cfgtool -s 2>&1; true"
    return parse_links(host.name, host.run(script, check=False, timeout=20, display="corosync-cfgtool -s / -n").text, generation)


def wait_for_links(
    cluster: Cluster, hosts: Hosts, generations: dict[str, int], timeout: float, interval: float = 0.5
) -> dict[str, NodeLinks | Exception]:
    """Poll every node until each link connects it to every other node, or the timeout."""
    deadline = time.monotonic() + timeout
    peers = len(cluster.nodes) - 1
    while True:
        results = each([n.name for n in cluster.nodes], lambda name: read_links(hosts[name], generations[name]))
        found = {name: results.value_or_error(name) for name in results}
        done = all(isinstance(r, NodeLinks) and r.complete(cluster.link_count, peers) for r in found.values())
        if done or time.monotonic() > deadline:
            return found  # type: ignore[return-value]
        time.sleep(interval)


def links_html(links: dict[str, NodeLinks | Exception]) -> str:
    """Each link's state per node: a table of node x link."""
    numbers = sorted({l.number for r in links.values() if isinstance(r, NodeLinks) for l in r.links})
    rows = []
    for name, result in links.items():
        if isinstance(result, NodeLinks):
            by_number = {l.number: l for l in result.links}
            cells = "".join(
                f"<td>{html.escape(clean(by_number[n].describe().removeprefix(f'link {n} ')) if n in by_number else 'not reported')}</td>"
                for n in numbers
            )
        else:
            cells = f'<td colspan="{max(len(numbers), 1)}">cannot read: {html.escape(clean(str(result)))}</td>'
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td>{cells}</tr>")
    head = "".join(f"<th>link {n}</th>" for n in numbers)
    return (
        '<p><strong>Links</strong> (as each node sees them: <code>corosync-cfgtool -s</code>, <code>-n</code> on 3.x)</p>'
        f'<table class="runbook-links"><thead><tr><th>node</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def wait_for_membership(
    cluster: Cluster,
    hosts: Hosts,
    generations: dict[str, int],
    timeout: float,
    progress: Callable[[str], None] = print,
    interval: float = 0.5,
) -> tuple[dict[str, View], float]:
    """Poll every node until all see all members (and are quorate), or the timeout; returns views and seconds."""
    expected = len(cluster.nodes)
    started = time.monotonic()
    last_line, last_print = "", 0.0
    while True:
        results = each([n.name for n in cluster.nodes], lambda name: read_view(hosts[name], generations[name]))
        views = {name: results.ok.get(name) or View(name, False, raw=str(results.failed[name])) for name in results}
        elapsed = time.monotonic() - started
        if all(v.complete(expected) for v in views.values()):
            return views, elapsed
        line = "; ".join(f"{n}: {v.describe(expected)}" for n, v in views.items())
        if elapsed > timeout:
            return views, elapsed
        if line != last_line or elapsed - last_print > 5:
            progress(f"  waiting for membership ({elapsed:.0f}s of {timeout:.0f}s): {line}")
            last_line, last_print = line, elapsed
        time.sleep(interval)


def membership_html(views: dict[str, View], expected: int) -> str:
    rows = []
    for name, view in views.items():
        members = ", ".join(f"{m.name} ({m.nodeid})" for m in view.members) or "none"
        quorate = {True: "Yes", False: "No", None: "n/a"}[view.quorate]
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(view.ring_id or '?')}</td>"
            f"<td>{quorate}</td><td>{len(view.members)}/{expected}</td><td>{html.escape(clean(members))}</td>"
            f"<td>{html.escape(clean(view.flags))}</td></tr>"
        )
    return (
        '<p><strong>Membership</strong> (as each node sees it)</p><table class="runbook-membership">'
        "<thead><tr><th>node</th><th>ring ID</th><th>quorate</th><th>members</th><th>member list</th><th>flags</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


