"""Parsing the one-round-trip facts script's output (no SSH)."""

import base64

from runbook.engine.facts import CONF_PATH, parse_facts

DEBIAN = """@@runbook-section uid
0
@@runbook-section os_release
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
ID=debian
VERSION_ID="12"
@@runbook-section corosync_candidate
@@runbook-section corosync_version
Corosync Cluster Engine, version '3.1.7'
@@runbook-section package_manager
apt-get
@@runbook-section init
systemd
@@runbook-section update_rc
update-rc.d
systemctl
@@runbook-section addresses
127.0.0.1
10.0.66.201
::1
fe80::1
@@runbook-section corosync_pids
812
@@runbook-section authkey
256 400 root root 5f2b7a1cd1e0
@@runbook-section file:/etc/corosync/corosync.conf
644 root root
""" + base64.b64encode(b"totem {\n}\n\x1b[2J").decode() + "\n"


def test_debian_node():
    f = parse_facts("node1", DEBIAN)
    assert (f.uid, f.os_id, f.os_version) == (0, "debian", "12")
    assert f.corosync_version == "3.1.7" and f.generation == 3 and f.corosync_running
    assert f.init_system == "systemd" and "update-rc.d" in f.boot_tools
    assert f.has_address("10.0.66.201") and not f.has_address("10.0.66.202")
    assert f.authkey is not None and f.authkey.mode == 0o400 and f.authkey.sha256 == "5f2b7a1cd1e0"
    assert f.file(CONF_PATH).content == b"totem {\n}\n\x1b[2J"  # bytes kept exactly; cleaning is for display


def test_node_without_corosync_plans_with_the_candidate():
    text = DEBIAN.replace("Corosync Cluster Engine, version '3.1.7'", "").replace(
        "@@runbook-section corosync_candidate\n", "@@runbook-section corosync_candidate\n3.1.7-1+deb12u2\n"
    )
    f = parse_facts("n", text)
    assert f.corosync_version is None and f.generation is None
    assert f.candidate_version == "3.1.7" and f.candidate_generation == 3


def test_ubuntu_12_04_lsb_release_and_1x():
    text = (
        "@@runbook-section uid\n0\n@@runbook-section os_release\nDISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\n"
        "DISTRIB_DESCRIPTION=\"Ubuntu 12.04.5 LTS\"\n@@runbook-section corosync_version\n"
        "Corosync Cluster Engine, version '1.4.2'\n@@runbook-section init\nupstart\n"
    )
    f = parse_facts("old", text)
    assert f.os_id == "ubuntu" and f.os_version == "12.04" and f.generation == 1 and f.init_system == "upstart"
    assert f.authkey is None and not f.corosync_running


def test_systemd_only_when_it_is_pid_1():
    from runbook.engine.facts import init_system_of

    assert init_system_of("pid1=systemd run_systemd=1 upstart=0 initd=1") == "systemd"  # a booted Debian
    assert init_system_of("pid1=bash run_systemd=1 upstart=0 initd=1") == "sysv"  # stale /run/systemd, no systemd
    assert init_system_of("pid1=bash run_systemd=0 upstart=0 initd=1") == "sysv"  # a lab `host` host
    assert init_system_of("pid1= run_systemd=1 upstart=0 initd=1") == "systemd"  # /proc/1 unreadable: trust sd_booted
    assert init_system_of("pid1=init run_systemd=0 upstart=1 initd=1") == "upstart"
    assert init_system_of("pid1=tini run_systemd=0 upstart=0 initd=0") == "none"
