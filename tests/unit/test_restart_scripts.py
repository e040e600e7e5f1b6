"""The scripts that stop and start Corosync (runbook.steps.start): valid POSIX sh, and a stop by pid
that sees only the node's own PID namespace.

The by-pid stop runs here for real, with a stand-in `corosync` (a copy of sleep), in PID namespaces
of its own (unshare, as root): the outer one stands for a container host, the inner one for the node.
Nothing outside those namespaces is visible to it, so nothing else can be signalled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from runbook.steps.restart import BY_PID, PID_FILE, control_commands, restart_script, systemd_restart_script

SCRIPTS = {
    "sysv": restart_script("sysv"),
    "upstart": restart_script("upstart"),
    "none": restart_script("none"),
    "systemd": systemd_restart_script(),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("shell", [["dash", "-n"], ["bash", "--posix", "-n"]], ids=["dash", "bash-posix"])
def test_every_restart_script_is_valid_posix_sh(name: str, shell: list[str]) -> None:
    result = subprocess.run([*shell, "-c", SCRIPTS[name]], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_init_script_stops_only_a_corosync_its_pid_file_names() -> None:
    script = SCRIPTS["sysv"]
    stop, _, _ = control_commands("sysv")
    assert stop in script and f"cat {PID_FILE}" in script
    assert script.index(f"cat {PID_FILE}") < script.index(stop) < script.index('rb_stop_by_pid "$rb_why"')
    assert "pidof corosync" not in script.replace("$(pidof corosync 2>/dev/null || true)", ""), "every pidof goes through rb_corosync"
    assert "pidof corosync" not in SCRIPTS["systemd"].replace("$(pidof corosync 2>/dev/null || true)", "")


# The node: its own PID namespace and /proc. A container on it runs a corosync of its own, in a PID
# namespace below the node's: the node's /proc shows both, and only the node's own may be stopped.
NODE = BY_PID + """
unshare -p -f "$FAKE" 600 &
"$FAKE" 600 &
i=0; until [ "$(pidof corosync | wc -w)" = 2 ]; do i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.05; done
echo "node sees: $(rb_corosync)"
rb_stop_by_pid "no pid file here"
echo "left: $(rb_corosync)."
echo "still running: $(pidof corosync | wc -w)"
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare for PID namespaces")
def test_stop_by_pid_stops_the_nodes_own_corosync_and_no_containers(tmp_path: Path) -> None:
    fake = tmp_path / "corosync"
    shutil.copy("/bin/sleep", fake)
    result = subprocess.run(  # everything in the namespace ends with its PID 1, the sh
        ["unshare", "-p", "-f", "--mount-proc", "sh", "-c", NODE], env={**os.environ, "FAKE": str(fake)},
        capture_output=True, text=True, timeout=120,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 4, result.stdout + result.stderr
    assert lines[0].startswith("node sees: ") and len(lines[0].split()) == 3, "one corosync in the node's own view"
    pid = lines[0].split()[2]
    assert lines[1:] == [
        f"note: no pid file here: stopped corosync by pid {pid} (SIGTERM)",
        "left: .",
        "still running: 1",  # the container's
    ], result.stdout + result.stderr


# --- a restart, once begun, finishes without the controller (issue 22) --------------------------------


def test_a_detached_script_passes_on_its_output_and_exit_status() -> None:
    import subprocess

    from runbook.steps.restart import detached

    done = subprocess.run(["sh", "-c", detached('set -e\necho "note: it ran"\necho oops >&2\nexit 3')], capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert done.stdout == "note: it ran\noops\n"


def test_a_detached_script_finishes_when_the_group_that_started_it_is_killed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As the session watchdog kills a dead controller's command group: the restart still ends its start."""
    import os
    import signal
    import subprocess
    import time

    from runbook.steps.restart import detached

    marker = tmp_path / "started"
    waiting = subprocess.Popen(["sh", "-c", detached(f"sleep 1\necho up > {marker}")], start_new_session=True)
    time.sleep(0.3)
    os.killpg(waiting.pid, signal.SIGKILL)  # stop ... (the controller dies here) ...
    waiting.wait()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.read_text() == "up\n", "... start: the detached part went on alone"


def test_every_restart_operation_runs_detached() -> None:
    from runbook.steps.restart import DETACHED_END, restart_operation

    for init in ("systemd", "sysv", "none"):
        op = restart_operation(init, "restart", "corosync.conf changed")
        assert op.script.startswith("rb_d=$(mktemp -d /run/runbook-restart-") and DETACHED_END in op.script
        assert "setsid sh -c" in op.script
