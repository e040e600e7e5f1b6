"""`firewall: manage`: let Corosync's UDP ports in from the cluster's own peers, on the node's own
firewall, idempotently, kept across reboots. Step 05 (start at boot) adds these operations.

- firewalld and ufw keep their own rules: the runbook adds the missing ones with their commands
  (firewalld: permanent rich rules for each peer and port, then a reload; ufw: `allow ... comment`).
- nftables and iptables keep nothing by themselves across a boot unless the admin saved them. Here the
  rules go in a script, /etc/corosync/runbook-firewall.sh, that a unit of our own runs at boot after
  the admin's firewall is loaded and before Corosync; the step runs the same script now. For
  nftables the script fills a chain of our own in the admin's table and jumps to it first from the
  input chain that drops (an accept in a table of our own would not help: a packet any base chain
  drops is dropped). Running the script again leaves the same rules.
The previous file and unit, when the runbook replaces them, are kept as its usual backups.
`plan_firewall` is pure.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from runbook.engine import operations
from runbook.engine.operations import Operation
from runbook.steps.firewall import Firewall, dropping_chains, rule_commands

SCRIPT_PATH = "/etc/corosync/runbook-firewall.sh"
UNIT = "corosync-runbook-firewall.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
UNIT_TEXT = f"""[Unit]
Description=Let Corosync's UDP ports in from the cluster's peers (corosync runbook, firewall: manage)
After=nftables.service netfilter-persistent.service iptables.service
Before=corosync.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh {SCRIPT_PATH}

[Install]
WantedBy=multi-user.target
"""
STATE_SCRIPT = (
    f"echo @script; cat {SCRIPT_PATH} 2>/dev/null; echo @end-script; "
    f"echo \"@unit $(systemctl is-enabled {UNIT} 2>/dev/null)\"; "
    "command -v firewall-cmd >/dev/null 2>&1 && { echo @rich; firewall-cmd --permanent --list-rich-rules 2>/dev/null; echo @end-rich; }; "
    "command -v ufw >/dev/null 2>&1 && { echo @ufw-rules; ufw status 2>/dev/null; echo @end-ufw; }; true"
)


@dataclass(frozen=True)
class Present:
    """What the node has of ours already: the script's text, the unit's state, firewalld's and ufw's rules."""

    script: str | None = None
    unit: str = ""
    rich: str = ""
    ufw: str = ""


def parse_present(text: str) -> Present:
    """Pure: STATE_SCRIPT's output."""
    script = re.search(r"^@script\n(.*?)^@end-script$", text, re.M | re.S)
    unit = re.search(r"^@unit (.*)$", text, re.M)
    rich = re.search(r"^@rich\n(.*?)^@end-rich$", text, re.M | re.S)
    ufw = re.search(r"^@ufw-rules\n(.*?)^@end-ufw$", text, re.M | re.S)
    return Present(
        script=(script.group(1) or None) if script else None,
        unit=unit.group(1).strip() if unit else "",
        rich=rich.group(1) if rich else "",
        ufw=ufw.group(1) if ufw else "",
    )


def script_text(firewall: Firewall, peers: Sequence[str], ports: Sequence[int]) -> str:
    """Pure: the boot script for nftables/iptables (the same lines `firewall: check` names)."""
    lines = rule_commands(firewall, peers, ports)
    if firewall.kind == "iptables":
        lines = [_idempotent_iptables(line) for line in lines]
    body = "\n".join(lines)
    return (
        "#!/bin/sh\n"
        f"# Written by the corosync runbook (firewall: manage); run at boot by {UNIT}.\n"
        f"# Lets UDP {', '.join(str(p) for p in sorted(set(ports)))} in from the cluster's peers: {', '.join(peers)}.\n"
        "# Running it again leaves the same rules.\n"
        "set -e\n" + body + "\n"
    )


