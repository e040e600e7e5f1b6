"""Step 5: start Corosync at boot, the way this node's system does it.

The chapter flips START=no to START=yes in /etc/default/corosync (Ubuntu 12.04's init script reads it).
Newer packages have no START= line (Debian 12 ships only `#OPTIONS=""`), so there the init system
decides: `systemctl enable` under systemd, `update-rc.d`/`chkconfig` for sysv scripts.
"""

from __future__ import annotations

from runbook.cluster import Cluster, Node
from runbook.edits import start_setting, with_start_yes
from runbook.facts import DEFAULTS_PATH, NodeFacts
from runbook.hosts import Host, Hosts
from runbook.report import NodeOutcome, StepReport, unified_diff
from runbook.steps._common import gather_facts, run_per_node

STEP = "05-enable-at-boot"
TITLE = "Start Corosync at boot"

SYSV_ENABLED = "ls /etc/rc2.d/S[0-9][0-9]corosync /etc/rc3.d/S[0-9][0-9]corosync 2>/dev/null | head -n 1"


def boot_method(f: NodeFacts) -> str:
    """Pure: 'default-file', 'systemd', 'update-rc.d' or 'chkconfig' for this node."""
    defaults = f.file(DEFAULTS_PATH)
    if defaults is not None and start_setting(defaults.text) is not None:
        return "default-file"
    if f.init_system == "systemd":
        return "systemd"
    if "update-rc.d" in f.boot_tools:
        return "update-rc.d"
    if "chkconfig" in f.boot_tools:
        return "chkconfig"
    return "none"


def _enabled(host: Host, method: str) -> bool:
    if method == "systemd":
        return host.run("systemctl is-enabled corosync", check=False).text.strip() == "enabled"
    if method == "chkconfig":
        return host.run("chkconfig --list corosync 2>/dev/null | grep -q '3:on'", check=False).ok
    return bool(host.run(SYSV_ENABLED, check=False).text.strip())


ENABLE = {
    "systemd": "systemctl enable corosync",
    "update-rc.d": "update-rc.d corosync defaults >/dev/null && update-rc.d corosync enable",
    "chkconfig": "chkconfig --add corosync && chkconfig corosync on",
}


def enable_at_boot(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        method = boot_method(f)
        if method == "default-file":
            current = f.file(DEFAULTS_PATH)
            assert current is not None
            new, how = with_start_yes(current.text)
            if new == current.text:
                return NodeOutcome(node.name, "unchanged", f"{DEFAULTS_PATH}: START=yes is already set")
            diff = unified_diff(current.text, new, DEFAULTS_PATH)
            if check:
                return NodeOutcome(node.name, "would change", f"{DEFAULTS_PATH}: would set {how}", diff=diff)
            host.write_file(DEFAULTS_PATH, new.encode(), mode=current.mode, owner=current.owner, group=current.group)
            return NodeOutcome(node.name, "changed", f"{DEFAULTS_PATH}: {how}", diff=diff)
        if method == "none":
            return NodeOutcome(node.name, "failed", "no way to enable Corosync at boot here: no START= line, no systemd, update-rc.d or chkconfig")
        reason = f"{DEFAULTS_PATH} has no START= line; init is {f.init_system}, so {method}"
        if _enabled(host, method):
            return NodeOutcome(node.name, "unchanged", f"already enabled at boot ({reason})")
        if check:
            return NodeOutcome(node.name, "would change", f"would run `{ENABLE[method]}` ({reason})")
        host.run(ENABLE[method])
        return NodeOutcome(node.name, "changed", f"enabled at boot with `{ENABLE[method]}` ({reason})")

    return run_per_node(STEP, TITLE, cluster, hosts, facts, act, check=check)
