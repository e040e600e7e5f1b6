"""Nodes taken out by deleting them from the cluster file (runbook.steps.removal): found in the running
nodelist, stopped after the others reload, refused where quorum or the way in would be lost. No hosts:
the nodes' maps are what `corosync-cmapctl` prints for the file they run."""

from __future__ import annotations

import dataclasses

from runbook.conf.render import render
from runbook.conf.running import file_keys
from runbook.engine.facts import CONF_PATH, FileFact
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import Cluster
from runbook.ssh.endpoint import resolve_endpoint
from runbook.steps import by_hand, change, removal, start

NODES = [{"name": f"node{i}", "address": f"192.0.2.{10 + i}", **({"role": "primary"} if i == 1 else {})} for i in (1, 2, 3)]


def cluster(*numbers: int, **overrides: object) -> Cluster:
    return cluster_from_mapping({"cluster_name": "c", "nodes": [NODES[i - 1] for i in numbers], **overrides})


def gone_from(running, new: Cluster, staying=()):  # type: ignore[no-untyped-def]
    return removal.removed_nodes(running, new, render(new, new.nodes[0].name, 3), 3, staying)


def running_map(runs: Cluster, node: str, cluster_name: str | None = None) -> change.Running:
    keys = file_keys(render(runs, node, 3), 3)
    if cluster_name:
        keys["totem.cluster_name"] = cluster_name
    return change.Running(keys, len(runs.nodes))


def test_a_node_the_file_no_longer_lists_is_found_in_the_running_nodelists() -> None:
    three, two = cluster(1, 2, 3), cluster(1, 2)
    running = {"node1": running_map(three, "node1"), "node2": running_map(three, "node2")}
    found = gone_from(running, two)
    assert [(r.name, r.address, r.nodeid, r.known_by) for r in found] == [("node3", "192.0.2.13", "3", ("node1", "node2"))]
    assert str(found[0]) == "node3 (192.0.2.13, nodeid 3)"
    assert gone_from(running, three) == []
    # renumbered: node3 now has nodeid 2 in the file, it is still node3 (by name), and node2 is the removed one
    assert [r.name for r in gone_from(running, cluster(1, 3))] == ["node2"]
    # a node in another cluster says nothing about this one's nodelist
    assert gone_from({"node1": running_map(three, "node1", "other"), "node2": None}, two) == []
    # a node of the file at a new address is that node (its nodeid), not a removed one; unnamed nodes
    unnamed = [{"address": f"192.0.2.{10 + i}", **({"role": "primary"} if i == 1 else {})} for i in (1, 2)]
    old = cluster_from_mapping({"cluster_name": "c", "nodes": unnamed})
    moved = cluster_from_mapping({"cluster_name": "c", "nodes": [unnamed[0], {"address": "192.0.2.22"}]})
    assert gone_from({"192.0.2.11": running_map(old, "192.0.2.11")}, moved) == []
    # an entry at an address the run logs in to is never taken for removed (an adopted cluster's names)
    assert gone_from(running, two, staying=["192.0.2.13"]) == []


def test_quorum_after_the_change_counts_the_nodes_running_now() -> None:
    three, two = cluster(1, 2, 3), cluster(1, 2)
    everyone = {n: running_map(three, n) for n in ("node1", "node2")}
    gone = gone_from(everyone, two)
    assert removal.quorum_refusal(everyone, two, render(two, "node1", 3), 3, gone) is None  # two_node: 1 of 2 would do
    strict = cluster(1, 2, quorum={"two_node": False})
    only_node1 = {"node1": running_map(three, "node1"), "node2": None}
    refusal = removal.quorum_refusal(only_node1, strict, render(strict, "node1", 3), 3, gone_from(only_node1, strict))
    assert refusal is not None and refusal.startswith(
        "this change removes node3 (192.0.2.13, nodeid 3): while node3 stops (first), the running cluster still counts 3 votes "
        "and quorum needs 2 (a majority of 3), but the nodes running the cluster now (node1) have 1; node2 is not running it"), refusal
    # the old votes are kept while node3 stops; the new file's quorum is what refuses here
    after = {"node1": running_map(three, "node1"), "node2": running_map(three, "node2")}
    heavy = cluster(1, 2, quorum={"expected_votes": 5})
    refused = removal.quorum_refusal(after, heavy, render(heavy, "node1", 3), 3, gone_from(after, heavy))
    assert refused is not None and "the new file counts 5 votes and quorum needs 3" in refused, refused
    assert "Nothing was changed" in refusal
    # adding a third node to a two-node cluster of which one node runs: 1 of 3 until node3 joins
    lone = {"node1": running_map(two, "node1"), "node2": None, "node3": None}
    added = removal.quorum_refusal(lone, three, render(three, "node1", 3), 3, [])
    assert added is not None and "adds node3" in added and "until node3 joined" in added
    assert removal.quorum_refusal({n: running_map(two, n) for n in ("node1", "node2")} | {"node3": None}, three,
                                  render(three, "node1", 3), 3, []) is None
    # no nodelist change: not asked, whatever the quorum is now
    assert removal.quorum_refusal(only_node1, cluster(1, 2, 3, quorum={"two_node": False}), render(three, "node1", 3), 3, []) is None


