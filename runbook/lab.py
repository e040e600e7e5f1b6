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
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runbook.errors import LabError, SubnetInUse
from runbook.local import run_local

DEFAULT_LAB = "lab"
LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
LAB_ONLY_ENV = "RUNBOOK_LAB_ONLY"
GENERATED_SUBNET = ipaddress.ip_network("10.0.77.0/24")
# Where nodes a cluster file names only by hostname get their addresses (link k: the next /24 up).
NAMED_SUBNET = ipaddress.ip_network("10.0.88.0/24")
SSHD_WAIT_SECONDS = 15.0
# Inside each host, its own key at the usual place (in the host's upper dir, shadowing this machine's).
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def labs_root() -> Path:
    """Where every lab keeps its state; RUNBOOK_LAB_ROOT moves it (must not be under /tmp, /run or /dev)."""
    return Path(os.environ.get("RUNBOOK_LAB_ROOT", "/var/lib/corosync-runbook/labs"))


@dataclass
class LabHost:
    """One test host: a node name, its address, and the kernel objects that make it."""

    name: str
    address: str
    netns: str
    veth: str
    # Links 1.. (link 0 is `address` on eth0): one address and interface (eth1, eth2, ...) per link.
    extra_addresses: list[str] = field(default_factory=list)
    extra_veths: list[str] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        """Every address of the host, link 0 first (one per link)."""
        return [self.address, *self.extra_addresses]


@dataclass
class LabLink:
    """A network of its own for link 1, 2, ... of a multi-link cluster: its bridge and subnet."""

    number: int
    bridge: str
    subnet: str
    bridge_address: str


