"""Daemon control that cannot wedge, and node commands that die with their session (issue 15, items 4 and 5).

One two-node lab of overlay hosts (PID 1 is a shell, not systemd: Corosync is stopped and started
with the sysv init script), in file order:

1. a node command whose controller is SIGKILLed ends on the node within seconds, logged in as root,
   through `sudo -n` and through `sudo -S` (the password on stdin);
2. a Corosync that runs without its pid file (`/run/corosync.pid` gone, e.g. after two restarts at
   once) is found by process in the node's own view, stopped by pid and restarted by `runbook run`
   after a config change, and the cluster is quorate again; the restart says so.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook.conf.membership import parse_quorumtool
from runbook.lab import netns, plan
from runbook.lab import state as lab_state
from runbook.model.load import load_cluster
from runbook.ssh.hosts import hosts_for
from runbook.steps.restart import restart_script, systemd_restart_script
from tests.lab.conftest import REPO, running_lab, wait_for

LAB = "ptdctl"
SUBNET = "10.0.97.0/24"
CONF = "/etc/corosync/corosync.conf"
PIDFILE = "/var/run/corosync.pid"  # /run/corosync.pid: /var/run is a link to /run


@dataclass
class Env:
    state: lab_state.LabState
    cluster_file: Path
    work: Path

    def host(self, name: str) -> lab_state.LabHost:
        return self.state.host(name)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_lab(LAB, plan.generated_nodes(2, SUBNET)) as state:
        work = tmp_path_factory.mktemp("daemon-control")
        data = yaml.safe_load(state.cluster_file.read_text())
        data["totem"] = {"token": 1000, "consensus": 1200, "join": 100}
        data["ssh"] = {"connect_timeout": 3}
        cluster_file = work / "cluster.yaml"
        cluster_file.write_text(yaml.safe_dump(data, sort_keys=False))
        yield Env(state, cluster_file, work)


def sh(env: Env, node: str, command: str, input: str | None = None) -> str:
    return netns.host_exec(env.host(node), command, input=input).stdout


def runbook(env: Env, *args: str, cluster_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "runbook", *args, str(cluster_file or env.cluster_file), "--out", str(env.work / "runs")]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=600)


# --- 1. a node command dies with its SSH session ------------------------------------------------------

# The controller side: a process that runs one long command on node1 through runbook's Host.
CONTROLLER = """
import sys
from runbook.lab import guard as lab_guard
from runbook.model.load import load_cluster
from runbook.ssh.hosts import hosts_for
lab_guard.install()  # RUNBOOK_LAB_ONLY is set in the tests: a process that connects installs the lab's guard
cluster = load_cluster(sys.argv[1])
with hosts_for(cluster) as hosts:
    hosts["node1"].run(sys.argv[2], timeout=900)
