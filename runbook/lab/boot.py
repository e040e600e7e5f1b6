"""Lab hosts that boot: systemd as PID 1 in a systemd-nspawn machine, and reboots of every lab host.

A booting host (`lab up --os debian12|debian13`) sits in the same network namespace the lab makes for
every host (its address on the lab's bridge). A small supervisor per host, started by the lab inside
that namespace and in a private mount namespace, mounts the host's overlay (the cached tree from
`lab_rootfs` below, the host's upper dir above: its disk) and runs systemd-nspawn in a loop, like the
power of a machine: nspawn exiting with 133 (`systemctl reboot` inside) or a hard reset requested by
the lab boots the machine again; anything else (`poweroff`) leaves it off. The overlay lives in the
supervisor's private mount namespace, so it vanishes with it: `lab down` kills by namespace and the
mounts go too, even after a crash.

Reboots of `host` hosts (no init, sysv packaging) are done as a boot would do them: every process of
the host is killed, /run and /tmp emptied, then sshd, the enabled S* scripts of runlevel 2 and
/etc/rc.local run, so the chapter's rc.local line and START=yes are proved there as well.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runbook.errors import LabError
from runbook.lab.netns import host_exec, init_pid, netns_pids
from runbook.lab.plan import hosts_entries
from runbook.lab.rootfs import BootOS, boot_os, require_ready
from runbook.lab.sshd import sshd_answers, sshd_command, wait_for_sshd

if TYPE_CHECKING:
    from runbook.lab.state import LabHost, LabState

REBOOT_EXIT = 133  # systemd-nspawn's exit status when the machine asked to be rebooted
BOOT_WAIT_SECONDS = 90.0
HARD_FLAG = "hard-reset"
STOP_FLAG = "stop"
BOOTS_FILE = "boots"
# The lab's host key only; sshd started by systemd, root by key only. No ListenAddress: sshd listens on
# every address of the host's network namespace, so it answers on every link (one cut leaves the others).
SSHD_DROPIN = "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"


# ---------------------------------------------------------------------------------------------
# Pure: the commands and scripts


def nspawn_argv(root: Path, host: LabHost) -> list[str]:
    """systemd-nspawn booting `root` as `host`, in the host's network namespace.

    This machine has no systemd of its own (and a cgroup v1 hybrid layout): --register=no and
    --keep-unit keep nspawn from asking for machined or a scope unit. CAP_NET_ADMIN, which nspawn drops by
    default, is given back as a real node has it (nftables, ip link): it reaches only the host's own
    network namespace, so a lab host's firewall stays inside the lab.
    """
    return [
        "systemd-nspawn",
        "--quiet",
        "-D", str(root),
        "--register=no",
        "--keep-unit",
        "-b",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "--capability=CAP_NET_ADMIN",
        f"--hostname={host.name}",
        f"--machine={host.netns}",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
        "--console=read-only",
    ]


def supervisor_script(state: LabState, host: LabHost, lower: Path) -> str:
    """The per-host supervisor: mount the overlay, then boot the machine again whenever it reboots."""
    d = state.host_dir(host)
    nspawn = shlex.join(nspawn_argv(d / "root", host))
    return f"""#!/bin/bash
# Supervisor of lab host {host.name} (lab '{state.name}'): the machine's power. Started by `runbook lab up`.
set -u
D={shlex.quote(str(d))}
mount -t overlay overlay -o lowerdir={shlex.quote(str(lower))},upperdir=$D/upper,workdir=$D/work $D/root || exit 1
trap 'exit 0' TERM INT
boots=$(cat $D/{BOOTS_FILE} 2>/dev/null || echo 0)
while :; do
  boots=$((boots + 1)); echo $boots > $D/{BOOTS_FILE}.tmp; mv -f $D/{BOOTS_FILE}.tmp $D/{BOOTS_FILE}
  rm -f $D/{HARD_FLAG}
  [ -e $D/{STOP_FLAG} ] && exit 0
  echo "== boot $boots: $(date -u +%FT%TZ)"
  {nspawn} < /dev/null &
  wait $!; rc=$?
  echo "== machine exited with status $rc"
  [ -e $D/{STOP_FLAG} ] && exit 0
  if [ $rc -eq {REBOOT_EXIT} ] || [ -e $D/{HARD_FLAG} ]; then continue; fi
  echo off > $D/power
  exit 0
