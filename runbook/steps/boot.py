"""Step 5: start Corosync at boot, the way this node's system does it.

The chapter flips START=no to START=yes in /etc/default/corosync (Ubuntu 12.04's init script reads it).
Newer packages have no START= line (Debian 12 ships only `#OPTIONS=""`), and there the init system
alone decides. So the step does both where both apply: it honours a START= line wherever the
packaging has one, and it enables the service with the init system: `systemctl enable corosync` when
systemd is PID 1, `update-rc.d`/`chkconfig` for sysv scripts. An operator who disabled the service
by hand (or put START=no back) gets both undone, and the next boot starts Corosync again.
"""

from __future__ import annotations

from collections.abc import Mapping

from runbook.conf.edits import start_setting, with_start_yes
from runbook.engine import operations
from runbook.engine.facts import DEFAULTS_PATH, NodeFacts
from runbook.engine.plan import NodePlan, StepPlan
from runbook.errors import ClusterFileError
from runbook.model.effective import resolve
from runbook.model.types import Cluster
from runbook.report.outcome import StepReport, unified_diff
from runbook.ssh.hosts import Hosts
from runbook.steps import firewall, firewall_rules
from runbook.steps._common import apply, gather_facts, generation_of
from runbook.steps.link_check import link_ports
from runbook.steps.preflight import read_resolution

STEP = "05-enable-at-boot"
TITLE = "Start Corosync at boot"
SECTIONS = ("init", "update_rc", "boot_enabled", f"file:{DEFAULTS_PATH}")
FIREWALL_SECTIONS = ("corosync_version", "corosync_candidate")
FIREWALL_EXTRA = {firewall.SECTION: firewall.SCRIPT, "firewall_present": firewall_rules.STATE_SCRIPT}

ENABLE = {
    "systemd": "systemctl enable corosync",
    "update-rc.d": "update-rc.d corosync defaults >/dev/null && update-rc.d corosync enable",
    "chkconfig": "chkconfig --add corosync && chkconfig corosync on",
}
ENABLE_BY_HAND = {
    "systemd": ("systemctl enable corosync",),
    "update-rc.d": ("update-rc.d corosync defaults",),
    "chkconfig": ("chkconfig --add corosync", "chkconfig corosync on"),
}
BY_HAND_START = f"sed -i 's/^START=.*/START=yes/' {DEFAULTS_PATH}"


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


def enabled(f: NodeFacts, method: str) -> tuple[bool, str]:
    """Pure: whether the init system starts Corosync at boot, and what it said (from the facts)."""
    said = f.boot_enabled
    if method == "systemd":
        value = said.get("systemd", "")
        return value == "enabled", f"systemctl is-enabled: {value or '?'}"
    if method == "chkconfig":
        return said.get("chkconfig") == "on", "chkconfig --list"
    link = said.get("sysv_link", "")
    return bool(link), (f"{link} exists" if link else "no S link in /etc/rc2.d or /etc/rc3.d")


def plan_node(f: NodeFacts) -> NodePlan:
    """Pure: START=yes where the defaults file has the line; enable with the init system where it is off."""
    plan = NodePlan(f.node)
    methods = boot_methods(f)
    if not methods:
        plan.failed = "no way to enable Corosync at boot here: no START= line, no systemd, update-rc.d or chkconfig"
        return plan
    done: list[str] = []
    kept: list[str] = []
    if "default-file" in methods:
        current = f.file(DEFAULTS_PATH)
        assert current is not None
        new, how = with_start_yes(current.text)
        if new == current.text:
            kept.append(f"{DEFAULTS_PATH}: START=yes is already set")
        else:
            plan.diff = unified_diff(current.text, new, DEFAULTS_PATH)
            plan.files = {DEFAULTS_PATH: new}
            plan.operations.append(
                operations.write_file(
                    DEFAULTS_PATH, new.encode(), f"START={start_setting(current.text) or ''}",
                    mode=current.mode, owner=current.owner, group=current.group, by_hand=(BY_HAND_START,),
                )
            )
            done.append(f"{DEFAULTS_PATH}: {how}")
    method = enable_method(f)
    if method != "none":
        is_on, said = enabled(f, method)
        why = f"init is {f.init_system}" + ("" if has_start_line(f) else f"; {DEFAULTS_PATH} has no START= line")
        if is_on:
            kept.append(f"already enabled at boot ({said}; {why})")
        else:
            plan.operations.append(operations.run("enable", ENABLE[method], f"not enabled at boot ({said})", by_hand=ENABLE_BY_HAND[method]))
            done.append(f"`{ENABLE[method]}` ({said}; {why})")
    if not done:
        plan.summary = "; ".join(kept)
        return plan
    plan.would = "; ".join(("would run " + d if d.startswith("`") else "would set " + d) for d in done)
    plan.change = "; ".join(("enabled at boot with " + d if d.startswith("`") else d) for d in done + kept)
    return plan


