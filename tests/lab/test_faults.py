"""Faults on real lab hosts: nothing is lost, nothing is half-done, nothing secret leaks.

The tests share one two-node lab and build on each other in file order:

1. refusals at preflight on fresh hosts (a node unreachable by sshd or by link, a changed or
   unknown host key, a login without root): the run stops, names the node, and no file, package or
   service changes on any node;
2. an interrupted run (SIGINT during 01-install) and a transfer cut short: no partial file;
3. a node lost between steps: the run names node and step, and a rerun completes the cluster;
4. existing state the runbook reconciles (hand-edited or unparsable corosync.conf, differing and
   loose authkeys, rc.local and START=no), hostile text from nodes, a link cut and restored, a run
   through sudo with the password from the environment;
5. last, every run directory and the controller's disk are searched for the authkey and the
   passwords.

The cluster file uses short totem timings (token 1000 ms), so membership changes show within
seconds, and a 3 s SSH connect timeout, so an unreachable node is named quickly.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from runbook import steps
from runbook.conf.membership import View, parse_quorumtool
from runbook.engine import operations
from runbook.engine.executor import execute
from runbook.engine.plan import NodePlan, StepPlan
from runbook.errors import StepFailed
from runbook.lab import netns, plan, sshd
from runbook.lab import state as lab_state
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping, with_generation
from runbook.model.types import Cluster
from runbook.notebook import PARAMETERS_SOURCE
from runbook.report.leaks import find_secret
from runbook.ssh.hosts import Host, hosts_for
from tests.lab.conftest import REPO, running_lab, wait_for

LAB = "ptfault"
SUBNET = "10.0.91.0/24"
STEPS = len(list((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")))  # every step a run records, in order
HOSTILE = ("\x1b]0;pwned\x07", "\x1b[2J", "\x1b[5m", "\x07")  # set the title, clear the screen, blink, bell

# What must not change when a run is refused: packages, the files the runbook manages (content,
# mode, owner, mtime), Corosync's processes, boot links. Read with host_exec: works with sshd or link down.
SNAPSHOT = r"""
dpkg-query -W -f='${Package} ${Version} ${Status}\n' | sha256sum
{ find /etc/corosync /etc/rc.local /etc/default/corosync /etc/rc2.d -xdev \( -type f -o -type l \) 2>/dev/null
  find /var/lib/corosync-runbook -maxdepth 1 -type f 2>/dev/null; } | sort | while read -r f; do
  stat -c '%n %a %U %G %Y' "$f"; [ -f "$f" ] && [ ! -L "$f" ] && sha256sum "$f"; done
