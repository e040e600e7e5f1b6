"""Who is in a running cluster: node ids and addresses, from what its members' tools print (pure).

A multicast corosync.conf (1.x/2.x `transport: udp` without a nodelist) does not say who its members
are: Corosync finds them at run time. The running cluster knows. The operator names one or more hosts
to log in to (SSH settings resolved as for any node: runbook.ssh.endpoint, host keys checked), and each is
asked, read-only, with the tools of the generation it runs:

- 2.x/3.x: `corosync-cmapctl runtime.members` (3.x) / `runtime.totem.pg.mrp.srp.members` (2.x): each
  member's node id, status and `r(N) ip(ADDR)` per ring/link; `corosync-quorumtool -l` for names.
- 1.x: `corosync-objctl runtime.totem.pg.mrp.srp.members` (same keys, `key=value`).
- every generation: `corosync-cfgtool -s` (`Local node ID N`), to know which member the host itself is.

This module holds the script and its parsers (tests feed captured output); migrate/from_nodes.py logs
in and combines the readings. A host that cannot be reached stops with ConnectionFailed; one where
Corosync does not run, or whose view differs from another's (a split or a cluster still forming), with
MembershipUnavailable naming the host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbook.conf.membership import parse_quorumtool
from runbook.errors import MembershipUnavailable

SECTION = "@@runbook-members "
# Read-only: prints what each tool says, section by section; never starts, stops or changes anything.
MEMBERS_SCRIPT = f"""export LC_ALL=C
echo '{SECTION}hostname'; hostname 2>/dev/null || uname -n
echo '{SECTION}version'; corosync -v 2>/dev/null | head -n 1
echo '{SECTION}running'; pidof corosync 2>/dev/null || true
if command -v corosync-cmapctl >/dev/null 2>&1; then
  echo '{SECTION}cmapctl'
  corosync-cmapctl runtime.members 2>&1
  corosync-cmapctl runtime.totem.pg.mrp.srp.members 2>&1
  echo '{SECTION}quorumtool'; corosync-quorumtool -l 2>&1
elif command -v corosync-objctl >/dev/null 2>&1; then
  echo '{SECTION}objctl'; corosync-objctl runtime.totem.pg.mrp.srp.members 2>&1
fi
echo '{SECTION}cfgtool'; corosync-cfgtool -s 2>&1
true
"""

# `runtime.members.1.ip (str) = r(0) ip(10.0.0.1) ` (cmapctl) or `runtime.totem.pg.mrp.srp.members.16777226.ip=r(0) ip(10.0.0.1) ` (objctl)
_MEMBER_KEY = re.compile(
    r"^(?:runtime\.members|runtime\.totem\.pg\.mrp\.srp\.members)\.(\d+)\.([a-z_]+)\s*(?:\([^)]*\))?\s*=\s*(.*?)\s*$"
)
_RING_ADDRESS = re.compile(r"r\((\d+)\)\s*ip\(([^)]*)\)")
_LOCAL_ID = re.compile(r"^Local node ID (\d+)", re.M)
_NOT_RUNNING = ("Failed to initialize", "Cannot initialize", "CS_ERR_LIBRARY", "Could not initialize")


@dataclass(frozen=True)
class Member:
    """One member of the running membership: its node id and its address on each ring/link."""

    nodeid: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """What one host said: its own hostname and node id, the tool used, and the joined members."""

    host: str
    hostname: str
    version: str
    tool: str
    local_nodeid: int | None
    members: tuple[Member, ...]
    names: tuple[tuple[int, str], ...] = ()  # node id -> the name Corosync shows (quorumtool -l)


def sections(output: str) -> dict[str, str]:
    """MEMBERS_SCRIPT's output split into its sections."""
    found: dict[str, str] = {}
    name = None
    for line in output.splitlines():
        if line.startswith(SECTION):
            name = line[len(SECTION):].strip()
            found[name] = ""
        elif name is not None:
            found[name] += line + "\n"
    return found


def parse_members(text: str) -> tuple[Member, ...]:
    """Pure: the joined members in `corosync-cmapctl` / `corosync-objctl` output, by node id.

    A member whose status is not `joined` (Corosync keeps `left` members in cmap) is not one now.
    """
    addresses: dict[int, tuple[str, ...]] = {}
    status: dict[int, str] = {}
    for line in text.splitlines():
        match = _MEMBER_KEY.match(line.strip())
        if not match:
            continue
        nodeid, key, value = int(match.group(1)), match.group(2), match.group(3)
        if key == "ip":
            rings = sorted((int(r), a.strip()) for r, a in _RING_ADDRESS.findall(value))
            addresses[nodeid] = tuple(a for _, a in rings if a)
        elif key == "status":
            status[nodeid] = value.strip()
    return tuple(
        Member(nodeid, addresses[nodeid])
        for nodeid in sorted(addresses)
        if addresses[nodeid] and status.get(nodeid, "joined") == "joined"
    )


def parse_reading(host: str, output: str) -> Reading:
    """Pure: one host's MEMBERS_SCRIPT output -> Reading, or MembershipUnavailable naming the host and why."""
    parts = sections(output)
    hostname = parts.get("hostname", "").strip().split(".")[0] or host
    said = parts.get("version", "").strip()
    number = re.search(r"version '([^']+)'", said)
    version = f"Corosync {number.group(1)}" if number else said
    tool = "corosync-cmapctl" if "cmapctl" in parts else "corosync-objctl" if "objctl" in parts else ""
    if not tool:
        raise MembershipUnavailable(
            host, "neither corosync-cmapctl (Corosync 2.x/3.x) nor corosync-objctl (1.x) is there: is Corosync "
            "installed on this host? Name hosts of the running cluster, or give the nodes with --node NAME=ADDR"
        )
    raw = parts["cmapctl" if tool == "corosync-cmapctl" else "objctl"]
    members = parse_members(raw)
    if not members:
        said = next((line.strip() for line in raw.splitlines() if line.strip()), "nothing")
        if not parts.get("running", "").strip() or any(word in raw for word in _NOT_RUNNING):
            why = f"Corosync is not running there ({tool} said: {said})"
        else:
            why = f"Corosync runs but {tool} lists no joined member ({tool} said: {said})"
        raise MembershipUnavailable(host, why + "; start it, name a host where it runs, or give the nodes with --node")
    local = _LOCAL_ID.search(parts.get("cfgtool", ""))
    names: tuple[tuple[int, str], ...] = ()
    if "quorumtool" in parts:
        names = tuple((m.nodeid, m.name) for m in parse_quorumtool(host, parts["quorumtool"]).members)
    return Reading(host, hostname, version, tool, int(local.group(1)) if local else None, members, names)

