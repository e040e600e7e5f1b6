"""Reload or restart, decided from the change: the table per key, and the plan per node. Pure.

The running keys are what `corosync-cmapctl` shows for a file, built here with file_keys (the
unit tests of runbook.running_config check that against a capture from Corosync 3.1.7); the lab
test tests/lab/test_reload_kinds.py checks the kinds themselves on real daemons.
"""

from __future__ import annotations

import re

import pytest

from runbook.conf.change_kind import RULES, Kind, decide, kind_of, parse_version, rule_for
from runbook.conf.render import render
from runbook.conf.running import file_keys
from runbook.model.rules import cluster_from_mapping

R, ROLL, ALL, NOTHING, START = Kind.RELOAD, Kind.ROLLING_RESTART, Kind.RESTART_ALL, Kind.NOTHING, Kind.START
NAMES = ("node1", "node2", "node3")


def cluster_data(count: int = 3, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "cluster_name": "day2",
        "nodes": [{"name": f"node{i}", "address": f"10.0.90.1{i}", **({"role": "primary"} if i == 1 else {})}
                  for i in range(1, count + 1)],
    }
    data.update(overrides)
    return data


def keys_of(data: dict[str, object], generation: int = 3) -> dict[str, dict[str, str]]:
    cluster = cluster_from_mapping(data)
    return {n.name: file_keys(render(cluster, n.name, generation), generation) for n in cluster.nodes}


def plan_for(before: dict[str, object], after: dict[str, object], generation: int = 3, version: str | None = "3.1.7"):  # type: ignore[no-untyped-def]
    running: dict[str, dict[str, str] | None] = dict(keys_of(before, generation))
    return decide(running, keys_of(after, generation), generation, version)


# --- the table ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, generation, version, kind",
    [
        ("totem.token", 3, None, R),
        ("totem.token", 2, None, R),
        ("totem.consensus", 3, None, R),
        ("totem.token_coefficient", 2, None, R),
        ("totem.token_warning", 3, None, R),
        ("totem.token_warning", 2, None, ROLL),  # not a 2.4.6 key: unknown there
        ("totem.rrp_problem_count_timeout", 2, None, R),
        ("totem.knet_compression_model", 3, None, R),
        ("totem.config_version", 3, None, R),
        ("totem.interface.0.knet_ping_interval", 3, None, R),
        ("totem.interface.1.knet_link_priority", 3, None, R),
        ("totem.interface.0.knet_transport", 3, None, ALL),
        ("totem.interface.0.mcastport", 3, None, ALL),
        ("totem.interface.1.mcastaddr", 2, None, ALL),
        ("totem.interface.0.bindnetaddr", 2, None, ROLL),
        ("totem.interface.0.ttl", 3, None, ROLL),
        ("totem.interface.0.member", 2, None, ROLL),
        ("totem.cluster_name", 3, None, ALL),
        ("totem.cluster_name", 2, None, ALL),
        ("totem.transport", 3, None, ALL),
        ("totem.ip_version", 2, None, ALL),
        ("totem.netmtu", 3, None, ALL),
        ("totem.rrp_mode", 2, None, ALL),
        ("totem.threads", 2, None, ROLL),
        ("totem.link_mode", 3, None, ROLL),
        ("totem.nodeid", 2, None, ROLL),
        ("totem.crypto_cipher", 2, None, ALL),
        ("totem.crypto_cipher", 3, None, ALL),  # version unknown: the safe choice
        ("totem.crypto_cipher", 3, (3, 0, 4), ALL),
        ("totem.crypto_cipher", 3, (3, 1, 7), R),
        ("totem.crypto_hash", 3, (3, 1, 0), R),
        ("totem.keyfile", 3, (3, 1, 7), R),
        ("totem.keyfile", 2, (2, 4, 6), ALL),
        ("quorum.provider", 3, None, ALL),
        ("quorum.two_node", 3, None, R),
        ("quorum.expected_votes", 2, None, R),
        ("quorum.device.votes", 3, None, R),
        ("quorum.wait_for_all", 3, None, ROLL),
        ("quorum.last_man_standing_window", 2, None, ROLL),
        ("quorum.auto_tie_breaker", 3, None, ROLL),
        ("quorum.device.net.host", 3, None, R),  # corosync-qdevice follows the map (lab: tests/lab/test_quorum_device.py)
        ("quorum.device.net.host", 2, None, ROLL),
        ("logging.to_syslog", 3, None, R),
        ("logging.logger_subsys.QUORUM.debug", 2, None, R),
        ("uidgid.config.uid.1000", 3, None, R),
        ("nozzle.ipaddr", 3, None, R),
        ("system.sched_rr", 3, None, ROLL),
        # Corosync 1.x: no reload at all
        ("totem.token", 1, None, ROLL),
        ("logging.to_syslog", 1, None, ROLL),
        ("totem.interface.0.member.memberaddr", 1, None, ROLL),
        ("totem.cluster_name", 1, None, ALL),
        ("totem.vsftype", 1, None, ALL),
    ],
)
def test_each_key_takes_what_corosync_does_with_it(key: str, generation: int, version: tuple[int, ...] | None, kind: Kind) -> None:
    assert kind_of(key, generation, version)[0] == kind