def plan(cluster: Cluster, facts: dict[str, NodeFacts], peers: Mapping[str, list[str]] | None = None,
         ports: tuple[int, ...] = ()) -> StepPlan:
    """Pure: every node's boot plan; with `firewall: manage`, its firewall's operations come first."""
    plans = {n.name: plan_node(facts[n.name]) for n in cluster.nodes}
    if cluster.firewall == "manage" and peers is not None:
        for name, node_plan in plans.items():
            f = facts[name]
            wall = firewall.parse_firewall(f.extra.get(firewall.SECTION, ""))
            present = firewall_rules.parse_present(f.extra.get("firewall_present", ""))
            _with_firewall(node_plan, firewall_rules.plan_firewall(wall, present, peers[name], ports, f.init_system == "systemd"))
    return StepPlan(STEP, TITLE, plans)


def _with_firewall(node_plan: NodePlan, fw: firewall_rules.FirewallPlan) -> None:
    """The firewall's operations before the boot ones, and its words beside theirs."""
    if not fw.operations:
        node_plan.summary = "; ".join(p for p in (node_plan.summary, f"firewall: {fw.said}") if p)
        if node_plan.operations:
            node_plan.change += f"; firewall: {fw.said}"
            node_plan.would += f"; firewall: {fw.said}"
        return
    kept = node_plan.summary if not node_plan.operations else ""
    node_plan.operations[:0] = fw.operations
    node_plan.change = "; ".join(p for p in (f"firewall: {fw.said}", node_plan.change, kept) if p)
    node_plan.would = "; ".join(p for p in (f"firewall: would {fw.said[:1].lower()}{fw.said[1:]}", node_plan.would, kept) if p)


def peers_and_ports(cluster: Cluster, hosts: Hosts, facts: Mapping[str, NodeFacts], check: bool) -> tuple[dict[str, list[str]], tuple[int, ...]]:
    """Each node's peers (their addresses on every link, as the nodes resolve them) and every port Corosync uses."""
    resolved = read_resolution(STEP, cluster, hosts)
    generation = generation_of(cluster, facts[cluster.nodes[0].name], STEP, check)
    try:
        transport = resolve(cluster, generation).transport
    except ClusterFileError:
        transport = "knet" if generation >= 3 else "udpu"
    ports = tuple(sorted({p for ps in link_ports(cluster, transport).values() for p in ps}))
    peers = {}
    for me in cluster.nodes:
        mine = resolved.get(me.name, {})
        peers[me.name] = [mine.get(a, (a,))[0] for n in cluster.nodes if n.name != me.name for a in n.addresses]
    return peers, ports


def enable_at_boot(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    if cluster.firewall != "manage":
        return apply(plan(cluster, gather_facts(STEP, cluster, hosts, SECTIONS)), cluster, hosts, check=check)
    facts = gather_facts(STEP, cluster, hosts, SECTIONS + FIREWALL_SECTIONS, extra=FIREWALL_EXTRA)
    peers, ports = peers_and_ports(cluster, hosts, facts, check)
    return apply(plan(cluster, facts, peers, ports), cluster, hosts, check=check)
