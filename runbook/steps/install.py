"""Step 1: install Corosync with the node's package manager, unattended; the generation follows from it."""

from __future__ import annotations

import re

from runbook.cluster import Cluster, Node
from runbook.errors import CommandFailed
from runbook.facts import NodeFacts
from runbook.hosts import Host, Hosts
from runbook.report import NodeOutcome, StepReport
from runbook.steps._common import gather_facts, run_per_node

STEP = "01-install"
TITLE = "Install Corosync"

APT_INSTALL = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold corosync"
)


def install_command(package_manager: str | None) -> str:
    """Pure: the unattended install command for a package manager."""
    if package_manager == "apt-get":
        return APT_INSTALL
    if package_manager in ("dnf", "yum"):
        return f"{package_manager} install -y -q corosync"
    raise ValueError(f"no install command for package manager {package_manager!r}")


def _install(host: Host, facts: NodeFacts) -> str:
    command = install_command(facts.package_manager)
    try:
        host.run(command, timeout=900)
    except CommandFailed as exc:
        if facts.package_manager == "apt-get" and "Unable to locate package" in exc.stderr:
            host.run("DEBIAN_FRONTEND=noninteractive apt-get update -q", timeout=900)
            host.run(command, timeout=900)
        else:
            raise
    version = host.run("corosync -v | head -n 1").text
    match = re.search(r"version '?(\d+(?:\.\d+)*)", version)
    return match.group(1) if match else "unknown"


def install(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts)

    def act(node: Node, host: Host, f: NodeFacts) -> NodeOutcome:
        if f.corosync_version:
            return NodeOutcome(node.name, "unchanged", f"Corosync {f.corosync_version} is already installed")
        command = install_command(f.package_manager)
        if check:
            version = f" {f.candidate_version}" if f.candidate_version else ""
            return NodeOutcome(node.name, "would change", f"would install Corosync{version}: {command}")
        version = _install(host, f)
        return NodeOutcome(node.name, "changed", f"installed Corosync {version} with {f.package_manager}")

    notes = [
        "Package scripts may start Corosync with the package's default config; step 06 restarts it with the cluster's.",
    ]
    return run_per_node(STEP, TITLE, cluster, hosts, facts, act, check=check, notes=notes)
