"""The reload-or-restart table (runbook.conf.change_kind) checked on real Corosync 3 daemons.

One 2-node lab, brought up by `runbook run`, shared by every case; each host has a second network
that the cluster file uses only in the case that adds a knet link. Each case starts from the
cluster's own file (put back and reloaded), writes a changed file on every node, asks
runbook.change_kind what the change takes, runs `corosync-cfgtool -R` once and reads what the
daemons now run: for the reload keys the new value is in force (the runtime key, the quorum, the
log file, the new link, the cipher with membership kept) with every Corosync pid unchanged; for
restart keys the reload does not apply them (and a restart does), and for an existing node's new
address the reload fails as a whole.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook.conf.change_kind import Kind, Plan, decide
from runbook.conf.membership import parse_quorumtool
from runbook.conf.render import render
from runbook.conf.running import file_keys, parse_cmapctl, read_command
from runbook.lab import state as lab_state
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import Cluster
from runbook.ssh.hosts import Hosts, hosts_for
from tests.lab.conftest import REPO, running_lab, wait_for

CONF = "/etc/corosync/corosync.conf"
NODES = ("node1", "node2")
ADDRESSES = {"node1": ("10.0.171.11", "10.0.172.11"), "node2": ("10.0.171.12", "10.0.172.12")}


@dataclass
class Kinds:
    state: lab_state.LabState
    base: dict[str, object]  # the cluster file's mapping
    hosts: Hosts
    version: str


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kinds]:
    with running_lab("ptkinds", [(n, list(a)) for n, a in ADDRESSES.items()]) as state:
        tmp = tmp_path_factory.mktemp("kinds")
        base: dict[str, object] = {
            "cluster_name": "kinds",
            "nodes": [{"name": n, "address": a[0], **({"role": "primary"} if n == "node1" else {})} for n, a in ADDRESSES.items()],
        }
        (tmp / "kinds.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
        result = subprocess.run([sys.executable, "-m", "runbook", "run", str(tmp / "kinds.yaml"), "--out", str(tmp / "runs")],
                                capture_output=True, text=True, cwd=REPO, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        with hosts_for(cluster_from_mapping(base)) as hosts:
            version = hosts["node1"].run("corosync -v").text.splitlines()[0]
            yield Kinds(state, base, hosts, version)


def cluster(k: Kinds, **overrides: object) -> Cluster:
    return cluster_from_mapping({**k.base, **overrides})


def running(k: Kinds) -> dict[str, dict[str, str]]:
    return {n: parse_cmapctl(k.hosts[n].run(read_command(3)).text, n) for n in NODES}


def cmap(k: Kinds, node: str, key: str) -> str:
    return parse_cmapctl(k.hosts[node].run(f"corosync-cmapctl -g {key}").text, node)[key]


def pids(k: Kinds) -> dict[str, str]:
    return {n: k.hosts[n].run("pidof corosync").text.strip() for n in NODES}


def wanted(new: Cluster) -> dict[str, dict[str, str]]:
    return {n.name: file_keys(render(new, n.name, 3), 3) for n in new.nodes}


def put_files(k: Kinds, new: Cluster) -> None:
    """The new file on every lab host (not yet reloaded)."""
    for node in NODES:
        k.hosts[node].run(f"cat > {CONF}", input=render(new, node, 3).encode())


def reload(k: Kinds) -> int:
    return k.hosts["node1"].run("corosync-cfgtool -R", check=False).exit_status


def change(k: Kinds, **overrides: object) -> tuple[Plan, dict[str, str]]:
    """Write the changed file on every node and decide what it takes; returns the plan and the pids before."""
    before = pids(k)
    new = cluster(k, **overrides)
    put_files(k, new)
    now: dict[str, dict[str, str] | None] = {n.name: None for n in new.nodes}  # no Corosync behind a node without a host
    now.update(running(k))
    return decide(now, wanted(new), 3, k.version), before


RESTART = ("if [ -d /run/systemd/system ]; then systemctl {0} corosync; "
           "else /etc/init.d/corosync {0} >/dev/null 2>&1; fi")


def restart_all(k: Kinds) -> None:
    """What the table says a restart-all key takes: stop every node, then start every node."""
    for node in NODES:
        k.hosts[node].run(RESTART.format("stop"))
    for node in NODES:
        k.hosts[node].run(RESTART.format("start"))
    wait_for(lambda: all(quorum(k, n).complete(2) for n in NODES), 60, "both nodes members and quorate after the restart")


def quorum(k: Kinds, node: str):  # type: ignore[no-untyped-def]
    return parse_quorumtool(node, k.hosts[node].run("corosync-quorumtool -s", check=False).text)


@pytest.fixture()
def base(kinds: Kinds) -> Iterator[Kinds]:
    """Every case starts from the cluster's own file, in force."""
    put_files(kinds, cluster(kinds))
    assert reload(kinds) == 0
    plan = decide(dict(running(kinds)), wanted(cluster(kinds)), 3, kinds.version)
    assert [d.kind for d in plan.nodes] == [Kind.NOTHING, Kind.NOTHING], plan.lines()
    yield kinds