pidof corosync; true
"""
# Temp files of atomic writes and of keygen, wherever the runbook writes (the lab's own dirs under
# /var/lib/corosync-runbook/labs are this machine's, seen through the overlay: not searched).
TEMP_FILES = (
    r"{ find /etc /root -xdev; find /var/lib/corosync-runbook -maxdepth 1; } 2>/dev/null"
    r" | grep -E '/\.[^/]*\.runbook-[^/]*$|/\.authkey-runbook-[^/]*$'; true"
)


@dataclass
class Env:
    state: lab_state.LabState
    cluster: Cluster
    cluster_file: Path
    work: Path
    out: Path
    started: float
    keys: list[bytes] = field(default_factory=list)  # every authkey seen on a node
    passwords: list[str] = field(default_factory=list)  # every sudo password given

    def host(self, name: str) -> lab_state.LabHost:
        return self.state.host(name)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    started = time.time()
    with running_lab(LAB, plan.generated_nodes(2, SUBNET)) as state:
        work = tmp_path_factory.mktemp("faults")
        data = yaml.safe_load(state.cluster_file.read_text())
        data["totem"] = {"token": 1000, "consensus": 1200, "join": 100}
        data["ssh"] = {"connect_timeout": 3}
        cluster_file = work / "cluster.yaml"
        cluster_file.write_text(yaml.safe_dump(data, sort_keys=False))
        # Step functions called here render the same header as `runbook run` does ("from papermill
        # parameters"): a file that differs only there would be a changed file, and Corosync restarted.
        cluster = cluster_from_mapping(data, source=PARAMETERS_SOURCE)
        yield Env(state, cluster, cluster_file, work, work / "runs", started)


# --- helpers -------------------------------------------------------------------------------------


def runbook(env: Env, *args: str, cluster_file: Path | None = None, extra_env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(extra_env or {})}
    argv = [sys.executable, "-m", "runbook", *args, str(cluster_file or env.cluster_file), "--out", str(env.out)]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=timeout, env=environ)


def latest_run(env: Env) -> Path:
    return sorted((env.out / env.cluster.name).iterdir())[-1]


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def snapshot(env: Env) -> dict[str, str]:
    return {h.name: netns.host_exec(h, SNAPSHOT).stdout for h in env.state.hosts}


def sh(env: Env, node: str, command: str, input: str | None = None) -> str:
    return netns.host_exec(env.host(node), command, input=input).stdout


def view_of(env: Env, node: str) -> View:
    return parse_quorumtool(node, sh(env, node, "corosync-quorumtool -s 2>/dev/null; true"))


def assert_refused_at_preflight(env: Env, result: subprocess.CompletedProcess[str], node: str) -> str:
    assert result.returncode == 1, result.stderr[-3000:]
    assert "step 00-preflight failed on" in result.stderr and f"{node}:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    record = summary(latest_run(env))
    assert record["status"] == "failed"
    assert [s["status"] for s in record["steps"]] == ["failed"] + ["not run"] * (STEPS - 1)
    return result.stderr


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from walk_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_strings(item)


def notebook_outputs(path: Path) -> list[str]:
    """Every string in the outputs of a notebook's code cells, and the injected parameters' source."""
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        texts += list(walk_strings(cell.get("outputs", [])))
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            texts.append("".join(cell["source"]))
    return texts


# --- 1. refusals at preflight: nothing changes anywhere ------------------------------------------


@pytest.mark.parametrize("how", ["sshd-stopped", "link-down"])
def test_an_unreachable_node_stops_the_run_at_preflight_with_nothing_changed(env: Env, how: str) -> None:
    before = snapshot(env)
    veth = env.host("node2").veth
    if how == "sshd-stopped":
        sshd.stop_sshd(env.state, "node2")
    else:
        subprocess.run(["ip", "link", "set", veth, "down"], check=True)
    try:
        result = runbook(env, "run")
    finally:
        if how == "sshd-stopped":
            sshd.start_sshd(env.state, "node2")
        else:
            subprocess.run(["ip", "link", "set", veth, "up"], check=True)
            wait_for(lambda: sshd._sshd_listening(env.host("node2").address), 15, "node2's link")
    stderr = assert_refused_at_preflight(env, result, "node2")
    expected = "cannot connect to 10.0.91.12:22: Connection refused (is sshd running on the node, on that port?)" if how == "sshd-stopped" else "no answer from 10.0.91.12:22 within 3s"
    assert expected in stderr and "nothing was changed on any node" in stderr
    assert "node1:" not in stderr.split("runbook: error:")[1], "only the unreachable node is named"
    assert snapshot(env) == before


def test_a_changed_host_key_stops_the_run_with_both_fingerprints(env: Env) -> None:
    host = env.host("node2")
    fingerprint = "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2"
    old_fp = sh(env, "node2", fingerprint).strip()
    saved = sh(env, "node2", "cat /etc/ssh/ssh_host_ed25519_key")
    saved_pub = sh(env, "node2", "cat /etc/ssh/ssh_host_ed25519_key.pub")
    before = snapshot(env)
    try:
        sh(env, "node2", "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key")
        new_fp = sh(env, "node2", fingerprint).strip()
        sshd.stop_sshd(env.state, "node2")
        sshd.start_sshd(env.state, "node2")
        after_new_key = snapshot(env)
        result = runbook(env, "run")
        assert snapshot(env) == after_new_key
    finally:
        netns.host_exec(host, "cat > /etc/ssh/ssh_host_ed25519_key && chmod 600 /etc/ssh/ssh_host_ed25519_key", input=saved)
        netns.host_exec(host, "cat > /etc/ssh/ssh_host_ed25519_key.pub", input=saved_pub)
        sshd.stop_sshd(env.state, "node2")
        sshd.start_sshd(env.state, "node2")
    stderr = assert_refused_at_preflight(env, result, "node2")
    assert "CHANGED" in stderr and "No login was attempted" in stderr
    assert f"expected: ssh-ed25519 {old_fp}" in stderr and f"received: ssh-ed25519 {new_fp}" in stderr
    assert "ssh-keygen -R 10.0.91.12" in stderr and "ssh-keyscan" in stderr
    assert snapshot(env) == before


def test_unknown_host_keys_stop_the_run_with_fingerprints_and_how_to_trust(env: Env) -> None:
    home = env.work / "home-without-known-hosts"
    home.mkdir()
    empty = home / "known_hosts"
    empty.write_text("")
    config = home / "ssh_config"
    config.write_text(f"Host *\n  User root\n  IdentityFile {env.state.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {empty}\n")
    before = snapshot(env)
    result = runbook(env, "run", extra_env={"HOME": str(home), "RUNBOOK_SSH_CONFIG": str(config)})
    stderr = assert_refused_at_preflight(env, result, "node1")
    for host in env.state.hosts:
        pub = env.state.host_dir(host) / "ssh_host_ed25519_key.pub"
        fp = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]
        assert f"{host.name}: unknown SSH host key for {host.address} (ssh-ed25519 {fp})" in stderr
    assert "ssh-keyscan -p 22 10.0.91.11 >> ~/.ssh/known_hosts" in stderr and "trust_unknown_hosts" in stderr
    assert empty.read_text() == "", "nothing is trusted on its own"
    assert snapshot(env) == before


def _ops_ssh_config(env: Env) -> Path:
    """The lab's ssh_config with node2 logging in as `ops` (a user without root)."""
    text = env.state.ssh_config.read_text()
    node2 = text.index("Host node2 ")
    path = env.work / "ssh_config_ops"
    path.write_text(text[:node2] + text[node2:].replace("User root", "User ops", 1))
    return path


