"""Step 0: check every node before changing any: reachable, root, supported OS, own address on every
link, names that resolve alike everywhere (never to loopback), generation, not in another running
cluster. Its one change, once every node passed: files an interrupted run staged and left are removed."""

from __future__ import annotations

from collections.abc import Mapping

from runbook.conf.render import render
from runbook.engine.executor import raise_if_failed
from runbook.engine.facts import ALL, AUTHKEY_PATH, CONF_DIR, NodeFacts, is_hostname, is_loopback, resolution_problems, resolve_names
from runbook.engine.plan import forget_pending
from runbook.errors import StepFailed
from runbook.model.rules import quorum_warnings
from runbook.model.types import Cluster, Node
from runbook.report.outcome import NodeOutcome, StepReport
from runbook.ssh.fanout import each
from runbook.ssh.hosts import Hosts
from runbook.steps import change, firewall, foreign_cluster, leftovers, link_check, qnetd_reach, removal
from runbook.steps._common import gather_facts

Resolved = Mapping[str, tuple[str, ...]]  # name -> addresses, as one node resolves them

STEP = "00-preflight"
# Everything but the package manager's candidate version, which nothing here uses and which costs an
# `apt-cache policy` (0.8 s of CPU) on every node without Corosync.
SECTIONS = tuple(name for name in ALL if name != "corosync_candidate")
TITLE = "Preflight: every node checked before any node is changed"
SUPPORTED_OS = {"debian", "ubuntu", "rhel", "centos", "rocky", "almalinux", "fedora", "ol"}
PACKAGE_MANAGERS = {"apt-get", "dnf", "yum"}


def check_node(cluster: Cluster, node: Node, facts: NodeFacts, resolved: Resolved | None = None) -> list[str]:
    """Pure: what stops this node from being set up (empty list when it is ready).

    `resolved`: how this node resolves the cluster file's hostnames (preflight reads it on the node).
    """
    problems = []
    if facts.uid != 0:
        problems.append(
            f"commands run as uid {facts.uid}, not root; log in as root or set ssh.sudo: true "
            "(with passwordless sudo, or the password in RUNBOOK_SUDO_PASSWORD)"
        )
    if facts.os_id not in SUPPORTED_OS and facts.package_manager not in PACKAGE_MANAGERS:
        problems.append(f"unsupported OS {facts.os_name or facts.os_id!r}: needs apt-get, dnf or yum")
    problems += address_problems(cluster, node, facts, resolved or {})
    problems += authkey_problems(cluster, node, facts)
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
        if path == CONF_DIR:
            problems.append(
                f"{path} is a symbolic link to {target}; every file the runbook writes there (corosync.conf, the "
                f"authkey, their backups) would land in {target}, which may be shared with other hosts or managed "
                f"elsewhere. Make {path} a directory of its own (`rm {path} && mkdir {path}`, then copy what you need "
                f"from {target}), then run again"
            )
            continue
        problems.append(
            f"{path} is a symbolic link to {target}; the runbook writes each node's own file and will neither "
            f"write through a link (its target may be shared or managed elsewhere) nor replace it (the target would "
            f"keep the old settings). Make it a regular file (`cp --remove-destination {target} {path}`), "
            f"or remove the link, then run again"
        )
    return problems


# Every generation refuses a key under 1024 bits: 1.4.2 and 2.4.6 read exactly 128 bytes ("Could only
# read N bits of 1024 bits"), 3.1.7 at least KNET_MIN_KEY_LEN, 128 ("... of minimum 1024 bits"); see
# exec/totemconfig.c at each tag. Longer keys work everywhere (2.x reads the first 128 bytes, 3.x up to 4096).
AUTHKEY_MIN_BYTES = 128


def authkey_problems(cluster: Cluster, node: Node, facts: NodeFacts) -> list[str]:
    """Pure: the primary's existing key is the one step 03 copies to every node, so a key Corosync
    cannot use would stop Corosync on all of them; refuse it here, before anything is copied.
    (Its mode and owner step 03 fixes; the other nodes' keys are replaced by the primary's.)"""
    key = facts.authkey
    if node.name != cluster.primary.name or key is None or key.size >= AUTHKEY_MIN_BYTES:
        return []
    return [
        f"{AUTHKEY_PATH} on the primary is {key.size} bytes ({key.size * 8} bits); Corosync needs at least "
        f"{AUTHKEY_MIN_BYTES} bytes (1024 bits) and would fail on every node it is copied to (\"Could only read "
        f"{key.size * 8} bits of minimum 1024 bits\"). Nothing was copied. Move it aside "
        f"(`mv {AUTHKEY_PATH} {AUTHKEY_PATH}.short`) so that step 03 makes a new key on {node.name}, or put the "
        f"cluster's real key there, then run again"
    ]


