"""`runbook migrate --from-nodes` on real lab hosts running Corosync 3: the nodes of a multicast file
are read from the running cluster's membership over SSH (host keys checked), read-only.

Corosync 3 cannot run a multicast cluster without a nodelist, so the running cluster here is a knet
one (3 nodes, 2 links) and the file is a 2.x multicast file with two rings: what is read is the
membership (node ids and each member's address on every link), which is what the file lacks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from runbook import lab
from runbook.cluster import load_cluster
from tests.lab.conftest import REPO, running_lab

HOSTS = [
    ("n1", ["10.0.161.11", "10.0.162.11"]),
    ("n2", ["10.0.161.12", "10.0.162.12"]),
    ("n3", ["10.0.161.13", "10.0.162.13"]),
]
MCAST_TWO_RINGS = """totem {
 version: 2
 cluster_name: legacy
 rrp_mode: passive
 crypto_cipher: none
 crypto_hash: none
 interface {
  ringnumber: 0
  bindnetaddr: 10.0.161.0
  mcastaddr: 239.255.1.1
  mcastport: 5405
 }
 interface {
  ringnumber: 1
  bindnetaddr: 10.0.162.0
  mcastaddr: 239.255.2.1
  mcastport: 5407
 }
}
quorum {
 provider: corosync_votequorum
 expected_votes: 3
}
"""


def runbook(*args: str, out: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--out", str(out)] if out else []
    return subprocess.run([sys.executable, "-m", "runbook", *args, *extra], capture_output=True, text=True, cwd=REPO, timeout=900)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab.LabState, Path]]:
    with running_lab("mfrom", HOSTS) as state:
        tmp = tmp_path_factory.mktemp("mfrom")
        cluster_file = tmp / "running.yaml"
        cluster_file.write_text(yaml.safe_dump({
            "cluster_name": "running",
            "nodes": [{"name": n, "addresses": a, **({"role": "primary"} if i == 0 else {})} for i, (n, a) in enumerate(HOSTS)],
            "transport": "knet",
            "ssh": {"config": str(state.ssh_config)},
        }, sort_keys=False))
        result = runbook("run", str(cluster_file), out=tmp / "runs")
        assert result.returncode == 0, result.stderr[-4000:]
        conf = tmp / "mcast.conf"
        conf.write_text(MCAST_TWO_RINGS)
        yield state, conf


def test_the_members_of_the_running_cluster_become_the_nodes_and_the_header_says_so(running, tmp_path):
    state, conf = running
    out = tmp_path / "legacy.yaml"
    result = runbook("migrate", str(conf), "--from-nodes", "n1,n2", "--ssh-config", str(state.ssh_config), "-o", str(out))
    assert result.returncode == 0, result.stderr
    cluster = load_cluster(out)
    assert [(n.name, n.nodeid, n.addresses) for n in cluster.nodes] == [
        ("n1", 1, ("10.0.161.11", "10.0.162.11")),
        ("n2", 2, ("10.0.161.12", "10.0.162.12")),
        ("n3", 3, ("10.0.161.13", "10.0.162.13")),  # not logged in to: the name Corosync shows for it
    ]
    assert cluster.generation == 2 and cluster.nodelist is False and cluster.rrp_mode == "passive"
    header = "\n".join(line for line in out.read_text().splitlines() if line.startswith("#"))
    assert "# Nodes: from the running cluster's membership, read over SSH on n1, n2 (Corosync 3." in header, header
    assert "corosync-cmapctl" in header


def test_a_host_with_an_unknown_host_key_is_refused(running, tmp_path):
    state, conf = running
    config = tmp_path / "ssh_config"
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config.write_text(state.ssh_config.read_text().replace(str(state.known_hosts), str(empty)))
    result = runbook("migrate", str(conf), "--from-nodes", "n1", "--ssh-config", str(config))
    assert result.returncode == 1 and "n1: unknown SSH host key" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_host_where_corosync_is_not_running_is_named(running):
    state, conf = running
    lab.host_exec(state.host("n3"), "/etc/init.d/corosync stop >/dev/null 2>&1; true")
    result = runbook("migrate", str(conf), "--from-nodes", "n3", "--ssh-config", str(state.ssh_config))
    assert result.returncode == 1, result.stderr
    assert "n3: Corosync is not running there" in result.stderr and "Traceback" not in result.stderr


def test_a_host_that_is_down_is_named(running):
    state, conf = running
    lab.stop_sshd(state, "n2")
    try:
        result = runbook("migrate", str(conf), "--from-nodes", "n1,n2", "--ssh-config", str(state.ssh_config))
    finally:
        lab.start_sshd(state, "n2")
    assert result.returncode == 1 and "n2: cannot connect to 10.0.161.12:22" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