"""


def _ops_cluster(env: Env, password: str | None) -> Path:
    """node1 logs in as `ops`, who has sudo rights (with a password, or without)."""
    sudoers = "ops ALL=(ALL) ALL" if password else "ops ALL=(ALL) NOPASSWD: ALL"
    for host in env.state.hosts[:1]:
        netns.host_exec(
            host,
            f"id ops >/dev/null 2>&1 || useradd -m -s /bin/sh ops; usermod -p '*' ops; chmod 711 {env.state.dir};"
            f" chmod 644 {env.state.dir}/authorized_keys; echo '{sudoers}' > /etc/sudoers.d/ops; chmod 440 /etc/sudoers.d/ops"
            + ("; chpasswd" if password else ""),
            input=f"ops:{password}\n" if password else None,
        )
    data = yaml.safe_load(env.cluster_file.read_text())
    data["ssh"].update(user="ops", sudo=True)
    path = env.work / f"cluster-ops-{'password' if password else 'nopasswd'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def node_processes(env: Env, marker: str) -> str:
    """Every process on node1 whose command line holds `marker` (its shell and the command), or ''."""
    return netns.host_exec(env.host("node1"), f"pgrep -af -- '{marker}' | grep -v \"^$$ \"; true").stdout.strip()


@pytest.mark.parametrize("login", ["root", "sudo-n", "sudo-S"])
def test_a_node_command_ends_when_its_controller_is_killed(env: Env, login: str) -> None:
    password = f"Pw-{secrets.token_hex(6)}" if login == "sudo-S" else None
    cluster_file = env.cluster_file if login == "root" else _ops_cluster(env, password)
    seconds = 3000 + secrets.randbelow(999)
    marker = f"sleep {seconds}"
    done = f"/root/after-{seconds}"
    environ = {k: v for k, v in os.environ.items() if k != "RUNBOOK_SUDO_PASSWORD"}
    if password:
        environ["RUNBOOK_SUDO_PASSWORD"] = password
    controller = subprocess.Popen(
        [sys.executable, "-c", CONTROLLER, str(cluster_file), f"{marker} && touch {done}"],
        cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        started = lambda: netns.host_exec(env.host("node1"), f"pgrep -xf '{marker}'", check=False).returncode == 0  # noqa: E731
        wait_for(lambda: started() or controller.poll() is not None, 60, "the command on node1")
        assert controller.poll() is None, controller.communicate()
        found = netns.host_exec(env.host("node1"), f"ps -o user=,args= -p $(pgrep -xf '{marker}')").stdout
        assert found.startswith("root "), f"the command runs as root: {found!r}"
        controller.kill()  # SIGKILL: nothing on the controller side gets to clean up
        controller.wait()
        wait_for(lambda: node_processes(env, marker) == "", 5, f"`{marker}` and its shell to end on node1 ({node_processes(env, marker)})")
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        netns.host_exec(env.host("node1"), f"for p in $(pgrep -f -- '{marker}'); do [ $p = $$ ] || kill -KILL $p; done; true")
    assert sh(env, "node1", f"ls {done} 2>/dev/null; true") == "", "the command did not go on after its session ended"


# --- 2. Corosync without its pid file ----------------------------------------------------------------


def corosync_pids(env: Env, node: str) -> list[str]:
    """Corosync's pids as the node itself sees them."""
    return sh(env, node, "pidof corosync; true").split()


def quorate_with_both(env: Env, node: str) -> bool:
    view = parse_quorumtool(node, sh(env, node, "corosync-quorumtool -s 2>/dev/null; true"))
    return view.complete(2)