def test_quorum_needs_votes_and_two_node_only_with_two_votes() -> None:
    assert removal.quorum_of(file_keys(render(cluster(1, 2), "node1", 3), 3)) == (2, 1, True)
    assert removal.quorum_of(file_keys(render(cluster(1, 2, 3), "node1", 3), 3)) == (3, 2, False)
    heavy = cluster_from_mapping({"cluster_name": "c", "nodes": [{**NODES[0], "quorum_votes": 3}, NODES[1], NODES[2]]})
    assert removal.quorum_of(file_keys(render(heavy, "node1", 3), 3)) == (5, 3, False)


def test_the_node_the_run_goes_through_may_not_be_removed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "ssh_config"
    config.write_text("Host node2\n  ProxyJump 192.0.2.13\n")
    two = cluster(1, 2, ssh={"config": str(config)})
    endpoints = {n.name: resolve_endpoint(n, two.ssh) for n in two.nodes}
    gone = [removal.Removed("node3", "192.0.2.13", "3", ("node1",))]
    refusal = removal.jump_refusal(gone, endpoints)
    assert refusal is not None and refusal.startswith("node3 (192.0.2.13, nodeid 3) is removed from the cluster file, but the run reaches node2 through it")
    assert removal.jump_refusal([removal.Removed("node4", "192.0.2.14", "4", ("node1",))], endpoints) is None


def facts_running(new: Cluster, runs: Cluster) -> dict[str, object]:
    found = {}
    for i, node in enumerate(new.nodes):
        state = (f"pid={800 + i}\nstart=1000\nsha:{CONF_PATH}=NEW\nsha:/etc/corosync/authkey=k\nstamp:pid={800 + i}\n"
                 f"stamp:sha:{CONF_PATH}=OLD\nstamp:sha:/etc/corosync/authkey=k")
        found[node.name] = dataclasses.replace(
            by_hand.assumed_facts(node.name, 3, installed=True),
            extra={"state": state, change.SECTION: "\n".join(f"{k} (str) = {v}" for k, v in running_map(runs, node.name).keys.items())},
            files={CONF_PATH: FileFact(CONF_PATH, render(new, node.name, 3).encode(), 0o644, "root", "root")})
    return found


def test_step_06_stops_the_removed_node_first_then_reloads_the_nodes_that_stay() -> None:
    three, two = cluster(1, 2, 3), cluster(1, 2)
    found = facts_running(two, three)
    gone = gone_from({n: change.parse_running(n, f.extra[change.SECTION]) for n, f in found.items()}, two)  # type: ignore[attr-defined]
    state = "pid=900\ninit=systemd\nfile=/etc/corosync/corosync.conf\nfile=/etc/corosync/authkey\n"
    plan = start.plan(two, found, removed={gone[0]: state})  # type: ignore[arg-type]
    assert plan.waves == [["node3"], ["node1"], ["node2"]]
    assert [op.kind for op in plan.nodes["node1"].operations] == ["reload"]
    stop = plan.nodes["node3"].operations
    assert [op.kind for op in stop] == ["remove"] and stop[0].command.startswith("systemctl disable --now corosync")
    assert ".removed" in stop[0].script and "mv -n /etc/corosync/authkey" in stop[0].script
    assert plan.nodes["node3"].would.startswith("would stop Corosync (pid 900), disable it at boot")
    unreachable = start.plan(two, found, removed={gone[0]: Exception("no route to host")})  # type: ignore[arg-type]
    assert "node3" not in unreachable.nodes and any("cannot be reached (no route to host)" in n for n in unreachable.notes)
    elsewhere = start.plan(two, found, removed={gone[0]: "pid=7\ninit=systemd\ncluster=other\nfile=/etc/corosync/corosync.conf\n"})  # type: ignore[arg-type]
    assert "node3" not in elsewhere.nodes and any("now runs cluster 'other': not touched" in n for n in elsewhere.notes)
    sysv = start.plan(two, found, removed={gone[0]: "pid=\ninit=init\nfile=/etc/corosync/corosync.conf\n"})  # type: ignore[arg-type]
    assert sysv.nodes["node3"].operations[0].command.startswith("/etc/init.d/corosync stop && update-rc.d corosync disable")
