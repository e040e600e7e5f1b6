"""The sshd of each lab host: its host keys, its command line, starting and stopping it, and waiting
until it answers (the lab is ready when every host's sshd does).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Sequence

from runbook.errors import LabError
from runbook.lab.netns import host_exec
from runbook.lab.state import LabHost, LabState, Progress
from runbook.local import run_local

SSHD_WAIT_SECONDS = 15.0


# Inside each host, its own key at the usual place (in the host's upper dir, shadowing this machine's).
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


def sshd_command(state: LabState, host: LabHost) -> str:
    return (
        f"/usr/sbin/sshd -D -e {' '.join(f'-o ListenAddress={a}' for a in host.addresses)} -o HostKey={HOST_KEY}"
        f" -o AuthorizedKeysFile={state.dir}/authorized_keys -o PermitRootLogin=prohibit-password"
        f" -o UsePAM=no -o PidFile=/run/sshd.pid"
    )


def sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def make_host_keys(state: LabState) -> None:
    state.dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state.dir, 0o700)
    if not state.identity.exists():
        run_local(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"runbook-lab-{state.name}", "-f", str(state.identity)])
    (state.dir / "authorized_keys").write_text(state.identity.with_suffix(".pub").read_text())
    known = []
    for host in state.hosts:
        d = state.host_dir(host)
        for sub in ("upper", "work", "root"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        key = d / "ssh_host_ed25519_key"
        if not key.exists():
            run_local(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{host.name}", "-f", str(key)])
        # Placed before the overlay is mounted: files changed under a mounted overlay may not show.
        inside = d / "upper" / HOST_KEY.lstrip("/")
        inside.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(key, inside)
        shutil.copy2(key.with_suffix(".pub"), inside.with_suffix(".pub"))
        os.chmod(inside, 0o600)
        kind, blob = key.with_suffix(".pub").read_text().split()[:2]
        known.append(f"{','.join([host.name, *host.addresses])} {kind} {blob}")  # sshd answers on every link
    state.known_hosts.write_text("\n".join(known) + "\n")


def _sshd_listening(address: str, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def sshd_answers(host: LabHost) -> bool:
    """sshd answers on one of the host's links (it listens on all: link 0 may be cut on purpose)."""
    return any(_sshd_listening(address) for address in host.addresses)


def wait_for_every_sshd(state: LabState, progress: Progress) -> None:
    wait_for_sshd(state, state.hosts, SSHD_WAIT_SECONDS, "sshd did not come up")


def wait_for_sshd(state: LabState, hosts: Sequence[LabHost], seconds: float, what: str, poll: float = 0.1) -> None:
    """Wait until sshd answers on every host; name the ones that did not, with where their log is."""
    deadline = time.monotonic() + seconds
    waiting = list(hosts)
    while waiting:
        waiting = [h for h in waiting if not _sshd_listening(h.address)]
        if not waiting:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{h.name} (see {state.host_dir(h) / 'boot.log'})" for h in waiting)
            raise LabError(f"{what} within {seconds:g}s on: {names}")
        time.sleep(poll)


def stop_sshd(state: LabState, host_name: str) -> None:
    """Take a host's sshd away (the host and its Corosync keep running): a node that cannot be reached."""
    host = state.host(host_name)
    host_exec(host, "kill $(cat /run/sshd.pid) 2>/dev/null; for i in $(seq 50); do [ -e /run/sshd.pid ] || break; sleep 0.1; done; true")
    deadline = time.monotonic() + 5
    while _sshd_listening(host.address) and time.monotonic() < deadline:
        time.sleep(0.1)


def start_sshd(state: LabState, host_name: str) -> None:
    """Bring a host's sshd back (it reads its host key file again, so a new key takes effect)."""
    host = state.host(host_name)
    host_exec(host, f"setsid {sshd_command(state, host)} >>/var/log/lab-sshd.log 2>&1 < /dev/null &")
    deadline = time.monotonic() + SSHD_WAIT_SECONDS
    while not _sshd_listening(host.address):
        if time.monotonic() > deadline:
            raise LabError(f"sshd on {host.name} did not come back within {SSHD_WAIT_SECONDS:g}s")
        time.sleep(0.1)
