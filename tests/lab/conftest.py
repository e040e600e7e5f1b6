"""Real lab hosts for the tests: made per test module, always removed, and checked to leave nothing behind.

These tests need root and network namespaces. They fail (not skip) where the lab cannot work, so CI
never passes without having run them; set RUNBOOK_SKIP_LAB=1 to skip them on purpose.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runbook.errors import LabError
from runbook.lab import netns, plan, up
from runbook.lab import state as lab_state
from runbook.model.load import load_cluster
from runbook.model.rules import cluster_from_mapping
from runbook.model.types import Cluster
from runbook.ssh.hosts import Hosts, hosts_for

REPO = Path(__file__).resolve().parents[2]
CHAPTER = REPO / "clusters" / "chapter.yaml"


def leftovers(state: lab_state.LabState) -> list[str]:
    """Everything of a removed lab that is still on this machine (should be nothing)."""
    found = []
    namespaces = netns.netns_list()
    found += [f"netns {h.netns}" for h in state.hosts if h.netns in namespaces]
    found += [f"link {name}" for name in state.link_names() if netns.link_exists(name)]
    if state.dir.exists():
        found.append(f"dir {state.dir}")
    mounts = Path("/proc/self/mountinfo").read_text()
    if str(state.dir) in mounts:
        found.append("a mount under the lab dir")
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(state.dir) in cmdline:
                found.append(f"process {proc.name}: {cmdline[:80]!r}")
    return found



def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until predicate() is truthy and return it; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def running_lab(name: str, nodes: Sequence[plan.NodeSpec], os_name: str = "host") -> Iterator[lab_state.LabState]:
    """A lab for the duration of a with-block; removed afterwards, and checked that nothing remains."""
    try:
        netns.require_lab_support()
    except LabError as exc:
        pytest.fail(f"the lab cannot work on this machine: {exc} (set RUNBOOK_SKIP_LAB=1 to skip lab tests)")
    up.down(name)  # leftovers of a crashed earlier run
    state = up.up(name, nodes, os_name=os_name)
    try:
        yield state
    finally:
        up.down(name)
        remaining = leftovers(state)
        assert not remaining, f"lab '{name}' left behind: {remaining}"


def lab_cluster(state: lab_state.LabState, **overrides: object) -> Cluster:
    """A cluster file mapping for a generated lab's hosts."""
    import yaml

    data = yaml.safe_load(state.cluster_file.read_text())
    data.update(overrides)
    return cluster_from_mapping(data, source=str(state.cluster_file))


@pytest.fixture(scope="module")
def chapter_lab() -> Iterator[tuple[lab_state.LabState, Cluster]]:
    """Hosts at the chapter's own addresses (10.0.66.201 and .202) for clusters/chapter.yaml."""
    cluster = load_cluster(CHAPTER)
    with running_lab("ptchap", [(n.name, n.address) for n in cluster.nodes]) as state:
        yield state, cluster


@pytest.fixture()
def chapter_hosts(chapter_lab: tuple[lab_state.LabState, Cluster]) -> Iterator[Hosts]:
    with hosts_for(chapter_lab[1]) as hosts:
        yield hosts