def test_what_runbook_run_started_is_the_file_key_by_key(kinds: Kinds) -> None:
    plan = decide(dict(running(kinds)), wanted(cluster(kinds)), 3, kinds.version)
    assert plan.lines() == ["node1: nothing", "node2: nothing"]


def test_a_token_change_is_applied_by_one_reload(base: Kinds) -> None:
    plan, before = change(base, totem={"token": 4321})
    assert [(d.kind, [c.key for c in d.forcing]) for d in plan.nodes] == [(Kind.RELOAD, ["totem.token"])] * 2
    assert cmap(base, "node2", "runtime.config.totem.token") != "4321"
    assert reload(base) == 0
    for node in NODES:  # two nodes: no token_coefficient added
        assert cmap(base, node, "runtime.config.totem.token") == "4321"
        assert cmap(base, node, "config.reload_status") == "1"
    assert pids(base) == before


def test_a_logging_change_is_applied_by_one_reload(base: Kinds) -> None:
    logfile = "/var/log/runbook-reload-kinds.log"
    plan, before = change(base, logging={"to_logfile": True, "logfile": logfile})
    assert {d.kind for d in plan.nodes} == {Kind.RELOAD}
    assert {c.key for c in plan.node("node1").forcing} == {"logging.to_logfile", "logging.logfile"}
    for node in NODES:
        base.hosts[node].run(f"rm -f {logfile}")
    assert reload(base) == 0
    for node in NODES:  # Corosync opened the new log file: the setting is in force
        assert base.hosts[node].run(f"test -s {logfile} && echo there", check=False).text.strip() == "there", node
    assert pids(base) == before


def test_two_node_and_expected_votes_are_applied_by_one_reload(base: Kinds) -> None:
    assert "2Node" in quorum(base, "node1").flags
    plan, before = change(base, quorum={"two_node": False, "expected_votes": 3})
    assert {c.key for c in plan.node("node2").forcing} == {"quorum.two_node", "quorum.expected_votes"}
    assert reload(base) == 0
    for node in NODES:
        view = quorum(base, node)
        assert "2Node" not in view.flags and cmap(base, node, "runtime.votequorum.two_node") == "0", view.raw
        assert re.search(r"Expected votes:\s+3\b", view.raw) and view.quorate is True, view.raw
    assert pids(base) == before


def test_a_node_added_to_the_nodelist_is_applied_by_one_reload(base: Kinds) -> None:
    nodes = list(base.base["nodes"]) + [{"name": "node3", "address": "10.0.171.13"}]  # type: ignore[operator]
    plan, before = change(base, nodes=nodes)
    assert "nodelist.node.2.ring0_addr" not in running(base)["node1"]
    assert [plan.node(n).kind for n in NODES] == [Kind.RELOAD, Kind.RELOAD] and plan.start == ("node3",)
    assert [c.key for c in plan.node("node1").forcing] == ["quorum.two_node", "nodelist.node.2"]
    assert reload(base) == 0
    for node in NODES:
        assert cmap(base, node, "nodelist.node.2.ring0_addr") == "10.0.171.13"
        view = quorum(base, node)
        assert re.search(r"Expected votes:\s+3\b", view.raw) and view.quorate is True, view.raw  # 2 of 3 votes
    assert pids(base) == before


