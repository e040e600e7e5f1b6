"""The whole setup as an operator would type it, from the same plans a run applies.

`runbook by-hand CLUSTER [--generation N]` plans every step for nodes *assumed* fresh (nothing read
over SSH): before step 01 Corosync is not installed; from step 02 on it is, with the files its
package brings on that generation's systems (Ubuntu 12.04 for 1.x: sysv init, `START=no`, an
rc.local ending in `exit 0`; Debian for 2.x/3.x: systemd, Corosync enabled and running on the
package's placeholder file). Each step's operations then print as their `by_hand` lines, node by
node. Because these are the plans `runbook run` executes, the walkthrough cannot drift from what the
runbook does; forced to generation 1, the chapter's cluster reads as the chapter's own commands.
"""

from __future__ import annotations

from collections.abc import Callable

from runbook.cluster import Cluster
from runbook.facts import AUTHKEY_PATH, CONF_PATH, DEFAULTS_PATH, RC_LOCAL_PATH, FileFact, NodeFacts
from runbook.plan import StepPlan

PACKAGE_VERSION = {1: "1.4.2", 2: "2.4.2", 3: "3.1.7"}
UBUNTU_RC_LOCAL = (
    "#!/bin/sh -e\n#\n# rc.local\n#\n# This script is executed at the end of each multiuser runlevel.\n"
    "# By default this script does nothing.\n\nexit 0\n"
)
UBUNTU_DEFAULTS = "# start corosync at boot [yes|no]\nSTART=no\n"
DEBIAN_DEFAULTS = '# Corosync runtime options\n#OPTIONS=""\n'


def assumed_facts(node: str, generation: int, *, installed: bool) -> NodeFacts:
    """Facts of a fresh node of that generation's era, as assumed (not read): see the module docstring."""
    old = generation == 1
    files: dict[str, FileFact] = {}
    if installed:
        defaults = UBUNTU_DEFAULTS if old else DEBIAN_DEFAULTS
        files[DEFAULTS_PATH] = FileFact(DEFAULTS_PATH, defaults.encode(), 0o644, "root", "root")
    if old:
        files[RC_LOCAL_PATH] = FileFact(RC_LOCAL_PATH, UBUNTU_RC_LOCAL.encode(), 0o755, "root", "root")
    version = PACKAGE_VERSION[generation]
    running = installed and not old  # Debian's package starts Corosync; Ubuntu 12.04's START=no keeps it stopped
    return NodeFacts(
        node=node,
        uid=0,
        os_id="ubuntu" if old else "debian",
        os_version="12.04" if old else "12",
        os_name="Ubuntu 12.04 LTS" if old else "Debian GNU/Linux 12 (bookworm)",
        corosync_version=version if installed else None,
        candidate_version=version,
        package_manager="apt-get",
        init_system="sysv" if old else "systemd",
        boot_tools=("update-rc.d",) if old else ("update-rc.d", "systemctl"),
        addresses=(),
        corosync_pids=(999,) if running else (),
        authkey=None,
        files=files,
        boot_enabled={"systemd": "enabled"} if not old else {"sysv_link": ""},
        # a daemon on the package's placeholder file: another cluster name, started before our files
        extra={"state": "pid=999\nstart=0\nloaded_cluster_name=debian\nactive=active\nenabled=enabled" if running else "pid="},
    )


def step_planners() -> list[tuple[str, str, Callable[[Cluster, dict[str, NodeFacts]], StepPlan], bool]]:
    """(step, title, planner, needs Corosync installed) for every step that changes a node."""
    from importlib import import_module

    # by module path: runbook.steps exports the step *functions* under some of these names
    install, config, authkey, cfgtool, boot, start = (
        import_module(f"runbook.steps.{name}") for name in ("install", "config", "authkey", "cfgtool", "boot", "start")
    )

    return [
        (install.STEP, install.TITLE, install.plan, False),
        (config.STEP, config.TITLE, lambda c, f: config.plan(c, f, True), True),
        (authkey.STEP, authkey.TITLE, lambda c, f: authkey.plan(c, f, True, c.backups.keep), True),
        (cfgtool.STEP, cfgtool.TITLE, lambda c, f: cfgtool.plan(c, f, True), True),
        (boot.STEP, boot.TITLE, boot.plan, True),
        (start.STEP, start.TITLE, lambda c, f: start.plan(c, f, True), True),
    ]


def walkthrough(cluster: Cluster, generation: int) -> list[tuple[str, StepPlan]]:
    """Every step's plan for fresh nodes of `generation`, in order."""
    cluster = cluster.with_generation(generation)
    plans = []
    for step, title, planner, installed in step_planners():
        facts = {n.name: assumed_facts(n.name, generation, installed=installed) for n in cluster.nodes}
        plans.append((f"{step}: {title}", planner(cluster, facts)))
    return plans


def render_markdown(cluster: Cluster, generation: int) -> str:
    """The walkthrough as Markdown: per step, the commands per node, then the whole files written."""
    lines = [f"# {cluster.name} by hand, Corosync {generation}.x", ""]
    lines.append(
        f"The commands `runbook run` amounts to on fresh {'Ubuntu 12.04' if generation == 1 else 'Debian'} nodes, "
        "node by node, generated from the same plans the runbook executes (`runbook by-hand`)."
    )
    for title, plan in walkthrough(cluster, generation):
        lines += ["", f"## {title}", ""]
        commands = plan.by_hand()
        if not commands:
            lines += ["Nothing to type on this generation:", ""]
            lines += [f"- `{name}`: {p.summary}" for name, p in plan.nodes.items()]
            continue
        lines += ["```sh", *commands, "```"]
        for name, p in plan.nodes.items():
            for path, text in p.files.items():
                if path in (CONF_PATH, RC_LOCAL_PATH, DEFAULTS_PATH) and path != AUTHKEY_PATH and p.changes:
                    lines += ["", f"`{path}` on `{name}`:", "", "```", text.rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def render_text(cluster: Cluster, generation: int) -> str:
    """The walkthrough for a terminal: the commands only."""
    out = []
    for title, plan in walkthrough(cluster, generation):
        out.append(f"## {title}")
        out += plan.by_hand() or ["# nothing to type: " + "; ".join(f"{n}: {p.summary}" for n, p in plan.nodes.items())]
        out.append("")
    return "\n".join(out)
