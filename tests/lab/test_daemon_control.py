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
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook import lab
from runbook.cluster import load_cluster
from runbook.hosts import hosts_for
from runbook.membership import parse_quorumtool
from runbook.steps.start import restart_script
from tests.lab.conftest import REPO, running_lab, wait_for

LAB = "ptdctl"
SUBNET = "10.0.97.0/24"
CONF = "/etc/corosync/corosync.conf"
PIDFILE = "/run/corosync.pid"


@dataclass
class Env:
    state: lab.LabState
    cluster_file: Path
    work: Path

    def host(self, name: str) -> lab.LabHost:
        return self.state.host(name)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running_lab(LAB, lab.generated_nodes(2, SUBNET)) as state:
        work = tmp_path_factory.mktemp("daemon-control")
        data = yaml.safe_load(state.cluster_file.read_text())
        data["totem"] = {"token": 1000, "consensus": 1200, "join": 100}
        data["ssh"] = {"connect_timeout": 3}
        cluster_file = work / "cluster.yaml"
        cluster_file.write_text(yaml.safe_dump(data, sort_keys=False))
        yield Env(state, cluster_file, work)


def sh(env: Env, node: str, command: str, input: str | None = None) -> str:
    return lab.host_exec(env.host(node), command, input=input).stdout


def runbook(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "runbook", *args, str(env.cluster_file), "--out", str(env.work / "runs")]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=600)


# --- 1. a node command dies with its SSH session ------------------------------------------------------

# The controller side: a process that runs one long command on node1 through runbook's Host.
CONTROLLER = """
import sys
from runbook.cluster import load_cluster
from runbook.hosts import hosts_for
cluster = load_cluster(sys.argv[1])
with hosts_for(cluster) as hosts:
    hosts["node1"].run(sys.argv[2], timeout=900)
"""


def _ops_cluster(env: Env, password: str | None) -> Path:
    """node1 logs in as `ops`, who has sudo rights (with a password, or without)."""
    sudoers = "ops ALL=(ALL) ALL" if password else "ops ALL=(ALL) NOPASSWD: ALL"
    for host in env.state.hosts[:1]:
        lab.host_exec(
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
    return lab.host_exec(env.host("node1"), f"pgrep -af -- '{marker}' | grep -v \"^$$ \"; true").stdout.strip()


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
        started = lambda: lab.host_exec(env.host("node1"), f"pgrep -xf '{marker}'", check=False).returncode == 0  # noqa: E731
        wait_for(lambda: started() or controller.poll() is not None, 60, "the command on node1")
        assert controller.poll() is None, controller.communicate()
        found = lab.host_exec(env.host("node1"), f"ps -o user=,args= -p $(pgrep -xf '{marker}')").stdout
        assert found.startswith("root "), f"the command runs as root: {found!r}"
        controller.kill()  # SIGKILL: nothing on the controller side gets to clean up
        controller.wait()
        wait_for(lambda: node_processes(env, marker) == "", 5, f"`{marker}` and its shell to end on node1 ({node_processes(env, marker)})")
    finally:
        if controller.poll() is None:
            controller.kill()
            controller.wait()
        lab.host_exec(env.host("node1"), f"for p in $(pgrep -f -- '{marker}'); do [ $p = $$ ] || kill -KILL $p; done; true")
    assert sh(env, "node1", f"ls {done} 2>/dev/null; true") == "", "the command did not go on after its session ended"
