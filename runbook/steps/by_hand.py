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
from dataclasses import replace

from runbook.engine.facts import AUTHKEY_PATH, CONF_PATH, DEFAULTS_PATH, RC_LOCAL_PATH, FileFact, NodeFacts
from runbook.engine.plan import StepPlan
from runbook.model.rules import with_generation
from runbook.model.types import Cluster, NetDevice, QuorumDevice
from runbook.steps import authkey, boot, cfgtool, config, install, start
from runbook.steps.qdevice_plan import QFacts, plan_phases, qnetd_node

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
    cluster = with_generation(cluster, generation)
    plans = []
    for step, title, planner, installed in step_planners():
        facts = {n.name: assumed_facts(n.name, generation, installed=installed) for n in cluster.nodes}
        plans.append((f"{step}: {title}", planner(cluster, facts)))
    return plans


def render_markdown(cluster: Cluster, generation: int, level: int = 1) -> str:
    """The walkthrough as Markdown: per step, the commands per node, then the whole files written."""
    lines = [f"{'#' * level} {cluster.name} by hand, Corosync {generation}.x", ""]
    lines.append(
        f"The commands `runbook run` amounts to on fresh {'Ubuntu 12.04' if generation == 1 else 'Debian'} nodes, "
        "node by node, generated from the same plans the runbook executes (`runbook by-hand`)."
    )
    for title, plan in walkthrough(cluster, generation):
        lines += ["", f"{'#' * (level + 1)} {title}", ""]
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


ERA = {1: "the chapter's Corosync 1.x (Ubuntu 12.04)", 2: "Corosync 2.x (Debian 9, Ubuntu 18.04)", 3: "Corosync 3.x (Debian 12)"}


def step_markdown(cluster: Cluster, step: str, cluster_file: str, generations: tuple[int, ...] = (1, 3)) -> str:
    """Markdown for one step's "by hand" box: the commands per generation, from the same plans.

    Step notebooks carry it (tools/make_notebooks.py), so each page of the guide says what the step
    amounts to at a shell on the chapter's own systems and on today's.
    """
    parts = [
        "**By hand.** What this step amounts to at a shell, for this cluster on fresh nodes. It is generated "
        f"from the very plans the runbook applies (`runbook by-hand {cluster_file} --generation N` prints the whole setup)."
    ]
    for generation in generations:
        plan = dict((title.split(":", 1)[0], p) for title, p in walkthrough(cluster, generation))[step]
        commands = plan.by_hand()
        parts.append(f"On {ERA[generation]}:")
        if not commands:
            reasons = sorted({p.summary for p in plan.nodes.values()})
            parts.append("nothing to type: " + "; ".join(reasons))
            continue
        parts.append("```sh\n" + "\n".join(commands) + "\n```")
        primary = cluster.primary.name
        for path, text in plan.nodes[primary].files.items():
            if path == CONF_PATH and plan.nodes[primary].changes:
                others = [n.name for n in cluster.nodes if n.name != primary]
                parts.append(
                    f"`{path}` on `{primary}` (on {', '.join(f'`{o}`' for o in others)} the same with its own address: "
                    f"`runbook render ... --node NAME --generation {generation}`):"
                )
                parts.append("```\n" + text.rstrip("\n") + "\n```")
    return "\n\n".join(parts)


PAGE_INTRO = """# The setup by hand

Every step of the runbook is a plan of operations, and each operation knows the commands an
operator would type to make the same change. This page lists them for the chapter's cluster
(`clusters/chapter.yaml`), on fresh nodes, for the chapter's own Corosync 1.x and for today's
Corosync 3.x. It is generated from the plans `runbook run` applies, so it says what the runbook
does, not what someone remembered it does:

```sh
runbook by-hand clusters/chapter.yaml --generation 1 --markdown   # this page's first half
runbook by-hand my-cluster.yaml --generation 3                     # your own cluster
```

What the runbook adds on top of these commands: it reads every node's facts first and does only
what differs, stages every new file on every node before it puts any in place, keeps a verified
backup of each file it replaces, and checks Corosync's own membership at the end.
"""


def page(cluster: Cluster, generations: tuple[int, ...] = (1, 3)) -> str:
    """docs/by-hand.md: the intro, then the walkthrough per generation (headings one level down)."""
    body = [PAGE_INTRO.rstrip("\n")]
    for generation in generations:
        body.append(render_markdown(cluster, generation, level=2).rstrip("\n"))
    return "\n\n".join(body) + "\n"



def with_device(cluster: Cluster, host: str = "10.0.66.203", name: str = "qnetd") -> Cluster:
    """The cluster with a quorum device (model net, ffsplit, TLS on) on `host`: the guide's example."""
    device = QuorumDevice(model="net", net=NetDevice(host=host, name=name, algorithm="ffsplit"))
    return replace(cluster, quorum=replace(cluster.quorum, device=device, two_node=None))


def qdevice_markdown(cluster: Cluster) -> str:
    """Markdown for step 07's "by hand" box: the quorum device on fresh Debian hosts, from the same plans."""
    withd = with_device(cluster)
    fresh = {"pm": "apt-get", "init": "systemd"}
    qname = qnetd_node(withd.quorum.device.net).name  # type: ignore[union-attr]
    phases = plan_phases(withd, {n.name: QFacts(n.name, dict(fresh)) for n in withd.nodes}, QFacts(qname, dict(fresh)))
    lines = [line for phase in phases for line in phase.by_hand()]
    return "\n\n".join([
        "**By hand.** What this step amounts to at a shell, in the order it must happen, generated from the plans "
        "this step applies, for the chapter's two nodes with a quorum device (`clusters/chapter-qdevice.yaml`).",
        f"On {ERA[1]}:",
        "nothing to type: Corosync 1.x has no quorum device",
        f"On {ERA[3]}, with corosync-qnetd on a host `{qname}` at {withd.quorum.device.net.host}:",  # type: ignore[union-attr]
        "```sh\n" + "\n".join(lines) + "\n```",
    ])


if __name__ == "__main__":  # python -m runbook.steps.by_hand docs/by-hand.md
    import sys
    from pathlib import Path

    from runbook.model.load import load_cluster

    root = Path(__file__).resolve().parent.parent
    Path(sys.argv[1]).write_text(page(load_cluster(root / "clusters" / "chapter.yaml")), encoding="utf-8")

