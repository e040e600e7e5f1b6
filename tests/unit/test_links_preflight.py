"""Preflight over links and hostnames, as pure functions: each link's address on its node, names that
resolve alike everywhere and never to loopback, and the 2-node warning."""

from runbook.engine.facts import parse_facts, parse_resolution, resolution_problems, resolve_script
from runbook.model.rules import cluster_from_mapping, quorum_warnings
from runbook.steps.preflight import check_node, name_problems


def facts(addresses: str):  # type: ignore[no-untyped-def]
    text = (
        "@@runbook-section uid\n0\n@@runbook-section os_release\nID=debian\n"
        "@@runbook-section corosync_version\nCorosync Cluster Engine, version '3.1.7'\n"
        f"@@runbook-section package_manager\napt-get\n@@runbook-section addresses\n{addresses}\n"
    )
    return parse_facts("n", text)


TWO_LINKS = cluster_from_mapping(
    {
        "cluster_name": "c",
        "nodes": [
            {"name": "a", "addresses": ["10.0.151.11", "10.0.152.11"]},
            {"name": "b", "addresses": ["10.0.151.12", "10.0.152.12"]},
            {"name": "c", "addresses": ["10.0.151.13", "10.0.152.13"]},
        ],
    }
)
NAMED = cluster_from_mapping(
    {"cluster_name": "c", "nodes": [{"name": "alpha", "address": "alpha"}, {"name": "beta", "address": "beta"}]}
)


def test_every_link_address_must_be_on_its_node():
    node = TWO_LINKS.nodes[0]
    assert check_node(TWO_LINKS, node, facts("127.0.0.1 10.0.151.11 10.0.152.11")) == []
    problems = check_node(TWO_LINKS, node, facts("10.0.151.11"))
    assert len(problems) == 1 and "nodes[0].addresses[1] 10.0.152.11 (link 1)" in problems[0]


def test_a_hostname_is_checked_by_what_the_node_resolves_it_to():
    node = NAMED.nodes[0]
    assert check_node(NAMED, node, facts("10.0.151.11"), {"alpha": ("10.0.151.11",), "beta": ("10.0.151.12",)}) == []
    problems = check_node(NAMED, node, facts("10.0.151.11"), {"alpha": ("10.0.151.99",)})
    assert len(problems) == 1 and "nodes[0].address alpha resolves to 10.0.151.99" in problems[0]


def test_a_name_on_the_127_0_1_1_line_is_refused_naming_node_and_name():
    resolved = {
        "alpha": {"alpha": ("10.0.151.11",), "beta": ("10.0.151.12",)},
        "beta": {"alpha": ("10.0.151.11",), "beta": ("127.0.1.1", "10.0.151.12")},
    }
    problems = name_problems(NAMED, resolved)
    assert problems["alpha"] == []
    assert len(problems["beta"]) == 1 and "'beta' resolves to loopback 127.0.1.1 on node beta" in problems["beta"][0]


def test_a_name_that_resolves_differently_is_refused_on_every_node():
    problems = resolution_problems("alpha", {"alpha": ("10.0.151.11",), "beta": ("10.0.151.21",)})
    assert set(problems) == {"alpha", "beta"}
    assert "resolves differently" in problems["beta"] and "alpha: 10.0.151.11; beta: 10.0.151.21" in problems["beta"]
    assert resolution_problems("alpha", {"a": ("10.0.151.11", "fe80::1"), "b": ("10.0.151.11", "fe80::1")}) == {}
    assert "does not resolve on node b" in resolution_problems("alpha", {"a": ("10.0.151.11",), "b": ()})["b"]


def test_resolution_is_read_in_one_round_trip_and_parsed():
    script = resolve_script(["alpha", "beta"])
    assert "getent ahosts alpha" in script and "getent ahosts beta" in script
    output = "@@runbook-section resolve:alpha\n10.0.151.11\n10.0.151.11\n@@runbook-section resolve:beta\n"
    assert parse_resolution(output) == {"alpha": ("10.0.151.11",), "beta": ()}


def test_two_nodes_without_a_quorum_device_are_warned_about():
    assert quorum_warnings(NAMED) and "fencing" in quorum_warnings(NAMED)[0]
    assert quorum_warnings(TWO_LINKS) == []
    with_device = cluster_from_mapping(
        {
            "cluster_name": "c",
            "nodes": [{"name": "a", "address": "10.0.1.1"}, {"name": "b", "address": "10.0.1.2"}],
            "quorum": {"device": {"model": "net", "net": {"host": "10.0.1.9", "algorithm": "ffsplit"}}},
        }
    )
    assert quorum_warnings(with_device) == []