def require_sudo() -> None:
    """Lab hosts see this machine's /, so sudo on a host is this machine's sudo (Makefile: APT_PACKAGES)."""
    if shutil.which("sudo") is None:
        pytest.fail("sudo is not installed on this machine, so lab hosts have none: apt-get install sudo")


def _make_ops(env: Env, node: str, password: str | None = None, sudoers: str | None = None) -> None:
    """A login user `ops` on the node. The lab's sshd reads one authorized_keys file under the lab dir
    for every user; `ops` must be able to read it, and its account must not be locked."""
    state = env.state
    script = (
        f"id ops >/dev/null 2>&1 || useradd -m -s /bin/sh ops; usermod -p '*' ops; "
        f"chmod 711 {state.dir}; chmod 644 {state.dir}/authorized_keys; rm -f /etc/sudoers.d/ops"
    )
    if password:
        script += "; chpasswd"
    if sudoers:
        script += f"; echo '{sudoers}' > /etc/sudoers.d/ops; chmod 440 /etc/sudoers.d/ops"
    netns.host_exec(env.host(node), script, input=f"ops:{password}\n" if password else None)


def test_a_login_user_without_root_or_sudo_is_refused_at_preflight(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_ops(env, "node2")
    config = _ops_ssh_config(env)
    data = yaml.safe_load(env.cluster_file.read_text())
    data["ssh"]["config"] = str(config)
    ops_file = env.work / "cluster-ops.yaml"
    ops_file.write_text(yaml.safe_dump(data))
    before = snapshot(env)
    result = runbook(env, "run", cluster_file=ops_file)
    stderr = assert_refused_at_preflight(env, result, "node2")
    assert "node2: commands run as uid 1001, not root; log in as root or set ssh.sudo: true" in stderr
    assert "node1  ok" in stderr
    assert snapshot(env) == before

    # ssh.sudo: true, but ops has no sudo rights: preflight says so, and what to do
    require_sudo()
    monkeypatch.delenv("RUNBOOK_SUDO_PASSWORD", raising=False)
    data["ssh"]["sudo"] = True
    sudo_cluster = load_cluster(_write(env.work / "cluster-ops-sudo.yaml", data))
    with hosts_for(sudo_cluster) as hosts, pytest.raises(StepFailed) as caught:
        steps.run_preflight(sudo_cluster, hosts)
    message = str(caught.value)
    assert message.startswith("step 00-preflight failed on node2: login user 'ops' cannot run commands as root through sudo")
    assert "a password is required" in message and "NOPASSWD" in message and "RUNBOOK_SUDO_PASSWORD" in message
    assert snapshot(env) == before


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- 2. interrupted: no partial file, a record of the run -----------------------------------------


def test_ctrl_c_during_install_leaves_a_record_and_no_partial_file(env: Env) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(env.cluster_file), "--out", str(env.out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        def preflight_done() -> bool:
            logs = sorted((env.out / env.cluster.name).glob("*/run.log"))
            return bool(logs) and "00-preflight ... ok" in logs[-1].read_text()

        wait_for(preflight_done, 120, "preflight to pass", 0.05)
        run_dir = latest_run(env)
        wait_for(lambda: netns.host_exec(env.host("node1"), "pgrep apt-get", check=False).returncode == 0, 60, "apt-get on node1", 0.1)
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted during step 01-install" in stderr and "Traceback" not in stderr, stderr[-3000:]
    record = summary(run_dir)
    assert record["status"] == "interrupted" and record["finished"]
    assert [s["status"] for s in record["steps"]] == ["ok", "interrupted"] + ["not run"] * (STEPS - 2)
    assert (run_dir / "01-install.ipynb").exists(), "the interrupted step's notebook is kept"
    assert "interrupted" in (run_dir / "run.log").read_text()
    # apt-get is stopped on the nodes when the run's SSH sessions close (TERM, KILL 2 s later); then look
    for host in env.state.hosts:
        wait_for(lambda: netns.host_exec(host, "pgrep -x apt-get || pgrep -x dpkg", check=False).returncode != 0, 10, f"apt on {host.name} to be stopped")
        assert netns.host_exec(host, TEMP_FILES).stdout == "", f"temp files left on {host.name}"
        assert netns.host_exec(host, "dpkg --audit").stdout == "", f"half-installed packages on {host.name}"


def test_a_transfer_cut_short_never_replaces_the_file(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection drops while the executor stages a file: the node sees end of input, and nothing is renamed."""
    path = "/etc/corosync/cut-short"
    sh(env, "node1", f"mkdir -p /etc/corosync && printf 'old\\n' > {path}")  # Corosync may not be installed yet
    original_run = Host.run

    def cut(self: Host, command: Any, *, input: bytes | None = None, display: str | None = None, **kw: Any) -> Any:
        if display and display.startswith("stage the new files") and input:
            input = input[: len(input) // 3]  # what arrives before the link goes
        return original_run(self, command, input=input, display=display, **kw)

    monkeypatch.setattr(Host, "run", cut)
    write = operations.write_file(path, b"new content\n" * 1000, "the fault test's file", mode=0o400)
    plan = StepPlan(step="cut-short", title="a cut transfer", nodes={"node1": NodePlan("node1", [write])})
    with hosts_for(env.cluster) as hosts, pytest.raises(StepFailed) as caught:
        execute(plan, hosts, check=False)
    # the shell sees end of input inside the data: it never runs the staging, let alone the rename
    assert "nothing was changed on any node" in caught.value.failures["node1"], caught.value.failures
    [outcome] = caught.value.report.outcomes  # type: ignore[attr-defined]
    assert outcome.status == "failed", outcome
    assert sh(env, "node1", f"cat {path}; stat -c %a {path}") == "old\n644\n"
    assert netns.host_exec(env.host("node1"), TEMP_FILES).stdout == ""
    sh(env, "node1", f"rm -f {path} {path}.runbook-* {path}.orig-runbook")


# --- 3. a node lost between steps, then a rerun -------------------------------------------------


def test_a_node_lost_between_steps_is_named_and_a_rerun_completes(env: Env) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "run", str(env.cluster_file), "--out", str(env.out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        def install_done() -> bool:
            logs = sorted((env.out / env.cluster.name).glob("*/run.log"), key=lambda p: p.stat().st_mtime)
            return bool(logs) and "01-install ... ok" in logs[-1].read_text()

        wait_for(install_done, 300, "step 01 to finish", 0.01)
        # Hold the run right there (steps start within a fraction of a second), take node2's sshd
        # away, sessions and all, and let the run go on.
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            sh(env, "node2", "pkill -KILL -x sshd; rm -f /run/sshd.pid; true")
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:
        assert process.returncode == 1, stderr[-3000:]
        assert "runbook: error: step 02-corosync-conf failed on node2: cannot connect to 10.0.91.12:22: Connection refused" in stderr
        assert "nothing was changed on any node" in stderr
        record = summary(latest_run(env))
        assert [s["status"] for s in record["steps"]] == ["ok", "ok", "failed"] + ["not run"] * (STEPS - 3)
        assert "runbook-" not in sh(env, "node1", "ls -A /etc/corosync"), "step 02 wrote nothing on node1 either"
    finally:
        sshd.start_sshd(env.state, "node2")
    result = runbook(env, "run")
    assert result.returncode == 0, result.stderr[-3000:]
    # the key is made on the primary, and copied from it
    assert "node1  changed       generated a new authkey (root:root 0400)" in result.stderr
    assert "node2  changed       has no authkey: copied the key from node1 (root:root 0400)" in result.stderr
    for node in ("node1", "node2"):
        view = view_of(env, node)
        assert view.quorate is True and sorted(m.name for m in view.members) == ["node1", "node2"], view.raw


# --- 4. existing state, reconciled ---------------------------------------------------------------


def test_hand_edited_and_unparsable_configs_are_backed_up_diffed_and_replaced(env: Env) -> None:
    conf = "/etc/corosync/corosync.conf"
    good = sh(env, "node2", f"cat {conf}")
    edited = good.replace("token: 1000", "token: 3000  # tuned by hand")
    assert edited != good
    sh(env, "node2", f"cat > {conf}", input=edited)
    garbage = "totem {\n  version: 2\n  \x1b]0;pwned\x07\x1b[2J bad { nesting\n\x00\xff binary\n"
    netns.host_exec(env.host("node1"), f"cat > {conf}", input=garbage)
    with hosts_for(env.cluster) as hosts:
        report = steps.write_config(env.cluster, hosts)
        again = steps.write_config(env.cluster, hosts)
    assert [o.status for o in report.outcomes] == ["changed", "changed"]
    assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]
    for outcome, old in zip(report.outcomes, (garbage, edited)):
        node = outcome.node
        backup = outcome.summary.split("previous file kept as ")[1]
        assert netns.host_exec(env.host(node), f"cat {backup}").stdout.encode() == old.encode(), f"{node}: backup"
        assert outcome.diff.startswith(f"--- {conf} (current)")
        assert not any(seq in outcome.diff for seq in HOSTILE) and "\x00" not in outcome.diff
    assert "-\ttoken: 3000  # tuned by hand" in report.outcome("node2").diff
    assert "+\ttoken: 1000" in report.outcome("node2").diff
    assert "bad { nesting" in report.outcome("node1").diff  # the old text is shown, without its escape sequences
    html = report._repr_html_()
    assert not any(seq in html for seq in HOSTILE) and "\x00" not in html


def test_differing_and_loose_authkeys_are_fixed_from_the_primary(env: Env) -> None:
    key = "/etc/corosync/authkey"
    primary = sh(env, "node1", f"base64 -w0 {key}")
    env.keys.append(base64.b64decode(primary))
    sh(env, "node1", f"chmod 644 {key}")
    sh(env, "node2", f"head -c 256 /dev/urandom > {key}.new && chmod 400 {key}.new && mv {key}.new {key}")
    other = base64.b64decode(sh(env, "node2", f"base64 -w0 {key}"))
    env.keys.append(other)
    with hosts_for(env.cluster) as hosts:
        report = steps.distribute_authkey(env.cluster, hosts)
        again = steps.distribute_authkey(env.cluster, hosts)
        verified = steps.start_and_verify(env.cluster, hosts, timeout=30, progress=lambda _: None)
    one, two = report.outcome("node1"), report.outcome("node2")
    assert one.status == "changed" and "fixed the key's mode (644 root:root -> 400 root:root)" in one.summary
    assert two.status == "changed" and "holds a different authkey: copied the key from node1" in two.summary
    assert [o.status for o in again.outcomes] == ["unchanged", "unchanged"]
    for node in ("node1", "node2"):
        assert sh(env, node, f"stat -c '%a %U %G' {key}; base64 -w0 {key}") == f"400 root root\n{primary}"
    backup = two.summary.split("old key kept as ")[1]
    assert sh(env, "node2", f"stat -c %a {backup}").strip() == "400", "the replaced key is kept as secret as the key"
    assert all(o.status == "unchanged" for o in verified.outcomes), str(verified)
    text = json.dumps(report.to_dict()) + str(report) + report._repr_html_()
    for material in (base64.b64decode(primary), other):
        assert find_secret(material, text) is None, find_secret(material, text)


def test_rc_local_and_start_no_are_reconciled_on_generation_2(env: Env) -> None:
    """The rc.local and START= edits matter on 1.x/2.x; the steps do not start Corosync, so they run on these 3.x hosts."""
    cluster = with_generation(env.cluster, 2)
    sh(env, "node1", "printf '#!/bin/sh\\necho booted > /run/booted\\n' > /etc/rc.local && chmod 644 /etc/rc.local")
    sh(env, "node2", "printf '#!/bin/sh -e\\nlogger up\\nexit 0\\n' > /etc/rc.local && chmod 644 /etc/rc.local")
    sh(env, "node1", "cp /etc/default/corosync /tmp/default.orig && echo 'START=no' >> /etc/default/corosync")
    with hosts_for(cluster) as hosts:
        rc = steps.cfgtool_line(cluster, hosts)
        boot = steps.enable_at_boot(cluster, hosts)
        rc_again = steps.cfgtool_line(cluster, hosts)
        boot_again = steps.enable_at_boot(cluster, hosts)
    assert "rc.local has no `exit 0`; added the line at the end; made it executable (644 -> 755)" in rc.outcome("node1").summary
    assert "added the line before `exit 0` (line 3); made it executable (644 -> 755)" in rc.outcome("node2").summary
    assert sh(env, "node1", "cat /etc/rc.local; stat -c %a /etc/rc.local") == "#!/bin/sh\necho booted > /run/booted\n/usr/sbin/corosync-cfgtool -r\n755\n"
    assert sh(env, "node2", "cat /etc/rc.local; stat -c %a /etc/rc.local") == "#!/bin/sh -e\nlogger up\n/usr/sbin/corosync-cfgtool -r\nexit 0\n755\n"
    assert "+/usr/sbin/corosync-cfgtool -r" in rc.outcome("node2").diff
    assert boot.outcome("node1").status == "changed" and "START=no -> START=yes" in boot.outcome("node1").summary
    assert "-START=no" in boot.outcome("node1").diff and "+START=yes" in boot.outcome("node1").diff
    assert sh(env, "node1", "tail -n 1 /etc/default/corosync") == "START=yes\n"
    assert boot.outcome("node2").status == "unchanged"  # no START= line: the init system's own links
    assert [o.status for o in rc_again.outcomes + boot_again.outcomes] == ["unchanged"] * 4
    for node in ("node1", "node2"):  # the originals are kept
        assert sh(env, node, "ls /etc/rc.local.runbook-* | wc -l").strip() == "1"
    sh(env, "node1", "cat /tmp/default.orig > /etc/default/corosync; rm -f /etc/rc.local /etc/rc.local.runbook-* /etc/default/corosync.runbook-*"
                     " /etc/rc.local.orig-runbook /etc/default/corosync.orig-runbook")
    sh(env, "node2", "rm -f /etc/rc.local /etc/rc.local.runbook-* /etc/rc.local.orig-runbook")


FAKE_COROSYNC = r"""#!/bin/sh
# A node whose corosync prints terminal escape sequences when it checks a file.
case "$1" in
  -t) printf '\033]0;pwned\007\033[2J\033[5merror: hostile output\033[0m\n'; exit 8 ;;
esac
exec /usr/sbin/corosync "$@"
"""

HOSTILE_OS_RELEASE = 'PRETTY_NAME="Debian\x1b]0;pwned\x07\x1b[2J\x1b[5m GNU/Linux\x07"\nNAME="Debian"\nVERSION_ID="12"\nID=debian\n'


def test_hostile_text_from_nodes_never_reaches_terminal_notebook_or_record_raw(env: Env) -> None:
    sh(env, "node1", "rm -f /etc/os-release && cat > /etc/os-release", input=HOSTILE_OS_RELEASE)
    sh(env, "node2", "cat > /usr/local/sbin/corosync && chmod 755 /usr/local/sbin/corosync", input=FAKE_COROSYNC)
    sh(env, "node2", "sed -i 's/token: 1000/token: 1001/' /etc/corosync/corosync.conf")  # so step 02 tests a file
    try:
        result = runbook(env, "run", "--only", "0,2")
        facts = subprocess.run(
            [sys.executable, "-m", "runbook", "facts", str(env.cluster_file)], capture_output=True, text=True, cwd=REPO, timeout=120
        )
    finally:
        sh(env, "node1", "rm -f /etc/os-release && ln -s ../usr/lib/os-release /etc/os-release")
        sh(env, "node2", "rm -f /usr/local/sbin/corosync")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "step 02-corosync-conf failed on node2: corosync -t rejected the rendered file" in result.stderr
    assert "error: hostile output" in result.stderr
    assert facts.returncode == 0 and "Debian GNU/Linux" in facts.stdout
    for where, text in (("run's terminal output", result.stderr + result.stdout), ("runbook facts", facts.stdout + facts.stderr)):
        assert "\x1b" not in text and "\x07" not in text, f"escape sequence in {where}: {text!r}"
    run_dir = latest_run(env)
    texts = []
    for notebook in run_dir.glob("*.ipynb"):
        texts += [(notebook.name, t) for t in notebook_outputs(notebook)]
    for record in run_dir.glob("*.json"):
        texts += [(record.name, t) for t in walk_strings(json.loads(record.read_text()))]
    texts += [(p.name, p.read_text()) for p in run_dir.glob("*.log")]
    assert any("hostile output" in t for _, t in texts) and any("GNU/Linux" in t for _, t in texts)
    for name, text in texts:
        assert not any(seq in text for seq in HOSTILE), f"{name}: {text[:400]!r}"
    with hosts_for(env.cluster) as hosts:  # put node2's file back (same as what Corosync runs: no restart)
        assert steps.write_config(env.cluster, hosts).outcome("node2").status == "changed"


def test_a_cut_link_shows_in_membership_and_verify_and_the_cluster_reforms(env: Env) -> None:
    veth = env.host("node2").veth
    before = {n: view_of(env, n) for n in ("node1", "node2")}
    assert all(v.complete(2) for v in before.values()), before
    pids = {n: sh(env, n, "pidof corosync").strip() for n in ("node1", "node2")}
    subprocess.run(["ip", "link", "set", veth, "down"], check=True)
    try:
        alone = wait_for(lambda: (v := view_of(env, "node1")) and len(v.members) == 1 and v, 30, "node1 to see the loss")
        assert alone.quorate is True and "2Node" in alone.flags, alone.raw  # two_node: the survivor keeps quorum
        cut_off = wait_for(lambda: (v := view_of(env, "node2")) and len(v.members) == 1 and v, 30, "node2 to see the loss")
        assert cut_off.quorate is True, cut_off.raw  # ... and so does the other side: why real clusters fence
        with hosts_for(env.cluster) as hosts, pytest.raises(StepFailed) as caught:
            steps.start_and_verify(env.cluster, hosts, timeout=10, progress=lambda _: None)
        membership = subprocess.run(
            [sys.executable, "-m", "runbook", "membership", str(env.cluster_file)], capture_output=True, text=True, cwd=REPO, timeout=120
        )
    finally:
        subprocess.run(["ip", "link", "set", veth, "up"], check=True)
    failed = caught.value
    assert str(failed).startswith("step 06-start-and-verify failed on node2: no answer from 10.0.91.12:22 within 3s")
    report = failed.report
    assert report is not None and report.outcome("node1").status == "unchanged"
    assert "sees 1/2 members, quorate" in report.outcome("node1").summary
    assert "nothing was started or restarted" in " ".join(report.notes)
    assert membership.returncode == 1
    assert "== node1: sees 1/2 members, quorate" in membership.stdout
    assert "== node2: unreachable: no answer from 10.0.91.12:22" in membership.stdout

    wait_for(lambda: all(view_of(env, n).complete(2) for n in ("node1", "node2")), 60, "the membership to re-form")
    with hosts_for(env.cluster) as hosts:
        verified = steps.start_and_verify(env.cluster, hosts, timeout=30, progress=lambda _: None)
    for outcome in verified.outcomes:
        assert outcome.status == "unchanged" and "sees 2/2 members, quorate" in outcome.summary, outcome
    after = view_of(env, "node1")
    assert after.ring_id != before["node1"].ring_id, "a new membership formed"
    assert {n: sh(env, n, "pidof corosync").strip() for n in ("node1", "node2")} == pids, "nothing was restarted"


def test_a_run_through_sudo_keeps_the_password_out_of_every_record(env: Env) -> None:
    require_sudo()
    right, wrong = f"Right-{secrets.token_hex(8)}", f"Wrong-{secrets.token_hex(8)}"
    env.passwords += [right, wrong]
    for node in ("node1", "node2"):
        _make_ops(env, node, password=right, sudoers="ops ALL=(ALL) ALL")
    data = yaml.safe_load(env.cluster_file.read_text())
    data["ssh"].update(user="ops", sudo=True)
    sudo_file = _write(env.work / "cluster-sudo.yaml", data)

    refused = runbook(env, "run", cluster_file=sudo_file, extra_env={"RUNBOOK_SUDO_PASSWORD": wrong})
    stderr = assert_refused_at_preflight(env, refused, "node1")
    assert "login user 'ops' cannot run commands as root through sudo" in stderr and "incorrect password" in stderr
    refused_dir = latest_run(env)

    # Something to write through sudo (file contents follow the password on sudo's stdin)
    sh(env, "node1", "sed -i 's/token: 1000/token: 2000/' /etc/corosync/corosync.conf")
    sh(env, "node2", "chmod 644 /etc/corosync/authkey")
    result = runbook(env, "run", cluster_file=sudo_file, extra_env={"RUNBOOK_SUDO_PASSWORD": right})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uid 0" in result.stderr
    assert "changed: 02-corosync-conf (node1); 03-authkey (node2)." in result.stderr
    assert "token: 1000" in sh(env, "node1", "cat /etc/corosync/corosync.conf")
    assert sh(env, "node2", "stat -c '%a %U' /etc/corosync/authkey") == "400 root\n"
    for run_dir in (refused_dir, latest_run(env)):
        params = "".join(t for nb in run_dir.glob("*.ipynb") for t in notebook_outputs(nb))
        assert "ops" in params and "sudo" in params, "the injected parameters are there"
        for path in [p for p in run_dir.rglob("*") if p.is_file()]:
            data_bytes = path.read_bytes()
            for password in (right, wrong):
                found = find_secret(password.encode(), data_bytes)
                assert found is None, f"a sudo password is in {path}: {found}"
        for password in (right, wrong):
            assert password not in refused.stderr + result.stderr


# --- 5. secrets, last: nothing anywhere ----------------------------------------------------------


def _secret_in(secrets: list[bytes], data: bytes) -> str | None:
    """Which secret (by number, never its bytes) is in `data`, and in which form."""
    for index, secret in enumerate(secrets):
        found = find_secret(secret, data)
        if found:
            return f"secret #{index}: {found}"
    return None


def status_of(env: Env, cluster_file: Path | None = None) -> tuple[int, dict[str, Any], str]:
    """`runbook status --json` and `runbook status`: exit status, the JSON, the text."""
    argv = [sys.executable, "-m", "runbook", "status", str(cluster_file or env.cluster_file)]
    as_json = subprocess.run([*argv, "--json"], capture_output=True, text=True, cwd=REPO, timeout=120)
    text = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert as_json.returncode == text.returncode, (as_json.stderr, text.stderr)
    return text.returncode, json.loads(as_json.stdout), text.stdout


def drifts(found: dict[str, Any]) -> dict[str, list[str]]:
    return {node: sorted(k for k, c in n["checks"].items() if not c["ok"]) for node, n in found["nodes"].items() if not n["ok"]}


def test_status_names_each_drift_the_faults_make_and_a_converged_cluster_as_such(env: Env) -> None:
    """Issue 21 item 4: a hand-edited file, a different key, a daemon running an older file, boot disabled."""
    CONF = "/etc/corosync/corosync.conf"
    assert runbook(env, "run").returncode == 0
    code, found, text = status_of(env)
    assert code == 0 and found["ok"] and drifts(found) == {}, text
    assert f"cluster '{env.cluster.name}': every node agrees with the cluster file" in text

    key = "/etc/corosync/authkey"
    sh(env, "node2", f"cp -p {CONF} /root/conf.saved && printf 'logging {{\\n\\tdebug: on\\n}}\\n' >> {CONF}")
    sh(env, "node2", f"cp -p {key} /root/key.saved && head -c 256 /dev/urandom > {key}.new && chmod 400 {key}.new && mv {key}.new {key}")
    env.keys.append(base64.b64decode(sh(env, "node2", f"base64 -w0 {key}")))
    sh(env, "node1", "update-rc.d -f corosync remove >/dev/null 2>&1 || rm -f /etc/rc?.d/S??corosync")
    try:
        code, found, text = status_of(env)
        assert code == 1 and not found["ok"], text
        assert drifts(found) == {"node1": ["boot"], "node2": ["authkey", "file", "running"]}, text
        running = found["nodes"]["node2"]["checks"]["running"]
        assert "logging.debug" in running["detail"] and "a run would reload" in running["detail"], running
        assert running["detail"].endswith("and another authkey than /etc/corosync/authkey (the key changed after it started)"), running
        assert found["nodes"]["node2"]["checks"]["authkey"]["detail"] == "a different key from the primary's (node1)"
        assert f"DRIFT file       {CONF} differs from the cluster file  -> runbook run {env.cluster_file}" in text, text
        assert "drift on node1, node2" in text
        for material in env.keys:
            assert find_secret(material, text + json.dumps(found)) is None
    finally:  # put back by hand (a run would too, but costs a run): the files Corosync runs, boot enabled
        sh(env, "node2", f"mv /root/conf.saved {CONF}; mv /root/key.saved {key}")
        sh(env, "node1", "update-rc.d corosync defaults >/dev/null 2>&1")

    # The files on disk are the new cluster file's, but no step 06 ran: the daemons run the old one
    data = yaml.safe_load(env.cluster_file.read_text())
    data["totem"] = {**data["totem"], "join": 150}
    newer = env.work / "status-join-150.yaml"
    newer.write_text(yaml.safe_dump(data, sort_keys=False))
    assert runbook(env, "run", "--only", "2", cluster_file=newer).returncode == 0
    try:
        code, found, text = status_of(env, newer)
        assert code == 1 and drifts(found) == {"node1": ["running"], "node2": ["running"]}, text
        assert "totem.join: 100 -> 150; a run would reload" in found["nodes"]["node1"]["checks"]["running"]["detail"]
    finally:
        assert runbook(env, "run").returncode == 0
    code, found, text = status_of(env)
    assert code == 0, text


def test_no_authkey_or_password_anywhere_in_records_or_on_the_controllers_disk(env: Env) -> None:
    with hosts_for(env.cluster) as hosts:
        key = hosts["node1"].read_file("/etc/corosync/authkey")
    assert key and len(key) == 256
    secrets = [key] + env.keys + [p.encode() for p in env.passwords]
    records = [p for p in env.out.rglob("*") if p.is_file()]
    assert len({p.parent for p in records}) >= 8, "the full, failed and interrupted runs of this module are all searched"
    for path in records:
        found = _secret_in(secrets, path.read_bytes())
        assert found is None, f"secret material in the run record {path}: {found}"
    # The key is made on the primary and travels through memory only: no file written on this
    # machine while the module ran holds it, wherever a controller process writes (the checkout, the
    # home directory, temp dirs). The lab's dirs are the nodes' disks, not ours; virtualenvs and git
    # objects are not written by the runbook.
    roots = sorted({"/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), str(REPO), str(env.work)})
    found = subprocess.run(
        ["find", *roots, "-xdev", "(", "-name", ".venv", "-o", "-name", ".git", "-o", "-path", str(lab_state.labs_root()), ")", "-prune",
         "-o", "-type", "f", "-newermt", f"@{env.started:.0f}", "-size", "-64M", "-print0"],
        capture_output=True, check=False,
    ).stdout.split(b"\0")
    searched = 0
    for raw in filter(None, found):
        try:
            data = Path(os.fsdecode(raw)).read_bytes()
        except OSError:
            continue
        searched += 1
        leaked = _secret_in(secrets, data)
        assert leaked is None, f"secret material in {os.fsdecode(raw)}, written while this module ran: {leaked}"
    assert searched > 0
