"""ProxyJump through two real lab hosts: every hop is taken, each with its own login and host-key check.

Three lab hosts: node1 and node2 are the jump hosts `jumpa` and `jumpb`, node3 is the node. Each host's
key is in a known_hosts file of its own, named only in its own ssh_config entry, so a hop that borrowed
the node's settings (or another hop's) would be refused. Where a connection came from is read on the
hosts themselves: the node sees jumpb as its client, jumpb sees jumpa, and only jumpa sees this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.errors import HostKeyError
from runbook.lab import netns, plan
from runbook.lab import state as lab_state
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import Cluster
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import running_lab

SUBNET = "10.0.147.0/24"
JUMPA, JUMPB, NODE = "10.0.147.11", "10.0.147.12", "10.0.147.13"


@pytest.fixture(scope="module")
def three_hosts() -> Iterator[lab_state.LabState]:
    with running_lab("ptjump", plan.generated_nodes(3, SUBNET)) as state:
        yield state


@pytest.fixture()
def jump_config(three_hosts: lab_state.LabState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An ssh_config with one known_hosts file per host; no ~/.ssh to fall back on."""
    monkeypatch.setenv("HOME", str(tmp_path))
    state = three_hosts
    known = {}
    for line in state.known_hosts.read_text().splitlines():
        name = line.split(",")[0]
        known[name] = tmp_path / f"known_hosts.{name}"
        known[name].write_text(line + "\n")
    entry = "  User root\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n"
    text = (
        f"Host jumpa {JUMPA}\n  HostName {JUMPA}\n" + entry.format(key=state.identity, kh=known["node1"])
        + f"Host jumpb {JUMPB}\n  HostName {JUMPB}\n" + entry.format(key=state.identity, kh=known["node2"])
        + f"Host target\n  HostName {NODE}\n  ProxyJump jumpa,jumpb\n" + entry.format(key=state.identity, kh=known["node3"])
    )
    (tmp_path / "ssh_config").write_text(text)
    return {"config": tmp_path / "ssh_config", **known}


def target_cluster(config: Path) -> Cluster:
    """`target` is the node under test; `spare` only makes it a cluster (hosts connect lazily: never used)."""
    nodes = [{"name": "target", "address": NODE}, {"name": "spare", "address": JUMPB}]
    return cluster_from_mapping({"cluster_name": "jump", "nodes": nodes, "ssh": {"config": str(config)}})


def ssh_clients(state: lab_state.LabState, host: str) -> set[str]:
    """The addresses of the SSH clients connected to a host's sshd right now, read on the host itself."""
    out = netns.host_exec(state.host(host), "ss -Htn state established '( sport = :22 )'").stdout
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("jumps", ["jumpa,jumpb", f"root@{JUMPA},ssh://{JUMPB}:22"])
def test_two_jump_hosts_are_both_taken_in_order(three_hosts: lab_state.LabState, jump_config: dict[str, Path], jumps: str) -> None:
    state = three_hosts
    config = jump_config["config"]
    config.write_text(config.read_text().replace("ProxyJump jumpa,jumpb", f"ProxyJump {jumps}"))
    with hosts_for(target_cluster(config)) as hosts:
        target = hosts["target"]
        assert target.run("hostname").text.strip() == "node3"
        assert target.run("echo $SSH_CONNECTION").text.split()[0] == JUMPB, "the node is reached from jumpb"
        assert ssh_clients(state, "node3") == {JUMPB}
        assert ssh_clients(state, "node2") == {JUMPA}, "jumpb is reached through jumpa"
        assert ssh_clients(state, "node1") == {state.bridge_address}, "only jumpa is reached from this machine"


def test_each_jump_hosts_key_is_checked_against_its_own_known_hosts(three_hosts: lab_state.LabState, jump_config: dict[str, Path]) -> None:
    jump_config["node2"].write_text("")  # jumpb's key is known nowhere now
    with hosts_for(target_cluster(jump_config["config"])) as hosts:
        with pytest.raises(HostKeyError) as caught:
            hosts["target"].run("touch /root/should-not-exist")
    message = str(caught.value)
    assert caught.value.host == "target"
    assert message.startswith(f"target: jump host jumpb ({JUMPB}:22): unknown SSH host key for {JUMPB}")
    assert str(jump_config["node2"]) in message
    node3 = three_hosts.host("node3")
    assert netns.host_exec(node3, "test -e /root/should-not-exist", check=False).returncode != 0


def test_proxy_jump_none_connects_directly(three_hosts: lab_state.LabState, jump_config: dict[str, Path]) -> None:
    config = jump_config["config"]
    config.write_text(config.read_text().replace("ProxyJump jumpa,jumpb", "ProxyJump none"))
    with hosts_for(target_cluster(config)) as hosts:
        assert hosts["target"].run("echo $SSH_CONNECTION").text.split()[0] == three_hosts.bridge_address
