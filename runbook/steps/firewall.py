"""Each node's firewall as preflight sees it (firewalld, ufw, nftables, iptables), and the rule that
lets Corosync's traffic in from the cluster's own peers.

Detection reads, changes nothing: `firewall-cmd --state`, `ufw status`, `nft list ruleset`,
`iptables-legacy-save`. Whether the firewall *would* drop Corosync's traffic is not guessed from the
rules: the link check's probe answers it. The firewall only tells which rule to add, named in the
check's failure, and, with `firewall: manage`, step 05 adds it (runbook.steps.firewall_rules).
`parse_firewall` and `rule_commands` are pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SECTION = "firewall"
SCRIPT = (
    "echo \"@firewalld $(command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state 2>&1 | head -n 1)\"; "
    "echo \"@ufw $(command -v ufw >/dev/null 2>&1 && ufw status 2>/dev/null | head -n 1)\"; "
    "if command -v nft >/dev/null 2>&1; then echo @nft; nft list ruleset 2>&1; echo @end; fi; "
    "if command -v iptables-legacy-save >/dev/null 2>&1; then echo @iptables-legacy; iptables-legacy-save 2>/dev/null; echo @end; fi; true"
)
CHAIN = "corosync-runbook"  # the nftables chain of our own, in the table whose input chain drops


@dataclass(frozen=True)
class InputChain:
    """An nftables base chain on the input hook that can drop: policy drop, or a drop/reject rule."""

    family: str
    table: str
    chain: str
    policy: str
    drops: bool
    jumps_to_ours: bool = False

    @property
    def by_iptables(self) -> bool:
        """Made by iptables-nft (Debian's `iptables`): add to it with iptables, not nft, or iptables-save breaks."""
        return self.family in ("ip", "ip6") and self.table == "filter" and self.chain == "INPUT"

    def describe(self) -> str:
        why = f"policy {self.policy}" if self.policy == "drop" else "drop/reject rules"
        return f"chain {self.family} {self.table} {self.chain} ({why})"


@dataclass(frozen=True)
class Firewall:
    """What filters a node's input: one kind (the first that is on), and the nftables chains that may drop."""

    kind: str | None  # firewalld | ufw | nftables | iptables | None (nothing drops input)
    chains: tuple[InputChain, ...] = ()
    legacy_drops: bool = False
    ours: tuple[str, ...] = ()  # "family table" of each table that has our chain

    def describe(self) -> str:
        if self.kind is None:
            return "no firewall drops input traffic"
        if self.kind == "nftables":
            return "nftables: " + ", ".join(c.describe() for c in self.chains if c.policy == "drop" or c.drops)
        return {"firewalld": "firewalld is running", "ufw": "ufw is active", "iptables": "iptables (legacy) drops input"}.get(self.kind, self.kind)


_TABLE = re.compile(r"^\s*table\s+(\w+)\s+(\S+)\s*\{")
_CHAIN = re.compile(r"^\s*chain\s+(\S+)\s*\{")
_HOOK = re.compile(r"\btype\s+filter\s+hook\s+input\b")
_POLICY = re.compile(r"\bpolicy\s+(\w+)")


def parse_firewall(text: str) -> Firewall:
    """Pure: the detection script's output -> what filters this node's input."""
    head, _, rest = text.partition("@nft\n")
    nft, _, legacy = rest.partition("@end\n")
    firewalld = re.search(r"^@firewalld\s+running\s*$", head, re.M) is not None
    ufw = re.search(r"^@ufw\s+Status:\s*active\s*$", head, re.M) is not None
    chains, ours = _nft_chains(nft)
    legacy_text = legacy.partition("@iptables-legacy\n")[2].partition("@end")[0]
    legacy_drops = bool(re.search(r"^:INPUT DROP|^-A INPUT .*-j (DROP|REJECT)", legacy_text, re.M))
    if firewalld:
        kind: str | None = "firewalld"
    elif ufw:
        kind = "ufw"
    elif any(c.policy == "drop" or c.drops for c in chains):
        kind = "iptables" if all(c.by_iptables for c in chains if c.policy == "drop" or c.drops) else "nftables"
    elif legacy_drops:
        kind = "iptables"
    else:
        kind = None
    return Firewall(kind, chains, legacy_drops, ours)


def _nft_chains(text: str) -> tuple[tuple[InputChain, ...], tuple[str, ...]]:
    chains: list[InputChain] = []
    ours: list[str] = []
    table = chain = None
    hook = False
    policy, drops, jumps = "accept", False, False

    def close() -> None:
        if table and chain and hook:
            chains.append(InputChain(table[0], table[1], chain, policy, drops, jumps))

    for line in text.splitlines():
        if (m := _TABLE.match(line)) is not None:
            table, chain = (m.group(1), m.group(2)), None
            continue
        if (m := _CHAIN.match(line)) is not None:
            close()
            chain, hook, policy, drops, jumps = m.group(1), False, "accept", False, False
            if chain == CHAIN and table:
                ours.append(f"{table[0]} {table[1]}")
            continue
        if chain is None:
            continue
        if _HOOK.search(line):
            found = _POLICY.search(line)
            hook, policy = True, (found.group(1) if found else "accept")
        elif re.search(r"\b(drop|reject)\b", line):
            drops = True
        if f"jump {CHAIN}" in line:
            jumps = True
    close()
    return tuple(chains), tuple(ours)


def _family(address: str) -> str:
    return "ip6" if ":" in address else "ip"


def rule_commands(firewall: Firewall, peers: Sequence[str], ports: Sequence[int]) -> list[str]:
    """Pure: the commands that let UDP `ports` in from `peers` on this node, for its kind of firewall
    (what `firewall: check` names, and the same `firewall: manage` applies)."""
    port_list = ", ".join(str(p) for p in sorted(set(ports)))
    if firewall.kind == "firewalld":
        lines = [f"firewall-cmd --permanent --add-rich-rule='rule family=\"{'ipv6' if ':' in p else 'ipv4'}\" source address=\"{p}\" "
                 f"port port=\"{port}\" protocol=\"udp\" accept'" for p in peers for port in sorted(set(ports))]
        return lines + ["firewall-cmd --reload"]
    if firewall.kind == "ufw":
        return [f"ufw allow proto udp from {p} to any port {port} comment {CHAIN}" for p in peers for port in sorted(set(ports))]
    if firewall.kind == "iptables":
        tool = {"ip": "iptables", "ip6": "ip6tables"}
        return [f"{tool[_family(p)]} -I INPUT -p udp -s {p} --dport {port} -m comment --comment {CHAIN} -j ACCEPT"
                for p in peers for port in sorted(set(ports))]
    if firewall.kind == "nftables":
        return nft_lines(firewall, peers, ports, port_list)
    return []


def dropping_chains(firewall: Firewall) -> list[InputChain]:
    return [c for c in firewall.chains if (c.policy == "drop" or c.drops) and not c.by_iptables]


def nft_lines(firewall: Firewall, peers: Sequence[str], ports: Sequence[int], port_list: str | None = None) -> list[str]:
    """nftables: a chain of our own in each table whose input chain drops, jumped to first from that chain.

    An accept in a table of our own would not help: nftables drops a packet that any base chain drops.
    Our chain is flushed and refilled, so running the lines again leaves the same rules."""
    port_list = port_list or ", ".join(str(p) for p in sorted(set(ports)))
    lines = []
    for c in dropping_chains(firewall):
        lines += [f"nft add chain {c.family} {c.table} {CHAIN}", f"nft flush chain {c.family} {c.table} {CHAIN}"]
        for fam in ("ip", "ip6"):
            mine = [p for p in peers if _family(p) == fam]
            if mine and (c.family in ("inet", "bridge", "netdev") or c.family == fam):
                lines.append(f"nft add rule {c.family} {c.table} {CHAIN} {fam} saddr {{ {', '.join(mine)} }} udp dport {{ {port_list} }} accept")
        lines.append(f"nft list chain {c.family} {c.table} {c.chain} | grep -q 'jump {CHAIN}' || "
                     f"nft insert rule {c.family} {c.table} {c.chain} jump {CHAIN}")
    return lines


def hints(firewalls: Mapping[str, Firewall], peers: Mapping[str, Sequence[str]], ports: Sequence[int]) -> dict[str, str]:
    """Pure: per node with a firewall, the sentence the link check adds to its failure."""
    out = {}
    for node, fw in firewalls.items():
        if fw.kind is None:
            continue
        commands = rule_commands(fw, peers.get(node, ()), ports)
        shown = "; ".join(commands[:4]) + ("; ..." if len(commands) > 4 else "")
        out[node] = (f"{node}'s firewall is the first suspect ({fw.describe()}): set `firewall: manage` in the cluster file "
                     f"to let the runbook add the rule, or add it yourself: {shown}")
    return out
