"""The kernel plumbing of lab hosts: network namespaces, bridges, veth links, the processes in a
host's namespace, and running a command inside a host without SSH (for the lab's own upkeep).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from runbook.errors import LabError, SubnetInUse
from runbook.lab.state import LabHost, LabState, all_labs, labs_root
from runbook.local import run_local


def netns_prefix() -> str:
    """Namespace names are global to the machine, unlike links and routes: a lab made in a lab world
    gets the world's name in front, so it never takes the name of a lab of the same name outside."""
    world = os.environ.get("RUNBOOK_WORLD")
    return f"w{world}-" if world else ""


def require_lab_support() -> None:
    """Say in one line why the lab cannot work here, before making anything."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts); run as root")
    for tool in ("ip", "unshare", "ssh-keygen", "chroot"):
        if shutil.which(tool) is None:
            raise LabError(f"the lab needs `{tool}`; install iproute2, util-linux and openssh-client")
    if not Path("/usr/sbin/sshd").exists():
        raise LabError("the lab needs /usr/sbin/sshd; install openssh-server (apt-get install openssh-server)")
    if run_local(["ip", "netns", "list"], check=False).returncode != 0:
        raise LabError("`ip netns` does not work on this machine; the lab needs network namespaces")
    root = str(labs_root().resolve())
    for tmpfs in ("/tmp", "/run", "/dev", "/proc", "/sys"):
        if root == tmpfs or root.startswith(tmpfs + "/"):
            raise LabError(f"RUNBOOK_LAB_ROOT={root} is under {tmpfs}, which lab hosts do not share")


def netns_list() -> set[str]:
    out = run_local(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_exists(name: str) -> bool:
    return run_local(["ip", "link", "show", "dev", name], check=False).returncode == 0


def netns_pids(netns: str) -> list[int]:
    out = run_local(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def check_subnet_free(state: LabState) -> None:
    """Refuse a subnet the machine already routes: lab traffic must never leave the lab."""
    routes = json.loads(run_local(["ip", "-4", "-j", "route", "show"]).stdout or "[]")
    for subnet_text in [state.subnet, *(link.subnet for link in state.extra_links)]:
        subnet = ipaddress.ip_network(subnet_text)
        for route in routes:
            dst = route.get("dst", "")
            if dst in ("default", "") or route.get("dev") in state.bridges:
                continue
            try:
                net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            except ValueError:
                continue
            if net.overlaps(subnet):
                raise SubnetInUse(str(subnet), route.get("dev", "?"), _lab_owning_link(route.get("dev", "")))


def _lab_owning_link(dev: str) -> str | None:
    for state in all_labs():
        if dev in state.bridges:
            return state.name
    return None


def make_bridge(state: LabState) -> None:
    nets = [(state.bridge, state.subnet, state.bridge_address)]
    nets += [(link.bridge, link.subnet, link.bridge_address) for link in state.extra_links]
    for bridge, subnet, address in nets:
        prefix = ipaddress.ip_network(subnet).prefixlen
        if not link_exists(bridge):
            run_local(["ip", "link", "add", bridge, "type", "bridge"])
        run_local(["ip", "addr", "replace", f"{address}/{prefix}", "dev", bridge])
        run_local(["ip", "link", "set", bridge, "up"])


def interface_of(link: int) -> str:
    """The interface a host has on link `link`, inside its namespace."""
    return f"eth{link}"


def set_link(state: LabState, host_name: str, link: int, up: bool) -> None:
    """Cut (or restore) one host's interface on one link, inside its namespace: a failed network."""
    host = state.host(host_name)
    if not 0 <= link < len(host.addresses):
        raise LabError(f"host {host.name} has no link {link} (it has links 0..{len(host.addresses) - 1})")
    run_local(["ip", "-n", host.netns, "link", "set", interface_of(link), "up" if up else "down"])


def init_pid(host: LabHost) -> int:
    """The host's PID 1, seen from this machine (the process whose children are the host's daemons)."""
    for pid in netns_pids(host.netns):
        try:
            stat = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        ns_pids = next((line.split()[1:] for line in stat.splitlines() if line.startswith("NSpid:")), [])
        if ns_pids and ns_pids[-1] == "1":
            return pid
    raise LabError(f"host {host.name}: no init process in {host.netns}; is the lab up?")


def host_exec(
    host: LabHost, command: str, *, timeout: float = 60, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a host's namespaces and root without SSH (for the lab's own upkeep).

    Files a host uses must be changed this way, not under the lab dir: overlayfs does not promise that
    changes to its lower layer (this machine's /) show inside a mounted host.
    """
    pid = init_pid(host)
    argv = ["nsenter", "-t", str(pid), "-m", "-u", "-p", "-n", "-r", "-w", "sh", "-c", command]
    return run_local(argv, timeout=timeout, check=check, input=input)


def kill_netns(netns: str) -> None:
    """Stop every process in the namespace (PID 1 first takes its PID namespace with it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = netns_pids(netns)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while netns_pids(netns) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not netns_pids(netns):
            return
    raise LabError(f"processes in {netns} survive SIGKILL: {netns_pids(netns)}")


def lab_exec_argv(state: LabState, host_name: str, command: Iterable[str] = ()) -> list[str]:
    """The `ssh` command line that opens a shell (or runs a command) on a lab host."""
    host = state.host(host_name)
    return ["ssh", "-F", str(state.ssh_config), host.name, *command]
