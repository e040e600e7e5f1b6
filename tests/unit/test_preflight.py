"""Preflight's verdict over the whole cluster: what concerns no single node is kept apart from the nodes.

The nodes answer the facts script from canned text (no SSH); everything after that is the real step.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from runbook.conf.render import render
from runbook.conf.running import file_keys
from runbook.errors import StepFailed
from runbook.model.rules import cluster_from_mapping
from runbook.ssh.hosts import Hosts, Result
from runbook.steps.preflight import run_preflight


class CannedHost:
    """Answers the facts script with fixed text, as a node would."""

    def __init__(self, name: str, output: str) -> None:
        self.name = name
        self.output = output
        self.endpoint = SimpleNamespace(hostname=f"{name}.canned", route=())  # logged in to directly, no ProxyJump

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


def preflight_on(nodes: dict[str, tuple[str, str, str]]):  # type: ignore[no-untyped-def]
    cluster = cluster_from_mapping(
        {"cluster_name": "c", "nodes": [{"name": name, "address": address} for name, (address, _, _) in nodes.items()]}
    )
    hosts = Hosts([CannedHost(name, facts_text(address, version, uid)) for name, (address, version, uid) in nodes.items()])  # type: ignore[list-item]
    return run_preflight(cluster, hosts)


def test_mixed_generations_are_a_cluster_problem_apart_from_a_node_called_cluster() -> None:
    with pytest.raises(StepFailed) as caught:
        preflight_on({"cluster": ("192.0.2.10", "3.1.7", "0"), "node2": ("192.0.2.11", "2.4.6", "0")})
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
        preflight_on({"cluster": ("192.0.2.10", "3.1.7", "1000"), "node2": ("192.0.2.11", "2.4.6", "0")})
    failed = caught.value
    assert list(failed.failures) == ["cluster"] and "uid 1000, not root" in failed.failures["cluster"]
    assert failed.problems == ["nodes run different Corosync generations (cluster: 3.1.7, node2: 2.4.6); they cannot form one cluster"]
    lines = str(failed).splitlines()
    assert lines[0] == "step 00-preflight failed on the cluster and 1 node:"
    assert lines[1].startswith("  - nodes run different Corosync generations") and lines[2].startswith("  - cluster: commands run as uid 1000")


def test_a_ready_cluster_with_a_node_called_cluster_passes() -> None:
    report = preflight_on({"cluster": ("192.0.2.10", "3.1.7", "0"), "node2": ("192.0.2.11", "3.1.7", "0")})
    assert [o.status for o in report.outcomes] == ["ok", "ok"] and report.problems == []
    assert report.to_dict()["problems"] == []


# --- a node of another running cluster (issue 22 item 3) --------------------------------------------

def running_text(name: str, *addresses: str, node: str = "node2") -> str:
    """What the running map section (corosync-cmapctl) prints on `node` when its Corosync runs the
    file of cluster `name` whose members are at `addresses`: the file's keys, then the members."""
    keys = {"totem.cluster_name": name}  # one member (a package's default cluster): only its name matters here
    if len(addresses) > 1:
        running = cluster_from_mapping({"cluster_name": name, "nodes": [{"name": f"node{a[-1]}", "address": a} for a in addresses]})
        keys = file_keys(render(running, node, 3), 3)
    lines = ["@@runbook-section running_map", *(f"{k} (str) = {v}" for k, v in keys.items())]
    for nodeid, address in enumerate(addresses, 1):
        lines += [f"runtime.members.{nodeid}.config_version (u64) = 0", f"runtime.members.{nodeid}.ip (str) = r(0) ip({address}) ",
                  f"runtime.members.{nodeid}.join_count (u32) = 1", f"runtime.members.{nodeid}.status (str) = joined"]
    return "\n".join(lines) + "\n"


PROBE_START = "PY=$(command -v python3"  # the link check's probe: reads the network, changes no setting


def changing(host: "Recording") -> list[str]:
    """The commands sent to a node beyond its facts and the link probe (both read only)."""
    return [c for c in host.commands if "@@runbook-section" not in c and not c.startswith(PROBE_START)]


class Recording(CannedHost):
    """A canned node that also keeps every command sent to it."""

    def __init__(self, name: str, output: str) -> None:
        super().__init__(name, output)
        self.commands: list[str] = []

    def run(self, command: str, **kw: object) -> Result:
        self.commands.append(command)
        if command.startswith(PROBE_START):
            return Result(self.name, command, 0, b"", b"")
        return super().run(command) if "@@runbook-section" in command else Result(self.name, command, 0, b"", b"")


def preflight_of(extra: dict[str, str], name: str = "lab3b", check: bool = False, take_over: bool = False,  # type: ignore[no-untyped-def]
                 restart_all: bool = False):
    nodes = {"node2": "192.0.2.12", "node3": "192.0.2.13"}
    cluster = cluster_from_mapping({"cluster_name": name, "nodes": [{"name": n, "address": a} for n, a in nodes.items()]})
    hosts = [Recording(n, facts_text(a, "3.1.7") + extra.get(n, "")) for n, a in nodes.items()]
    return cluster, hosts, lambda: run_preflight(cluster, Hosts(hosts), check=check, take_over=take_over, restart_all=restart_all)  # type: ignore[arg-type]


