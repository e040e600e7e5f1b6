"""A step that writes on several nodes changes all of them or none (issue 15, on issue 12's executor).

Node2's /etc/corosync is made nearly full (a small tmpfs holding its current files), then the cluster
file changes a setting: step 02 stages the new file on every node first, node2 cannot, and so no node
gets its new file, no staged temp file or fresh backup is left anywhere, and the report says so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from runbook.lab import netns, plan
from tests.lab.conftest import REPO, running_lab

STATE = "for f in /etc/corosync/*; do [ -f \"$f\" ] && sha256sum \"$f\"; done; ls -A /etc/corosync; true"


def runbook(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runbook", *args], capture_output=True, text=True, cwd=REPO, timeout=900)


def test_disk_full_on_one_node_leaves_every_node_unchanged(tmp_path: Path) -> None:
    with running_lab("ptaon", plan.generated_nodes(2, "10.0.79.0/24")) as state:
        out = tmp_path / "runs"
        first = runbook("run", str(state.cluster_file), "--out", str(out))
        assert first.returncode == 0, first.stderr[-3000:]
        node2 = state.host("node2")
        fill = (
            "set -e; mkdir -p /tmp/keep; cp -a /etc/corosync/. /tmp/keep/; "
            "mount -t tmpfs -o size=48k tmpfs /etc/corosync; cp -a /tmp/keep/. /etc/corosync/; "
            "dd if=/dev/zero of=/etc/corosync/.filler bs=1k 2>/dev/null || true; sync"
        )
        netns.host_exec(node2, fill)
        before = {h.name: netns.host_exec(h, STATE).stdout for h in state.hosts}

        data = yaml.safe_load(state.cluster_file.read_text())
        data["totem"] = {**(data.get("totem") or {}), "token": 4321}
        changed = tmp_path / "cluster.yaml"
        changed.write_text(yaml.safe_dump(data, sort_keys=False))
        result = runbook("run", str(changed), "--out", str(out), "--only", "02")

        assert result.returncode == 1, result.stderr[-3000:]
        assert "step 02-corosync-conf failed on" in result.stderr and "node2" in result.stderr
        assert "nothing was changed on any node" in result.stderr and "Traceback" not in result.stderr
        after = {h.name: netns.host_exec(h, STATE).stdout for h in state.hosts}
        assert after == before  # node1 too: not its file, no staged temp file, no new backup
        assert "token: 4321" not in netns.host_exec(state.host("node1"), "cat /etc/corosync/corosync.conf").stdout
        netns.host_exec(node2, "umount /etc/corosync")
