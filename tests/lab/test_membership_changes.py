"""Adding and removing nodes by editing the cluster file, and rotating the key (issue 21 items 2 and 3), on real Corosync 3 daemons.

One 3-host lab, one cluster going 2 -> 3 -> 2 nodes with `runbook run`, in order: the nodes that stay
keep their Corosync (pids unchanged), the cluster is quorate after each change and, sampled every
200 ms on a node that stays, throughout it; two_node goes off at 3 nodes and on again at 2. Between
the two, a removal that would leave the running nodes without quorum is refused with nothing changed.
Last, `runbook rotate-key` on the two nodes: one new key everywhere, by reload, no byte of it shown.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from runbook.conf.membership import parse_quorumtool
from runbook.lab import state as lab_state
from runbook.model.rules import cluster_from_mapping
from runbook.ssh.hosts import Hosts, hosts_for
from tests.lab.conftest import REPO, running_lab, wait_for

ADDRESSES = {"node1": "10.0.173.11", "node2": "10.0.173.12", "node3": "10.0.173.13"}
CONF, KEY = "/etc/corosync/corosync.conf", "/etc/corosync/authkey"


def mapping(*names: str, **overrides: object) -> dict[str, object]:
    nodes = [{"name": n, "address": ADDRESSES[n], **({"role": "primary"} if n == "node1" else {})} for n in names]
    return {"cluster_name": "members", "nodes": nodes, **overrides}


@dataclass
class Members:
    state: lab_state.LabState
    hosts: Hosts  # every lab host, whether or not the cluster file lists it
    tmp: Path

    def run(self, data: dict[str, object]) -> subprocess.CompletedProcess[str]:
        path = self.tmp / f"cluster-{len(list(self.tmp.glob('cluster-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return subprocess.run([sys.executable, "-m", "runbook", "run", str(path), "--out", str(self.tmp / "runs")],
                              capture_output=True, text=True, cwd=REPO, timeout=900)

    def pid(self, node: str) -> str:
        return self.hosts[node].run("pidof corosync", check=False).text.strip()

    def quorum(self, node: str):  # type: ignore[no-untyped-def]
        return parse_quorumtool(node, self.hosts[node].run("corosync-quorumtool -s", check=False).text)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Members]:
    with running_lab("ptmemb", list(ADDRESSES.items())) as state:
        with hosts_for(cluster_from_mapping(mapping(*ADDRESSES))) as hosts:
            m = Members(state, hosts, tmp_path_factory.mktemp("members"))
            first = m.run(mapping("node1", "node2"))
            assert first.returncode == 0, first.stderr[-3000:]
            yield m


def sample(node: str, stop: threading.Event, found: list[bool]) -> None:
    """Every 200 ms: is `node` quorate (its own connection: Host objects are not shared across threads)."""
    with hosts_for(cluster_from_mapping(mapping(*ADDRESSES))) as own:
        while not stop.is_set():
            found.append(parse_quorumtool(node, own[node].run("corosync-quorumtool -s", check=False).text).quorate is True)
            stop.wait(0.2)


def run_sampled(m: Members, data: dict[str, object]) -> tuple[subprocess.CompletedProcess[str], list[bool]]:
    stop, samples = threading.Event(), []  # type: ignore[var-annotated]
    sampler = threading.Thread(target=sample, args=("node1", stop, samples))
    sampler.start()
    try:
        return m.run(data), samples
    finally:
        time.sleep(0.5)
        stop.set()
        sampler.join()


def test_adding_a_third_node_reloads_the_two_and_turns_two_node_off(members: Members) -> None:
    before = {n: members.pid(n) for n in ("node1", "node2")}
    assert all(before.values()) and "2Node" in members.quorum("node1").flags
    result, samples = run_sampled(members, mapping("node1", "node2", "node3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reloaded Corosync (quorum.two_node: 1 -> (absent), nodelist.node.2: (absent) -> name=node3" in result.stderr
    assert {n: members.pid(n) for n in before} == before, "the nodes that stay were not restarted"
    for node in ADDRESSES:
        view = members.quorum(node)
        assert view.complete(3) and "2Node" not in view.flags, (node, view.raw)
    assert len(samples) > 10 and all(samples), f"node1 not quorate at {samples.count(False)} of {len(samples)} samples"


def test_a_removal_that_would_lose_quorum_is_refused_with_nothing_changed(members: Members) -> None:
    """node2 down: node3 stops first, and node1 alone has 1 of the 3 votes the cluster counts until the reload."""
    members.hosts["node2"].run("/etc/init.d/corosync stop >/dev/null 2>&1 || true")
    wait_for(lambda: not members.pid("node2"), 30, "node2's Corosync stopped")
    try:
        files = {n: members.hosts[n].run(f"sha256sum {CONF} {KEY}").text for n in ADDRESSES}
        pids = {n: members.pid(n) for n in ("node1", "node3")}
        refused = members.run(mapping("node1", "node2"))
        assert refused.returncode == 1, refused.stderr[-3000:]
        assert ("this change removes node3 (10.0.173.13, nodeid 3): while node3 stops (first), the running cluster still counts 3 votes "
                "and quorum needs 2 (a majority of 3), but the nodes running the cluster now (node1) have 1; node2 is not running it"
                ) in refused.stderr, refused.stderr[-3000:]
        assert "00-preflight ... FAILED" in refused.stderr
        assert {n: members.hosts[n].run(f"sha256sum {CONF} {KEY}").text for n in ADDRESSES} == files
        assert {n: members.pid(n) for n in pids} == pids
    finally:
        members.hosts["node2"].run("/etc/init.d/corosync start >/dev/null 2>&1 || true")
        wait_for(lambda: all(members.quorum(n).complete(3) for n in ADDRESSES), 60, "all three members again")


def test_removing_the_third_node_stops_it_first_keeps_its_files_and_reloads_the_two(members: Members) -> None:
    before = {n: members.pid(n) for n in ("node1", "node2")}
    result, samples = run_sampled(members, mapping("node1", "node2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "removed from the cluster file: node3 (10.0.173.13, nodeid 3); step 06 stops Corosync there first" in result.stderr  # preflight
    assert "reloaded Corosync (quorum.two_node: (absent) -> 1, nodelist.node.2: name=node3" in result.stderr
    assert {n: members.pid(n) for n in before} == before, "the nodes that stay were not restarted"
    for node in before:
        view = members.quorum(node)
        assert view.complete(2) and "2Node" in view.flags, (node, view.raw)
    assert len(samples) > 10 and all(samples), f"node1 not quorate at {samples.count(False)} of {len(samples)} samples"
    node3 = members.hosts["node3"]
    assert not members.pid("node3")
    kept = node3.run("ls /etc/corosync").text.split()
    assert "corosync.conf" not in kept and "authkey" not in kept, kept
    assert any(f.startswith("corosync.conf.runbook-") and f.endswith(".removed") for f in kept), kept
    key = next(f for f in kept if f.startswith("authkey.runbook-") and f.endswith(".removed"))
    assert node3.run(f"stat -c '%a %U:%G' /etc/corosync/{key}").text.strip() == "400 root:root"
    assert node3.run("ls /etc/rc2.d/ | grep -c '^K..corosync'", check=False).text.strip() == "1", "disabled at boot (a K link)"
    assert node3.run("ls /etc/rc2.d/ | grep -c '^S..corosync'", check=False).text.strip() == "0", "still enabled at boot"
    again = members.run(mapping("node1", "node2"))
    assert again.returncode == 0 and "everything was already in place" in again.stderr, again.stderr[-2000:]


def test_rotate_key_gives_every_node_the_same_new_key_by_one_reload_and_shows_no_byte_of_it(members: Members) -> None:
    names = ("node1", "node2")
    digest = f"sha256sum {KEY} | cut -d' ' -f1"
    old = {n: members.hosts[n].run(digest).text.strip() for n in names}
    before = {n: members.pid(n) for n in names}
    ring = members.quorum("node1").ring_id
    data = mapping(*names)
    path = members.tmp / "rotate.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "runbook", "rotate-key", str(path), "--out", str(members.tmp / "rotate-runs")],
                            capture_output=True, text=True, cwd=REPO, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    new = {n: members.hosts[n].run(digest).text.strip() for n in names}
    assert len(set(new.values())) == 1 and set(new.values()) != set(old.values()), (old, new)
    assert {n: members.pid(n) for n in names} == before, "taken by reload: no node restarted"
    for node in names:
        view = members.quorum(node)
        assert view.complete(2) and view.ring_id == ring, (node, view.raw)
    assert "every node took the new authkey by reload" in result.stderr
    # the old key stays on each node as a root-only backup
    for node in names:
        backups = members.hosts[node].run(f"for f in {KEY}.runbook-*.bak; do echo \"$(stat -c '%a %U:%G' $f) $(sha256sum < $f | cut -d' ' -f1)\"; done").text
        assert f"400 root:root {old[node]}" in backups, (node, backups)
    # the key's bytes in no output and no record: raw, hex, base64
    import base64

    raw = base64.b64decode(members.hosts["node1"].run(f"base64 -w0 {KEY}").text.strip())
    forms = {"raw": raw, "hex": raw.hex().encode(), "HEX": raw.hex().upper().encode(), "base64": base64.b64encode(raw)}
    texts = {"stdout": result.stdout.encode(), "stderr": result.stderr.encode()}
    texts.update({str(p): p.read_bytes() for p in (members.tmp / "rotate-runs").rglob("*") if p.is_file()})
    assert len(texts) > 5, sorted(texts)
    for where, text in texts.items():
        for form, value in forms.items():
            assert value[:24] not in text, f"the new key ({form}) is in {where}"
    again = members.run(data)
    assert again.returncode == 0 and "everything was already in place" in again.stderr, again.stderr[-2000:]