@pytest.mark.parametrize("key, generation", [("totem.frobnicate", 3), ("resources.watchdog_timeout", 3), ("aisexec.user", 1),
                                              ("totem.interface.ringnumber", 3), ("nodelist.node.0.frob", 2)])
def test_a_key_the_table_does_not_know_is_restarted_one_node_at_a_time_and_says_so(key: str, generation: int) -> None:
    kind, why = kind_of(key, generation)
    assert kind == ROLL and "not in the table" in why and "safe choice" in why


def test_one_x_says_it_has_no_reload() -> None:
    assert "1.x has no corosync-cfgtool -R" in kind_of("totem.token", 1)[1]
    assert "this node's Corosync: 3.0" in kind_of("totem.crypto_cipher", 3, (3, 0))[1]


def test_every_rule_says_why_and_where_corosync_decides_it() -> None:
    for rule in RULES:
        re.compile(rule.pattern)
        assert rule.why and rule.source, rule.pattern
        assert rule.gen2 is not None or rule.gen3 is not None, rule.pattern
    assert rule_for("totem.token") is not None and rule_for("totem.tokenx") is None


@pytest.mark.parametrize("golden", ["three-node-two-links-qdevice-gen3-alpha.conf", "three-node-two-links-qdevice-gen2-alpha.conf",
                                    "chapter-gen3-node1.conf", "chapter-gen2-node1.conf"])
def test_every_key_the_runbook_writes_is_in_the_table(golden: str) -> None:
    from pathlib import Path

    generation = 3 if "gen3" in golden else 2
    text = (Path(__file__).resolve().parents[1] / "golden" / golden).read_text()
    unknown = [k for k in file_keys(text, generation) if not k.startswith("nodelist.node.") and rule_for(k) is None]
    assert unknown == []


def test_parse_version() -> None:
    assert parse_version("Corosync 3.1.7") == (3, 1, 7)
    assert parse_version("2.4") == (2, 4)
    assert parse_version("") is None and parse_version(None) is None


# --- the plan -------------------------------------------------------------------------------------------


def test_the_same_file_takes_nothing() -> None:
    plan = plan_for(cluster_data(), cluster_data())
    assert [d.kind for d in plan.nodes] == [NOTHING] * 3
    assert not plan.reload and not plan.rolling and not plan.stops_cluster
    assert plan.lines() == ["node1: nothing", "node2: nothing", "node3: nothing"]


def test_a_token_change_is_one_reload_after_every_node_has_its_file() -> None:
    plan = plan_for(cluster_data(), cluster_data(totem={"token": 5000}))
    assert [d.kind for d in plan.nodes] == [R] * 3
    assert plan.reload and not plan.rolling and not plan.restart_all
    assert [c.key for c in plan.node("node2").forcing] == ["totem.token"]
    assert "node1: reload (totem.token: (absent) -> 5000)" in plan.lines()
    assert plan.lines()[-1].startswith("corosync-cfgtool -R once")


def test_removing_a_reload_key_is_a_reload() -> None:
    plan = plan_for(cluster_data(totem={"token": 5000}), cluster_data())
    assert plan.node("node1").kind == R and plan.node("node1").changes[0].wanted is None


def test_a_logging_and_a_quorum_change_are_reloads() -> None:
    plan = plan_for(cluster_data(), cluster_data(logging={"to_syslog": True}, quorum={"expected_votes": 4}))
    assert {c.key for c in plan.node("node1").changes} == {"logging.to_syslog", "quorum.expected_votes"}
    assert plan.node("node1").kind == R


def test_a_cluster_name_change_stops_the_whole_cluster_and_says_so() -> None:
    plan = plan_for(cluster_data(), cluster_data(cluster_name="renamed"))
    assert [d.kind for d in plan.nodes] == [ALL] * 3
    assert plan.stops_cluster and plan.restart_all == NAMES and not plan.reload
    assert [c.key for c in plan.node("node3").forcing] == ["totem.cluster_name"]
    assert "this stops the whole cluster: node1, node2, node3 stop, then start together" in plan.lines()


