"""Planning lab hosts (pure): names, addresses, and what the lab writes for SSH."""

import pytest

from runbook.errors import LabError
from runbook.lab import cluster_yaml_text, generated_nodes, plan_lab, ssh_config_text


def test_chapter_hosts_share_a_bridge_in_their_subnet(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RUNBOOK_WORLD", raising=False)
    state = plan_lab("lab", [("node1", "10.0.66.201"), ("node2", "10.0.66.202")])
    assert state.subnet == "10.0.66.0/24" and state.bridge_address == "10.0.66.254"
    assert [h.netns for h in state.hosts] == ["rb-lab-node1", "rb-lab-node2"]
    assert all(len(h.veth) <= 15 for h in state.hosts) and len(state.bridge) <= 15


def test_a_lab_in_a_world_never_takes_the_namespace_names_of_a_lab_outside(monkeypatch: pytest.MonkeyPatch):
    nodes = [("node1", "10.0.66.201"), ("node2", "10.0.66.202")]
    monkeypatch.delenv("RUNBOOK_WORLD", raising=False)
    outside = {h.netns for h in plan_lab("lab", nodes).hosts}
    monkeypatch.setenv("RUNBOOK_WORLD", "test")
    inside = {h.netns for h in plan_lab("lab", nodes).hosts}
    assert inside == {"wtest-rb-lab-node1", "wtest-rb-lab-node2"} and not inside & outside


def test_bridge_never_takes_a_node_address():
    state = plan_lab("lab", [("a", "10.0.66.254"), ("b", "10.0.66.253")])
    assert state.bridge_address == "10.0.66.252"


@pytest.mark.parametrize(
    "nodes, message",
    [
        ([("a", "10.0.66.1"), ("b", "10.0.67.1")], "must share one /24"),
        ([("a", "fe80::1")], "IPv6"),
        ([("a", "10.0.66.0")], "network or broadcast"),
        ([("a", "nope")], "not an IP address"),
    ],
)
def test_bad_lab_plans_say_why(nodes, message):
    with pytest.raises(LabError, match=message):
        plan_lab("lab", nodes)


def test_lab_names_are_short_and_safe():
    with pytest.raises(LabError, match="lab name"):
        plan_lab("Bad-Name", [("a", "10.0.66.1")])


def test_ssh_config_checks_host_keys_for_real():
    state = plan_lab("lab", generated_nodes(2))
    text = ssh_config_text(state)
    assert "StrictHostKeyChecking yes" in text and f"UserKnownHostsFile {state.known_hosts}" in text
    assert "Host node1 10.0.77.11" in text
    assert "role: primary" in cluster_yaml_text(state)


def test_generated_hosts_on_their_own_subnet():
    assert generated_nodes(2, "10.0.88.0/24") == [("node1", "10.0.88.11"), ("node2", "10.0.88.12")]
    with pytest.raises(LabError, match="--subnet"):
        generated_nodes(2, "10.0.88.0/16")
