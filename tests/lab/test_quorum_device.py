"""The quorum device, for real: two nodes and a qnetd host that is not a member, `runbook run` as a user runs it.

Preflight first: a qnetd host whose firewall drops one node's TCP 5403 fails the run before anything
changes, naming that node, the host and the port. The hosts boot Debian 12 with systemd, as real nodes do: the packages' own scripts run as on a
server (Debian's qnetd package makes its CA and starts the daemon at install), and a reboot shows
what starts at boot. One lab, the tests in order, each starting from where the one before left the
cluster: a running two-node cluster gets the device by a reload (no Corosync restarted) and counts 3
votes on both nodes, with no private key in any output or record; a rebooted node counts the vote
again by itself; with the two nodes cut off from each other (the qnetd host still reachable), the
node ffsplit picks (the lowest node id) stays quorate and the other does not; and taking the device
out of the cluster file puts two_node back and stops corosync-qdevice. (Hosts without systemd, the
sysv path, were run by hand and by tools/qdevice_page.py, whose page shows that run.)
"""

from __future__ import annotations

import base64
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
from runbook.lab import rootfs as lab_rootfs
from runbook.lab import state as lab_state
from runbook.model.load import load_cluster
from runbook.ssh.hosts import hosts_for
from tests.lab.conftest import REPO, running_lab, wait_for

NODES = [("n1", "10.0.171.11"), ("n2", "10.0.171.12")]
QNETD = ("qn", "10.0.171.20")
P12 = "/etc/corosync/qdevice/net/nssdb/qdevice-net-node.p12"
CUT = ("nft add table inet cut; nft add chain inet cut in '{ type filter hook input priority -10; }'; "
       "nft add chain inet cut out '{ type filter hook output priority -10; }'; "
       "nft add rule inet cut in ip saddr 10.0.171.11 drop; nft add rule inet cut out ip daddr 10.0.171.11 drop")


class Lab:
    def __init__(self, state: lab_state.LabState, tmp: Path) -> None:
        self.state = state
        self.tmp = tmp
        self.out = tmp / "runs"

    def cluster_file(self, device: bool) -> Path:
        data: dict[str, object] = {
            "cluster_name": "qdlab", "nodes": [{"name": n, "address": a, "nodeid": i} for i, (n, a) in enumerate(NODES, 1)],
            "ssh": {"config": str(self.state.ssh_config)},
        }
        data["nodes"][0]["role"] = "primary"  # type: ignore[index]
        if device:
            data["quorum"] = {"device": {"model": "net", "net": {"host": QNETD[1], "name": QNETD[0], "algorithm": "ffsplit"}}}
        path = self.tmp / f"qdlab-{'device' if device else 'plain'}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def run(self, device: bool) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runbook", "run", str(self.cluster_file(device)), "--out", str(self.out)],
                              capture_output=True, text=True, cwd=REPO, timeout=900)

    def sh(self, host: str, command: str) -> str:
        """Run a command on a node or on the qnetd host (listed as a node only for this SSH connection)."""
        data = yaml.safe_load(self.cluster_file(False).read_text())
        data["nodes"].append({"name": QNETD[0], "address": QNETD[1], "nodeid": 9})
        every = self.tmp / "every-host.yaml"
        every.write_text(yaml.safe_dump(data, sort_keys=False))
        with hosts_for(load_cluster(every)) as hosts:
            return hosts[host].run(command, check=False).text

    def view(self, node: str) -> View:
        return parse_quorumtool(node, self.sh(node, "corosync-quorumtool -s 2>/dev/null"))


OS = "debian12"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not lab_rootfs.is_ready(lab_rootfs.boot_os(OS)):
        pytest.fail(f"no cached root file system for {OS}: run `runbook lab prepare --os {OS}` before the tests (needs the network)")
    with running_lab("qdev", [*NODES, QNETD], os_name=OS) as state:
        yield Lab(state, tmp_path_factory.mktemp("qdevice"))


def test_a_qnetd_host_whose_firewall_drops_a_node_fails_preflight_naming_both_and_the_port(lab: Lab) -> None:
    drop = ("nft add table inet filter; nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }'; "
            f"nft add rule inet filter input ip saddr {NODES[0][1]} tcp dport 5403 drop")
    lab.sh(QNETD[0], drop)
    try:
        refused = lab.run(device=True)
    finally:
        lab.sh(QNETD[0], "nft delete table inet filter")
    assert refused.returncode == 1, refused.stderr[-3000:]
    assert f"n1 -> qn ({QNETD[1]}) TCP 5403: no answer within 3s: a firewall drops it" in refused.stderr, refused.stderr[-3000:]
    assert "n2 -> qn" not in refused.stderr.split("runbook: error:")[-1]  # only the dropped node is named
    assert all(lab.sh(n, "dpkg -s corosync >/dev/null 2>&1 && echo installed; ls -A /etc/corosync 2>/dev/null").strip() == ""
               for n, _ in NODES), "a node was changed"


