"""What a lab will be, decided before anything is made: its subnet and addresses, named nodes placed,
and the texts it writes (ssh_config, a cluster file for its hosts, a booting host's start script). Pure.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from runbook.errors import LabError
from runbook.lab.netns import netns_prefix
from runbook.lab.sshd import sh_quote, sshd_command
from runbook.lab.state import LabHost, LabLink, LabState, check_lab_name
from runbook.model.types import Cluster

GENERATED_SUBNET = ipaddress.ip_network("10.0.77.0/24")


# Where nodes a cluster file names only by hostname get their addresses (link k: the next /24 up).
NAMED_SUBNET = ipaddress.ip_network("10.0.88.0/24")


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
            netns=netns_prefix() + f"rb-{name}-{node_name}",
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


def qnetd_spec(cluster: Cluster, given: Sequence[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """The lab host for the cluster's corosync-qnetd (none without a quorum device): at `net.host` on
    link 0, named `net.name` (else `qnetd`), with a free address on every further link, since the lab
    gives every host one address per link."""
    device = cluster.quorum.device
    if device is None or device.net is None:
        return []
    net = device.net
    if not _is_ip(net.host):
        raise LabError(f"quorum.device.net.host: {net.host!r} is not an IP address; the lab makes the qnetd host at an address")
    name = net.name or "qnetd"
    if name in {n for n, _ in given}:
        raise LabError(f"quorum.device.net.name: {name} is a cluster node; the qnetd host must be another host")
    addresses = [net.host]
    for k in range(1, len(given[0][1]) if given else 1):
        used = {a[k] for _, a in given if len(a) > k}
        subnet = ipaddress.ip_network(f"{given[0][1][k]}/24", strict=False)
        hosts = [str(ip) for ip in subnet.hosts() if str(ip) not in used]
        addresses.append(hosts[-2])  # the last free address is the bridge's
    return [(name, addresses)]


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
            f"exec chroot {root} /bin/bash -c {sh_quote(init)}",
            "",
        ]
    )