def test_nodes_of_another_running_cluster_are_refused_naming_it_and_who_would_be_left_behind() -> None:
    members = ("192.0.2.11", "192.0.2.12", "192.0.2.13")
    _, hosts, run = preflight_of({"node2": running_text("lab3", *members), "node3": running_text("lab3", *members, node="node3")})
    with pytest.raises(StepFailed) as caught:
        run()
    failures = caught.value.failures
    assert set(failures) == {"node2", "node3"}
    assert "node2 is a member of the running cluster 'lab3' (3 members: 192.0.2.11, 192.0.2.12, 192.0.2.13), not 'lab3b'" in failures["node2"]
    assert "192.0.2.11 are not in this cluster file and would lose node2" in failures["node2"] and "--take-over" in failures["node2"]
    assert all(len(h.commands) == 1 for h in hosts)  # the facts script only: nothing was sent that changes anything


def test_with_take_over_and_restart_all_they_pass_and_the_report_says_which_nodes_leave_which_cluster() -> None:
    """Moving them restarts them together in the new cluster, out of a running one: that takes both flags."""
    members = ("192.0.2.11", "192.0.2.12", "192.0.2.13")
    extra = {"node2": running_text("lab3", *members), "node3": running_text("lab3", *members, node="node3")}
    with pytest.raises(StepFailed) as caught:
        preflight_of(extra, take_over=True)[2]()
    assert "this change restarts every node together, so the running cluster (3 members) stops" in str(caught.value)
    _, _, run = preflight_of(extra, take_over=True, restart_all=True)
    report = run()
    assert [o.status for o in report.outcomes] == ["ok", "ok"]
    assert any(n.startswith("--take-over: node2 leaves the running cluster 'lab3' (3 members") for n in report.notes)


@pytest.mark.parametrize("extra", [
    {"node2": running_text("debian", "127.0.0.1")},  # the package's own one-node default cluster
    {"node2": running_text("lab3b", "192.0.2.12", "192.0.2.13")},  # this cluster itself, running
    {"node2": "@@runbook-section running_map\n"},  # Corosync not running
], ids=["alone-in-its-default-cluster", "the-same-cluster", "not-running"])
def test_a_node_alone_in_its_own_cluster_or_in_this_one_is_not_refused(extra: dict[str, str]) -> None:
    _, _, run = preflight_of(extra)
    assert [o.status for o in run().outcomes] == ["ok", "ok"]


# --- staged files an interrupted run left (issue 22 item 6) -----------------------------------------

STAGED = "/etc/corosync/.corosync.conf.runbook-4f2a9c1b0d3e7a-0"


def test_staged_files_left_by_an_interrupted_run_are_removed_and_named() -> None:
    listed = f"@@runbook-section staged_leftovers\n{STAGED}\n/etc/.rc.local.runbook-Ab12Cd\n/etc/corosync/.corosync.conf.runbook-x; rm -rf /\n"
    _, hosts, run = preflight_of({"node2": listed})
    report = run()
    removal = next(c for c in hosts[0].commands if c.startswith("rm -f"))
    assert removal.startswith(f"rm -f -- {STAGED} /etc/.rc.local.runbook-Ab12Cd;") and "rm -rf /" not in removal
    assert changing(hosts[1]) == []  # node3 had none: nothing sent
    assert f"removed 2 file(s) an interrupted run had staged and never put in place (node2: {STAGED}, /etc/.rc.local.runbook-Ab12Cd)" in report.notes


def test_a_plan_names_the_staged_files_and_removes_none() -> None:
    _, hosts, run = preflight_of({"node3": f"@@runbook-section staged_leftovers\n{STAGED}\n"}, check=True)
    report = run()
    assert all(changing(h) == [] for h in hosts)
    assert f"would remove 1 file(s) an interrupted run had staged and never put in place (node3: {STAGED})" in report.notes


def test_nodes_named_by_hostname_are_matched_with_the_members_addresses_so_a_rename_is_not_a_take_over() -> None:
    from runbook.steps.foreign_cluster import foreign_problem, parse_running

    cluster = cluster_from_mapping({"cluster_name": "new", "nodes": [{"name": "node2", "address": "node2.example"},
                                                                     {"name": "node3", "address": "node3.example"}]})
    running = parse_running(running_text("old", "192.0.2.12", "192.0.2.13").split("\n", 1)[1])
    node = cluster.nodes[0]
    by_name = {"node2.example": ("192.0.2.12",), "node3.example": ("192.0.2.13",)}
    said = foreign_problem(cluster, node, running, take_over=False, resolved=by_name)
    assert said is not None and "which renames the cluster" in said and "--restart-all" in said
    assert foreign_problem(cluster, node, running, take_over=False, restart_all=True, resolved=by_name) is None
    unresolved = foreign_problem(cluster, node, running, take_over=False)
    assert unresolved is not None and "would lose node2" in unresolved  # without the names' addresses: a take-over