def test_a_device_added_to_a_running_two_node_cluster_counts_without_a_restart_and_no_key_is_shown(lab: Lab) -> None:
    first = lab.run(device=False)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "two_node: 1" in lab.sh("n1", "cat /etc/corosync/corosync.conf")
    pids = {n: lab.sh(n, "pidof corosync").strip() for n, _ in NODES}

    added = lab.run(device=True)
    assert added.returncode == 0, added.stderr[-3000:]
    assert {n: lab.sh(n, "pidof corosync").strip() for n, _ in NODES} == pids  # reloaded, not restarted
    said = added.stdout + added.stderr  # the progress lines are on stderr
    assert "reloaded Corosync" in said and "restarted Corosync" not in said
    for node, _ in NODES:
        view = wait_for(lambda node=node: (v := lab.view(node)).qdevice_counts and v, 30, f"{node} counting the device's vote")
        assert (view.total_votes, view.expected_votes, view.quorate) == (3, 3, True), view.raw
        assert "two_node" not in lab.sh(node, "cat /etc/corosync/corosync.conf")
        assert lab.sh(node, f"ls {P12} 2>/dev/null; stat -c %a /etc/corosync/qdevice/net/nssdb").split() == ["770"]
    record = json.loads(sorted(lab.out.glob("qdlab/*/07-quorum-device.json"))[-1].read_text())
    summaries = {o["node"]: o["summary"] for o in record["outcomes"]}
    assert all(summaries[n].endswith("the quorum device's vote counts: 3 of 3 votes, quorate") for n, _ in NODES), summaries

    # The cluster's private key (held in each node's database) is in no output and no file of the run.
    # The node exports it (a Debian server has no openssl); this machine's openssl reads it out as PEM.
    p12 = lab.sh("n1", "d=$(mktemp -d); pk12util -d /etc/corosync/qdevice/net/nssdb -o $d/k.p12 -W '' -n 'Cluster Cert' >/dev/null "
                       "&& base64 -w0 $d/k.p12; rm -rf $d")
    key = subprocess.run(["openssl", "pkcs12", "-nocerts", "-nodes", "-passin", "pass:"], input=base64.b64decode(p12),
                         capture_output=True, timeout=30).stdout.decode()
    body = [line for line in key.splitlines() if line and not line.startswith(("-----", "Bag", "    ", "Key Attributes"))]
    assert "PRIVATE KEY" in key and len(body) > 10, key[:200]
    seen = said + "".join(p.read_text(errors="replace") for p in lab.out.rglob("*") if p.is_file())
    assert "PRIVATE KEY" not in seen and not [line for line in body if line in seen]

    again = lab.run(device=True)
    assert again.returncode == 0 and "everything was already in place" in again.stdout + again.stderr, again.stderr[-2000:]
    status = subprocess.run([sys.executable, "-m", "runbook", "status", str(lab.cluster_file(True))],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("ok    qdevice    the quorum device's vote counts: 3 of 3 votes") == 2, status.stdout


def whole(view: View) -> bool:
    """Both nodes members, quorate, the device's vote counted: 3 of 3."""
    return view.quorate is True and len(view.members) == 2 and view.qdevice_counts and view.total_votes == 3


def alone_with_the_device(view: View) -> bool:
    return view.quorate is True and len(view.members) == 1 and view.qdevice_counts and view.total_votes == 2


def alone_without_it(view: View) -> bool:
    return view.quorate is False and len(view.members) == 1 and not view.qdevice_counts and view.total_votes == 1


def settled(lab: Lab, node: str, state, what: str, timeout: float = 90) -> View:  # type: ignore[no-untyped-def]
    """The node's view once it holds `state` on two reads 2 s apart: while a membership changes,
    quorumtool can print a moment's mix (one member, but the old total of votes)."""
    def twice() -> View | None:
        first = lab.view(node)
        if not state(first):
            return None
        time.sleep(2)
        second = lab.view(node)
        return second if state(second) else None
    return wait_for(twice, timeout, what)


def test_a_rebooted_node_counts_the_device_again_by_itself(lab: Lab) -> None:
    before = lab_boot.boots(lab.state, lab.state.host("n2"))
    rebooted = subprocess.run([sys.executable, "-m", "runbook", "lab", "reboot", "n2", "--lab", lab.state.name],
                              capture_output=True, text=True, cwd=REPO, timeout=300)
    assert rebooted.returncode == 0, rebooted.stderr + rebooted.stdout
    assert lab_boot.boots(lab.state, lab.state.host("n2")) == before + 1
    assert lab.sh("n2", "systemctl is-enabled corosync-qdevice").strip() == "enabled"
    settled(lab, "n2", whole, "n2 back in the cluster, counting the device's vote, after its reboot")
    settled(lab, "n1", whole, "n1 seeing n2 back")


def test_cut_off_from_each_other_the_lowest_node_id_keeps_quorum_with_the_device(lab: Lab) -> None:
    lab.sh("n2", CUT)
    try:
        settled(lab, "n1", alone_with_the_device, "n1 alone and quorate with the device's vote (2 of 3)")
        settled(lab, "n2", alone_without_it, "n2 alone, not quorate, without the device's vote (1 of 3)")
    finally:
        lab.sh("n2", "nft delete table inet cut")
    for node, _ in NODES:
        settled(lab, node, whole, f"{node} back with 3 votes")


def test_taking_the_device_out_puts_two_node_back_and_stops_qdevice(lab: Lab) -> None:
    removed = lab.run(device=False)
    assert removed.returncode == 0, removed.stderr[-3000:]
    for node, _ in NODES:
        assert "two_node: 1" in lab.sh(node, "cat /etc/corosync/corosync.conf")
        assert lab.sh(node, "pidof corosync-qdevice || echo none").strip() == "none"
        view = lab.view(node)
        assert view.quorate and view.qdevice_votes is None and view.expected_votes == 2, view.raw
    # step 02 stops it before the file without the device goes in (stopped after the reload, it would leave a dead
    # `Qdevice (votes 0)` registered), and disables it at boot
    assert "stopped corosync-qdevice first (the file has no quorum device)" in removed.stdout + removed.stderr
    assert all(lab.sh(n, "systemctl is-enabled corosync-qdevice").strip() == "disabled" for n, _ in NODES)
