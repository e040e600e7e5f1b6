"""What a node says about the cluster: parse `corosync-quorumtool -s` (2.x/3.x) and `corosync-objctl` (1.x).

Pure functions over command output, so tests feed them text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MEMBER = re.compile(r"^\s*(0x[0-9a-fA-F]+|\d+)\s+(\d+)\s+(\S+)(\s+\(local\))?\s*$")
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

    def complete(self, expected: int) -> bool:
        """Sees every node, and (where Corosync reports quorum) is quorate."""
        return self.running and len(self.members) == expected and self.quorate is not False

    def describe(self, expected: int) -> str:
        if not self.running:
            return "corosync not running"
        quorum = {True: "quorate", False: "NOT quorate", None: "quorum n/a (1.x)"}[self.quorate]
        return f"sees {len(self.members)}/{expected} members, {quorum}, ring {self.ring_id or '?'}"


def parse_quorumtool(node: str, text: str) -> View:
    fields: dict[str, str] = {}
    members: list[Member] = []
    in_members = False
    for line in text.splitlines():
        if line.strip().startswith("Nodeid"):
            in_members = True
            continue
        if in_members:
            match = _MEMBER.match(line)
            if match:
                nodeid = int(match.group(1), 0)
                members.append(Member(nodeid, int(match.group(2)), match.group(3), bool(match.group(4))))
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