def test_a_restart_all_key_on_one_node_restarts_the_others_with_it() -> None:
    running = keys_of(cluster_data())
    wanted = {name: dict(keys) for name, keys in running.items()}
    wanted["node2"]["totem.interface.0.mcastport"] = "5420"
    wanted["node1"]["totem.token"] = "5000"
    plan = decide(dict(running), wanted, 3, "3.1.7")
    assert [d.kind for d in plan.nodes] == [ALL] * 3
    assert plan.node("node1").forcing == () and "forced by node2: totem.interface.0.mcastport" in plan.node("node1").notes[0]
    assert not plan.reload


def test_a_quorum_policy_change_is_a_rolling_restart_after_the_reload() -> None:
    plan = plan_for(cluster_data(), cluster_data(totem={"token": 5000}, quorum={"wait_for_all": True}))
    assert plan.rolling == NAMES and plan.reload and not plan.stops_cluster
    assert [c.key for c in plan.node("node1").forcing] == ["quorum.wait_for_all"]


def test_an_unknown_key_restarts_one_node_at_a_time_naming_it() -> None:
    running = keys_of(cluster_data())
    wanted = {n: {**k, "totem.frobnicate": "1"} for n, k in running.items()}
    plan = decide(dict(running), wanted, 3)
    assert plan.rolling == NAMES and "not in the table" in plan.node("node1").forcing[0].why


def test_a_node_added_to_the_nodelist_reloads_the_others_and_starts_itself() -> None:
    before, after = cluster_data(3), cluster_data(4)
    running: dict[str, dict[str, str] | None] = {**keys_of(before), "node4": None}
    plan = decide(running, keys_of(after), 3, "3.1.7")
    assert [plan.node(n).kind for n in NAMES] == [R] * 3 and plan.node("node4").kind == START
    added = plan.node("node1").forcing
    assert [c.key for c in added] == ["nodelist.node.3"] and "ring0_addr=10.0.90.14" in (added[0].wanted or "")
    assert plan.reload and plan.start == ("node4",) and not plan.rolling


def test_going_from_two_nodes_to_three_turns_two_node_off_by_reload() -> None:
    plan = decide({**keys_of(cluster_data(2)), "node3": None}, keys_of(cluster_data(3)), 3, "3.1.7")
    keys = {c.key: c for c in plan.node("node1").changes}
    assert keys["quorum.two_node"].running == "1" and keys["quorum.two_node"].wanted is None
    assert plan.node("node1").kind == R and plan.node("node2").kind == R


def test_removing_a_node_from_the_middle_is_a_removal_not_changed_addresses() -> None:
    """Corosync renumbers the nodelist: node3 becomes nodelist.node.1; it is still node3 (nodeids fixed in the file)."""
    before = cluster_data(3, nodes=[{"name": f"node{i}", "address": f"10.0.90.1{i}", "nodeid": i} for i in (1, 2, 3)])
    after = dict(before, nodes=[n for n in before["nodes"] if n["name"] != "node2"])  # type: ignore[attr-defined]
    plan = plan_for(before, after)
    changes = plan.node("node1").changes
    assert [(c.key, c.kind) for c in changes if c.key.startswith("nodelist")] == [("nodelist.node.1", R)]
    assert "name=node2" in (changes[-1].running or "") and changes[-1].wanted is None
    assert plan.node("node1").kind == R and plan.node("node3").kind == R


def test_removing_a_node_from_the_middle_renumbers_default_nodeids_and_says_so() -> None:
    """A cluster file's default nodeid is the node's position: node3 would become nodeid 2."""
    before = cluster_data(3)
    after = dict(before, nodes=[n for n in before["nodes"] if n["name"] != "node2"])  # type: ignore[attr-defined]
    plan = plan_for(before, after)
    assert plan.stops_cluster
    assert [(c.key, c.running, c.wanted) for c in plan.node("node1").forcing] == [("nodelist.node.1.nodeid", "3", "2")]


def test_an_existing_nodes_new_address_needs_every_node_restarted() -> None:
    before = cluster_data(3)
    nodes = [dict(n) for n in before["nodes"]]  # type: ignore[attr-defined]
    nodes[2]["address"] = "10.0.90.23"
    plan = plan_for(before, dict(before, nodes=nodes))
    assert plan.stops_cluster
    forcing = plan.node("node1").forcing
    assert [(c.key, c.running, c.wanted) for c in forcing] == [("nodelist.node.2.ring0_addr", "10.0.90.13", "10.0.90.23")]
    assert "refuses the whole reload" in forcing[0].why


