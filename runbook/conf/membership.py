"""What a node says about the cluster: parse `corosync-quorumtool -s` (2.x/3.x) and `corosync-objctl` (1.x).

Pure functions over command output, so tests feed them text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NODEID = re.compile(r"0x[0-9a-fA-F]+|\d+")
_QDEVICE_FLAGS = re.compile(r"(?:A|NA)(?:,(?:V|NV))?(?:,(?:MW|NMW))?")  # Alive, Voting, Master Wins (or their "Not")
_OBJCTL_MEMBER = re.compile(r"members\.(\d+)\.status=(\w+)")


@dataclass(frozen=True)
class Member:
    nodeid: int
    votes: int
    name: str
    local: bool = False


@dataclass(frozen=True)
class View:
    """One node's view of the membership."""

    node: str
    running: bool
    ring_id: str | None = None
    quorate: bool | None = None
    flags: str = ""
    members: tuple[Member, ...] = field(default_factory=tuple)
    raw: str = ""
    expected_votes: int | None = None
    total_votes: int | None = None
    qdevice_votes: int | None = None  # the quorum device's line (nodeid 0, "Qdevice"); None: no device listed
    qdevice_flags: str = ""  # "A,V,NMW" on this node's own line: is the device Alive and Voting for it

    @property
    def qdevice_counts(self) -> bool:
        """The device's vote is counted here: Corosync's flags say Qdevice and the device is alive and voting."""
        return "Qdevice" in self.flags.split() and self.qdevice_flags.split(",")[:2] == ["A", "V"]

    def complete(self, expected: int) -> bool:
        """Sees every node, and (where Corosync reports quorum) is quorate."""
        return self.running and len(self.members) == expected and self.quorate is not False

    def describe(self, expected: int) -> str:
        if not self.running:
            return "corosync not running"
        quorum = {True: "quorate", False: "NOT quorate", None: "quorum n/a (1.x)"}[self.quorate]
        return f"sees {len(self.members)}/{expected} members, {quorum}, ring {self.ring_id or '?'}"


def _member_line(line: str) -> tuple[Member | None, str]:
    """One line of the membership table: `id votes [qdevice-flags] name [(local)]`, and its flags.

    With a quorum device configured, quorumtool adds a Qdevice column (A,V,NMW) before the name, and
    lists the device itself as `0 1 Qdevice` (returned as a Member with nodeid 0)."""
    words = line.split()
    local = bool(words) and words[-1] == "(local)"
    if local:
        words = words[:-1]
    if len(words) == 5 and words[3] == "(votes" and words[4].rstrip(")").isdigit():
        words = words[:3]  # a cut-off node's view of the device: `0 0 Qdevice (votes 1)`, its vote not given here
    if len(words) not in (3, 4) or not _NODEID.fullmatch(words[0]) or not words[1].isdigit():
        return None, ""
    flags = words[2] if len(words) == 4 else ""
    if flags and not _QDEVICE_FLAGS.fullmatch(flags):
        return None, ""
    return Member(int(words[0], 0), int(words[1]), words[-1], local), flags


