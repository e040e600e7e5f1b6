"""Lab worlds: a lab someone left up at the chapter's addresses is neither in the way nor touched.

The suite itself runs in a world (`make test`); these tests make a lab here at the chapter's subnet,
as `make demo` does on the machine, then check what a newcomer needs: a second world can make its own
lab at the same addresses and take it down again, the first lab still answers afterwards, and the docs
build names the lab in its way at once instead of waiting for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.errors import SubnetInUse
from runbook.lab import netns, up
from runbook.lab import state as lab_state
from tests.lab.conftest import running_lab

REPO = Path(__file__).resolve().parents[2]
CHAPTER_NODES = [("node1", "10.0.66.201"), ("node2", "10.0.66.202")]


@pytest.fixture(scope="module")
def held_lab() -> Iterator[lab_state.LabState]:
    """A lab holding the chapter's subnet, like the one `make demo` leaves up."""
    with running_lab("ptheld", CHAPTER_NODES) as state:
        yield state


def _runbook(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbook", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO,
        env=dict(os.environ),
    )


def test_another_world_makes_a_lab_at_the_same_addresses_and_leaves_ours_alone(held_lab: lab_state.LabState) -> None:
    inner = (
        "set -e; python -m runbook lab up clusters/chapter.yaml --lab ptinner; "
        "python -m runbook lab ssh --lab ptinner node1 hostname; ip netns list"
    )
    result = subprocess.run(
        [sys.executable, "-m", "runbook", "lab", "world", "--world", "ptw", "--", "sh", "-c",
         inner.replace("python", sys.executable)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "node1" in result.stdout.splitlines()  # a real host in the world answered
    assert "wptw-rb-ptinner-node1" in result.stdout  # its namespace is named after the world: no clash
    # The world and its lab are gone; ours is still whole.
    assert "rbw-ptw" not in netns.netns_list()
    assert not any("ptinner" in ns for ns in netns.netns_list())
    rows = up.status(held_lab)
    assert [r.sshd for r in rows] == [True, True], rows


def test_a_world_in_use_is_refused_at_once() -> None:
    holder = subprocess.Popen(
        [sys.executable, "-m", "runbook", "lab", "world", "--world", "ptbusy", "--", "sleep", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 20
        while "rbw-ptbusy" not in netns.netns_list() and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        second = _runbook("lab", "world", "--world", "ptbusy", "--", "true", timeout=30)
        assert time.monotonic() - started < 10
        assert second.returncode == 1
        assert "world 'ptbusy' is in use by pid" in second.stderr
    finally:
        holder.terminate()
        holder.wait(timeout=30)
    assert "rbw-ptbusy" not in netns.netns_list()


def test_lab_up_names_the_lab_holding_the_subnet(held_lab: lab_state.LabState) -> None:
    with pytest.raises(SubnetInUse) as caught:
        up.up("ptclash", CHAPTER_NODES, packages=False)
    assert caught.value.lab == "ptheld"
    assert "runbook lab down --lab ptheld" in str(caught.value)
    assert "runbook lab world" in str(caught.value)
    assert lab_state.LabState.load("ptclash") is None  # nothing made


def test_the_docs_build_names_the_lab_in_its_way_at_once(held_lab: lab_state.LabState) -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import build_docs
    finally:
        sys.path.pop(0)
    started = time.monotonic()
    with pytest.raises(build_docs.BuildError, match="lab 'ptheld' holds the chapter's subnet 10.0.66.0/24"):
        build_docs.lab_up("ptdocs")
    assert time.monotonic() - started < 30  # no waiting for a lab that will not go away
    assert lab_state.LabState.load("ptdocs") is None
