"""What preflight and the cluster file loader refuse before any node is changed (issue 22: a short
authkey on the primary, /etc/corosync a symbolic link, a cluster file with thousands of nodes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.engine.facts import parse_facts
from runbook.errors import ClusterFileError
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping
from runbook.steps.preflight import check_node

CLUSTER = cluster_from_mapping(
    {"cluster_name": "c", "nodes": [{"name": "node1", "address": "192.0.2.10"}, {"name": "node2", "address": "192.0.2.11"}]}
)


def node_facts(name: str, address: str, extra: str = "") -> object:
    text = (
        "@@runbook-section uid\n0\n@@runbook-section os_release\nID=debian\nPRETTY_NAME=\"Debian 12\"\n"
        "@@runbook-section corosync_version\nCorosync Cluster Engine, version '3.1.7'\n"
        "@@runbook-section package_manager\napt-get\n@@runbook-section init\nsystemd\n"
        f"@@runbook-section addresses\n127.0.0.1 {address}\n{extra}"
    )
    return parse_facts(name, text)


def key_section(size: int) -> str:
    return f"@@runbook-section authkey\n{size} 400 root root\n{'ab' * 32}\n"


def test_a_short_key_on_the_primary_is_refused_naming_its_size_and_what_to_do() -> None:
    problems = check_node(CLUSTER, CLUSTER.nodes[0], node_facts("node1", "192.0.2.10", key_section(64)))  # type: ignore[arg-type]
    assert len(problems) == 1
    assert "/etc/corosync/authkey on the primary is 64 bytes (512 bits)" in problems[0]
    assert "at least 128 bytes" in problems[0] and "mv /etc/corosync/authkey" in problems[0]


def test_a_full_key_on_the_primary_and_a_short_one_on_a_secondary_pass() -> None:
    assert check_node(CLUSTER, CLUSTER.nodes[0], node_facts("node1", "192.0.2.10", key_section(128))) == []  # type: ignore[arg-type]
    assert check_node(CLUSTER, CLUSTER.nodes[0], node_facts("node1", "192.0.2.10", key_section(4096))) == []  # type: ignore[arg-type]
    # a secondary's own key is replaced by the primary's in step 03, whatever its size
    assert check_node(CLUSTER, CLUSTER.nodes[1], node_facts("node2", "192.0.2.11", key_section(10))) == []  # type: ignore[arg-type]


def test_etc_corosync_a_symbolic_link_is_refused_naming_the_target() -> None:
    facts = node_facts("node1", "192.0.2.10", "@@runbook-section links\n/etc/corosync /srv/shared/corosync\n")
    problems = check_node(CLUSTER, CLUSTER.nodes[0], facts)  # type: ignore[arg-type]
    assert len(problems) == 1
    assert problems[0].startswith("/etc/corosync is a symbolic link to /srv/shared/corosync")
    assert "a directory of its own" in problems[0]


def test_the_facts_script_looks_for_a_link_at_etc_corosync_itself() -> None:
    from runbook.engine.facts import SECTIONS

    assert "for f in /etc/corosync /etc/corosync/corosync.conf /etc/corosync/authkey;" in SECTIONS["links"]


def test_a_file_of_40000_nodes_is_refused_by_counting_not_by_building_them(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("cluster_name: big\nnodes:\n" + "".join(f"- {{name: n{i}}}\n" for i in range(40000)))
    assert path.stat().st_size < 1024 * 1024
    with pytest.raises(ClusterFileError) as caught:
        load_cluster(path)
    assert "nodes: more than 64 nodes (counting stopped at 65); this runbook supports at most 64" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "cluster_name: x\nnodes: [" + ", ".join(f"{{name: n{i}, address: 10.0.{i}.1}}" for i in range(65)) + "]\n",
        "nodes:\n" + "".join(f"  - name: n{i}\n    address: 10.0.{i}.1\n" for i in range(65)) + "cluster_name: x\n",
    ],
)
def test_65_nodes_block_or_flow_style_are_counted(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ClusterFileError, match="counting stopped at 65"):
        load_cluster(path)


def test_64_nodes_and_a_nested_nodes_key_are_not_counted_as_too_many(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "cluster_name: x\ntotem: {nodes: [" + ", ".join("a" for _ in range(70)) + "]}\nnodes:\n"
        + "".join(f"  - {{name: n{i}, address: 10.0.{i}.1}}\n" for i in range(64))
    )
    with pytest.raises(ClusterFileError) as caught:  # totem.nodes is not a field: named as such, not as a count
        load_cluster(path)
    assert "counting stopped" not in str(caught.value)