def address_problems(cluster: Cluster, node: Node, facts: NodeFacts, resolved: Resolved) -> list[str]:
    """Pure: each link's address of this node must be on one of its interfaces (a hostname: what the
    node resolves it to). A name that does not resolve, or resolves to loopback, is named by
    `resolution_problems` instead."""
    problems = []
    index = cluster.nodes.index(node)
    shown = ", ".join(a for a in facts.addresses if not a.startswith(("127.", "::1", "fe80"))) or "none"
    for link, address in enumerate(node.addresses):
        field = f"nodes[{index}].address" if len(node.addresses) == 1 else f"nodes[{index}].addresses[{link}]"
        on_link = f" (link {link})" if len(node.addresses) > 1 else ""
        if not is_hostname(address):
            if not facts.has_address(address):
                problems.append(
                    f"{field} {address}{on_link} is not on any interface of this host (it has: {shown}); "
                    "is the address right, and does ssh reach the right machine?"
                )
            continue
        found = resolved.get(address, ())
        if not found or any(is_loopback(a) for a in found):
            continue
        if not any(facts.has_address(a) for a in found):
            problems.append(
                f"{field} {address}{on_link} resolves to {', '.join(found)} on this host, which is on none of its "
                f"interfaces (it has: {shown}); fix /etc/hosts or DNS, or the name in the cluster file"
            )
    return problems


def hostnames(cluster: Cluster) -> list[str]:
    """Every address of the cluster file that is a name (Corosync resolves it on each node)."""
    return list(dict.fromkeys(a for n in cluster.nodes for a in n.addresses if is_hostname(a)))


def read_resolution(step: str, cluster: Cluster, hosts: Hosts) -> dict[str, dict[str, tuple[str, ...]]]:
    """How every node resolves every hostname of the cluster file ({} when it names none)."""
    names = hostnames(cluster)
    if not names:
        return {n.name: {} for n in cluster.nodes}
    results = each([n.name for n in cluster.nodes], lambda name: resolve_names(hosts[name], names))
    failures = {name: str(error) for name, error in results.failed.items()}
    if failures:
        raise StepFailed(step, {k: v + " (nothing was changed on any node)" for k, v in failures.items()})
    return results.ok


def name_problems(cluster: Cluster, resolved: Mapping[str, Resolved]) -> dict[str, list[str]]:
    """Pure: per node, each hostname that does not resolve, resolves to loopback, or resolves
    differently on different nodes (each message names the node and the name)."""
    found: dict[str, list[str]] = {n.name: [] for n in cluster.nodes}
    for name in hostnames(cluster):
        for node, why in resolution_problems(name, {n: r.get(name, ()) for n, r in resolved.items()}).items():
            found[node].append(why)
    return found


def summary_of(facts: NodeFacts) -> str:
    if facts.corosync_version:
        corosync = f"Corosync {facts.corosync_version} ({'running' if facts.corosync_running else 'stopped'})"
    else:
        corosync = f"Corosync not installed (step 01 installs it with {facts.package_manager})"
    return f"ready: {facts.os_name or facts.os_id}, {corosync}, init {facts.init_system}, uid {facts.uid}"


# The running map (change.SCRIPT) serves two checks: the cluster a node is in, and what the change takes.
EXTRA = {leftovers.SECTION: leftovers.SCRIPT, change.SECTION: change.SCRIPT, firewall.SECTION: firewall.SCRIPT}


def generation_for(cluster: Cluster, facts: Mapping[str, NodeFacts]) -> int | None:
    """The generation the checks below decide for: the cluster file's, else the first installed one."""
    return cluster.generation or next((f.generation for f in facts.values() if f.generation), None)


def running_maps(facts: Mapping[str, NodeFacts]) -> dict[str, change.Running | None]:
    """Each node's running map, as preflight read it (change.SCRIPT)."""
    return {name: change.parse_running(name, f.extra.get(change.SECTION, "")) for name, f in facts.items()}


def change_refusal(cluster: Cluster, facts: Mapping[str, NodeFacts], restart_all: bool) -> str | None:
    """Why the files step 02 will write may not be made (they stop the running cluster), or None."""
    generation = generation_for(cluster, facts)
    if generation not in (2, 3):
        return None
    running = running_maps(facts)
    files = {n.name: render(cluster, n.name, generation) for n in cluster.nodes}
    version = change.lowest_version(f.corosync_version for f in facts.values())
    decided = change.decision(running, files, generation, version, cluster.name)
    return change.restart_all_refusal(decided, running, restart_all)


