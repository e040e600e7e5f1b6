"""The bare baseline: the chapter's steps as plain parallel `ssh` commands, with no checks at all.

What a careful person would type in a loop: install, write the files, make and copy the key,
enable, start, then wait for quorum. No facts, no diffs, no backups, no idempotency, no record.
It exists only to be timed against `runbook run` on identical fresh lab hosts.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from runbook.conf.membership import parse_quorumtool
from runbook.conf.render import render
from runbook.model.types import Cluster


def ssh(config: str, host: str, command: str, data: bytes | None = None) -> bytes:
    result = subprocess.run(
        ["ssh", "-F", config, "-o", "BatchMode=yes", host, command], input=data, capture_output=True, timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(f"{host}: `{command}` exited {result.returncode}: {result.stderr.decode()[-500:]}")
    return result.stdout


def on_all(names: Sequence[str], job: Callable[[str], object]) -> list[object]:
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(job, names))


def run_baseline(cluster: Cluster, ssh_config: str, timeout: float = 300) -> dict[str, float]:
    """Set the cluster up with bare ssh; returns seconds per phase (and 'total')."""
    names = [n.name for n in cluster.nodes]
    primary = cluster.primary.name
    phases: dict[str, float] = {}
    start = last = time.monotonic()

    def lap(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        phases[name] = now - last
        last = now

    on_all(names, lambda n: ssh(ssh_config, n, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q corosync >/dev/null"))
    lap("install")
    on_all(names, lambda n: ssh(ssh_config, n, "cat > /etc/corosync/corosync.conf", render(cluster, n, 3).encode()))
    lap("config")
    key = ssh(ssh_config, primary, "corosync-keygen -l >/dev/null && cat /etc/corosync/authkey")
    others = [n for n in names if n != primary]
    on_all(others, lambda n: ssh(ssh_config, n, "cat > /etc/corosync/authkey && chmod 400 /etc/corosync/authkey", key))
    lap("key")
    on_all(names, lambda n: ssh(ssh_config, n, "update-rc.d corosync enable >/dev/null 2>&1; /etc/init.d/corosync start >/dev/null"))
    deadline = time.monotonic() + timeout
    while True:
        views = on_all(names, lambda n: parse_quorumtool(n, ssh(ssh_config, n, "corosync-quorumtool -s || true").decode()))
        if all(v.complete(len(names)) for v in views):  # type: ignore[union-attr]
            break
        if time.monotonic() > deadline:
            raise RuntimeError("baseline: no full quorate membership within the timeout")
        time.sleep(0.5)
    lap("start+verify")
    phases["total"] = time.monotonic() - start
    return phases
