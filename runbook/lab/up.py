"""Local test hosts: real sshd hosts on this machine, one per cluster node, with nothing outside it.

Each host is a network namespace (its own address on a lab bridge) plus private mount, UTS and PID
namespaces, with an overlay of `/` as its root filesystem (writes land in the host's upper dir) and
an sshd on its address with its own host key. Mounts live in the host's private mount namespace, so
they vanish with its processes: tearing down is killing by namespace, then removing links and dirs.

The lab records what it is about to make *before* making it, so `down` can clean up after a crash or a
half-made lab. Traffic only ever goes to lab hosts: `guard_address` checks the bridge and namespace
before any connection, and with RUNBOOK_LAB_ONLY set it refuses every address that is not a lab host.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Sequence

from runbook.errors import LabError
from runbook.lab import boot as lab_boot
from runbook.lab import rootfs as lab_rootfs
from runbook.lab.netns import check_subnet_free, interface_of, kill_netns, link_exists, make_bridge, netns_list, netns_pids, process_name, require_lab_support
from runbook.lab.plan import NodeSpec, boot_script, cluster_yaml_text, plan_lab, ssh_config_text
from runbook.lab.sshd import make_host_keys, sshd_answers, wait_for_every_sshd
from runbook.lab.state import HostStatus, LabHost, Labs, LabState, Progress, check_lab_name, labs_root, no_progress
from runbook.local import run_local
from runbook.ssh.hosts import LAB_ONLY_ENV

# ---------------------------------------------------------------------------------------------
# Planning (pure): names and addresses, so tests need no root


# ---------------------------------------------------------------------------------------------
# Facts about this machine


# ---------------------------------------------------------------------------------------------
# Safety: traffic only to lab hosts


def guard_address(address: str, labs: Labs | None = None) -> None:
    """Call before connecting to `address`: a lab address must have its bridge and namespace up.

    With RUNBOOK_LAB_ONLY set (tests, CI, `make demo`), an address that is no lab host is refused, so a
    typo in a cluster file can never send traffic to a real network.
    """
    found = (labs or Labs()).for_address(address)
    if found is None:
        if os.environ.get(LAB_ONLY_ENV):
            raise LabError(f"{address} is not a lab host and {LAB_ONLY_ENV} is set; refusing to connect")
        return
    state, host = found
    for bridge in state.bridges:
        if not link_exists(bridge):
            raise LabError(f"{address} is lab host {host.name} of lab '{state.name}', but the lab's bridge {bridge} is gone; run `runbook lab up` again")
    if host.netns not in netns_list():
        raise LabError(f"{address} is lab host {host.name} of lab '{state.name}', but its namespace {host.netns} is gone; run `runbook lab up` again")


# ---------------------------------------------------------------------------------------------
# Making and removing


def prepare_packages(progress: Progress = no_progress) -> None:
    """Fill the machine's apt cache so `apt-get install corosync` inside a host needs no network."""
    missing = [p for p in LAB_PACKAGES
               if "install ok installed" not in run_local(["dpkg-query", "-W", "-f=${Status}", p], check=False).stdout]
    if not missing:
        progress("corosync and its quorum device daemons are installed on this machine itself; lab hosts inherit them")
        return
    progress(f"downloading {', '.join(missing)} into the apt cache (for offline installs in hosts)")
    result = _download_corosync(progress, missing)
    if result.returncode != 0 and os.environ.get("RUNBOOK_WORLD"):
        tail = " / ".join(result.stderr.strip().splitlines()[-2:])
        raise LabError(
            "corosync's packages are not in this machine's apt cache, and this lab world has no route to "
            f"fetch them; run `runbook lab prepare` outside the world first (make test does). apt said: {tail}"
        )
    if result.returncode != 0:
        progress("apt lists may be missing; running apt-get update once")
        run_local(["apt-get", "update", "-q"], timeout=600)
        result = _download_corosync(progress, missing)
        if result.returncode != 0:
            raise LabError(f"cannot download corosync's packages: {result.stderr.strip()[-300:]}")


_APT_LOCK_WAIT = 300.0
LAB_PACKAGES = lab_rootfs.CLUSTER_PACKAGES


def _download_corosync(progress: Progress, packages: Sequence[str] = LAB_PACKAGES) -> subprocess.CompletedProcess[str]:
    """apt-get --download-only, waiting while another apt or dpkg on this machine holds its lock."""
    deadline = time.monotonic() + _APT_LOCK_WAIT
    while True:
        result = run_local(
            ["apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends", *packages],
            check=False,
            timeout=600,
        )
        locked = "Could not get lock" in result.stderr or "Unable to acquire" in result.stderr
        if result.returncode == 0 or not locked or time.monotonic() > deadline:
            return result
        progress("another apt-get or dpkg holds apt's lock on this machine; waiting for it")
        time.sleep(3)


