"""Boot, for real: the steps that exist only for what happens at boot (05, and 04 where it applies).

One lab per operating system, shared by the tests of that OS, in file order: `runbook run` makes a
quorate cluster; a clean reboot of one node, then a hard one, then of both nodes together, each brings
Corosync back at boot with no runbook command; a node whose boot steps were undone by hand is shown by
`runbook plan`, fixed by `runbook run`, and comes back after a reboot.

debian12 and debian13 hosts are systemd-nspawn machines with systemd as PID 1 (their root file systems
come from `runbook lab prepare`, made before the tests); `host` hosts take the sysv path, and their
reboot runs the rc2.d scripts and /etc/rc.local as a boot would.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbook.conf.membership import View, parse_quorumtool
from runbook.lab import boot as lab_boot
from runbook.lab import netns, up
from runbook.lab import plan as lab_plan
from runbook.lab import rootfs as lab_rootfs
from runbook.lab import state as lab_state
from runbook.local import run_local
from runbook.model.types import Cluster
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import REPO, lab_cluster, running_lab

OSES = ["debian12", "debian13", "host"]
LAB_NAMES = {"debian12": "boot12", "debian13": "boot13", "host": "boothost"}
QUORUM_WAIT = 90.0


def free_subnet(skip: int = 0) -> str:
    """A /24 this machine does not route yet (10.0.120.0 - 10.0.199.0), so labs of others never clash;
    `skip` free ones are passed over (a lab with two links needs two)."""
    routes = json.loads(run_local(["ip", "-4", "-j", "route", "show"]).stdout or "[]")
    taken = []
    for route in routes:
        try:
            taken.append(ipaddress.ip_network(route.get("dst", ""), strict=False))
        except ValueError:
            continue
    for third in range(120, 200):
        net = ipaddress.ip_network(f"10.0.{third}.0/24")
        if not any(net.overlaps(t) for t in taken):
            if not skip:
                return str(net)
            skip -= 1
    raise AssertionError("no free 10.0.x.0/24 for a lab")


def runbook(*args: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args, "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=900
    )


def views(cluster: Cluster) -> dict[str, View]:
    with hosts_for(cluster) as hosts:
        return {n.name: parse_quorumtool(n.name, hosts[n.name].run("corosync-quorumtool -s", check=False).text) for n in cluster.nodes}


def wait_quorate(cluster: Cluster) -> dict[str, View]:
    """Both nodes see both members, quorate: what a user checks after a reboot (polled, no runbook command)."""
    deadline = time.monotonic() + QUORUM_WAIT
    while True:
        try:
            seen = views(cluster)
        except Exception:  # a host still booting refuses SSH for a moment
            seen = {}
        if seen and all(v.complete(len(cluster.nodes)) for v in seen.values()):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"not quorate {QUORUM_WAIT:g}s after the reboot: " + "; ".join(f"{n}: {v.raw}" for n, v in seen.items()))
        time.sleep(1)


class Booted:
    """One lab of one OS, its cluster, and where run records go."""

    def __init__(self, os_name: str, state: lab_state.LabState, cluster: Cluster, out: Path) -> None:
        self.os = os_name
        self.state = state
        self.cluster = cluster
        self.out = out

    def reboot(self, *names: str, hard: bool = False) -> None:
        before = {n: lab_boot.boots(self.state, self.state.host(n)) for n in names}
        result = subprocess.run(
            [sys.executable, "-m", "runbook", "lab", "reboot", *names, "--lab", self.state.name, *(["--hard"] if hard else [])],
            capture_output=True, text=True, cwd=REPO, timeout=300,
        )
        assert result.returncode == 0, result.stderr + result.stdout
        for name in names:
            assert lab_boot.boots(self.state, self.state.host(name)) == before[name] + 1

    def corosync_at_boot(self, name: str) -> lab_boot.BootState:
        return lab_boot.boot_state(self.state, self.state.host(name))


@pytest.fixture(scope="module", params=OSES)
def booted(request, tmp_path_factory) -> Iterator[Booted]:
    os_name = request.param
    if os_name != "host" and not lab_rootfs.is_ready(lab_rootfs.boot_os(os_name)):
        pytest.fail(f"no cached root file system for {os_name}: run `runbook lab prepare --os {os_name}` before the tests (needs the network)")
    started = time.monotonic()
    name = LAB_NAMES[os_name]
    up.down(name)
    with running_lab(name, lab_plan.generated_nodes(2, free_subnet()), os_name=os_name) as state:
        print(f"\n[{os_name}] lab up in {time.monotonic() - started:.1f}s")
        yield Booted(os_name, state, lab_cluster(state), tmp_path_factory.mktemp(f"runs-{os_name}"))
    print(f"\n[{os_name}] all boot tests of this OS, lab included: {time.monotonic() - started:.1f}s")


def test_run_makes_a_quorate_cluster_that_starts_at_boot(booted):
    host = booted.state.hosts[0]
    facts_init = "systemd" if booted.os != "host" else "sysv"
    result = runbook("run", str(booted.state.cluster_file), out=booted.out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(v.complete(2) for v in views(booted.cluster).values())
    assert f"init {facts_init}" in result.stderr
    for node in ("node1", "node2"):
        at_boot = booted.corosync_at_boot(node)
        assert at_boot.enabled == "enabled" and at_boot.active == "active", (node, at_boot)
    if booted.os != "host":
        assert "systemctl (corosync.service)" in result.stderr and "systemd: active, enabled at boot" in result.stderr
    assert lab_boot.boots(booted.state, host) == 1


def test_clean_reboot_brings_corosync_back_at_boot(booted):
    if booted.os == "host":  # the sysv boot: rc2.d's S links, then an executable /etc/rc.local
        with hosts_for(booted.cluster) as hosts:
            hosts["node2"].run("printf '#!/bin/sh -e\\necho ran > /var/tmp/rc.local.ran\\nexit 0\\n' > /etc/rc.local; chmod 755 /etc/rc.local; rm -f /var/tmp/rc.local.ran")
    booted.reboot("node2")
    seen = wait_quorate(booted.cluster)
    assert all("2Node" in v.flags for v in seen.values())
    assert booted.corosync_at_boot("node2").active == "active"
    if booted.os == "host":
        with hosts_for(booted.cluster) as hosts:
            log = hosts["node2"].run("cat /var/log/lab-boot.log; cat /var/tmp/rc.local.ran; rm -f /etc/rc.local").text
        assert "/etc/rc2.d/S01corosync start" in log and "/etc/rc.local" in log and log.rstrip().endswith("ran"), log


def test_hard_reboot_brings_corosync_back_at_boot(booted):
    booted.reboot("node1", hard=True)
    wait_quorate(booted.cluster)
    assert booted.corosync_at_boot("node1").active == "active"


def test_both_nodes_rebooted_together_are_quorate_again(booted):
    booted.reboot("node1", "node2")
    wait_quorate(booted.cluster)


def test_a_node_alone_after_a_cold_start_waits_for_the_other(booted):
    """two_node's wait_for_all: one node back alone is not quorate; with the other back, both are."""
    if booted.os == "host":
        pytest.skip("`host` hosts have no power to switch off")
    netns.host_exec(booted.state.host("node2"), "systemctl poweroff", check=False)
    power = booted.state.host_dir(booted.state.host("node2")) / "power"
    deadline = time.monotonic() + 60
    while not power.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert power.read_text().strip() == "off"
    booted.reboot("node1", hard=True)
    deadline = time.monotonic() + QUORUM_WAIT
    while True:
        with hosts_for(booted.cluster) as hosts:
            text = hosts["node1"].run("corosync-quorumtool -s", check=False).text
        alone = parse_quorumtool("node1", text)
        if alone.members or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert alone.quorate is False and "WaitForAll" in alone.flags, alone.raw
    booted.reboot("node2")  # powers it on
    wait_quorate(booted.cluster)


