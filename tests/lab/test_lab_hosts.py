"""The lab makes real, separate hosts; the SSH layer reaches them with host keys checked for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.engine.facts import gather
from runbook.errors import ConnectionFailed, HostKeyError
from runbook.lab import netns, plan, sshd, up
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import lab_cluster, leftovers, running_lab


@pytest.fixture(scope="module")
def two_hosts():
    with running_lab("pthosts", plan.generated_nodes(2, "10.0.76.0/24")) as state:
        yield state, lab_cluster(state)


def test_hosts_are_separate_machines(two_hosts):
    state, cluster = two_hosts
    with hosts_for(cluster) as hosts:
        one, two = gather(hosts["node1"]), gather(hosts["node2"])
        assert hosts["node1"].run("hostname").text.strip() == "node1"
        assert hosts["node2"].run("hostname").text.strip() == "node2"
        assert one.has_address("10.0.76.11") and not one.has_address("10.0.76.12")
        assert two.has_address("10.0.76.12") and not two.has_address("10.0.76.11")
        # PID namespaces: each host sees only its own processes (one sshd listener each)
        assert hosts["node1"].run("pgrep -c -f '[s]shd: /usr/sbin/sshd'", check=False).text.strip() == "1"
        # private root: a file written on one host does not exist on the other, nor on this machine
        hosts["node1"].run("echo only-here > /etc/runbook-lab-marker")
        assert hosts["node2"].read_file("/etc/runbook-lab-marker") is None
        assert not Path("/etc/runbook-lab-marker").exists()


def test_facts(two_hosts):
    _, cluster = two_hosts
    with hosts_for(cluster) as hosts:
        facts = gather(hosts["node1"])
    assert facts.uid == 0
    assert facts.os_id == "debian"
    assert facts.init_system == "sysv"  # lab hosts have no systemd
    assert facts.package_manager == "apt-get"
    assert facts.corosync_version is None and facts.candidate_version  # offline-installable


def test_changed_host_key_is_refused_with_both_fingerprints(two_hosts):
    state, cluster = two_hosts
    host = state.host("node2")
    fingerprint = "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2"
    old_fp = netns.host_exec(host, fingerprint).stdout.strip()
    saved = netns.host_exec(host, "cat /etc/ssh/ssh_host_ed25519_key").stdout
    saved_pub = netns.host_exec(host, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout
    try:
        # the host is "reinstalled": it makes a new host key and restarts sshd; known_hosts is unchanged
        netns.host_exec(host, "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key")
        new_fp = netns.host_exec(host, fingerprint).stdout.strip()
        assert new_fp != old_fp
        sshd.stop_sshd(state, "node2")
        sshd.start_sshd(state, "node2")
        with hosts_for(cluster) as hosts:
            with pytest.raises(HostKeyError) as caught:
                hosts["node2"].run("touch /root/should-not-exist")
        message = str(caught.value)
        assert message.startswith("node2:") and "CHANGED" in message
        assert f"expected: ssh-ed25519 {old_fp}" in message and f"received: ssh-ed25519 {new_fp}" in message
        assert "ssh-keygen -R 10.0.76.12" in message
    finally:
        netns.host_exec(host, "cat > /etc/ssh/ssh_host_ed25519_key && chmod 600 /etc/ssh/ssh_host_ed25519_key", input=saved)
        netns.host_exec(host, "cat > /etc/ssh/ssh_host_ed25519_key.pub", input=saved_pub)
        sshd.stop_sshd(state, "node2")
        sshd.start_sshd(state, "node2")
    with hosts_for(cluster) as hosts:  # the original key is trusted again, and nothing ran while it was not
        assert hosts["node2"].read_file("/root/should-not-exist") is None


def test_unknown_host_key_is_refused(two_hosts, tmp_path, monkeypatch):
    state, cluster = two_hosts
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host *\n  User root\n  IdentityFile {state.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {empty}\n"
    )
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts to fall back on
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(config))
    with hosts_for(cluster) as hosts:
        with pytest.raises(HostKeyError) as caught:
            hosts["node1"].run("true")
    message = str(caught.value)
    assert message.startswith("node1: unknown SSH host key for 10.0.76.11")
    assert "ssh-keyscan" in message and "trust_unknown_hosts" in message


def test_trusting_an_unknown_host_needs_an_explicit_opt_in(two_hosts, tmp_path, monkeypatch):
    state, _ = two_hosts
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  User root\n  IdentityFile {state.identity}\n  IdentitiesOnly yes\n  UserKnownHostsFile {empty}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(config))
    cluster = lab_cluster(state, ssh={"trust_unknown_hosts": ["node1"]})
    with hosts_for(cluster) as hosts:
        assert hosts["node1"].run("hostname").text.strip() == "node1"
        with pytest.raises(HostKeyError):
            hosts["node2"].run("true")


def test_addresses_outside_the_lab_are_never_contacted(two_hosts):
    _, cluster = two_hosts
    stray = lab_cluster(two_hosts[0], nodes=[{"name": "node1", "address": "10.0.76.11"}, {"name": "far", "address": "10.0.99.7"}])
    assert os.environ.get("RUNBOOK_LAB_ONLY")
    with hosts_for(stray) as hosts:
        with pytest.raises(ConnectionFailed, match=r"^far: .*10\.0\.99\.7 is not a lab host"):
            hosts["far"].run("true")


def test_lab_down_removes_everything_and_is_safe_twice():
    state = None
    with running_lab("ptdown", [("solo1", "10.0.78.21"), ("solo2", "10.0.78.22")]) as made:
        state = made
        assert all(s.sshd for s in up.status(made))
    assert leftovers(state) == []
    assert up.down("ptdown") is False  # nothing left to remove, no error


def test_lab_down_cleans_up_a_half_made_lab():
    """A crash after the state was written but before the hosts came up: down still cleans it all."""
    state = plan.plan_lab("pthalf", [("x1", "10.0.79.31")])
    state.save()
    sshd.make_host_keys(state)
    netns.make_bridge(state)
    subprocess.run(["ip", "netns", "add", state.hosts[0].netns], check=True)
    assert up.down("pthalf") is True
    assert leftovers(state) == []


def test_lab_up_without_root_says_why_in_one_line():
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "runbook", "lab", "up", "--nodes", "2", "--lab", "ptnope"],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "runbook: error: the lab needs root (network namespaces, mounts); run as root"
