"""Clusters on more than one network, and nodes named by hostnames, on real lab hosts.

A 3-node cluster with 2 knet links (each host one interface per link, a bridge per link) comes up
quorate; cutting link 0 on one node keeps the membership on link 1 and the reports show link 0 down
there; restoring it brings link 0 back. A cluster named only by hostnames comes up when every host
resolves them alike, and is refused at preflight, naming node and name, when one resolves its own
name to 127.0.1.1 (the classic /etc/hosts line). `runbook migrate --from-nodes` reads the nodes of a
multicast file from the running two-link cluster's membership over SSH, read-only.

SSH reaches the hosts of the two-link lab over link 1 (as an operator's management network would),
so cutting link 0 does not cut the runbook off.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbook.conf.membership import parse_quorumtool
from runbook.lab import netns, plan, sshd
from runbook.lab import state as lab_state
from runbook.lab import up as lab_up
from runbook.model.load import load_cluster
from runbook.model.types import Cluster
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import REPO, running_lab

LINKS = [
    ("n1", ["10.0.151.11", "10.0.152.11"]),
    ("n2", ["10.0.151.12", "10.0.152.12"]),
    ("n3", ["10.0.151.13", "10.0.152.13"]),
]


def runbook(*args: str, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--out", str(out)] if out else []
    return subprocess.run([sys.executable, "-m", "runbook", *args, *extra], capture_output=True, text=True, cwd=REPO, timeout=900)


def quorum_views(cluster: Cluster):  # type: ignore[no-untyped-def]
    with hosts_for(cluster) as hosts:
        return {n.name: parse_quorumtool(n.name, hosts[n.name].run("corosync-quorumtool -s", check=False).text) for n in cluster.nodes}


def membership_sections(text: str) -> dict[str, str]:
    """`runbook membership` output, split by node (`== n1: ...` starts a node's lines)."""
    sections: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("== "):
            name = line[3:].split(":")[0]
            sections[name] = ""
        if name:
            sections[name] += line + "\n"
    return sections


def wait_until(what: str, probe, seconds: float = 60):  # type: ignore[no-untyped-def]
    """Poll `probe` until it returns something true; knet notices a dead link after its pings time out."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {seconds}s"
        time.sleep(1)


@pytest.fixture(scope="module")
def two_links(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab_state.LabState, Path, Path]]:
    with running_lab("links", LINKS) as state:
        tmp = tmp_path_factory.mktemp("links")
        config = tmp / "ssh_config"  # the lab's own, but over link 1
        text = plan.ssh_config_text(state)
        for host in state.hosts:
            text = text.replace(f"HostName {host.address}\n", f"HostName {host.extra_addresses[0]}\n")
        config.write_text(text)
        cluster_file = tmp / "links.yaml"
        cluster_file.write_text(
            yaml.safe_dump(
                {
                    "cluster_name": "links",
                    "nodes": [
                        {"name": name, "addresses": addresses, **({"role": "primary"} if i == 0 else {})}
                        for i, (name, addresses) in enumerate(LINKS)
                    ],
                    "transport": "knet",
                    "links": [{"number": 0}, {"number": 1}],
                    "ssh": {"config": str(config)},
                },
                sort_keys=False,
            )
        )
        yield state, cluster_file, tmp / "runs"


def test_each_host_has_one_interface_per_link(two_links):
    state, _, _ = two_links
    for host in state.hosts:
        shown = netns.host_exec(host, "ip -o -4 addr show").stdout
        assert f"eth0    inet {host.addresses[0]}/24" in shown and f"eth1    inet {host.addresses[1]}/24" in shown


def test_three_nodes_on_two_knet_links_come_up_quorate(two_links):
    _, cluster_file, out = two_links
    result = runbook("run", str(cluster_file), out=out)
    assert result.returncode == 0, result.stderr[-4000:]
    cluster = load_cluster(cluster_file)
    for name, view in quorum_views(cluster).items():
        assert view.quorate is True and sorted(m.name for m in view.members) == ["n1", "n2", "n3"], f"{name}: {view.raw}"
    shown = runbook("membership", str(cluster_file))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    for name, section in membership_sections(shown.stdout).items():
        assert "link 0 up (2/2 peers connected)" in section and "link 1 up (2/2 peers connected)" in section, section
    assert "link 0 up" in result.stderr and "link 1 up" in result.stderr  # the step-06 report, per node


def test_cutting_link_0_on_a_node_keeps_membership_on_link_1_and_shows_link_0_down_there(two_links):
    state, cluster_file, out = two_links
    netns.set_link(state, "n3", 0, up=False)

    def link0_down_on_n3_and_seen_from_n1():  # type: ignore[no-untyped-def]
        # each side's knet notices on its own ping timeout: wait for both, not for the first one
        shown = runbook("membership", str(cluster_file))
        sections = membership_sections(shown.stdout)
        return shown if "link 0 DOWN" in sections.get("n3", "") and "link 0 partly down" in sections.get("n1", "") else None

    shown = wait_until("link 0 down on n3, and n1 without its link to n3", link0_down_on_n3_and_seen_from_n1)
    assert shown.returncode == 0, shown.stdout  # every node still sees 3/3 members, quorate: over link 1
    sections = membership_sections(shown.stdout)
    assert "sees 3/3 members, quorate" in sections["n3"] and "link 1 up (2/2 peers connected)" in sections["n3"]
    assert "link 0 partly down (1/2 peers connected, no link to nodeid 3)" in sections["n1"]
    rerun = runbook("run", str(cluster_file), out=out)  # step 06 verifies every link: it says which is down where
    assert rerun.returncode != 0
    assert "n3" in rerun.stderr and "link 0 DOWN (0/2 peers connected)" in rerun.stderr, rerun.stderr[-4000:]
    assert "not restarted" in rerun.stderr  # nothing was restarted for a cut link


def test_restoring_link_0_brings_it_back(two_links):
    state, cluster_file, out = two_links
    netns.set_link(state, "n3", 0, up=True)

    def all_links_up():  # type: ignore[no-untyped-def]
        shown = runbook("membership", str(cluster_file))
        sections = membership_sections(shown.stdout)
        return shown if len(sections) == 3 and all("link 0 up" in s and "link 1 up" in s for s in sections.values()) else None

    wait_until("link 0 back on every node", all_links_up)
    rerun = runbook("run", str(cluster_file), out=out)
    assert rerun.returncode == 0, rerun.stderr[-4000:]


# --- `runbook migrate --from-nodes` on the same running cluster ------------------------------------
# Corosync 3 cannot run a multicast cluster without a nodelist, so the running cluster is this knet
# one (3 nodes, 2 links) and the file is a 2.x multicast file with two rings: what is read is the
# membership (node ids and each member's address on every link), which is what the file lacks. These
# come after the link tests: the last one stops Corosync on n3.

MCAST_TWO_RINGS = """totem {
 version: 2
 cluster_name: legacy
 rrp_mode: passive
 crypto_cipher: none
 crypto_hash: none
 interface {
  ringnumber: 0
  bindnetaddr: 10.0.151.0
  mcastaddr: 239.255.1.1
  mcastport: 5405
 }
 interface {
  ringnumber: 1
  bindnetaddr: 10.0.152.0
  mcastaddr: 239.255.2.1
  mcastport: 5407
 }
}
quorum {
 provider: corosync_votequorum
 expected_votes: 3
}
"""


@pytest.fixture()
def mcast_conf(two_links, tmp_path: Path) -> tuple[lab_state.LabState, Path]:
    conf = tmp_path / "mcast.conf"
    conf.write_text(MCAST_TWO_RINGS)
    return two_links[0], conf


def test_the_members_of_the_running_cluster_become_the_nodes_and_the_header_says_so(mcast_conf, tmp_path):
    state, conf = mcast_conf
    out = tmp_path / "legacy.yaml"
    result = runbook("migrate", str(conf), "--from-nodes", "n1,n2", "--ssh-config", str(state.ssh_config), "-o", str(out))
    assert result.returncode == 0, result.stderr
    cluster = load_cluster(out)
    assert [(n.name, n.nodeid, n.addresses) for n in cluster.nodes] == [
        ("n1", 1, ("10.0.151.11", "10.0.152.11")),
        ("n2", 2, ("10.0.151.12", "10.0.152.12")),
        ("n3", 3, ("10.0.151.13", "10.0.152.13")),  # not logged in to: the name Corosync shows for it
    ]
    assert cluster.generation == 2 and cluster.nodelist is False and cluster.rrp_mode == "passive"
    header = "\n".join(line for line in out.read_text().splitlines() if line.startswith("#"))
    assert "# Nodes: from the running cluster's membership, read over SSH on n1, n2 (Corosync 3." in header, header
    assert "corosync-cmapctl" in header


def test_a_host_with_an_unknown_host_key_is_refused(mcast_conf, tmp_path):
    state, conf = mcast_conf
    config = tmp_path / "ssh_config"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config.write_text(state.ssh_config.read_text().replace(str(state.known_hosts), str(empty)))
    result = runbook("migrate", str(conf), "--from-nodes", "n1", "--ssh-config", str(config))
    assert result.returncode == 1 and "n1: unknown SSH host key" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_host_where_corosync_is_not_running_is_named(mcast_conf):
    state, conf = mcast_conf
    netns.host_exec(state.host("n3"), "/etc/init.d/corosync stop >/dev/null 2>&1; true")
    result = runbook("migrate", str(conf), "--from-nodes", "n3", "--ssh-config", str(state.ssh_config))
    assert result.returncode == 1, result.stderr
    assert "n3: Corosync is not running there" in result.stderr and "Traceback" not in result.stderr


def test_a_host_that_is_down_is_named(mcast_conf):
    state, conf = mcast_conf
    sshd.stop_sshd(state, "n2")
    try:
        result = runbook("migrate", str(conf), "--from-nodes", "n1,n2", "--ssh-config", str(state.ssh_config))
    finally:
        sshd.start_sshd(state, "n2")
    assert result.returncode == 1 and "n2: cannot connect to 10.0.151.12:22" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab_state.LabState, Path, Path]]:
    """clusters/hostnames.yaml gives no address at all: `runbook lab up` places the names in its subnet
    and makes every host resolve them; `runbook run` on the same file (no ssh settings) finds the lab
    by those names."""
    from tests.lab.conftest import leftovers

    cluster_file = REPO / "clusters" / "hostnames.yaml"
    lab_up.down("hostnm")
    try:
        up = runbook("lab", "up", str(cluster_file), "--lab", "hostnm", "--subnet", "10.0.154.0/24")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "hostnames (in every host's /etc/hosts): web-a 10.0.154.11, web-b 10.0.154.12, web-c 10.0.154.13" in up.stdout
        state = lab_state.LabState.load("hostnm")
        assert state is not None
        yield state, cluster_file, tmp_path_factory.mktemp("names") / "runs"
    finally:
        state = lab_state.LabState.load("hostnm")
        lab_up.down("hostnm")
        assert state is None or not leftovers(state)


def test_a_name_on_the_127_0_1_1_line_of_a_node_is_refused_at_preflight(named):
    state, cluster_file, out = named
    web_b = state.host("web-b")
    netns.host_exec(web_b, "sed -i '1i 127.0.1.1 web-b' /etc/hosts")
    try:
        result = runbook("run", str(cluster_file), out=out)
    finally:
        netns.host_exec(web_b, "sed -i '/^127.0.1.1 web-b$/d' /etc/hosts")
    assert result.returncode != 0
    assert "00-preflight" in result.stderr and "'web-b' resolves to loopback 127.0.1.1 on node web-b" in result.stderr, result.stderr[-3000:]
    with hosts_for(load_cluster(cluster_file)) as hosts:  # refused before anything changed
        assert all(hosts[n].run("pidof corosync", check=False).exit_status != 0 for n in ("web-a", "web-b", "web-c"))


def test_a_cluster_named_only_by_hostnames_comes_up_quorate(named):
    state, cluster_file, out = named
    for host in state.hosts:  # every host resolves every name to its lab address, never to loopback
        shown = netns.host_exec(host, "getent ahostsv4 web-a web-b web-c | awk '{print $1}' | sort -u").stdout.split()
        assert shown == ["10.0.154.11", "10.0.154.12", "10.0.154.13"], f"{host.name}: {shown}"
    result = runbook("run", str(cluster_file), out=out)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "web-a resolves to 10.0.154.11 on every node" in result.stderr
    for name, view in quorum_views(load_cluster(cluster_file)).items():
        assert view.quorate is True and sorted(m.name for m in view.members) == ["web-a", "web-b", "web-c"], f"{name}: {view.raw}"