UNDO = {
    # What an operator might do by hand: disable the service and put START=no back.
    "systemd": "systemctl disable corosync 2>&1; echo START=no >> /etc/default/corosync",
    "sysv": "update-rc.d corosync disable >/dev/null 2>&1; echo START=no >> /etc/default/corosync",
}


def test_undone_boot_steps_are_planned_fixed_and_survive_a_reboot(booted):
    undo = UNDO["sysv" if booted.os == "host" else "systemd"]
    with hosts_for(booted.cluster) as hosts:
        hosts["node2"].run(undo)
    assert booted.corosync_at_boot("node2").enabled.startswith("disabled")
    plan = runbook("plan", str(booted.state.cluster_file), out=booted.out)
    assert plan.returncode == 0, plan.stderr[-3000:]
    record = sorted((booted.out / booted.cluster.name).iterdir())[-1]
    outcomes = {o["node"]: o for o in json.loads((record / "05-enable-at-boot.json").read_text())["outcomes"]}
    assert outcomes["node1"]["status"] == "unchanged"
    assert outcomes["node2"]["status"] == "would change"
    assert "START=no -> START=yes" in outcomes["node2"]["summary"]
    enable = "systemctl enable corosync" if booted.os != "host" else "update-rc.d corosync"
    assert enable in outcomes["node2"]["summary"]
    assert booted.corosync_at_boot("node2").enabled.startswith("disabled")  # the plan changed nothing

    run = runbook("run", str(booted.state.cluster_file), out=booted.out)
    assert run.returncode == 0, run.stderr[-3000:]
    assert booted.corosync_at_boot("node2").enabled == "enabled"
    record = sorted((booted.out / booted.cluster.name).iterdir())[-1]
    started = json.loads((record / "06-start-and-verify.json").read_text())["outcomes"]
    assert [o["status"] for o in started] == ["unchanged", "unchanged"]  # Corosync started at boot is left alone
    booted.reboot("node2")
    wait_quorate(booted.cluster)
    assert booted.corosync_at_boot("node2").active == "active"