done
"""


def host_files(state: LabState, host: LabHost) -> dict[str, tuple[str, int]]:
    """Files a booting host gets in its upper dir before its first boot: {path inside: (text, mode)}."""

    pub = state.identity.with_suffix(".pub").read_text()
    lines = "".join(f"{address} {name}\n" for address, name in hosts_entries(state, host))
    return {
        "/etc/hostname": (f"{host.name}\n", 0o644),
        "/etc/hosts": (f"127.0.0.1 localhost\n{lines}", 0o644),
        "/etc/ssh/sshd_config.d/runbook-lab.conf": (SSHD_DROPIN, 0o644),
        "/root/.ssh/authorized_keys": (pub, 0o600),
    }


# ---------------------------------------------------------------------------------------------
# Booting hosts


def require_boot_support() -> None:
    """Say in one line what is missing for booting hosts, before anything is made."""
    if shutil.which("systemd-nspawn") is None:
        raise LabError("booting lab hosts needs systemd-nspawn; install it: apt-get install systemd-container")
    if shutil.which("nsenter") is None:
        raise LabError("booting lab hosts needs nsenter; install util-linux")


def _boot_os_of(state: LabState) -> BootOS:
    return boot_os(state.os)


def start_host(state: LabState, host: LabHost) -> None:
    """Prepare the host's disk (upper dir) and start its supervisor in the host's network namespace."""
    lower = require_ready(_boot_os_of(state))
    d = state.host_dir(host)
    upper = d / "upper"
    for path, (text, mode) in host_files(state, host).items():
        target = upper / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)
    os.chmod(upper / "root", 0o700)
    os.chmod(upper / "root/.ssh", 0o700)
    script = d / "supervisor.sh"
    script.write_text(supervisor_script(state, host, lower))
    log = open(d / "boot.log", "ab")
    try:
        # nsenter, not `ip netns exec`: that remounts /sys, and nspawn needs this machine's cgroup mounts.
        subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{host.netns}", "unshare", "-m", "--propagation", "private", "bash", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
        )
    finally:
        log.close()


def boots(state: LabState, host: LabHost) -> int:
    """How many times the host has booted (1 after `lab up`)."""
    try:
        return int((state.host_dir(host) / BOOTS_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def _supervisor_pids(state: LabState, host: LabHost) -> list[int]:

    script = str(state.host_dir(host) / "supervisor.sh")
    found = []
    for pid in netns_pids(host.netns):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if script.encode() in cmdline:
            found.append(pid)
    return found


def kill_host(state: LabState, host: LabHost) -> None:
    """Pull the plug for good: tell the supervisor not to boot again, kill the machine, then the rest.

    The machine goes first so that nspawn and the supervisor end normally and are reaped by their
    parents (killed first, they would stay as zombies under this machine's init).
    """

    supervisors = _supervisor_pids(state, host)
    if supervisors:
        (state.host_dir(host) / STOP_FLAG).write_text("")
        try:
            _signal(init_pid(host), signal.SIGKILL)
        except LabError:
            pass  # no machine running
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in supervisors) and time.monotonic() < deadline:
            time.sleep(0.05)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = netns_pids(host.netns)
        if not pids:
            return
        for pid in pids:
            _signal(pid, signal.SIGKILL)
        time.sleep(0.05)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def hard_reset(state: LabState, host: LabHost) -> None:
    """Power-cycle: flag the supervisor, then SIGKILL the machine's PID 1 (its whole PID namespace dies)."""

    if not _supervisor_pids(state, host):
        raise LabError(f"host {host.name}: its supervisor is not running (the machine is off); `runbook lab up` again")
    (state.host_dir(host) / HARD_FLAG).write_text("")
    _signal(init_pid(host), signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# Reboots, for every kind of host


SYSV_BOOT = """
i=0; while kill -0 $PPID 2>/dev/null && [ $i -lt 50 ]; do sleep 0.05; i=$((i+1)); done   # let the launching shell exit first: the kill below would hit it
kill -KILL -1 2>/dev/null   # every process of this host but PID 1 (and this shell): the power goes
sleep 0.2
find /run /tmp -mindepth 1 -delete 2>/dev/null
mkdir -p /run/sshd /var/log
{sshd} >>/var/log/lab-sshd.log 2>&1 < /dev/null &
echo "== boot $(date -u +%FT%TZ)" >> /var/log/lab-boot.log
for s in /etc/rc2.d/S[0-9][0-9]*; do
  [ -x "$s" ] || continue
  case "$s" in *ssh|*dbus|*postgresql|*sudo) continue;; esac   # this machine's own services; sshd is the lab's
  echo "$s start" >> /var/log/lab-boot.log
  "$s" start >> /var/log/lab-boot.log 2>&1 < /dev/null
done
if [ -x /etc/rc.local ]; then
  echo "/etc/rc.local" >> /var/log/lab-boot.log
  /etc/rc.local >> /var/log/lab-boot.log 2>&1 < /dev/null
fi
touch /run/lab-booted
true
"""


def sysv_boot_script(sshd_command: str) -> str:
    """Pure: what a sysv boot does on a `host` host, as one script run by the host's PID 1 stand-in."""
    return SYSV_BOOT.format(sshd=sshd_command)


def reboot(state: LabState, host_name: str, hard: bool = False, progress=lambda _: None) -> int:  # type: ignore[no-untyped-def]
    """Reboot one host and wait until it answers SSH again; returns its new boot count."""

    host = state.host(host_name)
    before = boots(state, host)
    if state.os == "host":
        progress(f"{host.name}: {'hard ' if hard else ''}reboot: killing its processes, then sshd, rc2.d S* scripts, /etc/rc.local")
        script = sysv_boot_script(sshd_command(state, host))
        # setsid + nohup: the script outlives the shell and nsenter that start it; it waits for them to
        # exit before it kills every process of the host.
        # The old boot's marker goes first, here: the wait below must not see it before the script runs.
        host_exec(host, f"rm -f /run/lab-booted; setsid nohup sh -c {shlex.quote(script)} >/dev/null 2>&1 < /dev/null &")
        (state.host_dir(host) / BOOTS_FILE).write_text(f"{max(before, 1) + 1}\n")
    elif not _supervisor_pids(state, host):
        progress(f"{host.name}: the machine is off (e.g. `systemctl poweroff`); powering it on")
        (state.host_dir(host) / "power").unlink(missing_ok=True)
        start_host(state, host)
    elif hard:
        progress(f"{host.name}: hard reset (SIGKILL to the machine's PID 1)")
        hard_reset(state, host)
    else:
        progress(f"{host.name}: systemctl reboot")
        host_exec(host, "systemctl reboot", check=False)
    deadline = time.monotonic() + BOOT_WAIT_SECONDS
    if state.os != "host":
        while boots(state, host) <= before:
            if time.monotonic() > deadline:
                raise LabError(f"host {host.name} did not boot again within {BOOT_WAIT_SECONDS:g}s (see {state.host_dir(host) / 'boot.log'})")
            time.sleep(0.2)
    else:
        time.sleep(0.5)
        while host_exec(host, "test -e /run/lab-booted", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise LabError(f"host {host.name}: its boot scripts did not finish within {BOOT_WAIT_SECONDS:g}s (see /var/log/lab-boot.log in it)")
            time.sleep(0.2)
    while not sshd_answers(host):  # on any link: link 0 may be cut
        if time.monotonic() > deadline:
            raise LabError(f"host {host.name}: sshd did not come back within {BOOT_WAIT_SECONDS:g}s (see {state.host_dir(host) / 'boot.log'})")
        time.sleep(0.2)
    after = boots(state, host)
    progress(f"{host.name}: up again (boot {after})")
    return after


# ---------------------------------------------------------------------------------------------
# What `lab status` shows about Corosync at boot


@dataclass(frozen=True)
class BootState:
    enabled: str  # "enabled", "disabled", "not installed", "?"
    active: str  # "active", "inactive", "failed", ...


SYSTEMD_STATE = "systemctl is-enabled corosync 2>/dev/null || true; echo @@; systemctl is-active corosync 2>/dev/null || true"
SYSV_STATE = (
    "[ -e /etc/init.d/corosync ] || { echo 'not installed'; echo @@; echo inactive; exit 0; }; "
    "ls /etc/rc2.d/S[0-9][0-9]corosync >/dev/null 2>&1 && echo enabled || echo disabled; "
    "grep -Eq '^[[:space:]]*START=no' /etc/default/corosync 2>/dev/null && echo ' (START=no)'; "
    "echo @@; pidof corosync >/dev/null && echo active || echo inactive"
)


def parse_boot_state(text: str) -> BootState:
    """Pure: the two halves of SYSTEMD_STATE or SYSV_STATE output."""
    enabled, _, active = text.partition("@@")
    enabled = " ".join(enabled.split()) or "not installed"
    return BootState(enabled=enabled, active=" ".join(active.split()) or "?")


def boot_state(state: LabState, host: LabHost) -> BootState:

    script = SYSV_STATE if state.os == "host" else SYSTEMD_STATE
    try:
        return parse_boot_state(host_exec(host, script, timeout=15, check=False).stdout)
    except LabError:
        return BootState("?", "?")


def wait_until_booted(state: LabState, hosts: list[LabHost], progress=lambda _: None) -> None:  # type: ignore[no-untyped-def]
    """Wait for sshd on every booting host (systemd starts it), naming the hosts that did not come up."""

    wait_for_sshd(state, hosts, BOOT_WAIT_SECONDS, "these hosts did not boot to sshd", poll=0.2)


def machine_running(host: LabHost) -> bool:
    """Whether systemd inside says the boot finished (running or degraded)."""

    try:
        out = host_exec(host, "systemctl is-system-running 2>/dev/null || true", timeout=15, check=False).stdout.strip()
    except LabError:
        return False
    return out in ("running", "degraded")
