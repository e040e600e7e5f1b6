"""Step 06 decides from the change (issue 21): reload, one node at a time, or every node together.

Each node's running map is what `corosync-cmapctl` prints for the file it started with (built from
runbook.conf.running.file_keys, the same key space); the new file is the cluster file's. No hosts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runbook.conf.render import render
from runbook.conf.running import file_keys
from runbook.engine.facts import CONF_PATH, FileFact, NodeFacts
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping, with_generation
from runbook.model.types import Cluster
from runbook.steps import by_hand, change, reload, restart, start
from runbook.steps.preflight import change_refusal

ROOT = Path(__file__).parents[2]
BASE = {"cluster_name": "day2", "nodes": [{"name": "node1", "address": "192.0.2.11", "role": "primary"},
                                          {"name": "node2", "address": "192.0.2.12"}]}
STARTED = "pid={pid}\nstart=1000\nsha:/etc/corosync/corosync.conf=NEW\nsha:/etc/corosync/authkey=k\nstamp:pid={pid}\n" \
          "stamp:sha:/etc/corosync/corosync.conf=OLD\nstamp:sha:/etc/corosync/authkey=k\nactive=active"


def cluster(**overrides: object) -> Cluster:
    return cluster_from_mapping({**BASE, **overrides})


def cmap_of(running: Cluster, node: str, members: int) -> str:
    """What corosync-cmapctl prints on a node that started with `running`'s file, in a membership of `members`."""
    lines = [f"{k} (str) = {v}" for k, v in file_keys(render(running, node, 3), 3).items()]
    for i in range(1, members + 1):
        lines += [f"runtime.members.{i}.ip (str) = r(0) ip(192.0.2.{10 + i}) ", f"runtime.members.{i}.status (str) = joined"]
    return "\n".join(lines)


def facts(new: Cluster, running: Cluster | None, members: int = 2, key_changed: bool = False) -> dict[str, NodeFacts]:
    """Both nodes: the new file on disk, Corosync running `running`'s file (None: not running)."""
    found = {}
    for i, name in enumerate(("node1", "node2")):
        base = by_hand.assumed_facts(name, 3, installed=True)
        state = STARTED.format(pid=800 + i) if running else "pid="
        if key_changed:
            state = state.replace("sha:/etc/corosync/authkey=k\nstamp", "sha:/etc/corosync/authkey=K2\nstamp", 1)
        extra = {"state": state, change.SECTION: cmap_of(running, name, members) if running else ""}
        files = {CONF_PATH: FileFact(CONF_PATH, render(new, name, 3).encode(), 0o644, "root", "root")}
        found[name] = dataclasses.replace(base, extra=extra, files=files)
    return found


