"""The commands that read from the nodes and change nothing: `facts`, `status`, `membership`.
"""

from __future__ import annotations

import argparse


def cmd_facts(args: argparse.Namespace) -> int:
    from runbook.engine.facts import gather
    from runbook.lab import guard as lab_guard
    from runbook.model.load import load_cluster
    from runbook.ssh.fanout import each
    from runbook.ssh.hosts import hosts_for
    from runbook.text import clean

    cluster = load_cluster(args.cluster)
    lab_guard.install()
    with hosts_for(cluster) as hosts:
        results = each([n.name for n in cluster.nodes], lambda name: gather(hosts[name]))
    for name in results:
        if name in results.failed:
            print(f"{name}: unreachable: {clean(results.why(name))}")
        else:
            print(clean(results.ok[name].summary()))  # the OS name and addresses come from the node: no escapes
    return 1 if results.failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from runbook import status
    from runbook.lab import guard as lab_guard
    from runbook.model.load import load_cluster
    from runbook.ssh.hosts import hosts_for
    from runbook.text import clean

    cluster = load_cluster(args.cluster)
    lab_guard.install()
    with hosts_for(cluster) as hosts:
        found = status.status(cluster, hosts)
    if args.json:
        print(json.dumps(status.to_json(cluster, found), indent=1))
    else:
        for line in status.lines(cluster, found):
            print(clean(line))  # details come from the nodes: no terminal escapes
    return 0 if all(s.ok for s in found) else 1


def cmd_membership(args: argparse.Namespace) -> int:
    """Each node's own view, also when some nodes cannot be reached: a partition is what this shows."""
    from runbook.engine.facts import gather
    from runbook.lab import guard as lab_guard
    from runbook.model.load import load_cluster
    from runbook.ssh.fanout import each
    from runbook.ssh.hosts import hosts_for
    from runbook.steps.members import read_links, read_view
    from runbook.text import clean

    cluster = load_cluster(args.cluster)
    expected = len(cluster.nodes)
    links = {}

    def view_of(node):  # type: ignore[no-untyped-def]
        host = hosts[node.name]
        generation = gather(host).generation or 3
        view = read_view(host, generation)
        if view.running:
            links[node.name] = read_links(host, generation)  # each link's state as this node sees it
        return view

    lab_guard.install()
    with hosts_for(cluster) as hosts:
        views = each(list(cluster.nodes), view_of)
    complete = True
    for node in cluster.nodes:
        if node in views.failed:
            print(f"== {node.name}: unreachable: {clean(views.why(node))}")
            complete = False
            continue
        view = views.ok[node]
        complete &= view.complete(expected)
        print(f"== {node.name}: {clean(view.describe(expected))}")
        for link in links[node.name].links if node.name in links else ():
            print(f"   {clean(link.describe())}")
        if args.verbose:
            print(clean(view.raw.rstrip()))
        else:
            for member in view.members:
                print(f"   nodeid {member.nodeid:<4} votes {member.votes}  {clean(member.name)}{' (local)' if member.local else ''}")
    print(f"cluster '{cluster.name}': " + ("all members present and quorate" if complete else "NOT complete"))
    return 0 if complete else 1