def test_a_knet_link_added_on_every_node_is_applied_by_one_reload(base: Kinds) -> None:
    nodes = [{"name": n, "addresses": list(a), **({"role": "primary"} if n == "node1" else {})} for n, a in ADDRESSES.items()]
    plan, before = change(base, nodes=nodes, transport="knet", links=[{"number": 0}, {"number": 1}])
    assert [d.kind for d in plan.nodes] == [Kind.RELOAD, Kind.RELOAD], plan.lines()
    assert {"nodelist.node.0.ring1_addr", "nodelist.node.1.ring1_addr"} <= {c.key for c in plan.node("node1").forcing}
    assert "LINK: 1" not in base.hosts["node1"].run("corosync-cfgtool -n").text
    assert reload(base) == 0
    for node, other in (("node1", "node2"), ("node2", "node1")):
        wait_for(lambda: re.search(rf"LINK: 1 udp \({ADDRESSES[node][1]}->{ADDRESSES[other][1]}\) enabled connected",
                                   base.hosts[node].run("corosync-cfgtool -n").text), 30, f"link 1 up on {node}")
    assert pids(base) == before


def test_a_cipher_change_is_applied_by_one_reload_on_3_1_with_membership_kept(base: Kinds) -> None:
    ring = quorum(base, "node1").ring_id
    plan, before = change(base, totem={"crypto_cipher": "aes128", "crypto_hash": "sha256"})
    assert [(d.kind, [c.key for c in d.forcing]) for d in plan.nodes] == [(Kind.RELOAD, ["totem.crypto_cipher"])] * 2
    assert reload(base) == 0
    for node in NODES:  # without knet's crypto reconfiguration the reload keeps aes256 (cfg.c remove_ro_entries)
        assert cmap(base, node, "totem.crypto_cipher") == "aes128" and cmap(base, node, "config.reload_status") == "1"
        view = quorum(base, node)
        assert view.complete(2) and view.ring_id == ring, view.raw
    assert pids(base) == before


def test_restart_keys_are_not_applied_by_a_reload_and_are_by_a_restart(base: Kinds) -> None:
    """cluster_name: the reload drops it; the port and last_man_standing: copied into cmap but not in force.

    (Not wait_for_all: with two_node it is on already, votequorum sets it from two_node.)
    """
    old_name = base.base["cluster_name"]
    changed = {"cluster_name": "renamed", "totem": {"port": 5420}, "quorum": {"last_man_standing": True}}
    plan, before = change(base, **changed)
    assert plan.stops_cluster
    assert {c.key for c in plan.node("node1").forcing} == {"totem.cluster_name", "totem.interface.0.mcastport"}
    assert any(c.key == "quorum.last_man_standing" and c.kind == Kind.ROLLING_RESTART for c in plan.node("node1").changes)
    assert reload(base) == 0
    for node in NODES:
        assert cmap(base, node, "totem.cluster_name") == old_name
        assert cmap(base, node, "totem.interface.0.mcastport") == "5420"  # what cmap says...
        sockets = base.hosts[node].run("ss -uanp | grep corosync", check=False).text
        assert ":5405 " in sockets and ":5420 " not in sockets, sockets  # ...is not what runs
        assert cmap(base, node, "quorum.last_man_standing") == "1" and "LastManStanding" not in quorum(base, node).flags
    assert pids(base) == before
    after = decide(dict(running(base)), wanted(cluster(base, **changed)), 3, base.version)
    assert after.stops_cluster  # the name still differs: a re-run would not take it as done
    assert "totem.interface.0.mcastport" in after.node("node1").unverified
    try:
        restart_all(base)
        for node in NODES:
            assert cmap(base, node, "totem.cluster_name") == "renamed"
            assert ":5420 " in base.hosts[node].run("ss -uanp | grep corosync", check=False).text
            assert "LastManStanding" in quorum(base, node).flags
        assert [d.kind for d in decide(dict(running(base)), wanted(cluster(base, **changed)), 3, base.version).nodes] == [Kind.NOTHING] * 2
    finally:
        put_files(base, cluster(base))
        restart_all(base)


def test_an_existing_nodes_new_address_fails_the_whole_reload(base: Kinds) -> None:
    nodes = [dict(n) for n in base.base["nodes"]]  # type: ignore[union-attr]
    nodes[1]["address"] = "10.0.171.22"
    plan, before = change(base, nodes=nodes)
    assert plan.stops_cluster and [c.key for c in plan.node("node1").forcing] == ["nodelist.node.1.ring0_addr"]
    assert reload(base) != 0
    for node in NODES:
        assert cmap(base, node, "config.reload_status") == "7"  # CS_ERR_INVALID_PARAM
        assert cmap(base, node, "nodelist.node.1.ring0_addr") == "10.0.171.12"
    assert pids(base) == before