def _votes(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def parse_quorumtool(node: str, text: str) -> View:
    fields: dict[str, str] = {}
    members: list[Member] = []
    qdevice: Member | None = None
    own_flags = ""
    in_members = False
    for line in text.splitlines():
        if line.strip().startswith("Nodeid"):
            in_members = True
            continue
        if in_members:
            member, flags = _member_line(line)
            if member is not None and member.nodeid == 0 and member.name == "Qdevice":
                qdevice = member
            elif member is not None:
                members.append(member)
                own_flags = flags if member.local else own_flags
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip():
            fields[key.strip()] = value.strip()
    quorate = fields.get("Quorate")
    return View(
        node=node,
        running=bool(fields),
        ring_id=fields.get("Ring ID"),
        quorate=None if quorate is None else quorate.lower().startswith("yes"),
        flags=fields.get("Flags", ""),
        members=tuple(members),
        raw=text,
        expected_votes=_votes(fields.get("Expected votes")),
        total_votes=_votes(fields.get("Total votes")),
        qdevice_votes=None if qdevice is None else qdevice.votes,
        qdevice_flags=own_flags,
    )


def parse_objctl(node: str, text: str) -> View:
    """Corosync 1.x: `corosync-objctl runtime.totem.pg.mrp.srp` lists members and their status."""
    joined = [int(i) for i, status in _OBJCTL_MEMBER.findall(text) if status == "joined"]
    ring = re.search(r"ring_id\S*=(\S+)", text)
    return View(
        node=node,
        running=bool(text.strip()),
        ring_id=ring.group(1) if ring else None,
        quorate=None,
        members=tuple(Member(i, 1, str(i)) for i in joined),
        raw=text,
    )


# ---------------------------------------------------------------------------------------------
# Links: `corosync-cfgtool -s` (every generation) and `-n` (3.x), as one node sees each link

_LINK_HEAD = re.compile(r"^(?:LINK|RING) ID (\d+)")
_LINK_ADDR = re.compile(r"^\s*(?:addr|id)\s*=\s*(\S+)")
_LINK_PEER = re.compile(r"^\s*nodeid:?\s*(\d+):\s*(.+?)\s*$")
_LINK_STATUS = re.compile(r"^\s*status\s*=\s*(.+?)\s*$")
_NODES_HEAD = re.compile(r"^nodeid:?\s*(\d+)\s+(\S+)")
_NODES_LINK = re.compile(r"^\s*LINK:?\s*(\d+)\s+.*?\(([^)]*)\)\s*(.*)$")


@dataclass(frozen=True)
class LinkState:
    """One link (knet) or ring (1.x/2.x RRP) as one node sees it.

    `peers`: other node id -> connected; empty where Corosync reports one status for the ring (2.x),
    then `faulty` says whether the ring is marked FAULTY.
    """

    number: int
    address: str = ""
    peers: tuple[tuple[int, bool], ...] = ()
    faulty: bool | None = None

    @property
    def up(self) -> bool:
        """The link carries traffic to at least one other node (2.x: the ring is not FAULTY)."""
        if self.peers:
            return any(ok for _, ok in self.peers)
        return self.faulty is False

    def describe(self) -> str:
        if self.peers:
            connected = sum(ok for _, ok in self.peers)
            down = [str(n) for n, ok in self.peers if not ok]
            state = "up" if connected == len(self.peers) else ("DOWN" if connected == 0 else "partly down")
            to = f", no link to nodeid {', '.join(down)}" if down and connected else ""
            return f"link {self.number} {state} ({connected}/{len(self.peers)} peers connected{to})"
        if self.faulty is None:
            return f"link {self.number} (status not reported)"
        return f"link {self.number} {'FAULTY' if self.faulty else 'up'}"


def _peer_connected(text: str) -> bool | None:
    """Corosync 3.1's `connected`/`disconnected`, 3.0's `link enabled:1 link connected:1`; None for localhost."""
    text = text.strip().lower()
    if text.startswith("localhost"):
        return None
    match = re.search(r"connected:\s*(\d)", text)
    if match:
        return match.group(1) == "1"
    return text.startswith("connected") or text == "ok"


def parse_cfgtool_status(text: str) -> tuple[LinkState, ...]:
    """Pure: `corosync-cfgtool -s` -> each link's (ring's) state as this node sees it."""
    links: list[LinkState] = []
    current: dict[str, object] | None = None

    def close() -> None:
        if current is not None:
            links.append(LinkState(**current))  # type: ignore[arg-type]

    local = re.search(r"^Local node ID (\d+)", text, re.M)
    local_id = int(local.group(1)) if local else None  # 3.0 shows the local node like a peer
    for line in text.splitlines():
        head = _LINK_HEAD.match(line.strip())
        if head:
            close()
            current = {"number": int(head.group(1)), "address": "", "peers": (), "faulty": None}
            continue
        if current is None:
            continue
        address = _LINK_ADDR.match(line)
        peer = _LINK_PEER.match(line)
        status = _LINK_STATUS.match(line)
        if address:
            current["address"] = address.group(1)
        elif peer:
            connected = _peer_connected(peer.group(2))
            if connected is not None and int(peer.group(1)) != local_id:
                current["peers"] = (*current["peers"], (int(peer.group(1)), connected))  # type: ignore[misc]
        elif status:
            current["faulty"] = "faulty" in status.group(1).lower()
    close()
    return tuple(links)


def parse_cfgtool_nodes(text: str) -> tuple[LinkState, ...]:
    """Pure: `corosync-cfgtool -n` (3.x: per peer, each link enabled/connected) -> per-link states."""
    peers: dict[int, list[tuple[int, bool]]] = {}
    addresses: dict[int, str] = {}
    nodeid = None
    for line in text.splitlines():
        head = _NODES_HEAD.match(line.strip())
        if head:
            nodeid = int(head.group(1))
            continue
        link = _NODES_LINK.match(line)
        if link and nodeid is not None:
            number = int(link.group(1))
            words = link.group(3).lower().split()
            peers.setdefault(number, []).append((nodeid, "connected" in words and "enabled" in words))
            addresses.setdefault(number, link.group(2).split("->")[0])
    return tuple(LinkState(n, addresses[n], tuple(peers[n])) for n in sorted(peers))


def links_line(links: tuple[LinkState, ...]) -> str:
    """One line for a report: each link's state on this node."""
    return "; ".join(link.describe() for link in links) if links else "no link status reported"