def up(
    name: str,
    nodes: Sequence[NodeSpec],
    progress: Progress = no_progress,
    packages: bool = True,
    os_name: str = "host",
    names: dict[str, str] | None = None,
) -> LabState:
    """Make one host per (name, address) or (name, [address per link]). Idempotent for the same hosts; anything half-made is removed.

    os_name "host" makes overlay hosts of this machine; "debian12"/"debian13" boot systemd in
    systemd-nspawn over a cached root file system (`runbook lab prepare`), and never need the network.
    """
    require_lab_support()
    planned = plan_lab(name, nodes)
    planned.os = os_name
    planned.names = dict(names or {})
    if os_name != "host":

        lab_rootfs.require_ready(lab_rootfs.boot_os(os_name))
        lab_boot.require_boot_support()
    existing = LabState.load(name)
    if existing is not None:
        same = [(h.name, h.addresses) for h in existing.hosts] == [(h.name, h.addresses) for h in planned.hosts]
        same = same and existing.os == os_name and existing.names == planned.names
        if same and all(s.sshd for s in status(existing)):
            progress(f"lab '{name}' is already up with these hosts")
            return existing
        progress(f"lab '{name}' exists but differs or is not healthy; removing it first")
        down(name, progress)
    check_subnet_free(planned)
    if packages and os_name == "host":
        prepare_packages(progress)
    planned.created = time.time()
    planned.save()  # intent first: `down` can undo whatever follows
    try:
        make_host_keys(planned)
        make_bridge(planned)
        for host in planned.hosts:
            progress(f"starting host {host.name} at {', '.join(host.addresses)}" + (f", booting {os_name}" if os_name != "host" else ""))
            _make_host(planned, host)
        if os_name == "host":
            wait_for_every_sshd(planned, progress)
        else:

            lab_boot.wait_until_booted(planned, planned.hosts, progress)
    except BaseException:
        progress("lab up failed; removing what was made")
        down(name, no_progress)
        raise
    planned.ssh_config.write_text(ssh_config_text(planned))
    planned.cluster_file.write_text(cluster_yaml_text(planned))
    progress(f"lab '{name}' is up: {len(planned.hosts)} hosts; ssh config {planned.ssh_config}")
    return planned


def _make_host(state: LabState, host: LabHost) -> None:
    if host.netns not in netns_list():
        run_local(["ip", "netns", "add", host.netns])
    subnets = [state.subnet, *(link.subnet for link in state.extra_links)]
    for k, (veth, address, bridge, subnet) in enumerate(zip([host.veth, *host.extra_veths], host.addresses, state.bridges, subnets)):
        prefix = ipaddress.ip_network(subnet).prefixlen
        inside = interface_of(k)
        if not link_exists(veth):
            run_local(["ip", "link", "add", veth, "type", "veth", "peer", "name", inside, "netns", host.netns])
        run_local(["ip", "link", "set", veth, "master", bridge, "up"])
        run_local(["ip", "-n", host.netns, "addr", "replace", f"{address}/{prefix}", "dev", inside])
        run_local(["ip", "-n", host.netns, "link", "set", inside, "up"])
    run_local(["ip", "-n", host.netns, "link", "set", "lo", "up"])
    if state.os != "host":

        lab_boot.start_host(state, host)
        return
    (state.host_dir(host) / "boots").write_text("1\n")
    d = state.host_dir(host)
    (d / "boot.sh").write_text(boot_script(state, host))
    log = open(d / "boot.log", "ab")
    try:
        subprocess.Popen(
            ["ip", "netns", "exec", host.netns, "unshare", "-m", "-u", "-p", "-f", "--propagation", "private", "bash", str(d / "boot.sh")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        log.close()


def status(state: LabState) -> list[HostStatus]:
    netns = netns_list()
    result = []
    for host in state.hosts:
        alive = host.netns in netns
        pids = netns_pids(host.netns) if alive else []
        boot = lab_boot.boot_state(state, host) if alive else None
        result.append(
            HostStatus(
                name=host.name,
                address=host.address,
                netns=alive,
                sshd=alive and sshd_answers(host),
                corosync=any(process_name(p) == "corosync" for p in pids),
                boots=lab_boot.boots(state, host),
                enabled=boot.enabled if boot else "?",
                active=boot.active if boot else "?",
            )
        )
    return result


def down(name: str, progress: Progress = no_progress) -> bool:
    """Remove everything lab `name` made, from its state file and from the kernel's own lists.

    Safe to run twice and after a crash: names are found both in the state and by prefix.
    Returns whether there was anything to remove.
    """
    check_lab_name(name)
    state = LabState.load(name)
    prefix = f"rb-{name}-"
    namespaces = {ns for ns in netns_list() if ns.startswith(prefix)}
    veths: set[str] = set()
    bridges = [f"rb-{name}"[:15]] + [f"rb-{name}-l{k}" for k in range(1, 8)]  # found by name after a crash too
    if state:
        namespaces |= {h.netns for h in state.hosts if h.netns in netns_list()}
        veths = {v for h in state.hosts for v in [h.veth, *h.extra_veths]}
        bridges = list(dict.fromkeys(state.bridges + bridges))
    lab_dir = labs_root() / name
    found = bool(namespaces) or any(link_exists(b) for b in bridges) or lab_dir.exists()
    if state and state.os != "host":

        for host in state.hosts:
            if host.netns in namespaces:
                lab_boot.kill_host(state, host)  # supervisor first, so no machine boots again
    for netns in sorted(namespaces):
        progress(f"stopping {netns}")
        kill_netns(netns)
        run_local(["ip", "netns", "del", netns], check=False)
    for link in sorted(veths) + bridges:
        if link_exists(link):
            run_local(["ip", "link", "del", link], check=False)
    if lab_dir.exists():
        shutil.rmtree(lab_dir)
    if found:
        progress(f"lab '{name}' removed")
    return found