def _idempotent_iptables(line: str) -> str:
    """`iptables -I INPUT spec` -> `iptables -C INPUT spec 2>/dev/null || iptables -I INPUT spec`."""
    check = line.replace(" -I INPUT ", " -C INPUT ", 1)
    return f"{check} 2>/dev/null || {line}"


@dataclass
class FirewallPlan:
    operations: list[Operation] = field(default_factory=list)
    said: str = ""  # what the node's firewall needs, or has


def plan_firewall(firewall: Firewall, present: Present, peers: Sequence[str], ports: Sequence[int], systemd: bool) -> FirewallPlan:
    """Pure: the operations that open `ports` to `peers` on this node's firewall ([] when they are open)."""
    shown_ports = ", ".join(str(p) for p in sorted(set(ports)))
    if firewall.kind is None:
        return FirewallPlan(said="no firewall drops input here: nothing to open")
    if firewall.kind in ("firewalld", "ufw"):
        missing = _missing(firewall, present, peers, ports)
        if not missing:
            return FirewallPlan(said=f"{firewall.kind} already lets UDP {shown_ports} in from {', '.join(peers)}")
        ops = [operations.run("run", line, f"{firewall.kind}: UDP from a cluster peer is not allowed yet") for line in missing]
        if firewall.kind == "firewalld":
            ops.append(operations.run("run", "firewall-cmd --reload", "firewalld: the permanent rules take effect now"))
        return FirewallPlan(ops, f"{firewall.kind}: let UDP {shown_ports} in from {', '.join(peers)}")
    wanted = script_text(firewall, peers, ports)
    ops: list[Operation] = []
    if present.script != wanted:
        ops.append(operations.write_file(SCRIPT_PATH, wanted.encode(), "the rules for the cluster's peers" + (" changed" if present.script else ""),
                                         mode=0o755, validate="sh -n \"$f\"", validate_shown="sh -n <new file>"))
    live = _live(firewall)
    if ops or not live:
        ops.append(operations.run("run", f"sh {SCRIPT_PATH}", "the rules are not in the running firewall" if not ops else "apply the new rules now"))
    if systemd and present.unit != "enabled":
        ops.append(operations.write_file(UNIT_PATH, UNIT_TEXT.encode(), f"{UNIT} keeps the rules across a reboot"))
        ops.append(operations.run("enable", f"systemctl daemon-reload && systemctl enable {UNIT}", f"{UNIT} is not enabled at boot",
                                  by_hand=("systemctl daemon-reload", f"systemctl enable {UNIT}")))
    said = f"{firewall.describe()}: UDP {shown_ports} open to {', '.join(peers)}" + ("" if systemd else f" (init is not systemd: {SCRIPT_PATH} is not run at boot)")
    return FirewallPlan(ops, said)


def _live(firewall: Firewall) -> bool:
    """The running nftables ruleset has our chain, jumped to from each chain that drops."""
    if firewall.kind != "nftables":
        return False  # iptables: the script's -C checks make running it again harmless; always run it
    chains = dropping_chains(firewall)
    return bool(chains) and all(c.jumps_to_ours and f"{c.family} {c.table}" in firewall.ours for c in chains)


def _missing(firewall: Firewall, present: Present, peers: Sequence[str], ports: Sequence[int]) -> list[str]:
    lines = [line for line in rule_commands(firewall, peers, ports) if line != "firewall-cmd --reload"]
    if firewall.kind == "firewalld":
        have = {" ".join(r.split()) for r in present.rich.splitlines() if r.strip()}
        return [line for line in lines if " ".join(shlex.split(line)[-1].split("=", 1)[1].split()) not in have]
    have_ufw = present.ufw
    out = []
    for line in lines:
        words = line.split()
        peer, port = words[words.index("from") + 1], words[words.index("port") + 1]
        if not re.search(rf"^{port}/udp\s+ALLOW(?: IN)?\s+{re.escape(peer)}\b", have_ufw, re.M):
            out.append(line)
    return out