def ops(plan, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [op.kind for op in plan.nodes[name].operations]


def test_a_token_change_is_one_reload_on_the_first_node_and_a_check_on_the_other() -> None:
    new = cluster(totem={"token": 4000})
    plan = start.plan(new, facts(new, cluster()))
    assert ops(plan, "node1") == ["reload"] and ops(plan, "node2") == ["reload"]
    assert plan.nodes["node1"].operations[0].command == "corosync-cfgtool -R"
    assert plan.nodes["node2"].operations[0].command == "corosync-cmapctl -g config.reload_status"
    assert plan.waves == [["node1"], ["node2"]] and plan.problems == []
    assert "not restarted (pid 800)" in plan.nodes["node1"].would and "totem.token: " in plan.nodes["node1"].would


def test_a_start_only_key_restarts_one_node_at_a_time_each_waiting_to_rejoin() -> None:
    new = cluster(quorum={"last_man_standing": True})
    plan = start.plan(new, facts(new, cluster()))
    assert ops(plan, "node1") == ["restart", "rejoin"] and ops(plan, "node2") == ["restart", "rejoin"]
    assert plan.waves == [["node1"], ["node2"]]
    assert "one node at a time" in plan.nodes["node1"].would and "quorum.last_man_standing" in plan.nodes["node1"].would
    assert "-ge 2 ]" in plan.nodes["node1"].operations[1].script  # waits for the membership it had: 2 nodes


def test_a_cluster_name_change_on_a_running_cluster_needs_restart_all() -> None:
    new = cluster(cluster_name="day2b")
    refused = start.plan(new, facts(new, cluster()))
    assert refused.problems and "restarts every node together, so the running cluster (2 members) stops" in refused.problems[0]
    assert "totem.cluster_name: day2 -> day2b" in refused.problems[0] and "--restart-all" in refused.problems[0]
    told = start.plan(new, facts(new, cluster()), restart_all=True)
    assert told.problems == [] and told.waves == [["node1", "node2"]]
    assert "this stops the whole cluster: node1, node2 stop, then start together" in told.notes
    assert change_refusal(new, facts(new, cluster()), restart_all=False) == refused.problems[0]  # preflight says the same first
    assert change_refusal(new, facts(new, cluster()), restart_all=True) is None


def test_nodes_each_alone_in_the_packages_default_cluster_restart_together_without_a_flag() -> None:
    """After `apt-get install corosync` each node runs Debian's one-node default cluster: nothing to lose."""
    new = cluster()
    plan = start.plan(new, facts(new, cluster(cluster_name="debian"), members=1))
    assert plan.problems == [] and ops(plan, "node1") == ["restart"] and plan.waves == [["node1", "node2"]]


def test_a_change_of_comments_only_restarts_nothing() -> None:
    new = cluster()
    plan = start.plan(new, facts(new, cluster()))
    assert ops(plan, "node1") == [] and "its running map, compared key by key" in plan.nodes["node1"].summary


def test_a_new_key_on_every_node_is_one_reload_from_31_and_a_restart_together_before() -> None:
    new = cluster(totem={"token": 4000})
    found = facts(new, cluster(), key_changed=True)
    assert {f.corosync_version for f in found.values()} == {"3.1.7"}
    plan = start.plan(new, found)
    assert ops(plan, "node1") == ["reload"] and ops(plan, "node2") == ["reload"] and plan.waves == [["node1"], ["node2"]]
    assert "the new authkey (sha256 K2" in plan.nodes["node1"].would and "totem.token" in plan.nodes["node1"].would
    assert reload.KEY_STAMP in plan.nodes["node1"].operations[0].script and reload.KEY_STAMP in plan.nodes["node2"].operations[0].script
    old = {n: dataclasses.replace(f, corosync_version="3.0.4") for n, f in found.items()}
    plan = start.plan(new, old)
    assert ops(plan, "node1") == ["restart"] and plan.waves == [["node1", "node2"]]
    assert "(Corosync 3.0.4 reads the authkey only at start" in plan.nodes["node1"].would
    half = dict(found, node2=facts(new, cluster())["node2"])  # only node1 has a new key: they could not talk after a reload
    plan = start.plan(new, half)
    assert ops(plan, "node1") == ["restart"]
    assert change.key_reload_refusal(3, "3.0.4") and change.key_reload_refusal(2, "2.4.6") and change.key_reload_refusal(3, "3.1.0") is None
    stopped = facts(new, cluster())
    stopped["node2"] = dataclasses.replace(stopped["node2"], extra={"state": "pid=", change.SECTION: ""})
    plan = start.plan(new, stopped)
    assert plan.waves == [["node1"], ["node2"]] and ops(plan, "node1") == ["reload"] and ops(plan, "node2") == ["restart"]
    assert plan.nodes["node2"].operations[0].command == "systemctl start corosync"


def test_without_a_readable_map_every_changed_node_restarts_as_before() -> None:
    new = cluster(totem={"token": 4000})
    found = facts(new, cluster())
    for name in found:
        found[name] = dataclasses.replace(found[name], extra={**found[name].extra, change.SECTION: "Failed to initialize the cmap API. Error CS_ERR_LIBRARY"})
    plan = start.plan(new, found)
    assert ops(plan, "node1") == ["restart"] and plan.waves == [["node1", "node2"]]


@pytest.mark.parametrize("generation", [1])
def test_corosync_1x_keeps_restarting_changed_nodes(generation: int) -> None:
    chapter = with_generation(load_cluster(ROOT / "clusters" / "chapter.yaml"), generation)
    found = {n: by_hand.assumed_facts(n, generation, installed=True) for n in ("node1", "node2")}
    plan = start.plan(chapter, found)
    assert ops(plan, "node1") == ["restart"]


def test_a_node_joining_from_the_packages_default_cluster_starts_last_and_restarts_no_one() -> None:
    """Adding a node: apt-get started Corosync there in Debian's one-node cluster; the others reload."""
    three = cluster(nodes=[*BASE["nodes"], {"name": "node3", "address": "192.0.2.13"}])  # type: ignore[list-item]
    found = facts(three, cluster())
    newcomer = by_hand.assumed_facts("node3", 3, installed=True)
    default = cmap_of(cluster(cluster_name="debian", nodes=[{"name": "node3", "address": "192.0.2.13"}, {"name": "x", "address": "192.0.2.99"}]), "node3", 1)
    found["node3"] = dataclasses.replace(newcomer, extra={"state": STARTED.format(pid=900).replace("stamp:pid=900", "stamp:pid=1") + "\nloaded_cluster_name=debian",
                                                             change.SECTION: default},
                                         files={CONF_PATH: FileFact(CONF_PATH, render(three, "node3", 3).encode(), 0o644, "root", "root")})
    plan = start.plan(three, found)
    assert plan.problems == [], plan.problems
    assert ops(plan, "node1") == ["reload"] and ops(plan, "node2") == ["reload"] and ops(plan, "node3") == ["restart"]
    assert plan.waves == [["node1"], ["node2"], ["node3"]]


def test_the_lowest_version_decides_for_every_node() -> None:
    assert change.lowest_version(["3.1.7", None, "3.0.4", "3.1.10"]) == "3.0.4" and change.lowest_version([None]) is None


def test_a_file_put_back_after_a_reload_is_decided_from_the_map_not_the_stamp() -> None:
    """3 nodes -> 2 after 2 -> 3 by reload: the stamp still holds the 2-node file's digest the daemon
    started with, and the 2-node file on disk has it again. Only the map knows the daemon runs 3 nodes."""
    two, three = cluster(), cluster(nodes=[*BASE["nodes"], {"name": "node3", "address": "192.0.2.13"}])  # type: ignore[list-item]
    found = facts(two, three, members=3)
    for name, f in found.items():  # the daemon started with the 2-node file (stamp = disk), then reloaded
        state = f.extra["state"].replace("sha:/etc/corosync/corosync.conf=NEW", "sha:/etc/corosync/corosync.conf=OLD")
        found[name] = dataclasses.replace(f, extra={**f.extra, "state": state.replace("stamp:sha:/etc/corosync/corosync.conf=OLD",
                                                                                       f"stamp:sha:/etc/corosync/corosync.conf={reload.RELOADED}")})
    plan = start.plan(two, found)
    assert ops(plan, "node1") == ["reload"] and ops(plan, "node2") == ["reload"], plan.nodes["node1"].summary
    assert "nodelist.node.2: name=node3" in plan.nodes["node1"].would


def test_every_reload_marks_the_stamp_so_a_later_run_reads_the_map() -> None:
    assert reload.MARK_RELOADED in reload.RELOAD_SCRIPT and reload.MARK_RELOADED in reload.RELOADED_SCRIPT
    state = restart.parse_state(STARTED.format(pid=7).replace("stamp:sha:/etc/corosync/corosync.conf=OLD", "stamp:sha:/etc/corosync/corosync.conf=reloaded"))
    assert start.conf_decides(state, "day2", 3) and "reloaded" in (restart.restart_reason(state, "day2", 3) or "")