def test_corosync_without_its_pid_file_is_restarted_by_a_run_and_the_cluster_comes_back(env: Env) -> None:
    setup = runbook(env, "run")
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert sh(env, "node1", "cat /proc/1/comm") == "bash\n", "PID 1 is no systemd: the sysv init script stops and starts Corosync"
    facts = subprocess.run([sys.executable, "-m", "runbook", "facts", str(env.cluster_file)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "init sysv" in facts.stdout, facts.stdout + facts.stderr
    before = {n: corosync_pids(env, n) for n in ("node1", "node2")}
    assert all(len(p) == 1 for p in before.values()), f"each node sees its own Corosync only: {before}"
    assert sh(env, "node1", f"cat {PIDFILE}").split() == before["node1"]
    sh(env, "node1", f"rm {PIDFILE}")
    data = yaml.safe_load(env.cluster_file.read_text())
    # A key Corosync reads only at start (a token change would be reloaded): every node restarts, one at a time
    data["quorum"] = {**(data.get("quorum") or {}), "last_man_standing_window": 11000}
    changed = env.work / "cluster-window-11000.yaml"
    changed.write_text(yaml.safe_dump(data, sort_keys=False))

    result = runbook(env, "run", cluster_file=changed)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "06-start-and-verify (node1, node2)" in result.stderr, result.stderr[-3000:]
    after = {n: corosync_pids(env, n) for n in ("node1", "node2")}
    assert all(len(after[n]) == 1 and after[n] != before[n] for n in after), f"both restarted: {before} -> {after}"
    assert sh(env, "node1", f"cat {PIDFILE}").split() == after["node1"], "the init script wrote its pid file again"
    assert "last_man_standing_window: 11000" in sh(env, "node1", f"cat {CONF}")
    for node in ("node1", "node2"):
        wait_for(lambda: quorate_with_both(env, node), 30, f"{node} to see both members, quorate")


def test_a_restart_says_it_stopped_corosync_by_pid_and_touches_no_other_host(env: Env) -> None:
    others = corosync_pids(env, "node2")
    sh(env, "node1", f"rm {PIDFILE}")
    cluster = load_cluster(env.cluster_file)
    with hosts_for(cluster) as hosts:
        said = hosts["node1"].run(restart_script("sysv"), timeout=120).text
    assert said.startswith(f"note: no pid file {PIDFILE}, so the init script could not stop it: stopped corosync by pid "), said
    assert said.rstrip().endswith("(SIGTERM)"), said
    assert corosync_pids(env, "node2") == others
    for node in ("node1", "node2"):
        wait_for(lambda: quorate_with_both(env, node), 30, f"{node} to see both members, quorate")


# --- 3. the same on a node where systemd is PID 1 ------------------------------------------------------


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """Two systemd-nspawn machines booting Debian 12 (systemd as PID 1), a cluster made by one run."""
    with running_lab("ptdctl12", plan.generated_nodes(2, "10.0.98.0/24"), os_name="debian12") as state:
        work = tmp_path_factory.mktemp("daemon-control-systemd")
        data = yaml.safe_load(state.cluster_file.read_text())
        data["totem"] = {"token": 1000, "consensus": 1200, "join": 100}
        cluster_file = work / "cluster.yaml"
        cluster_file.write_text(yaml.safe_dump(data, sort_keys=False))
        env = Env(state, cluster_file, work)
        setup = runbook(env, "run")
        assert setup.returncode == 0, setup.stderr[-3000:]
        yield env


def test_on_systemd_the_pid_file_plays_no_part_and_a_corosync_outside_the_unit_is_stopped_by_pid(booted: Env) -> None:
    env = booted
    assert sh(env, "node1", "cat /proc/1/comm") == "systemd\n"
    before = {n: corosync_pids(env, n) for n in ("node1", "node2")}
    sh(env, "node1", f"rm -f {PIDFILE}")
    data = yaml.safe_load(env.cluster_file.read_text())
    data["quorum"] = {**(data.get("quorum") or {}), "last_man_standing_window": 11000}  # read only at start: restarts
    changed = env.work / "cluster-window-11000.yaml"
    changed.write_text(yaml.safe_dump(data, sort_keys=False))
    result = runbook(env, "run", cluster_file=changed)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {n: corosync_pids(env, n) for n in ("node1", "node2")}
    assert all(len(after[n]) == 1 and after[n] != before[n] for n in after), f"both restarted: {before} -> {after}"
    assert "systemd: active, enabled at boot" in result.stderr
    for node in ("node1", "node2"):
        wait_for(lambda: quorate_with_both(env, node), 30, f"{node} to see both members, quorate")

    # A corosync started by hand, outside corosync.service: stopped by pid, and said so
    sh(env, "node1", "systemctl stop corosync && corosync")
    stray = corosync_pids(env, "node1")
    assert len(stray) == 1 and sh(env, "node1", "systemctl is-active corosync; true") == "inactive\n"
    with hosts_for(load_cluster(changed)) as hosts:
        said = hosts["node1"].run(systemd_restart_script(), timeout=120).text
    assert said == f"note: it ran outside systemd's corosync.service: stopped corosync by pid {stray[0]} (SIGTERM)\n"
    assert sh(env, "node1", "systemctl is-active corosync; true") == "active\n"
    for node in ("node1", "node2"):
        wait_for(lambda: quorate_with_both(env, node), 30, f"{node} to see both members, quorate")
