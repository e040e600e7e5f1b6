"""Planning lab hosts (pure): names, addresses, and what the lab writes for SSH."""

import pytest

from runbook.errors import LabError
from runbook.lab.plan import cluster_yaml_text, generated_nodes, plan_lab, ssh_config_text


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


THREE_TWO_LINKS = [
    ("n1", ["10.0.151.11", "10.0.152.11"]),
    ("n2", ["10.0.151.12", "10.0.152.12"]),
    ("n3", ["10.0.151.13", "10.0.152.13"]),
]


def test_one_bridge_and_one_interface_per_link():
    state = plan_lab("links", THREE_TWO_LINKS)
    assert state.subnet == "10.0.151.0/24" and [l.subnet for l in state.extra_links] == ["10.0.152.0/24"]
    assert state.bridges == ["rb-links", "rb-links-l1"]
    assert [h.addresses for h in state.hosts] == [a for _, a in THREE_TWO_LINKS]
    assert all(len(name) <= 15 for name in state.link_names())
    assert len(set(state.link_names())) == 2 + 3 * 2
    assert "addresses: [10.0.151.11, 10.0.152.11]" in cluster_yaml_text(state)
    assert state.host("10.0.152.12").name == "n2"


@pytest.mark.parametrize(
    "nodes, message",
    [
        ([("a", ["10.0.66.1", "10.0.67.1"]), ("b", ["10.0.66.2"])], "one address per link"),
        ([("a", ["10.0.66.1", "10.0.66.2"])], "links 0 and 1 share"),
        ([("a", ["10.0.66.1", "10.0.67.1"]), ("b", ["10.0.66.2", "10.0.68.2"])], "must share one /24"),
        ([("a", ["10.0.66.1", "10.0.67.1"]), ("b", ["10.0.66.2", "10.0.67.1"])], "same address on link 1"),
    ],
)
def test_bad_multi_link_plans_say_why(nodes, message):
    with pytest.raises(LabError, match=message):
        plan_lab("lab", nodes)
