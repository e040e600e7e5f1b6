"""Step 0: check every node before changing any: reachable, root, supported OS, own address, generation."""

from __future__ import annotations

from runbook.cluster import Cluster, Node
from runbook.facts import NodeFacts
from runbook.hosts import Hosts
from runbook.report import NodeOutcome, StepReport
from runbook.steps._common import gather_facts, raise_if_failed

STEP = "00-preflight"
TITLE = "Preflight: every node checked before any node is changed"
SUPPORTED_OS = {"debian", "ubuntu", "rhel", "centos", "rocky", "almalinux", "fedora", "ol"}
PACKAGE_MANAGERS = {"apt-get", "dnf", "yum"}


def check_node(cluster: Cluster, node: Node, facts: NodeFacts) -> list[str]:
    """Pure: what stops this node from being set up (empty list when it is ready)."""
    problems = []
    if facts.uid != 0:
        problems.append(
            f"commands run as uid {facts.uid}, not root; log in as root or set ssh.sudo: true "
            "(with passwordless sudo, or the password in RUNBOOK_SUDO_PASSWORD)"
        )
    if facts.os_id not in SUPPORTED_OS and facts.package_manager not in PACKAGE_MANAGERS:
        problems.append(f"unsupported OS {facts.os_name or facts.os_id!r}: needs apt-get, dnf or yum")
    if not facts.has_address(node.address):
        shown = ", ".join(a for a in facts.addresses if not a.startswith(("127.", "::1", "fe80"))) or "none"
        problems.append(
            f"nodes[{cluster.nodes.index(node)}].address {node.address} is not on any interface of this host "
            f"(it has: {shown}); is the address right, and does ssh reach the right machine?"
        )
    if facts.generation is None:
        if facts.package_manager not in PACKAGE_MANAGERS:
            problems.append("Corosync is not installed and there is no apt-get, dnf or yum to install it")
    elif facts.generation not in (1, 2, 3):
        problems.append(f"Corosync {facts.corosync_version} is not a generation this runbook knows (1, 2, 3)")
    elif cluster.generation is not None and facts.generation != cluster.generation:
        problems.append(
            f"the cluster file says generation: {cluster.generation}, but Corosync {facts.corosync_version} is installed"
        )
    for path, target in facts.links.items():  # the write path refuses links too; here nothing has changed yet
        problems.append(
            f"{path} is a symbolic link to {target}; the runbook writes each node's own file and will neither "
            f"write through a link (its target may be shared or managed elsewhere) nor replace it (the target would "
            f"keep the old settings). Make it a regular file (`cp --remove-destination {target} {path}`), "
            f"or remove the link, then run again"
        )
    return problems


def summary_of(facts: NodeFacts) -> str:
    if facts.corosync_version:
        corosync = f"Corosync {facts.corosync_version} ({'running' if facts.corosync_running else 'stopped'})"
    else:
        corosync = f"Corosync not installed (step 01 installs it with {facts.package_manager})"
    return f"ready: {facts.os_name or facts.os_id}, {corosync}, init {facts.init_system}, uid {facts.uid}"


def preflight(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    """Read facts everywhere and refuse to go on if any node is not fit; changes nothing."""
    facts = gather_facts(STEP, cluster, hosts)
    report = StepReport(step=STEP, title=TITLE, check=check)
    for node in cluster.nodes:
        problems = check_node(cluster, node, facts[node.name])
        if problems:
            report.outcomes.append(NodeOutcome(node.name, "failed", "; ".join(problems)))
        else:
            report.outcomes.append(NodeOutcome(node.name, "ok", summary_of(facts[node.name])))
    installed = {f.generation for f in facts.values() if f.generation is not None}
    if len(installed) > 1:
        versions = ", ".join(f"{n}: {f.corosync_version}" for n, f in facts.items() if f.corosync_version)
        report.problems.append(f"nodes run different Corosync generations ({versions}); they cannot form one cluster")
    raise_if_failed(report)
    generation = cluster.generation or (installed.pop() if installed else None)
    if generation:
        report.notes.append(f"Corosync generation {generation}.x: " + ("from the cluster file" if cluster.generation else "detected on the nodes"))
    else:
        report.notes.append("Corosync is not installed yet: its generation is detected after step 01")
    report.notes.append(f"primary (makes the authkey): {cluster.primary.name}")
    return report