@dataclass
class LabState:
    """What a lab is made of, written to disk before anything is made."""

    name: str
    bridge: str
    subnet: str
    bridge_address: str
    hosts: list[LabHost] = field(default_factory=list)
    created: float = 0.0
    os: str = "host"  # "host" (an overlay of this machine, no init) or a booting OS (see lab_boot)
    extra_links: list[LabLink] = field(default_factory=list)  # links 1.. (link 0 is `bridge`/`subnet`)
    # Hostnames a cluster file uses as node addresses -> the lab address chosen for each; every host
    # resolves them through its /etc/hosts.
    names: dict[str, str] = field(default_factory=dict)

    @property
    def bridges(self) -> list[str]:
        """Every bridge of the lab, link 0 first."""
        return [self.bridge, *(link.bridge for link in self.extra_links)]

    def link_names(self) -> list[str]:
        """Every network link this lab makes on this machine (bridges and host-side veths)."""
        return self.bridges + [v for h in self.hosts for v in [h.veth, *h.extra_veths]]

    @property
    def dir(self) -> Path:
        return labs_root() / self.name

    @property
    def ssh_config(self) -> Path:
        return self.dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def identity(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def cluster_file(self) -> Path:
        return self.dir / "cluster.yaml"

    def host_dir(self, host: LabHost) -> Path:
        return self.dir / "hosts" / host.name

    def host(self, name_or_address: str) -> LabHost:
        for host in self.hosts:
            if name_or_address == host.name or name_or_address in host.addresses:
                return host
        known = ", ".join(h.name for h in self.hosts)
        raise LabError(f"lab '{self.name}' has no host '{name_or_address}' (hosts: {known})")

    def save(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "state.json.tmp"
        data = asdict(self)
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.dir / "state.json")

    @classmethod
    def load(cls, name: str) -> LabState | None:
        path = labs_root() / name / "state.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LabError(f"{path}: cannot read lab state ({exc}); `runbook lab down --lab {name}` removes it") from exc
        hosts = [LabHost(**h) for h in data.pop("hosts", [])]
        links = [LabLink(**link) for link in data.pop("extra_links", [])]
        return cls(hosts=hosts, extra_links=links, **data)


@dataclass(frozen=True)
class HostStatus:
    """What `lab status` shows for one host."""

    name: str
    address: str
    netns: bool
    sshd: bool
    corosync: bool
    boots: int = 0
    enabled: str = "?"  # corosync at boot: "enabled", "disabled", "not installed"
    active: str = "?"  # corosync now: "active", "inactive", "failed"


# ---------------------------------------------------------------------------------------------
# Planning (pure): names and addresses, so tests need no root


def check_lab_name(name: str) -> str:
    if not LAB_NAME_RE.match(name):
        raise LabError(f"lab name {name!r}: use 1-8 lower-case letters and digits, starting with a letter")
    return name


def _netns_prefix() -> str:
    """Namespace names are global to the machine, unlike links and routes: a lab made in a lab world
    gets the world's name in front, so it never takes the name of a lab of the same name outside."""
    world = os.environ.get("RUNBOOK_WORLD")
    return f"w{world}-" if world else ""


NodeSpec = tuple[str, "str | Sequence[str]"]


def node_addresses(nodes: Sequence[NodeSpec]) -> list[tuple[str, list[str]]]:
    """(name, address) or (name, [address per link]) -> (name, [addresses]); every node the same count."""
    result = [(name, [addr] if isinstance(addr, str) else list(addr)) for name, addr in nodes]
    for node_name, addresses in result:
        if not addresses:
            raise LabError(f"node {node_name}: no address")
        if len(addresses) != len(result[0][1]):
            raise LabError(
                f"node {node_name}: {len(addresses)} addresses, but node {result[0][0]} has {len(result[0][1])}; "
                "the lab gives every host one address per link"
            )
    return result


def _plan_subnet(link: int, nodes: Sequence[tuple[str, str]]) -> tuple[ipaddress.IPv4Network, str]:
    """The /24 every node's address on one link shares, and a free address in it for the bridge."""
    where = f" on link {link}" if link else ""
    addresses = []
    for node_name, address in nodes:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError as exc:
            raise LabError(f"node {node_name}: {address!r}{where} is not an IP address") from exc
        if ip.version != 4:
            raise LabError(f"node {node_name}: {address}{where} is IPv6; the lab makes IPv4 hosts only")
        addresses.append(ip)
    subnet = ipaddress.ip_network(f"{addresses[0]}/24", strict=False)
    for (node_name, _), ip in zip(nodes, addresses):
        if ip not in subnet:
            raise LabError(f"node {node_name}: {ip} is not in {subnet}; lab hosts must share one /24 per link")
        if ip in (subnet.network_address, subnet.broadcast_address):
            raise LabError(f"node {node_name}: {ip} is the network or broadcast address of {subnet}")
    if len(set(addresses)) != len(addresses):
        raise LabError(f"two nodes have the same address{where} in {subnet}")
    free = [ip for ip in reversed(list(subnet.hosts())) if ip not in addresses]
    return subnet, str(free[0])  # type: ignore[return-value]


def plan_lab(name: str, nodes: Sequence[NodeSpec]) -> LabState:
    """Decide every kernel object's name and each bridge's address for hosts at the given addresses.

    A node is (name, address) or (name, [address on link 0, address on link 1, ...]): each link gets a
    bridge and a /24 of its own, and each host one interface per link (eth0, eth1, ...).
    """
    check_lab_name(name)
    if len(nodes) < 1:
        raise LabError("a lab needs at least one host")
    specs = node_addresses(nodes)
    count = len(specs[0][1])
    if count > 8:
        raise LabError(f"node {specs[0][0]}: {count} addresses; the lab makes at most 8 links")
    nets = [_plan_subnet(k, [(n, a[k]) for n, a in specs]) for k in range(count)]
    for k, (subnet, _) in enumerate(nets):
        for j in range(k):
            if nets[j][0].overlaps(subnet):
                raise LabError(f"links {j} and {k} share {subnet}; give each link a /24 of its own")
    hosts = [
        LabHost(
            name=node_name,
            address=addresses[0],
            netns=_netns_prefix() + f"rb-{name}-{node_name}",
            veth=f"rb{name}v{i}",
            extra_addresses=addresses[1:],
            extra_veths=[f"rb{name}v{i}l{k}" for k in range(1, count)],
        )
        for i, (node_name, addresses) in enumerate(specs)
    ]
    return LabState(
        name=name,
        bridge=f"rb-{name}"[:15],
        subnet=str(nets[0][0]),
        bridge_address=nets[0][1],
        hosts=hosts,
        extra_links=[
            LabLink(number=k, bridge=f"rb-{name}-l{k}", subnet=str(subnet), bridge_address=address)
            for k, (subnet, address) in enumerate(nets) if k
        ],
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def place_named_nodes(
    nodes: Sequence[NodeSpec], subnet: str | None = None
) -> tuple[list[tuple[str, list[str]]], dict[str, str]]:
    """Lab addresses for the addresses a cluster file gives as hostnames, and the names to resolve.

    On each link, a hostname gets an address in the /24 of that link's IP addresses if the file gives
    any, else in `subnet` (default 10.0.88.0/24; link k the k-th /24 above it): node i at .11+i, or the
    next free one. Pure. Returns the nodes with addresses only, and {hostname: address} for /etc/hosts.
    """
    specs = node_addresses(nodes)
    try:
        base = ipaddress.ip_network(subnet, strict=False) if subnet else NAMED_SUBNET
    except ValueError as exc:
        raise LabError(f"--subnet: {subnet!r} is not an IPv4 network like 10.0.88.0/24") from exc
    if base.version != 4 or base.prefixlen != 24:
        raise LabError(f"--subnet: {subnet!r}: the lab uses IPv4 /24 networks, like 10.0.88.0/24")
    names: dict[str, str] = {}
    placed = [(name, list(addresses)) for name, addresses in specs]
    for k in range(len(specs[0][1])):
        given = [a[k] for _, a in specs if _is_ip(a[k])]
        for node_name, addresses in specs:
            if _is_ip(addresses[k]) and ipaddress.ip_address(addresses[k]).version != 4:
                raise LabError(f"node {node_name}: {addresses[k]} is IPv6; the lab makes IPv4 hosts only")
        if given:
            net = ipaddress.ip_network(f"{given[0]}/24", strict=False)
        else:
            net = ipaddress.ip_network(f"{ipaddress.ip_address(int(base.network_address) + 256 * k)}/24")
        used = set(given)
        for i, (node_name, addresses) in enumerate(placed):
            name = addresses[k]
            if _is_ip(name):
                continue
            key = name.lower()
            if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", key):
                raise LabError(f"node {node_name}: {name!r} is neither an IPv4 address nor a hostname the lab can place")
            if key in names:
                raise LabError(f"node {node_name}: {name!r} is also another node's address; give each node its own")
            candidates = [str(ip) for ip in net.hosts() if int(ip) - int(net.network_address) >= 11 + i]
            candidates += [str(ip) for ip in net.hosts()]
            free = next((ip for ip in candidates if ip not in used), None)
            if free is None:
                raise LabError(f"node {node_name}: no free address left in {net} for {name!r}")
            used.add(free)
            names[key] = free
            addresses[k] = free
    return placed, names


def hosts_entries(state: LabState, host: LabHost) -> list[tuple[str, str]]:
    """(address, name) lines every host's /etc/hosts needs: its own name, and every named node."""
    entries = [(host.address, host.name)]
    entries += [(address, name) for name, address in state.names.items() if name != host.name.lower()]
    return entries


def generated_nodes(count: int, subnet: str | None = None) -> list[tuple[str, str]]:
    """Names and addresses for `lab up --nodes N [--subnet CIDR]`: node1 at .11, node2 at .12, ..."""
    if not 1 <= count <= 200:
        raise LabError(f"--nodes: {count} is out of range (1..200)")
    try:
        network = ipaddress.ip_network(subnet, strict=False) if subnet else GENERATED_SUBNET
    except ValueError as exc:
        raise LabError(f"--subnet: {subnet!r} is not an IPv4 network like 10.0.88.0/24") from exc
    if network.version != 4 or network.prefixlen != 24:
        raise LabError(f"--subnet: {subnet!r}: the lab uses IPv4 /24 networks, like 10.0.88.0/24")
    base = int(network.network_address)
    return [(f"node{i}", str(ipaddress.ip_address(base + 10 + i))) for i in range(1, count + 1)]


def ssh_config_text(state: LabState) -> str:
    """A standard OpenSSH client config: `ssh -F` it, or let the runbook read it."""
    lines = [f"# Written by `runbook lab up` for lab '{state.name}'. Host keys are checked for real.", ""]
    for host in state.hosts:
        lines += [
            f"Host {host.name} {host.address}",
            f"    HostName {host.address}",
            "    User root",
            "    Port 22",
            f"    IdentityFile {state.identity}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {state.known_hosts}",
            "    StrictHostKeyChecking yes",
            "",
        ]
    return "\n".join(lines)


def cluster_yaml_text(state: LabState) -> str:
    """A cluster file for a generated lab, so `runbook run` has something to run against."""
    lines = [
        f"# Written by `runbook lab up` for lab '{state.name}'.",
        f"cluster_name: {state.name}",
        "nodes:",
    ]
    for i, host in enumerate(state.hosts):
        if host.extra_addresses:
            lines += [f"  - name: {host.name}", f"    addresses: [{', '.join(host.addresses)}]"]
        else:
            lines += [f"  - name: {host.name}", f"    address: {host.address}"]
        if i == 0:
            lines.append("    role: primary")
    return "\n".join(lines) + "\n"


def boot_script(state: LabState, host: LabHost) -> str:
    """The script run inside the new namespaces: mount the host's root, then start init and sshd.

    PID 1 is a small bash loop rather than sshd itself: it reaps orphans (daemonized Corosync) and it
    keeps the host alive when sshd is stopped, so a test can take sshd away and bring it back.
    """
    d = state.host_dir(host)
    root = d / "root"
    init = (
        f"echo {host.name} > /etc/hostname; mkdir -p /run/sshd /var/log; "
        + "".join(f"grep -q ' {name}$' /etc/hosts || echo '{address} {name}' >> /etc/hosts; "
                  for address, name in hosts_entries(state, host))
        + 
        f"{sshd_command(state, host)} >>/var/log/lab-sshd.log 2>&1 & "
        "trap 'exit 0' TERM; while :; do wait; sleep 1; done"
    )
    return "\n".join(
        [
            "set -e",
            f"mount -t overlay overlay -o lowerdir=/,upperdir={d}/upper,workdir={d}/work {root}",
            f"mount -t proc proc {root}/proc",
            f"mount -t sysfs sysfs {root}/sys",
            f"mount --rbind /dev {root}/dev",
            f"mount -t tmpfs tmpfs {root}/dev/shm",
            f"mount -t tmpfs tmpfs {root}/run",
            f"mount -t tmpfs tmpfs {root}/tmp",
            f"hostname {host.name}",
            f"exec chroot {root} /bin/bash -c {_sh_quote(init)}",
            "",
        ]
    )


def sshd_command(state: LabState, host: LabHost) -> str:
    return (
        f"/usr/sbin/sshd -D -e {' '.join(f'-o ListenAddress={a}' for a in host.addresses)} -o HostKey={HOST_KEY}"
        f" -o AuthorizedKeysFile={state.dir}/authorized_keys -o PermitRootLogin=prohibit-password"
        f" -o UsePAM=no -o PidFile=/run/sshd.pid"
    )


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


# ---------------------------------------------------------------------------------------------
# Facts about this machine


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


def _netns_list() -> set[str]:
    out = run_local(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return run_local(["ip", "link", "show", "dev", name], check=False).returncode == 0


def _netns_pids(netns: str) -> list[int]:
    out = run_local(["ip", "netns", "pids", netns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _check_subnet_free(state: LabState) -> None:
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


def all_labs() -> list[LabState]:
    root = labs_root()
    if not root.is_dir():
        return []
    labs = []
    for entry in sorted(root.iterdir()):
        if (entry / "state.json").exists():
            state = LabState.load(entry.name)
            if state:
                labs.append(state)
    return labs


# ---------------------------------------------------------------------------------------------
# Safety: traffic only to lab hosts


def lab_for_address(address: str) -> tuple[LabState, LabHost] | None:
    """The lab host at `address`, or the one a lab's hosts know by that hostname (`names`)."""
    for state in all_labs():
        wanted = state.names.get(address.lower(), address)
        for host in state.hosts:
            if wanted in host.addresses:
                return state, host
    return None


def guard_address(address: str) -> None:
    """Call before connecting to `address`: a lab address must have its bridge and namespace up.

    With RUNBOOK_LAB_ONLY set (tests, CI, `make demo`), an address that is no lab host is refused, so a
    typo in a cluster file can never send traffic to a real network.
    """
    found = lab_for_address(address)
    if found is None:
        if os.environ.get(LAB_ONLY_ENV):
            raise LabError(f"{address} is not a lab host and {LAB_ONLY_ENV} is set; refusing to connect")
        return
    state, host = found
    for bridge in state.bridges:
        if not _link_exists(bridge):
            raise LabError(f"{address} is lab host {host.name} of lab '{state.name}', but the lab's bridge {bridge} is gone; run `runbook lab up` again")
    if host.netns not in _netns_list():
        raise LabError(f"{address} is lab host {host.name} of lab '{state.name}', but its namespace {host.netns} is gone; run `runbook lab up` again")


# ---------------------------------------------------------------------------------------------
# Making and removing


def prepare_packages(progress: Progress = _quiet) -> None:
    """Fill the machine's apt cache so `apt-get install corosync` inside a host needs no network."""
    installed = run_local(["dpkg-query", "-W", "-f=${Status}", "corosync"], check=False).stdout
    if "install ok installed" in installed:
        progress("corosync is installed on this machine itself; lab hosts inherit it")
        return
    progress("downloading corosync packages into the apt cache (for offline installs in hosts)")
    result = _download_corosync(progress)
    if result.returncode != 0 and os.environ.get("RUNBOOK_WORLD"):
        tail = " / ".join(result.stderr.strip().splitlines()[-2:])
        raise LabError(
            "corosync's packages are not in this machine's apt cache, and this lab world has no route to "
            f"fetch them; run `runbook lab prepare` outside the world first (make test does). apt said: {tail}"
        )
    if result.returncode != 0:
        progress("apt lists may be missing; running apt-get update once")
        run_local(["apt-get", "update", "-q"], timeout=600)
        result = _download_corosync(progress)
        if result.returncode != 0:
            raise LabError(f"cannot download corosync's packages: {result.stderr.strip()[-300:]}")


_APT_LOCK_WAIT = 300.0


def _download_corosync(progress: Progress) -> subprocess.CompletedProcess[str]:
    """apt-get --download-only, waiting while another apt or dpkg on this machine holds its lock."""
    deadline = time.monotonic() + _APT_LOCK_WAIT
    while True:
        result = run_local(
            ["apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends", "corosync"],
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
    progress: Progress = _quiet,
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
        from runbook import lab_boot, lab_rootfs

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
    _check_subnet_free(planned)
    if packages and os_name == "host":
        prepare_packages(progress)
    planned.created = time.time()
    planned.save()  # intent first: `down` can undo whatever follows
    try:
        _make_keys(planned)
        _make_bridge(planned)
        for host in planned.hosts:
            progress(f"starting host {host.name} at {', '.join(host.addresses)}" + (f", booting {os_name}" if os_name != "host" else ""))
            _make_host(planned, host)
        if os_name == "host":
            _wait_for_sshd(planned, progress)
        else:
            from runbook import lab_boot

            lab_boot.wait_until_booted(planned, planned.hosts, progress)
    except BaseException:
        progress("lab up failed; removing what was made")
        down(name, _quiet)
        raise
    planned.ssh_config.write_text(ssh_config_text(planned))
    planned.cluster_file.write_text(cluster_yaml_text(planned))
    progress(f"lab '{name}' is up: {len(planned.hosts)} hosts; ssh config {planned.ssh_config}")
    return planned


def _make_keys(state: LabState) -> None:
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


def _make_bridge(state: LabState) -> None:
    nets = [(state.bridge, state.subnet, state.bridge_address)]
    nets += [(link.bridge, link.subnet, link.bridge_address) for link in state.extra_links]
    for bridge, subnet, address in nets:
        prefix = ipaddress.ip_network(subnet).prefixlen
        if not _link_exists(bridge):
            run_local(["ip", "link", "add", bridge, "type", "bridge"])
        run_local(["ip", "addr", "replace", f"{address}/{prefix}", "dev", bridge])
        run_local(["ip", "link", "set", bridge, "up"])


def _make_host(state: LabState, host: LabHost) -> None:
    if host.netns not in _netns_list():
        run_local(["ip", "netns", "add", host.netns])
    subnets = [state.subnet, *(link.subnet for link in state.extra_links)]
    for k, (veth, address, bridge, subnet) in enumerate(zip([host.veth, *host.extra_veths], host.addresses, state.bridges, subnets)):
        prefix = ipaddress.ip_network(subnet).prefixlen
        inside = interface_of(k)
        if not _link_exists(veth):
            run_local(["ip", "link", "add", veth, "type", "veth", "peer", "name", inside, "netns", host.netns])
        run_local(["ip", "link", "set", veth, "master", bridge, "up"])
        run_local(["ip", "-n", host.netns, "addr", "replace", f"{address}/{prefix}", "dev", inside])
        run_local(["ip", "-n", host.netns, "link", "set", inside, "up"])
    run_local(["ip", "-n", host.netns, "link", "set", "lo", "up"])
    if state.os != "host":
        from runbook import lab_boot

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


def interface_of(link: int) -> str:
    """The interface a host has on link `link`, inside its namespace."""
    return f"eth{link}"


def set_link(state: LabState, host_name: str, link: int, up: bool) -> None:
    """Cut (or restore) one host's interface on one link, inside its namespace: a failed network."""
    host = state.host(host_name)
    if not 0 <= link < len(host.addresses):
        raise LabError(f"host {host.name} has no link {link} (it has links 0..{len(host.addresses) - 1})")
    run_local(["ip", "-n", host.netns, "link", "set", interface_of(link), "up" if up else "down"])


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


def _wait_for_sshd(state: LabState, progress: Progress) -> None:
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


def status(state: LabState) -> list[HostStatus]:
    netns = _netns_list()
    result = []
    for host in state.hosts:
        alive = host.netns in netns
        pids = _netns_pids(host.netns) if alive else []
        boot = _boot_state(state, host) if alive else None
        result.append(
            HostStatus(
                name=host.name,
                address=host.address,
                netns=alive,
                sshd=alive and sshd_answers(host),
                corosync=any(_comm(p) == "corosync" for p in pids),
                boots=_boots(state, host),
                enabled=boot.enabled if boot else "?",
                active=boot.active if boot else "?",
            )
        )
    return result


def _boots(state: LabState, host: LabHost) -> int:
    from runbook import lab_boot

    return lab_boot.boots(state, host)


def _boot_state(state: LabState, host: LabHost):  # type: ignore[no-untyped-def]
    from runbook import lab_boot

    return lab_boot.boot_state(state, host)


def _init_pid(host: LabHost) -> int:
    """The host's PID 1, seen from this machine (the process whose children are the host's daemons)."""
    for pid in _netns_pids(host.netns):
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
    pid = _init_pid(host)
    argv = ["nsenter", "-t", str(pid), "-m", "-u", "-p", "-n", "-r", "-w", "sh", "-c", command]
    return run_local(argv, timeout=timeout, check=check, input=input)


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


def _kill_netns(netns: str) -> None:
    """Stop every process in the namespace (PID 1 first takes its PID namespace with it)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _netns_pids(netns)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while _netns_pids(netns) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _netns_pids(netns):
            return
    raise LabError(f"processes in {netns} survive SIGKILL: {_netns_pids(netns)}")


def down(name: str, progress: Progress = _quiet) -> bool:
    """Remove everything lab `name` made, from its state file and from the kernel's own lists.

    Safe to run twice and after a crash: names are found both in the state and by prefix.
    Returns whether there was anything to remove.
    """
    check_lab_name(name)
    state = LabState.load(name)
    prefix = f"rb-{name}-"
    namespaces = {ns for ns in _netns_list() if ns.startswith(prefix)}
    veths: set[str] = set()
    bridges = [f"rb-{name}"[:15]] + [f"rb-{name}-l{k}" for k in range(1, 8)]  # found by name after a crash too
    if state:
        namespaces |= {h.netns for h in state.hosts if h.netns in _netns_list()}
        veths = {v for h in state.hosts for v in [h.veth, *h.extra_veths]}
        bridges = list(dict.fromkeys(state.bridges + bridges))
    lab_dir = labs_root() / name
    found = bool(namespaces) or any(_link_exists(b) for b in bridges) or lab_dir.exists()
    if state and state.os != "host":
        from runbook import lab_boot

        for host in state.hosts:
            if host.netns in namespaces:
                lab_boot.kill_host(state, host)  # supervisor first, so no machine boots again
    for netns in sorted(namespaces):
        progress(f"stopping {netns}")
        _kill_netns(netns)
        run_local(["ip", "netns", "del", netns], check=False)
    for link in sorted(veths) + bridges:
        if _link_exists(link):
            run_local(["ip", "link", "del", link], check=False)
    if lab_dir.exists():
        shutil.rmtree(lab_dir)
    if found:
        progress(f"lab '{name}' removed")
    return found


def lab_exec_argv(state: LabState, host_name: str, command: Iterable[str] = ()) -> list[str]:
    """The `ssh` command line that opens a shell (or runs a command) on a lab host."""
    host = state.host(host_name)
    return ["ssh", "-F", str(state.ssh_config), host.name, *command]
