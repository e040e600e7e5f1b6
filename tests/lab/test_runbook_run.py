"""The product, end to end: `runbook run` on fresh lab hosts gives a verified, quorate Corosync cluster.

The tests in this module share one lab and build on each other, in file order: a dry run on fresh
hosts, the real run, a second run, the record's secrecy, then a node failure and its repair.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.conf.membership import parse_quorumtool
from runbook.lab import netns, plan
from runbook.report.leaks import find_secret
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import CHAPTER, REPO, lab_cluster, running_lab

SNAPSHOT = (
    "dpkg-query -W -f='${Status}' corosync 2>/dev/null; echo; "
    "for f in /etc/corosync/corosync.conf /etc/corosync/authkey /etc/rc.local /etc/default/corosync; do "
    "[ -e $f ] && sha256sum $f && stat -c '%a %U %G' $f; done; ls -A /etc/corosync 2>/dev/null; "
    "ls /etc/rc2.d 2>/dev/null | grep corosync; pidof corosync; true"
)


def runbook(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args, "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=900
    )


def latest_record(out: Path, cluster: str) -> Path:
    return sorted((out / cluster).iterdir())[-1]


def quorum_views(cluster):
    with hosts_for(cluster) as hosts:
        return {n.name: parse_quorumtool(n.name, hosts[n.name].run("corosync-quorumtool -s", check=False).text) for n in cluster.nodes}


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    from runbook.model.load import load_cluster

    cluster = load_cluster(CHAPTER)
    with running_lab("ptrun", [(n.name, n.address) for n in cluster.nodes]) as state:
        yield state, cluster, tmp_path_factory.mktemp("runs")


def snapshot(cluster) -> dict[str, str]:
    with hosts_for(cluster) as hosts:
        return {n.name: hosts[n.name].run(SNAPSHOT).text for n in cluster.nodes}


def test_check_on_fresh_hosts_changes_nothing(chapter):
    _, cluster, out = chapter
    before = snapshot(cluster)
    result = runbook("run", str(CHAPTER), "--check", out=out)
    assert result.returncode == 0, result.stderr
    assert snapshot(cluster) == before
    summary = json.loads((latest_record(out, "chapter") / "summary.json").read_text())
    assert summary["check"] is True and summary["status"] == "ok"
    assert "would install Corosync" in result.stderr and "would start Corosync" in result.stderr


def test_run_makes_a_quorate_two_node_cluster(chapter):
    _, cluster, out = chapter
    result = runbook("run", str(CHAPTER), out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    views = quorum_views(cluster)
    for name, view in views.items():
        assert view.quorate is True, f"{name}: {view.raw}"
        assert sorted(m.name for m in view.members) == ["node1", "node2"]
        assert "2Node" in view.flags
    record = latest_record(out, "chapter")
    assert sorted(p.name for p in record.glob("*.ipynb")) == sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb"))
    verify = (record / "06-start-and-verify.ipynb").read_text()
    assert "runbook-membership" in verify and "Quorate" in verify


def test_second_run_changes_and_restarts_nothing(chapter):
    _, cluster, out = chapter
    before = quorum_views(cluster)
    with hosts_for(cluster) as hosts:
        pids = {n.name: hosts[n.name].run("pidof corosync").text.strip() for n in cluster.nodes}
    result = runbook("run", str(CHAPTER), out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    record = latest_record(out, "chapter")
    for step_json in record.glob("*.json"):
        if step_json.name == "summary.json":
            continue
        for outcome in json.loads(step_json.read_text())["outcomes"]:
            assert outcome["status"] in ("unchanged", "skipped", "ok"), f"{step_json.name}: {outcome}"
    after = quorum_views(cluster)
    assert {n: v.ring_id for n, v in after.items()} == {n: v.ring_id for n, v in before.items()}
    with hosts_for(cluster) as hosts:
        assert {n.name: hosts[n.name].run("pidof corosync").text.strip() for n in cluster.nodes} == pids


def test_the_authkey_appears_nowhere_in_the_runs_record(chapter):
    _, cluster, out = chapter
    with hosts_for(cluster) as hosts:
        key = hosts["node1"].read_file("/etc/corosync/authkey")
        assert key and hosts["node2"].read_file("/etc/corosync/authkey") == key
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files
    for path in files:
        found = find_secret(key, path.read_bytes())
        assert found is None, f"authkey in {path}: {found}"


def test_survivor_stays_quorate_and_a_rerun_brings_the_killed_node_back(chapter):
    state, cluster, out = chapter
    netns.host_exec(state.host("node2"), "kill -9 $(pidof corosync)")
    with hosts_for(cluster) as hosts:
        assert hosts["node2"].run("pidof corosync", check=False).exit_status != 0
    import time

    deadline = time.monotonic() + 60
    while True:  # node1 notices the loss after the token timeout, and stays quorate (two_node)
        view = quorum_views(cluster)["node1"]
        if len(view.members) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [m.name for m in view.members] == ["node1"] and view.quorate is True
    result = runbook("run", str(CHAPTER), out=out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "node2  changed       started Corosync" in result.stderr
    assert all(v.complete(2) for v in quorum_views(cluster).values())


@pytest.mark.parametrize("count", [5])  # three nodes: tests/lab/test_links.py (two knet links)
def test_bigger_clusters_reach_full_membership_and_quorum(count, tmp_path):
    with running_lab(f"ptn{count}", plan.generated_nodes(count, f"10.0.{80 + count}.0/24")) as state:
        cluster = lab_cluster(state)
        result = runbook("run", str(state.cluster_file), out=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        views = quorum_views(cluster)
        for name, view in views.items():
            assert view.quorate is True and len(view.members) == count, f"{name}: {view.raw}"
            assert "2Node" not in view.flags