def test_a_changed_nodeid_needs_every_node_restarted() -> None:
    before = cluster_data(3)
    nodes = [dict(n) for n in before["nodes"]]  # type: ignore[attr-defined]
    nodes[1]["nodeid"] = 9
    plan = plan_for(before, dict(before, nodes=nodes))
    assert plan.stops_cluster and [c.key for c in plan.node("node2").forcing] == ["nodelist.node.1.nodeid"]


def two_links(count: int = 3) -> dict[str, object]:
    return cluster_data(count, transport="knet", links=[{"number": 0}, {"number": 1}],
                        nodes=[{"name": f"node{i}", "addresses": [f"10.0.90.1{i}", f"10.0.91.1{i}"], **({"role": "primary"} if i == 1 else {})}
                               for i in range(1, count + 1)])


def test_a_knet_link_added_on_every_node_is_a_reload_on_3_and_a_restart_on_2() -> None:
    three = plan_for(cluster_data(transport="knet"), two_links(), 3)
    assert [d.kind for d in three.nodes] == [R] * 3
    assert {c.key for c in three.node("node1").forcing} >= {"nodelist.node.0.ring1_addr", "nodelist.node.2.ring1_addr"}
    two = plan_for(cluster_data(transport="udpu"), dict(two_links(), transport="udpu", rrp_mode="passive"), 2, "2.4.6")
    assert two.stops_cluster


def test_an_explicit_default_port_changes_nothing_and_another_port_restarts_all() -> None:
    running = keys_of(cluster_data())
    same = {n: {**k, "totem.interface.0.mcastport": "5405"} for n, k in running.items()}
    assert [d.kind for d in decide(dict(running), same, 3).nodes] == [NOTHING] * 3
    link1 = {n: {**k, "totem.interface.1.mcastport": "5406"} for n, k in running.items()}  # 3.x: DEFAULT_PORT + link
    assert [d.kind for d in decide(dict(running), link1, 3).nodes] == [NOTHING] * 3
    other = {n: {**k, "totem.interface.0.mcastport": "5420"} for n, k in running.items()}
    assert decide(dict(running), other, 3).stops_cluster


def test_crypto_reloads_on_3_1_and_restarts_everything_before() -> None:
    after = cluster_data(totem={"crypto_cipher": "aes128", "crypto_hash": "sha256"})
    assert plan_for(cluster_data(), after, 3, "3.1.7").node("node1").kind == R
    assert plan_for(cluster_data(), after, 3, "3.0.4").stops_cluster
    assert plan_for(cluster_data(), after, 3, None).stops_cluster


def test_on_corosync_1_every_change_is_a_restart() -> None:
    plan = plan_for(cluster_data(2), cluster_data(2, totem={"token": 5000}), 1, "1.4.2")
    assert [d.kind for d in plan.nodes] == [ROLL, ROLL] and not plan.reload
    assert "1.x has no corosync-cfgtool -R" in plan.node("node1").forcing[0].why


def test_a_node_where_corosync_does_not_run_starts() -> None:
    running: dict[str, dict[str, str] | None] = {**keys_of(cluster_data()), "node2": None}
    plan = decide(running, keys_of(cluster_data()), 3)
    assert plan.node("node2").kind == START and plan.start == ("node2",)
    assert plan.node("node1").kind == NOTHING


def test_a_node_whose_last_reload_failed_is_restarted_with_the_reason() -> None:
    running = keys_of(cluster_data())
    running["node2"] = {**running["node2"], "config.reload_status": "7"}
    plan = decide(dict(running), keys_of(cluster_data()), 3)
    assert plan.node("node2").kind == ROLL and "last reload failed (config.reload_status 7)" in plan.node("node2").notes[0]
    assert plan.node("node1").kind == NOTHING


def test_after_a_reload_the_keys_cmap_may_show_unapplied_are_named() -> None:
    data = cluster_data(totem={"port": 5420})
    running = keys_of(data)
    running["node1"] = {**running["node1"], "config.reload_status": "1"}
    plan = decide(dict(running), keys_of(data), 3)
    assert plan.node("node1").kind == NOTHING and plan.node("node1").unverified == ("totem.interface.0.mcastport",)
    assert plan.node("node2").unverified == ()


def test_bad_generation() -> None:
    with pytest.raises(ValueError):
        decide({}, {}, 4)
