"""Preflight's verdict over the whole cluster: what concerns no single node is kept apart from the nodes.

The nodes answer the facts script from canned text (no SSH); everything after that is the real step.
"""

from __future__ import annotations

import json

import pytest

from runbook.cluster import cluster_from_mapping
from runbook.hosts import Hosts, Result
from runbook.steps import StepFailed
from runbook.steps.preflight import preflight


class CannedHost:
    """Answers the facts script with fixed text, as a node would."""

    def __init__(self, name: str, output: str) -> None:
        self.name = name
        self.output = output

    def run(self, command: str, **_: object) -> Result:
        return Result(self.name, command, 0, self.output.encode(), b"")

    def close(self) -> None:
        pass


def facts_text(address: str, version: str, uid: str = "0") -> str:
    return (
        f"@@runbook-section uid\n{uid}\n@@runbook-section os_release\nID=debian\nPRETTY_NAME=\"Debian 12\"\n"
        f"@@runbook-section corosync_version\nCorosync Cluster Engine, version '{version}'\n"
        "@@runbook-section package_manager\napt-get\n@@runbook-section init\nsystemd\n"
        f"@@runbook-section addresses\n{address}\n"
    )


def run_preflight(nodes: dict[str, tuple[str, str, str]]):  # type: ignore[no-untyped-def]
    cluster = cluster_from_mapping(
        {"cluster_name": "c", "nodes": [{"name": name, "address": address} for name, (address, _, _) in nodes.items()]}
    )
    hosts = Hosts([CannedHost(name, facts_text(address, version, uid)) for name, (address, version, uid) in nodes.items()])  # type: ignore[list-item]
    return preflight(cluster, hosts)


def test_mixed_generations_are_a_cluster_problem_apart_from_a_node_called_cluster() -> None:
    with pytest.raises(StepFailed) as caught:
        run_preflight({"cluster": ("192.0.2.10", "3.1.7", "0"), "node2": ("192.0.2.11", "2.4.6", "0")})
    failed = caught.value
    problem = "nodes run different Corosync generations (cluster: 3.1.7, node2: 2.4.6); they cannot form one cluster"
    assert failed.failures == {} and failed.problems == [problem] and failed.node is None
    assert str(failed) == f"step 00-preflight failed: {problem}"
    report = failed.report
    assert report is not None and report.problems == [problem]
    assert [(o.node, o.status) for o in report.outcomes] == [("cluster", "ok"), ("node2", "ok")]
    record = json.loads(json.dumps(report.to_dict()))
    assert record["problems"] == [problem] and [o["node"] for o in record["outcomes"]] == ["cluster", "node2"]
    assert f"cluster problem: {problem}" in str(report) and "(whole cluster)" in report._repr_html_()


def test_a_failing_node_called_cluster_and_a_cluster_problem_are_both_named() -> None:
    with pytest.raises(StepFailed) as caught:
        run_preflight({"cluster": ("192.0.2.10", "3.1.7", "1000"), "node2": ("192.0.2.11", "2.4.6", "0")})
    failed = caught.value
    assert list(failed.failures) == ["cluster"] and "uid 1000, not root" in failed.failures["cluster"]
    assert failed.problems == ["nodes run different Corosync generations (cluster: 3.1.7, node2: 2.4.6); they cannot form one cluster"]
    lines = str(failed).splitlines()
    assert lines[0] == "step 00-preflight failed on the cluster and 1 node:"
    assert lines[1].startswith("  - nodes run different Corosync generations") and lines[2].startswith("  - cluster: commands run as uid 1000")


def test_a_ready_cluster_with_a_node_called_cluster_passes() -> None:
    report = run_preflight({"cluster": ("192.0.2.10", "3.1.7", "0"), "node2": ("192.0.2.11", "3.1.7", "0")})
    assert [o.status for o in report.outcomes] == ["ok", "ok"] and report.problems == []
    assert report.to_dict()["problems"] == []