# --- step 06 decides: `runbook run` on the same daemons (issue 21 item 1) ------------------------------


def run_file(k: Kinds, tmp: Path, *flags: str, **overrides: object) -> subprocess.CompletedProcess[str]:
    """`runbook run` of the cluster file with `overrides`, records under `tmp`."""
    path = tmp / f"cluster-{len(list(tmp.glob('cluster-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump({**k.base, **overrides}, sort_keys=False))
    return subprocess.run([sys.executable, "-m", "runbook", "run", str(path), "--out", str(tmp / "runs"), *flags],
                          capture_output=True, text=True, cwd=REPO, timeout=900)


def quorate_samples(k: Kinds, stop: threading.Event, found: list[tuple[float, dict[str, bool]]]) -> None:
    """Every 200 ms: which nodes say they are quorate (corosync-quorumtool on each)."""
    with hosts_for(cluster(k)) as own:  # connections of its own: Host objects are not shared across threads
        while not stop.is_set():
            seen = {n: parse_quorumtool(n, own[n].run("corosync-quorumtool -s", check=False).text).quorate is True for n in NODES}
            found.append((time.monotonic(), seen))
            stop.wait(0.2)


def test_runbook_run_applies_a_token_change_by_one_reload_with_every_pid_unchanged(base: Kinds, tmp_path: Path) -> None:
    before = pids(base)
    result = run_file(base, tmp_path, totem={"token": 3456})
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"node1\s+changed\s+reloaded Corosync \(totem\.token: \S+ -> 3456\); not restarted", result.stderr), result.stderr[-3000:]
    assert "$ corosync-cfgtool -R" in result.stderr
    for node in NODES:
        assert cmap(base, node, "runtime.config.totem.token") == "3456"
    assert pids(base) == before
    again = run_file(base, tmp_path, totem={"token": 3456})  # now nothing to do
    assert again.returncode == 0 and "corosync-cfgtool -R" not in again.stderr and pids(base) == before


def test_runbook_run_restarts_one_node_at_a_time_for_a_start_only_key_and_keeps_quorum(base: Kinds, tmp_path: Path) -> None:
    before = pids(base)
    stop, samples = threading.Event(), []  # type: ignore[var-annotated]
    sampler = threading.Thread(target=quorate_samples, args=(base, stop, samples))
    sampler.start()
    try:
        result = run_file(base, tmp_path, quorum={"last_man_standing": True, "last_man_standing_window": 12000})
    finally:
        stop.set()
        sampler.join()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarted Corosync with" in result.stderr and "one node at a time, and it rejoined" in result.stderr
    after = pids(base)
    assert all(after[n] != before[n] for n in NODES), "both restarted"
    assert len(samples) > 10, samples
    lost = [(t, seen) for t, seen in samples if not any(seen.values())]
    assert not lost, f"no node was quorate at {len(lost)} of {len(samples)} samples (200 ms apart): {lost[:3]}"
    assert any(not all(seen.values()) for _, seen in samples), "the sampler saw a node restart"
    for node in NODES:
        assert cmap(base, node, "quorum.last_man_standing") == "1"


def test_a_cluster_name_change_is_refused_without_restart_all_and_made_with_it(base: Kinds, tmp_path: Path) -> None:
    before = pids(base)
    files = {n: base.hosts[n].run(f"sha256sum {CONF}").text for n in NODES}
    refused = run_file(base, tmp_path, cluster_name="kinds2")
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert "renames the cluster: every node restarts together" in refused.stderr and "--restart-all" in refused.stderr
    assert pids(base) == before and {n: base.hosts[n].run(f"sha256sum {CONF}").text for n in NODES} == files
    done = run_file(base, tmp_path, "--restart-all", cluster_name="kinds2")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "together with the other nodes (totem.cluster_name: kinds -> kinds2)" in done.stderr
    assert "this stops the whole cluster: node1, node2 stop, then start together" in done.stderr
    assert all(cmap(base, n, "totem.cluster_name") == "kinds2" for n in NODES)  # the module's last case: left renamed
