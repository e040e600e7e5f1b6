"""`runbook plan` is what `runbook run` does: for each lab scenario, the operations the dry run
printed (and recorded) are exactly the ones the run then applied, node by node, step by step.

Scenarios, in order on one lab: fresh hosts (step by step: before Corosync is installed, the
package's own scripts decide what later steps find), a converged re-run, a hand-edited
corosync.conf, and faults (a loose authkey, a different authkey, Corosync taken off the boot).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.lab import netns, plan
from runbook.lab import state as lab_state
from tests.lab.conftest import REPO, running_lab

Ops = dict[str, dict[str, list[tuple[str, str]]]]  # step -> node -> (kind, command) in order

STEPS = ("00-preflight", "01-install", "02-corosync-conf", "03-authkey", "04-cfgtool", "05-enable-at-boot", "06-start-and-verify")


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab_state.LabState, Path]]:
    with running_lab("ptplan", plan.generated_nodes(2, "10.0.78.0/24")) as state:
        yield state, tmp_path_factory.mktemp("plan-is-run")


def runbook(command: str, cluster_file: Path, out: Path, *only: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    argv = [sys.executable, "-m", "runbook", command, str(cluster_file), "--out", str(out)]
    for step in only:
        argv += ["--only", step]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    newest = max((d for d in out.glob("*/*") if d.is_dir()), key=lambda d: d.stat().st_mtime)
    return result, newest


def operations(run_dir: Path, status: str) -> Ops:
    """Every step's operations as recorded, each checked to have the status a plan/run gives it."""
    found: Ops = {}
    for path in sorted(run_dir.glob("[0-9][0-9]-*.json")):
        record = json.loads(path.read_text())
        found[path.stem] = {}
        for outcome in record["outcomes"]:
            ops = outcome.get("operations", [])
            assert all(op["status"] == status for op in ops), (path.stem, outcome)
            found[path.stem][outcome["node"]] = [(op["kind"], op["command"]) for op in ops]
    return found


def plan_then_run(state: lab_state.LabState, out: Path, *only: str) -> Ops:
    planned_result, planned_dir = runbook("plan", state.cluster_file, out, *only)
    planned = operations(planned_dir, "planned")
    for step in planned.values():  # what plan printed on the terminal is what it recorded
        for ops in step.values():
            for _, command in ops:
                assert f"$ {command}" in planned_result.stderr
    _, applied_dir = runbook("run", state.cluster_file, out, *only)
    assert applied_dir != planned_dir
    applied = operations(applied_dir, "done")
    assert planned == applied
    return applied


def changed(ops: Ops) -> dict[str, dict[str, list[str]]]:
    return {step: {node: [k for k, _ in o] for node, o in nodes.items() if o} for step, nodes in ops.items() if any(nodes.values())}


def test_fresh_hosts_step_by_step(lab_env):
    state, out = lab_env
    done: Ops = {}
    for step in STEPS:
        done.update(plan_then_run(state, out, step))
    assert changed(done) == {
        "01-install": {"node1": ["install"], "node2": ["install"]},
        "02-corosync-conf": {"node1": ["write"], "node2": ["write"]},
        "03-authkey": {"node1": ["keygen"], "node2": ["copy-key"]},
        "06-start-and-verify": {"node1": ["restart"], "node2": ["restart"]},
    }


def test_a_converged_cluster_plans_and_runs_nothing(lab_env):
    state, out = lab_env
    assert changed(plan_then_run(state, out)) == {}


def test_a_hand_edited_corosync_conf(lab_env):
    state, out = lab_env
    netns.host_exec(state.host("node2"), "printf 'logging {\\n\\tdebug: on\\n}\\n' >> /etc/corosync/corosync.conf")
    # The file is put back as the daemon loaded it (same digest as at its start): no restart, in
    # the plan as in the run.
    assert changed(plan_then_run(state, out)) == {"02-corosync-conf": {"node2": ["write"]}}


def test_faults_loose_and_different_keys_and_boot_disabled(lab_env):
    """node2's key is put back as its daemon loaded it (so no restart for it), node1's key is
    re-moded (its bytes stay), and node1's Corosync was stopped (started again)."""
    state, out = lab_env
    netns.host_exec(state.host("node1"), "chmod 644 /etc/corosync/authkey; update-rc.d -f corosync remove >/dev/null 2>&1 || rm -f /etc/rc?.d/S??corosync")
    netns.host_exec(state.host("node1"), "kill $(pidof corosync); while pidof corosync >/dev/null; do sleep 0.1; done")  # its own pid namespace
    netns.host_exec(state.host("node2"), "head -c 256 /dev/urandom > /etc/corosync/authkey; chmod 400 /etc/corosync/authkey")
    assert changed(plan_then_run(state, out)) == {
        "03-authkey": {"node1": ["chmod"], "node2": ["copy-key"]},
        "05-enable-at-boot": {"node1": ["enable"]},
        "06-start-and-verify": {"node1": ["restart"]},
    }
