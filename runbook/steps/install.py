"""Step 1: install Corosync with the node's package manager, unattended; the generation follows from it."""

from __future__ import annotations

import re

from runbook.engine import operations
from runbook.engine.facts import NodeFacts
from runbook.engine.plan import NodePlan, StepPlan
from runbook.model.types import Cluster
from runbook.report.outcome import StepReport
from runbook.ssh.hosts import Hosts
from runbook.steps._common import apply, gather_facts

STEP = "01-install"
TITLE = "Install Corosync"
SECTIONS = ("corosync_version", "package_manager")
# The package manager's candidate version only names what a dry run would install; reading it runs
# `apt-cache policy` on every node that lacks Corosync (0.8 s of CPU each, measured here), so a real
# run skips it.
CHECK_SECTIONS = SECTIONS + ("corosync_candidate",)
NOTE = "Package scripts may start Corosync with the package's default config; step 06 restarts it with the cluster's."

APT_INSTALL = (
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
    "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold corosync"
)
INSTALLED_VERSION = "corosync -v | head -n 1"
_VERSION = re.compile(r"version '?(\d+(?:\.\d+)*)")


def install_command(package_manager: str | None) -> str:
    """Pure: the unattended install command for a package manager."""
    if package_manager == "apt-get":
        return APT_INSTALL
    if package_manager in ("dnf", "yum"):
        return f"{package_manager} install -y -q corosync"
    raise ValueError(f"no install command for package manager {package_manager!r}")


def install_script(package_manager: str | None) -> str:
    """Pure: install; on apt, refresh the package lists once if the package is unknown; say the version."""
    command = install_command(package_manager)
    if package_manager == "apt-get":
        body = (
            f'out=$({command} 2>&1) && printf "%s\\n" "$out" || {{ printf "%s\\n" "$out"; '
            'printf "%s\\n" "$out" | grep -q "Unable to locate package" || exit 1; '
            f"DEBIAN_FRONTEND=noninteractive apt-get update -q && {command}; }}"
        )
    else:
        body = command
    return f"{body}\n{INSTALLED_VERSION}"


def installed_version(output: str) -> str:
    """Pure: the version `corosync -v` printed at the end of the install's output."""
    found = _VERSION.findall(output)
    return found[-1] if found else "unknown"


def by_hand(package_manager: str | None) -> tuple[str, ...]:
    """What an operator types: the chapter's plain `apt-get install corosync` on apt systems."""
    return ("apt-get install corosync",) if package_manager == "apt-get" else (f"{package_manager} install corosync",)


def plan_node(facts: NodeFacts) -> NodePlan:
    """Pure: install where Corosync is missing, nothing where any version is there."""
    plan = NodePlan(facts.node)
    if facts.corosync_version:
        plan.summary = f"Corosync {facts.corosync_version} is already installed"
        return plan
    try:
        command = install_command(facts.package_manager)
    except ValueError:
        plan.failed = "Corosync is not installed and there is no apt-get, dnf or yum to install it"
        return plan
    version = f" {facts.candidate_version}" if facts.candidate_version else ""
    plan.operations.append(
        operations.run(
            "install", command, "Corosync is not installed", script=install_script(facts.package_manager), by_hand=by_hand(facts.package_manager), timeout=900
        )
    )
    plan.would = f"would install Corosync{version}: {command}"
    plan.change = f"installed Corosync with {facts.package_manager}"
    return plan


def plan(cluster: Cluster, facts: dict[str, NodeFacts]) -> StepPlan:
    return StepPlan(STEP, TITLE, {n.name: plan_node(facts[n.name]) for n in cluster.nodes}, notes=[NOTE])


def install_corosync(cluster: Cluster, hosts: Hosts, *, check: bool = False) -> StepReport:
    facts = gather_facts(STEP, cluster, hosts, CHECK_SECTIONS if check else SECTIONS)
    report = apply(plan(cluster, facts), cluster, hosts, check=check)
    for outcome in report.outcomes:
        if outcome.status == "changed" and outcome.operations:
            version = installed_version(outcome.operations[0].output)
            outcome.summary = outcome.summary.replace("installed Corosync", f"installed Corosync {version}", 1)
    return report
