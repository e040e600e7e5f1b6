"""Step 5: start Corosync at boot, the way this node's system does it.

The chapter flips START=no to START=yes in /etc/default/corosync (Ubuntu 12.04's init script reads it).
Newer packages have no START= line (Debian 12 ships only `#OPTIONS=""`), and there the init system
alone decides. So the step does both where both apply: it honours a START= line wherever the
packaging has one, and it enables the service with the init system: `systemctl enable corosync` when
systemd is PID 1, `update-rc.d`/`chkconfig` for sysv scripts. An operator who disabled the service
by hand (or put START=no back) gets both undone, and the next boot starts Corosync again.
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

ENABLE = {
    "systemd": "systemctl enable corosync",
    "update-rc.d": "update-rc.d corosync defaults >/dev/null && update-rc.d corosync enable",
    "chkconfig": "chkconfig --add corosync && chkconfig corosync on",
}


def has_start_line(f: NodeFacts) -> bool:
    """Pure: whether the packaging's /etc/default/corosync has a START= line to honour."""
    defaults = f.file(DEFAULTS_PATH)
    return defaults is not None and start_setting(defaults.text) is not None


def enable_method(f: NodeFacts) -> str:
    """Pure: how the init system enables a service here: 'systemd', 'update-rc.d', 'chkconfig' or 'none'."""
    if f.init_system == "systemd":
        return "systemd"
    if "update-rc.d" in f.boot_tools:
        return "update-rc.d"
    if "chkconfig" in f.boot_tools:
        return "chkconfig"
    return "none"


def boot_methods(f: NodeFacts) -> list[str]:
    """Pure: every way this node decides about Corosync at boot, in the order the step applies them."""
    methods = ["default-file"] if has_start_line(f) else []
    if enable_method(f) != "none":
        methods.append(enable_method(f))
    return methods


def _enabled(host: Host, method: str) -> tuple[bool, str]:
    """Whether the init system starts Corosync at boot, and what it said."""
    if method == "systemd":
        said = host.run("systemctl is-enabled corosync 2>&1", check=False).text.strip()
        return said == "enabled", f"systemctl is-enabled: {said or '?'}"
    if method == "chkconfig":
        return host.run("chkconfig --list corosync 2>/dev/null | grep -q '3:on'", check=False).ok, "chkconfig --list"
    link = host.run(SYSV_ENABLED, check=False).text.strip()
    return bool(link), (f"{link} exists" if link else "no S link in /etc/rc2.d or /etc/rc3.d")


def enable_at_boot(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        methods = boot_methods(f)
        if not methods:
            return NodeOutcome(node.name, "failed", "no way to enable Corosync at boot here: no START= line, no systemd, update-rc.d or chkconfig")
        done: list[str] = []  # what changed (or would)
        kept: list[str] = []  # what was already right
        diff = ""
        if "default-file" in methods:
            current = f.file(DEFAULTS_PATH)
            assert current is not None
            new, how = with_start_yes(current.text)
            if new == current.text:
                kept.append(f"{DEFAULTS_PATH}: START=yes is already set")
            else:
                diff = unified_diff(current.text, new, DEFAULTS_PATH)
                if not check:
                    host.write_file(DEFAULTS_PATH, new.encode(), mode=current.mode, owner=current.owner, group=current.group)
                done.append(f"{'would set ' if check else ''}{DEFAULTS_PATH}: {how}")
        method = enable_method(f)
        if method != "none":
            enabled, said = _enabled(host, method)
            reason = f"init is {f.init_system}" + ("" if has_start_line(f) else f"; {DEFAULTS_PATH} has no START= line")
            if enabled:
                kept.append(f"already enabled at boot ({said}; {reason})")
            else:
                if not check:
                    host.run(ENABLE[method])
                verb = "would run" if check else "enabled at boot with"
                done.append(f"{verb} `{ENABLE[method]}` ({said}; {reason})")
        if not done:
            return NodeOutcome(node.name, "unchanged", "; ".join(kept))
        if check:
            return NodeOutcome(node.name, "would change", "; ".join(done), diff=diff)
        return NodeOutcome(node.name, "changed", "; ".join(done + kept), diff=diff)

    return run_per_node(STEP, TITLE, cluster, hosts, facts, act, check=check)