def removed_of(cluster: Cluster, facts: Mapping[str, NodeFacts], hosts: Hosts) -> list[removal.Removed]:
    """The nodes the running nodelists list and the cluster file no longer does (step 06 stops them)."""
    generation = generation_for(cluster, facts)
    if generation not in (2, 3):
        return []
    text = render(cluster, cluster.nodes[0].name, generation)
    return removal.removed_nodes(running_maps(facts), cluster, text, generation, removal.login_hostnames(hosts))


def membership_refusal(cluster: Cluster, facts: Mapping[str, NodeFacts], hosts: Hosts, removed: list[removal.Removed]) -> str | None:
    """Why the nodes the file adds or removes may not be (quorum lost, the way in removed), or None."""
    generation = generation_for(cluster, facts)
    if generation not in (2, 3):
        return None
    text = render(cluster, cluster.nodes[0].name, generation)
    endpoints = {n: hosts[n].endpoint for n in hosts} if removed else {}
    return removal.jump_refusal(removed, endpoints) or removal.quorum_refusal(running_maps(facts), cluster, text, generation, removed)


def removed_note(removed: list[removal.Removed]) -> str | None:
    """The nodes the file no longer lists that step 06 will stop, as preflight announces them."""
    if not removed:
        return None
    return (f"removed from the cluster file: {', '.join(str(r) for r in removed)}; step 06 stops Corosync there first (a "
            "clean leave), disables it at boot and keeps its files as backups, then reloads the nodes that stay")


def rotation_mix_refusal(cluster: Cluster, facts: Mapping[str, NodeFacts], removed: list[removal.Removed]) -> str | None:
    """rotate-key changes the key only: refused while the file adds or removes nodes (run `runbook run` first)."""
    ours = removal.ours(running_maps(facts), cluster.name)
    added = [n for n in facts if ours and n not in ours]
    if not removed and not added:
        return None
    what = "; ".join(part for part in (f"removes {', '.join(str(r) for r in removed)}" if removed else "",
                                       f"adds or starts {', '.join(added)}" if added else "") if part)
    return (f"rotate-key changes only the key, but the cluster file {what}: run `runbook run FILE` first, then rotate-key. "
            "Nothing was changed")


def rotation_refusal(cluster: Cluster, facts: Mapping[str, NodeFacts], restart_all: bool) -> str | None:
    """Why `rotate-key` may not go on without --restart-all: Corosync cannot take a key at run time
    here, so every running node restarts together (nodes on different keys cannot talk), or None."""
    version = change.lowest_version(f.corosync_version for f in facts.values())
    why = change.key_reload_refusal(generation_for(cluster, facts) or 3, version)
    members = change.membership_at_stake(running_maps(facts))
    if why is None or restart_all or members < 2:
        return None
    return (f"rotate-key: {why}, so the running cluster ({members} members) stops until they are back. Nothing was changed. "
            "Run again with --restart-all to do it (`runbook rotate-key FILE --check --restart-all` shows each node's part)")


