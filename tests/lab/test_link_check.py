"""The link check and the firewall, for real: three hosts on two links, nftables rules inside the hosts'
own network namespaces, and `runbook run` as a user runs it.

On one lab, each test setting the hosts' rules it needs: a drop of UDP 5405 from one peer fails preflight naming the pair, the link,
the port and the direction, with nothing changed on any node; a link cut both ways between two nodes
is named on its own link; with `firewall: manage` the run opens exactly what was blocked and makes a
quorate cluster, and a second run changes no rule. (That the rules come back after a reboot is proved
on booting hosts in test_boot.py.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbook.lab import state as lab_state
from runbook.model.load import load_cluster
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import REPO, running_lab

NODES = [
    ("n1", ["10.0.161.11", "10.0.162.11"]),
    ("n2", ["10.0.161.12", "10.0.162.12"]),
    ("n3", ["10.0.161.13", "10.0.162.13"]),
]
TABLE = "nft add table inet filter; nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }'"


def runbook(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook", *args, "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=900)


class Lab:
    def __init__(self, state: lab_state.LabState, tmp: Path) -> None:
        self.state = state
        self.tmp = tmp
        self.out = tmp / "runs"

    def cluster_file(self, **extra: object) -> Path:
        data = {"cluster_name": "linkcheck", "transport": "knet", "links": [{"number": 0}, {"number": 1}],
                "nodes": [{"name": n, "addresses": a} for n, a in NODES], "ssh": {"config": str(self.state.ssh_config)}, **extra}
        path = self.tmp / f"linkcheck-{len(extra)}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def sh(self, node: str, command: str) -> str:
        with hosts_for(load_cluster(self.cluster_file())) as hosts:
            return hosts[node].run(command).text

    def untouched(self) -> dict[str, str]:
        """What a changed node would show: Corosync's package, its config dir, anything the runbook stages."""
        probe = "dpkg -s corosync >/dev/null 2>&1 && echo installed; ls -A /etc/corosync 2>/dev/null; ls /etc/.*runbook* 2>/dev/null; true"
        return {n: self.sh(n, probe).strip() for n, _ in NODES}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab("linkchk", NODES) as state:
        yield Lab(state, tmp_path_factory.mktemp("linkcheck"))


def test_a_peer_dropped_by_one_nodes_firewall_fails_preflight_naming_pair_link_port_and_direction(lab: Lab) -> None:
    lab.sh("n2", f"{TABLE}; nft add rule inet filter input ip saddr 10.0.161.11 udp dport 5405 drop")
    result = runbook("run", str(lab.cluster_file()), out=lab.out)
    assert result.returncode == 1, result.stderr[-3000:]
    said = result.stderr
    assert "link 0: n1 (10.0.161.11) -> n2 (10.0.161.12): nothing arrived on UDP 5405; the other way, n2 -> n1, works" in said, said[-3000:]
    assert "n2's firewall is the first suspect (nftables: chain inet filter input (drop/reject rules))" in said
    assert "link 1:" not in said.split("step 00-preflight failed")[-1]  # link 1 (UDP 5406) was not dropped: not named
    grid = said[said.index("Link 0 (UDP 5405)"):]
    assert grid.splitlines()[2].split() == ["n1", "-", "BLOCKED", "ok"], grid[:400]
    assert lab.untouched() == {"n1": "", "n2": "", "n3": ""}


def cut_link_1_between_n1_and_n3(lab: Lab) -> None:
    for node in ("n1", "n2", "n3"):
        lab.sh(node, "nft flush ruleset")
    lab.sh("n1", f"{TABLE}; nft add rule inet filter input ip saddr 10.0.162.13 drop")
    lab.sh("n3", f"{TABLE}; nft add rule inet filter input ip saddr 10.0.162.11 drop")


def test_a_link_cut_both_ways_between_two_nodes_is_named_on_that_link_only(lab: Lab) -> None:
    cut_link_1_between_n1_and_n3(lab)
    result = runbook("plan", str(lab.cluster_file()), out=lab.out)
    assert result.returncode == 1, result.stderr[-3000:]
    failed = result.stderr.split("step 00-preflight failed")[-1]
    assert "link 1: n1 (10.0.162.11) -> n3 (10.0.162.13): nothing arrived on UDP 5406; the other way, n3 -> n1, is blocked too" in failed
    assert "link 1: n3 (10.0.162.13) -> n1 (10.0.162.11)" in failed and "link 0:" not in failed
    assert lab.untouched() == {"n1": "", "n2": "", "n3": ""}


def test_firewall_manage_opens_exactly_the_blocked_ports_and_a_second_run_changes_no_rule(lab: Lab) -> None:
    cut_link_1_between_n1_and_n3(lab)
    managed = lab.cluster_file(firewall="manage")
    first = runbook("run", str(managed), out=lab.out)
    assert first.returncode == 0, first.stderr[-4000:]
    assert "step 05 opens n1's firewall" in first.stderr and "step 05 opens n3's firewall" in first.stderr
    assert "all 3 nodes are members and quorate" in first.stderr
    rules = {n: lab.sh(n, "nft list ruleset") for n, _ in NODES}
    assert "chain corosync-runbook" not in rules["n2"]  # n2 drops nothing: its firewall is left alone
    for node in ("n1", "n3"):
        ours = rules[node].split("chain corosync-runbook {")[1].split("\n\t}")[0]
        peers = [a for n, addrs in NODES if n != node for a in addrs]
        assert all(p in ours for p in peers) and "udp dport { 5405, 5406 } accept" in ours, ours
        assert rules[node].index("jump corosync-runbook") < rules[node].index(" drop")  # ours first, theirs after
    second = runbook("run", str(managed), out=lab.out)
    assert second.returncode == 0 and "everything was already in place" in second.stderr, second.stderr[-3000:]
    assert {n: lab.sh(n, "nft list ruleset") for n, _ in NODES} == rules
