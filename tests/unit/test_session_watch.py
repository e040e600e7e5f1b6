"""The watchdog every node command runs under (runbook.hosts.session_watched), run here by dash and bash.

A stand-in for the node's sshd is a `sleep` this test starts and kills; the command runs in a session
of its own, as sshd runs it. What must hold: the command's stdin arrives byte for byte, its stdout,
stderr and exit status are its own, it ends when "sshd" goes, and the watchdog ends by itself after
the command. Only processes this test starts are signalled.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.ssh.liveness import session_watched

SHELLS = ["dash", "bash"]


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture()
def sshd() -> Iterator[subprocess.Popen[bytes]]:
    """A process standing in for the session's sshd (the watchdog only checks that it lives)."""
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def run_watched(shell: str, command: str, sshd_pid: int, **kw):  # type: ignore[no-untyped-def]
    """As `sudo ... sh -c WATCHED sh "$PPID"` runs it: the sshd's pid is $1, in a session of its own."""
    return subprocess.Popen([shell, "-c", session_watched(command), "sh", str(sshd_pid)], start_new_session=True, **kw)


def session_processes(sid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(proc.name))
    return found


@pytest.mark.parametrize("shell", SHELLS)
def test_stdin_stdout_stderr_and_status_are_the_commands_own(shell: str, sshd: subprocess.Popen[bytes]) -> None:
    data = os.urandom(1 << 20) + b"\0\n\r\x1b last line without newline"
    process = run_watched(shell, "cat; echo to-stderr >&2; exit 7", sshd.pid, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate(data, timeout=60)
    assert (process.returncode, out, err) == (7, data, b"to-stderr\n")
    wait_for(lambda: not session_processes(process.pid), 10, "the watchdog to end after the command")


@pytest.mark.parametrize("shell", SHELLS)
def test_the_commands_own_traps_positional_parameters_and_set_e_work(shell: str, sshd: subprocess.Popen[bytes]) -> None:
    command = 'trap "echo cleaned" EXIT; set -e; echo "args=$#"; false; echo not-reached'
    process = run_watched(shell, command, sshd.pid, stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=60)
    assert (process.returncode, out) == (1, b"args=0\ncleaned\n")


@pytest.mark.parametrize("shell", SHELLS)
def test_the_command_ends_when_its_sshd_is_gone(shell: str, sshd: subprocess.Popen[bytes], tmp_path: Path) -> None:
    after = tmp_path / "after"
    process = run_watched(shell, f"sleep 600; touch {after}", sshd.pid)
    try:
        wait_for(lambda: len(session_processes(process.pid)) >= 3, 10, "the command and its watchdog")  # shell, sleep, watchdog
        sshd.kill()
        sshd.wait()
        process.wait(timeout=10)
        wait_for(lambda: not session_processes(process.pid), 10, "every process of the command's session to end")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    assert process.returncode == -15  # SIGTERM
    assert not after.exists()


def test_no_watchdog_when_the_command_shares_sshds_process_group(sshd: subprocess.Popen[bytes]) -> None:
    """Killing that group could hit sshd's own processes: then the command runs unwatched, as before."""
    process = subprocess.Popen(["dash", "-c", session_watched("sleep 600"), "sh", str(os.getpid())], start_new_session=False)
    children: list[int] = []
    try:
        wait_for(lambda: any(process_name(p) == "sleep" for p in _children(process.pid)), 10, "the command")
        children = _children(process.pid)
        assert [process_name(p) for p in children] == ["sleep"], "no watchdog beside the command"
    finally:
        for child in children or _children(process.pid):
            os.kill(child, 9)
        process.kill()
        process.wait()


def _children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(proc.name))
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