def run_preflight(cluster: Cluster, hosts: Hosts, *, check: bool = False, take_over: bool = False, restart_all: bool = False,
              rotate_key: bool = False) -> StepReport:
    """Read facts everywhere and refuse to go on if any node is not fit; changes no setting.

    `take_over`: a node in another running cluster is moved into this one (else it is refused).
    `restart_all`: a change that restarts every node together may stop the running cluster.
    `rotate_key`: this run makes a new authkey (refused where that stops the cluster, without `restart_all`).
    """
    forget_pending()  # a new run (or dry run) starts here
    facts = gather_facts(STEP, cluster, hosts, SECTIONS, extra=EXTRA)
    resolved = read_resolution(STEP, cluster, hosts)
    names = name_problems(cluster, resolved)
    running = {n.name: foreign_cluster.parse_running(facts[n.name].extra.get(change.SECTION, "")) for n in cluster.nodes}
    report = StepReport(step=STEP, title=TITLE, check=check)
    for node in cluster.nodes:
        problems = check_node(cluster, node, facts[node.name], resolved[node.name]) + names[node.name]
        foreign = foreign_cluster.foreign_problem(cluster, node, running[node.name], take_over, restart_all, resolved[node.name])
        problems += [foreign] if foreign else []
        if problems:
            report.outcomes.append(NodeOutcome(node.name, "failed", "; ".join(problems)))
        else:
            report.outcomes.append(NodeOutcome(node.name, "ok", summary_of(facts[node.name])))
    installed = {f.generation for f in facts.values() if f.generation is not None}
    if len(installed) > 1:
        versions = ", ".join(f"{n}: {f.corosync_version}" for n, f in facts.items() if f.corosync_version)
        report.problems.append(f"nodes run different Corosync generations ({versions}); they cannot form one cluster")
    removed = removed_of(cluster, facts, hosts)
    if not report.problems and not report.failed:
        report.problems += check_links(cluster, hosts, facts, resolved, report)
        qnetd_problems, qnetd_notes = qnetd_reach.check(cluster, hosts)
        report.problems += qnetd_problems
        report.notes += qnetd_notes
    if not report.problems and not report.failed:
        refusal = (change_refusal(cluster, facts, restart_all) or membership_refusal(cluster, facts, hosts, removed)
                   or (rotation_mix_refusal(cluster, facts, removed) or rotation_refusal(cluster, facts, restart_all) if rotate_key else None))
        report.problems += [refusal] if refusal else []
    raise_if_failed(report)
    generation = cluster.generation or (installed.pop() if installed else None)
    if generation:
        report.notes.append(f"Corosync generation {generation}.x: " + ("from the cluster file" if cluster.generation else "detected on the nodes"))
    else:
        report.notes.append("Corosync is not installed yet: its generation is detected after step 01")
    report.notes.append(f"primary (makes the authkey): {cluster.primary.name}")
    if cluster.link_count > 1:
        report.notes.append(f"{cluster.link_count} links: every node's address on each link is on one of its interfaces")
    for name in hostnames(cluster):
        first = {n: resolved[n].get(name, ())[:1] for n in resolved}
        report.notes.append(f"{name} resolves to {', '.join(next(iter(first.values()), ()))} on every node")
    report.notes += quorum_warnings(cluster)
    leaving = removed_note(removed)
    report.notes += [leaving] if leaving else []
    moved = foreign_cluster.take_over_note(cluster, running) if take_over else None
    report.notes += [moved] if moved else []
    stale = {n.name: leftovers.parse_leftovers(facts[n.name].extra.get(leftovers.SECTION, "")) for n in cluster.nodes}
    if not check:
        remove_leftovers(hosts, stale)
    removed = leftovers.note(stale, check)
    report.notes += [removed] if removed else []
    return report


def check_links(cluster: Cluster, hosts: Hosts, facts: Mapping[str, NodeFacts], resolved: Mapping[str, Resolved],
                report: StepReport) -> list[str]:
    """The all-pairs link check: its matrices go on the report; each blocked direction is a problem
    that names the receiving node's firewall and the rule to add, where it has one."""
    plan = link_check.plan_for(cluster, generation_for(cluster, facts) or 3, facts, resolved)
    if plan is None:
        return []
    matrices = link_check.run_check(cluster, hosts, plan, {n.name: n.nodeid for n in cluster.nodes})
    report.matrices += matrices
    report.notes += link_check.warnings(matrices)
    walls = {name: firewall.parse_firewall(f.extra.get(firewall.SECTION, "")) for name, f in facts.items()}
    peers = {me: [plan.address[(p, link)] for p in plan.nodes if p != me for link in plan.ports if (p, link) in plan.address]
             for me in plan.nodes}
    ports = [port for ports in plan.ports.values() for port in ports]
    report.notes += [f"firewall on {name}: {wall.describe()}" for name, wall in walls.items() if wall.kind]
    if cluster.firewall != "manage":
        return link_check.problems(plan, matrices, firewall.hints(walls, peers, ports))
    managed = [(receiver, line) for receiver, line in link_check.failures(plan, matrices) if walls[receiver].kind]
    report.notes += [f"{line}: step 05 opens {receiver}'s firewall ({walls[receiver].describe()}) for the cluster's peers "
                     "(firewall: manage), and step 06 proves it" for receiver, line in managed]
    return [line for receiver, line in link_check.failures(plan, matrices) if not walls[receiver].kind]


def remove_leftovers(hosts: Hosts, stale: dict[str, tuple[str, ...]]) -> None:
    """Remove the staged files an interrupted run left; a node where one stays fails the step (nothing else changed)."""
    names = [name for name, paths in stale.items() if paths]
    results = each(names, lambda name: hosts[name].run(leftovers.remove_script(stale[name]), check=True, display="remove staged files left by an interrupted run").text)
    failures = {name: f"cannot remove what an interrupted run staged: {error}" for name, error in results.failed.items()}
    failures |= {name: f"still there after rm: {left.strip()}" for name, left in results.ok.items() if left.strip()}
    if failures:
        raise StepFailed(STEP, {k: v + " (no setting was changed on any node)" for k, v in failures.items()})