NFTABLES_CONF = """#!/usr/sbin/nft -f
flush ruleset
table inet filter {
	chain input {
		type filter hook input priority 0; policy drop;
		ct state established,related accept
		iif lo accept
		tcp dport 22 accept
	}
}
"""


def test_a_managed_firewall_opens_corosync_and_comes_back_before_it_at_boot(booted, tmp_path):
    """An admin's nftables.conf that drops everything but SSH; `firewall: manage` opens Corosync's port in
    it, and after a reboot (nftables.service loads the admin's file first) the opening is back and the
    node rejoins."""
    if booted.os == "host":
        pytest.skip("`host` hosts boot through rc2.d without systemd: the boot unit for the firewall script is systemd's")
    with hosts_for(booted.cluster) as hosts:
        hosts["node2"].run(f"cat > /etc/nftables.conf <<'EOF'\n{NFTABLES_CONF}EOF\nsystemctl enable --now nftables 2>&1")
    data = yaml.safe_load(booted.state.cluster_file.read_text())
    managed = tmp_path / "managed.yaml"
    managed.write_text(yaml.safe_dump({**data, "firewall": "manage"}, sort_keys=False))
    run = runbook("run", str(managed), out=booted.out)
    assert run.returncode == 0, run.stderr[-3000:]
    with hosts_for(booted.cluster) as hosts:
        assert "chain corosync-runbook" not in hosts["node1"].run("nft list ruleset").text  # node1 drops nothing
        assert hosts["node2"].run("systemctl is-enabled corosync-runbook-firewall.service", check=False).text.strip() == "enabled"
    booted.reboot("node2")
    wait_quorate(booted.cluster)
    with hosts_for(booted.cluster) as hosts:
        rules = hosts["node2"].run("nft list ruleset").text
        hosts["node2"].run("systemctl disable --now nftables 2>&1; nft flush ruleset; rm -f /etc/nftables.conf")
    assert "policy drop" in rules and "jump corosync-runbook" in rules, rules
    assert rules.index("jump corosync-runbook") < rules.index("tcp dport 22 accept")  # ours first in the admin's chain
    node1 = booted.state.host("node1").address
    assert node1 in rules.split("chain corosync-runbook {")[1], rules


def test_lab_down_after_a_crash_leaves_nothing_behind():
    """`lab up` killed while its machines boot: `lab down` still removes supervisors, machines, mounts."""
    if not lab_rootfs.is_ready(lab_rootfs.boot_os("debian12")):
        pytest.fail("no cached root file system for debian12: run `runbook lab prepare --os debian12` first")
    up.down("bootcr")
    argv = [sys.executable, "-m", "runbook", "lab", "up", "--nodes", "1", "--subnet", free_subnet(), "--lab", "bootcr", "--os", "debian12"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = lab_state.LabState.load("bootcr")
        if state and lab_boot.boots(state, state.hosts[0]) >= 1:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert state is not None and lab_boot.boots(state, state.hosts[0]) >= 1, "the machine never started"
    from tests.lab.conftest import leftovers

    assert up.down("bootcr")
    assert leftovers(state) == []


@pytest.mark.parametrize("os_name", OSES)
def test_ssh_reaches_a_host_over_link_1_while_its_link_0_is_cut(os_name, tmp_path):
    """sshd answers on every link's address (booting hosts: systemd's sshd; host hosts: the lab's), so an
    operator whose management network is link 1 still gets in when link 0 fails."""
    from runbook.model.types import Node, SshSettings
    from runbook.ssh.endpoint import resolve_endpoint
    from runbook.ssh.hosts import Host

    if os_name != "host" and not lab_rootfs.is_ready(lab_rootfs.boot_os(os_name)):
        pytest.fail(f"no cached root file system for {os_name}: run `runbook lab prepare --os {os_name}` first")
    link0, link1 = (ipaddress.ip_network(free_subnet(k)) for k in (0, 1))
    addresses = [str(link0.network_address + 11), str(link1.network_address + 11)]
    with running_lab("bootlink", [("node1", addresses)], os_name=os_name) as state:
        config = tmp_path / "ssh_config"
        config.write_text(lab_plan.ssh_config_text(state).replace(f"HostName {addresses[0]}\n", f"HostName {addresses[1]}\n"))
        netns.set_link(state, "node1", 0, up=False)
        host = Host(resolve_endpoint(Node("node1", addresses[1], None), SshSettings(config=str(config))))
        try:
            assert host.endpoint.hostname == addresses[1]
            shown = host.run("hostname; ip -o link show eth0", timeout=30).text
        finally:
            host.close()
        assert shown.splitlines()[0] == "node1" and "state DOWN" in shown, shown
        assert up.status(state)[0].sshd is True  # `lab status` shows sshd up: it answers on link 1
        assert lab_boot.reboot(state, "node1") == 2  # and a reboot waits for it there
