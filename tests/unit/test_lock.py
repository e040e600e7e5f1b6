"""The locks' logic, with real flock(2) on this machine: the node's lock script runs under `sh` here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runbook.errors import RunLocked
from runbook.run import lock


def holder(pid: int = 4242, command: str = "run") -> lock.Holder:
    return lock.Holder("ctl-a", pid, "2026-11-26T07:15:02+00:00", "99", command, "chapter", "1a2b3c4d")


def test_the_controller_lock_refuses_a_second_holder_and_frees_itself(tmp_path: Path) -> None:
    first = lock.ControllerLock(tmp_path)
    first.acquire(holder())
    assert lock.probe_controller(tmp_path) == holder()
    with pytest.raises(RunLocked) as info:
        lock.ControllerLock(tmp_path).acquire(holder(1, "run"))
    assert info.value.exit_code == 75 and info.value.holder == holder()
    assert "locked by a run of cluster 'chapter' by pid 4242 on ctl-a, started 2026-11-26T07:15:02+00:00" in str(info.value)
    first.release()
    assert lock.probe_controller(tmp_path) is None
    again = lock.ControllerLock(tmp_path)
    again.acquire(holder(7))
    again.release()


def test_a_dead_process_holds_no_controller_lock(tmp_path: Path) -> None:
    """The lock is held by a process that then dies by SIGKILL: the next one gets it."""
    code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from runbook.run import lock\n"
        f"lock.ControllerLock(Path({str(tmp_path)!r})).acquire(lock.this_holder('run', 'chapter'))\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen([os.sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "held\n"
        seen = lock.probe_controller(tmp_path)
        assert seen is not None and seen.pid == child.pid and lock.is_alive(seen.host, seen.pid, seen.pid_start)
    finally:
        child.kill()
        child.wait()
    assert lock.is_alive(seen.host, seen.pid, seen.pid_start) is False
    mine = lock.ControllerLock(tmp_path)
    mine.acquire(holder())
    mine.release()


def test_the_node_lock_script_answers_locked_then_busy_and_frees_on_eof(tmp_path: Path) -> None:
    path = str(tmp_path / "node.lock")
    first = subprocess.Popen(["sh", "-c", lock.node_lock_script(holder(1), path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert first.stdout is not None and first.stdout.readline() == b"locked\n"
        second = subprocess.run(["sh", "-c", lock.node_lock_script(holder(2), path)], input=b"", capture_output=True, timeout=30)
        answer, record = second.stdout.decode().split("\n", 1)
        assert answer == "busy" and lock.Holder.from_json(record) == holder(1)
        assert first.stdin is not None
        first.stdin.write(b"\n")  # a heartbeat keeps it
        first.stdin.flush()
        assert first.poll() is None
        first.stdin.close()  # the connection closes: the shell ends, the lock is free
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    third = subprocess.run(["sh", "-c", lock.node_lock_script(holder(3), path)], input=b"", capture_output=True, timeout=30)
    assert third.stdout.startswith(b"locked\n")


def test_the_node_lock_expires_without_heartbeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lock, "NODE_LOCK_EXPIRES", 1)
    path = str(tmp_path / "node.lock")
    read, write = os.pipe()  # stdin stays open but silent: a controller that lost power
    try:
        first = subprocess.run(["sh", "-c", lock.node_lock_script(holder(1), path)], stdin=read, capture_output=True, timeout=30)
    finally:
        os.close(read)
        os.close(write)
    assert first.stdout == b"locked\n"  # it ended by itself, so the lock is free
    second = subprocess.run(["sh", "-c", lock.node_lock_script(holder(2), path)], input=b"", capture_output=True, timeout=30)
    assert second.stdout.startswith(b"locked\n")


def test_the_node_lock_probe_sees_a_held_lock_without_taking_it(tmp_path: Path) -> None:
    """The probe reads /proc/locks: it answers busy while a run holds the lock, and never takes it."""
    path = str(tmp_path / "node.lock")
    probe = ["sh", "-c", lock.node_lock_probe_script(path)]
    assert subprocess.run(probe, capture_output=True, timeout=30).stdout == b"free\n"  # no lock file yet
    first = subprocess.Popen(["sh", "-c", lock.node_lock_script(holder(1), path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert first.stdout is not None and first.stdout.readline() == b"locked\n"
        answer, record = subprocess.run(probe, capture_output=True, timeout=30).stdout.decode().split("\n", 1)
        assert answer == "busy" and lock.Holder.from_json(record) == holder(1)
        assert first.stdin is not None
        first.stdin.close()
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert subprocess.run(probe, capture_output=True, timeout=30).stdout == b"free\n"  # the record stays, the lock is gone
    held = subprocess.Popen(["flock", "-s", path, "sh", "-c", "echo held; exec sleep 600"], stdout=subprocess.PIPE, start_new_session=True)
    try:  # a shared lock is no run's lock ...
        assert held.stdout is not None and held.stdout.readline() == b"held\n"
        assert subprocess.run(probe, capture_output=True, timeout=30).stdout == b"free\n"
    finally:
        os.killpg(held.pid, 9)
        held.wait()
    # ... and the probe took nothing: a run's lock is free at once after it
    again = subprocess.run(["sh", "-c", lock.node_lock_script(holder(3), path)], input=b"", capture_output=True, timeout=30)
    assert again.stdout.startswith(b"locked\n")


def test_a_plan_refused_by_nodes_locks_names_every_holder() -> None:
    refused = lock.refuse_plan({"node1": holder(7), "node2": holder(7)})
    assert isinstance(refused, RunLocked) and refused.exit_code == 75 and refused.host == "node1" and refused.holder == holder(7)
    lines = str(refused).splitlines()
    assert lines[0].startswith("node1: held by a run of cluster 'chapter' by pid 7 on ctl-a, started 2026-11-26T07:15:02+00:00; a plan would read")
    assert lines[1].startswith("node2: held by a run of cluster 'chapter' by pid 7 on ctl-a")
    assert all("nothing was changed" in line for line in lines)
